"""What gatewayctl's commissioning commands refuse before they reach the NCP: non-root callers, bad words."""

from __future__ import annotations

import asyncio

import pytest

from gatewayd.commissioning.component import Commissioning
from gatewayd.config import parse
from gatewayd.control import CommandError, Request


class NoNcp:
    client = None
    running = False


def component() -> Commissioning:
    return Commissioning(parse(""), NoNcp(), None)  # type: ignore[arg-type]


@pytest.mark.parametrize("name, args", [
    ("joiner add", ["*", "J01NME"]), ("joiner remove", ["*"]), ("commissioner start", []),
    ("commissioner stop", []), ("joiner list", ["--show-secrets"]),
])
def test_changes_and_secrets_need_root(name, args):
    command = {c.name: c for c in component().commands()}[name]
    with pytest.raises(CommandError, match="needs root"):
        asyncio.run(command.handler(Request(list(args), uid=1000)))


def test_without_an_attached_network_the_commands_say_so():
    comp = component()
    commands = {c.name: c for c in comp.commands()}
    with pytest.raises(CommandError, match="the NCP is not connected"):
        asyncio.run(commands["joiner add"].handler(Request(["*", "J01NME"], uid=0)))
    with pytest.raises(CommandError, match="the NCP is not connected"):
        asyncio.run(commands["joiner list"].handler(Request([], uid=1000)))
    state = asyncio.run(commands["commissioner state"].handler(Request([], uid=1000)))
    assert state == {"state": "disabled", "session_id": None, "joiners": 0}


def test_every_command_has_help():
    for command in component().commands():
        assert command.help and command.name.split()[0] in ("commissioner", "joiner")

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


def test_what_the_joiner_table_says_becomes_journal_events(caplog):
    """The NCP pushes no joiner events: who joined or timed out is read from the table's changes."""
    from gatewayd.commissioning.component import Joiner
    from ncp.commissioning import JoinerEntry

    comp = component()
    eui = bytes.fromhex("18b4300000000002")
    other = bytes.fromhex("18b4300000000003")
    comp.joiners = {eui.hex(): Joiner(eui, "J01NME", 600.0, "gatewayctl"),
                    other.hex(): Joiner(other, "ABCDEF", 100.0, "config"),
                    "*": Joiner(None, "J01NME", 100.0, "gatewayctl", attached=2)}
    caplog.set_level("INFO", logger="gatewayd.commissioning")
    # at t=50: OpenThread cut the first entry to 20 s (its device joined); the others still wait
    comp.observe([JoinerEntry(eui, 19_000, "J01NME"), JoinerEntry(other, 50_000, "ABCDEF"),
                  JoinerEntry(None, 50_000, "J01NME")], now=50.0)
    assert comp.joiners[eui.hex()].joined
    # at t=101: all gone
    comp.observe([], now=101.0)
    events = {(r.fields["JOINER_EUI64"], r.fields["JOINER_EVENT"]) for r in caplog.records if hasattr(r, "fields")}
    assert events == {(eui.hex(), "joined"), (other.hex(), "timeout"), ("*", "timeout")}
    assert "2 device(s) attached while it was open" in caplog.text
    assert "no device joined with it" in caplog.text and "J01NME" not in caplog.text and "ABCDEF" not in caplog.text
    assert comp.joiners == {}


def test_an_entry_gone_early_was_removed_elsewhere(caplog):
    from gatewayd.commissioning.component import Joiner

    comp = component()
    comp.joiners = {"*": Joiner(None, "J01NME", 600.0, "gatewayctl")}
    caplog.set_level("INFO", logger="gatewayd.commissioning")
    comp.observe([], now=10.0)
    assert "gone from the NCP's table" in caplog.text and comp.joiners == {}

"""The simulator's fault-injection control channel: one JSON object per line, answered by one line.

Commands: ``reset``, ``drop`` (count), ``corrupt`` (count), ``stall`` (seconds), ``die``, ``node_add``
(name, eui64 hex optional, kind ``ftd`` (default) or ``mtd``), ``node_remove`` (name), ``state``,
``joiner_start`` (name, pskd, eui64 and kind optional: a device runs ``joiner start PSKD`` and becomes a node
if the commissioner lets it in; answered with ``joined`` and, when it failed, ``error`` as ot-cli-ftd says it),
``border_router`` (rloc16, prefixes and routes: lists of {prefix, flags, stable optional}: another border
router on the mesh publishes exactly these into the leader's network data; both empty: it left).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass

from ..netdata import ExternalRoute, OnMeshPrefix

__all__ = ["COMMANDS", "ControlCommand", "ControlError", "parse_command", "reply"]

COMMANDS = frozenset({"reset", "drop", "corrupt", "stall", "die", "node_add", "node_remove", "state",
                      "joiner_start", "border_router"})


class ControlError(ValueError):
    """A control line that is not a valid command."""


@dataclass(frozen=True)
class ControlCommand:
    cmd: str
    count: int = 1
    seconds: float = 0.0
    name: str = ""
    eui64: bytes | None = None
    kind: str = "ftd"
    pskd: str = ""
    rloc16: int = 0
    prefixes: tuple[OnMeshPrefix, ...] = ()
    routes: tuple[ExternalRoute, ...] = ()


def parse_command(line: bytes | str) -> ControlCommand:
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ControlError(f"not JSON: {exc}") from None
    if not isinstance(obj, dict) or obj.get("cmd") not in COMMANDS:
        raise ControlError(f"unknown command; expected one of {sorted(COMMANDS)}")
    cmd = obj["cmd"]
    try:
        if cmd in ("drop", "corrupt"):
            count = int(obj.get("count", 1))
            if count < 0:
                raise ControlError("count must be >= 0")
            return ControlCommand(cmd, count=count)
        if cmd == "stall":
            seconds = float(obj["seconds"])
            if not 0 <= seconds <= 3600:
                raise ControlError("seconds must be in 0..3600")
            return ControlCommand(cmd, seconds=seconds)
        if cmd in ("node_add", "node_remove", "joiner_start"):
            name = obj["name"]
            if not isinstance(name, str) or not name:
                raise ControlError("name must be a non-empty string")
            eui64 = None
            if cmd != "node_remove" and obj.get("eui64"):
                eui64 = parse_eui64(obj["eui64"])
            kind = obj.get("kind", "ftd") if cmd != "node_remove" else "ftd"
            if kind not in ("ftd", "mtd"):
                raise ControlError("kind must be ftd or mtd")
            pskd = obj["pskd"] if cmd == "joiner_start" else ""
            if not isinstance(pskd, str):
                raise ControlError("pskd must be a string")
            return ControlCommand(cmd, name=name, eui64=eui64, kind=kind, pskd=pskd)
        if cmd == "border_router":
            rloc16 = int(obj["rloc16"])
            if not 0 <= rloc16 < 0xFFFE:
                raise ControlError("rloc16 must be in 0..0xfffd")
            return ControlCommand(cmd, rloc16=rloc16,
                                  prefixes=tuple(OnMeshPrefix(*_entry(e)) for e in obj.get("prefixes", [])),
                                  routes=tuple(ExternalRoute(*_entry(e)) for e in obj.get("routes", [])))
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        if isinstance(exc, ControlError):
            raise
        raise ControlError(f"bad arguments for {cmd}: {exc}") from None
    return ControlCommand(cmd)


def _entry(obj: object) -> tuple[ipaddress.IPv6Network, int, bool]:
    """A network data entry of ``border_router``: {prefix, flags (a Spinel flag byte), stable (default true)}."""
    if not isinstance(obj, dict):
        raise ControlError("each prefix or route must be an object")
    flags = int(obj.get("flags", 0))
    if not 0 <= flags <= 0xFF:
        raise ControlError("flags must be one byte")
    return ipaddress.IPv6Network(obj["prefix"]), flags, bool(obj.get("stable", True))


def parse_eui64(text: str) -> bytes:
    """``0011223344556677`` or ``00:11:22:33:44:55:66:77``."""
    try:
        raw = bytes.fromhex(str(text).replace(":", "").replace("-", ""))
    except ValueError:
        raise ControlError(f"bad EUI-64 {text!r}") from None
    if len(raw) != 8:
        raise ControlError(f"EUI-64 must be 8 bytes: {text!r}")
    return raw


def reply(ok: bool = True, **fields: object) -> bytes:
    return (json.dumps({"ok": ok, **fields}, sort_keys=True) + "\n").encode()

"""A deliberately small fake NCP for client tests: answers GET/SET/INSERT/REMOVE/RESET from a dict.

Used in-process behind a pty (``PtyPeer``) or as a child program on a forkpty link
(``python fake_ncp.py [--protocol 4.3] [--interface-type 3]``).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tty

if __package__ in (None, ""):
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

from ncp import hdlc
from ncp.spinel import Command, Prop, SpinelError, SpinelFrame, Status, pack, pack_prop


def default_props(protocol: tuple[int, int] = (4, 3), interface_type: int = 3) -> dict[int, bytes]:
    return {
        Prop.PROTOCOL_VERSION: pack("ii", *protocol),
        Prop.INTERFACE_TYPE: pack("i", interface_type),
        Prop.NCP_VERSION: pack("U", "OPENTHREAD/fake; TEST"),
        Prop.CAPS: pack_prop(Prop.CAPS, [1, 2, 3, 5, 512]),
        Prop.HWADDR: bytes.fromhex("18b4300000000001"),
        Prop.NET_ROLE: pack("C", 0),
        Prop.PHY_CHAN: pack("C", 11),
    }


class FakeNcp:
    def __init__(self, props: dict[int, bytes] | None = None) -> None:
        self.props = default_props() if props is None else props
        self.decoder = hdlc.HdlcDecoder()
        self.received: list[SpinelFrame] = []
        self.drop = 0  # ignore this many requests
        self.hold = False  # keep replies in self.held instead of sending them
        self.held: list[bytes] = []
        self.push_before_reply: list[bytes] = []  # wire frames sent before every reply

    @staticmethod
    def frame(tid: int, command: int, prop: int | None, value: bytes = b"") -> bytes:
        return hdlc.encode(SpinelFrame(0, tid, command, prop, value).encode())

    def status(self, tid: int, status: int) -> bytes:
        return self.frame(tid, Command.PROP_VALUE_IS, Prop.LAST_STATUS, pack("i", status))

    def boot(self) -> bytes:
        return self.status(0, Status.RESET_POWER_ON)

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for payload in self.decoder.feed(data):
            try:
                frame = SpinelFrame.decode(payload)
            except SpinelError:
                continue
            self.received.append(frame)
            if self.drop:
                self.drop -= 1
                continue
            reply = self.answer(frame)
            if not reply:
                continue
            if self.hold:
                self.held.append(reply)
            else:
                out += b"".join(self.push_before_reply) + reply
        return bytes(out)

    def release(self, reverse: bool = False) -> bytes:
        held, self.held = self.held, []
        if reverse:
            held.reverse()
        return b"".join(b"".join(self.push_before_reply) + r for r in held)

    def answer(self, f: SpinelFrame) -> bytes:
        if f.command == Command.RESET:
            return self.boot()
        if f.command == Command.PROP_VALUE_GET:
            if f.prop in self.props:
                return self.frame(f.tid, Command.PROP_VALUE_IS, f.prop, self.props[f.prop])
            return self.status(f.tid, Status.PROP_NOT_FOUND)
        if f.command == Command.PROP_VALUE_SET:
            if f.prop in (Prop.STREAM_NET, Prop.STREAM_NET_INSECURE):
                return self.status(f.tid, Status.OK) if f.tid else b""
            if f.prop not in self.props:
                return self.status(f.tid, Status.PROP_NOT_FOUND)
            self.props[f.prop] = f.value
            return self.frame(f.tid, Command.PROP_VALUE_IS, f.prop, f.value)
        if f.command == Command.PROP_VALUE_INSERT:
            return self.frame(f.tid, Command.PROP_VALUE_INSERTED, f.prop, f.value)
        if f.command == Command.PROP_VALUE_REMOVE:
            return self.frame(f.tid, Command.PROP_VALUE_REMOVED, f.prop, f.value)
        return self.status(f.tid, Status.INVALID_COMMAND)


class PtyPeer:
    """Serves a FakeNcp on the master side of a pty; the client opens ``self.path`` as a serial port."""

    def __init__(self, ncp: FakeNcp | None = None) -> None:
        self.ncp = ncp or FakeNcp()
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        os.set_blocking(self.master, False)
        asyncio.get_running_loop().add_reader(self.master, self._on_read)

    def _on_read(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except OSError:
            return
        self.send(self.ncp.feed(data))

    def send(self, data: bytes) -> None:
        if data and self.master >= 0:
            os.set_blocking(self.master, True)
            os.write(self.master, data)
            os.set_blocking(self.master, False)

    def hangup(self) -> None:
        """Close the peer side: the client sees end of file."""
        if self.master >= 0:
            asyncio.get_running_loop().remove_reader(self.master)
            os.close(self.master)
            self.master = -1

    def close(self) -> None:
        self.hangup()
        if self._slave >= 0:
            os.close(self._slave)
            self._slave = -1


def main(argv: list[str]) -> None:
    protocol, itype = (4, 3), 3
    if "--protocol" in argv:
        major, minor = argv[argv.index("--protocol") + 1].split(".")
        protocol = (int(major), int(minor))
    if "--interface-type" in argv:
        itype = int(argv[argv.index("--interface-type") + 1])
    ncp = FakeNcp(default_props(protocol, itype))
    os.write(1, ncp.boot())
    while True:
        data = os.read(0, 4096)
        if not data:
            return
        out = ncp.feed(data)
        if out:
            os.write(1, out)


if __name__ == "__main__":
    main(sys.argv[1:])

"""The NCP simulator (``ncp.sim``) in the test's own process, for tests of what drives an NCP.

:class:`SimWire` runs :class:`ncp.sim.SimNcp` behind HDLC-lite bytes on the test's event loop; a test
reaches into ``wire.core`` to make the NCP do what a mesh would (a node attaching, a packet arriving).
:class:`SimPeer` serves it on the master side of a pty, so a client opens the slave as its serial port.

On top of the simulator sit the wire faults it cannot produce itself, and nothing else: host frames
lost before the NCP sees them (``drop``), replies held back and released later or in another order
(``hold``), forged property values in replies (``forged``) and raw bytes (``SimPeer.write_raw``).
"""

from __future__ import annotations

import asyncio
import os
import tty
from collections.abc import Callable

from ncp import hdlc
from ncp.sim import SimConfig, SimNcp
from ncp.spinel import Command, SpinelError, SpinelFrame

EUI64 = bytes.fromhex("18b4300000000001")


def sim_config(**overrides: object) -> SimConfig:
    """A quiet simulator (no MLE of its own) with a known EUI-64, unless ``overrides`` say otherwise."""
    return SimConfig(**{"mle_interval": 0, "seed": 1, "eui64": EUI64, **overrides})  # type: ignore[arg-type]


class SimWire:
    """The simulator behind HDLC-lite: :meth:`feed` it what the host wrote; whatever it sends, replies and
    the frames its timers cause, goes to ``write`` as HDLC-lite bytes, one call per burst."""

    def __init__(self, write: Callable[[bytes], None], config: SimConfig | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        self.core = SimNcp(config or sim_config())
        self.core.boot(self.loop.time())  # powered on before the host connects: its boot status is not sent
        self.core.take()
        self._write = write
        self.decoder = hdlc.HdlcDecoder()
        self.received: list[SpinelFrame] = []  # every frame the host sent, lost ones too
        self.drop = 0  # lose this many host frames before the simulator sees them
        self.hold = False  # keep replies (TID != 0) in ``held`` instead of sending them
        self.held: list[bytes] = []
        self.forged: dict[int, bytes] = {}  # property -> the value replies give instead of the simulator's
        self._timer: asyncio.TimerHandle | None = None
        self.closed = False

    def feed(self, data: bytes) -> None:
        for payload in self.decoder.feed(data):
            try:
                frame = SpinelFrame.decode(payload)
            except SpinelError:
                continue
            self.received.append(frame)
            if self.drop:
                self.drop -= 1
                continue
            self.core.handle_frame(frame, self.loop.time())
        self._flush()

    def event(self, action: Callable[[float], object]) -> None:
        """Run ``action(now)`` on the simulator (``core.add_node``, ``core.handle_mesh_packet``...), then send."""
        action(self.loop.time())
        self._flush()

    def release(self, reverse: bool = False) -> None:
        """Send the held replies, in the order they were held or the reverse."""
        held, self.held = self.held, []
        self._write(b"".join(reversed(held) if reverse else held))

    def close(self) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _flush(self) -> None:
        if self.closed:
            return
        self.core.poll(self.loop.time())  # timers due now run now: what a request causes goes out with it
        frames, _packets = self.core.take()
        out = bytearray()
        for frame in frames:
            if frame.tid and frame.command == Command.PROP_VALUE_IS and frame.prop in self.forged:
                frame = SpinelFrame(frame.iid, frame.tid, frame.command, frame.prop, self.forged[frame.prop])
            wire = hdlc.encode(frame.encode())
            if frame.tid and self.hold:
                self.held.append(wire)
            else:
                out += wire
        if out:
            self._write(bytes(out))
        if self._timer is not None:
            self._timer.cancel()
        deadline = self.core.next_deadline()
        self._timer = self.loop.call_at(deadline, self._on_timer) if deadline is not None else None

    def _on_timer(self) -> None:
        self._timer = None
        self._flush()


class SimPeer(SimWire):
    """The simulator on the master side of a pty; the client opens :attr:`path` as a serial port."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        os.set_blocking(self.master, False)
        super().__init__(self.write_raw, config)
        self.loop.add_reader(self.master, self._on_read)

    def _on_read(self) -> None:
        try:
            data = os.read(self.master, 65536)
        except OSError:
            return
        self.feed(data)

    def write_raw(self, data: bytes) -> None:
        """Bytes to the host as they are: the simulator's frames, or anything a broken NCP might send."""
        if data and self.master >= 0:
            os.set_blocking(self.master, True)
            os.write(self.master, data)
            os.set_blocking(self.master, False)

    def hangup(self) -> None:
        """Close the NCP's side: the client sees end of file."""
        super().close()
        if self.master >= 0:
            self.loop.remove_reader(self.master)
            os.close(self.master)
            self.master = -1

    def close(self) -> None:
        self.hangup()
        if self._slave >= 0:
            os.close(self._slave)
            self._slave = -1


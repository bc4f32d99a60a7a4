"""A link that answers like a recorded real NCP (tests/ncp/recordings, made by tests/interop).

Each request the driver sends is answered with what the real NCP answered to the same command on the same
property in the recording (its TID rewritten), so the driver's own requests meet the real encodings on
machines without the NCP.  A request the recording never saw is answered PROP_NOT_FOUND, as an NCP
without that property would.
"""

from __future__ import annotations

import collections
from pathlib import Path

from ncp import hdlc
from ncp.links.base import Link
from ncp.record import Chunk, load
from ncp.spinel import Command, Prop, SpinelError, SpinelFrame, Status, pack_prop

RECORDINGS = Path(__file__).parent / "recordings"
_Key = tuple[int, int | None]


def exchanges(chunks: list[Chunk]) -> tuple[list[tuple[SpinelFrame, SpinelFrame]], list[SpinelFrame]]:
    """(request, reply) pairs matched by TID in stream order, and the NCP's unsolicited frames."""
    decoders = {"host": hdlc.HdlcDecoder(), "ncp": hdlc.HdlcDecoder()}
    waiting: dict[int, SpinelFrame] = {}
    pairs: list[tuple[SpinelFrame, SpinelFrame]] = []
    unsolicited: list[SpinelFrame] = []
    for chunk in chunks:
        for payload in decoders[chunk.dir].feed(chunk.data):
            try:
                frame = SpinelFrame.decode(payload)
            except SpinelError:
                continue
            if chunk.dir == "host":
                if frame.tid:
                    waiting[frame.tid] = frame
            elif frame.tid and frame.tid in waiting:
                pairs.append((waiting.pop(frame.tid), frame))
            elif not frame.tid:
                unsolicited.append(frame)
    return pairs, unsolicited


class ReplayLink(Link):
    def __init__(self, recording: str | Path) -> None:
        super().__init__()
        self.pairs, self.unsolicited = exchanges(load(recording))
        self._decoder = hdlc.HdlcDecoder()
        self._replies: dict[_Key, collections.deque[SpinelFrame]] = collections.defaultdict(collections.deque)
        self._last: dict[_Key, SpinelFrame] = {}
        for request, reply in self.pairs:
            self._replies[(int(request.command), request.prop)].append(reply)
        self.requests: list[SpinelFrame] = []

    def describe(self) -> str:
        return "replay"

    async def open(self) -> None:
        self._reset_rx()
        self.is_open = True
        boot = next((f for f in self.unsolicited if f.prop == Prop.LAST_STATUS), None)
        if boot is not None:
            self._send(boot)

    async def close(self) -> None:
        self.is_open = False
        self._set_lost("closed", quiet=True)

    def write(self, data: bytes) -> None:
        for payload in self._decoder.feed(data):
            request = SpinelFrame.decode(payload)
            self.requests.append(request)
            if not request.tid:
                continue
            key = (int(request.command), request.prop)
            queue = self._replies.get(key)
            reply = queue.popleft() if queue else self._last.get(key)
            if reply is None:
                status = pack_prop(Prop.LAST_STATUS, int(Status.PROP_NOT_FOUND))
                reply = SpinelFrame(0, 0, Command.PROP_VALUE_IS, Prop.LAST_STATUS, status)
            self._last[key] = reply
            self._send(SpinelFrame(reply.iid, request.tid, reply.command, reply.prop, reply.value))

    def _send(self, frame: SpinelFrame) -> None:
        self._deliver(hdlc.encode(frame.encode()))

"""The NcpClient calls components make, answered in-process by the simulator's protocol core on a fake
clock: no pty, no namespaces. Pushes become the events NcpClient would emit, with decoded values.

Tests of the Thread component (tests/thread) and the LwM2M proxy's table reader (tests/lwm2m/proxy) share
it; wire faults belong to tests/ncp/conftest.py.
"""

from __future__ import annotations

import random
from typing import Any

from ncp.client import NcpStatusError, PropertyChanged, PropertyInserted, PropertyRemoved, Reset
from ncp.meshcop import Dataset
from ncp.sim import SimConfig, SimNcp
from ncp.spinel import Command, Prop, SpinelFrame, Status, pack_prop, unpack_prop

PUSHES = {Command.PROP_VALUE_IS: PropertyChanged, Command.PROP_VALUE_INSERTED: PropertyInserted,
          Command.PROP_VALUE_REMOVED: PropertyRemoved}


class SimClient:
    def __init__(self, seed: int = 7, *, formed: bool = False, generation: str = "2025") -> None:
        """``formed``: a network (a generated dataset) is up and the NCP leads it already; ``generation``: the
        OpenThread NCP the simulator imitates."""
        self.core = SimNcp(SimConfig(leader_delay=0.1, attach_delay=0.1, mle_interval=0, seed=seed,
                                     ncp_generation=generation))
        self.features: dict[str, str] = {}
        self.now = 0.0
        self.tid = 0
        self.handlers: list[Any] = []
        self.core.boot(0.0)
        self.core.take()
        if formed:
            self._request(Command.PROP_VALUE_SET, Prop.THREAD_ACTIVE_DATASET_TLVS,
                          Dataset.generate(rng=random.Random(5)).to_tlvs())
            self._request(Command.PROP_VALUE_SET, Prop.NET_IF_UP, b"\x01")
            self._request(Command.PROP_VALUE_SET, Prop.NET_STACK_UP, b"\x01")
            self.advance(1.0)

    def _request(self, command: int, prop: int, value: bytes = b"") -> SpinelFrame:
        self.tid = self.tid % 15 + 1
        self.core.handle_frame(SpinelFrame(0, self.tid, command, prop, value), self.now)
        frames, _ = self.core.take()
        reply = next(f for f in frames if f.tid == self.tid)
        if reply.prop == Prop.LAST_STATUS and prop != Prop.LAST_STATUS:
            status = unpack_prop(Prop.LAST_STATUS, reply.value)
            if status != Status.OK:
                raise NcpStatusError(status, f"{Command(command).name} {Prop(prop).name}")
        self._deliver([f for f in frames if f.tid == 0])
        return reply

    async def get(self, prop: int) -> Any:
        return unpack_prop(prop, self._request(Command.PROP_VALUE_GET, prop).value)

    async def set(self, prop: int, value: Any) -> None:
        self._request(Command.PROP_VALUE_SET, prop, pack_prop(prop, value))

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` pass on the NCP's clock; what it pushed meanwhile reaches the handlers."""
        end = self.now + seconds
        while (deadline := self.core.next_deadline()) is not None and deadline <= end:
            self.now = deadline
            self.core.poll(self.now)
        self.now = end
        frames, _ = self.core.take()
        self._deliver(frames)

    def reset(self) -> None:
        """The NCP restarts: its runtime state is gone, and the host hears a Reset."""
        self.core.reset(self.now)
        self.core.take()
        for handler in list(self.handlers):
            handler(Reset(Status.RESET_POWER_ON))

    def _deliver(self, frames: list[SpinelFrame]) -> None:
        for f in frames:
            kind = PUSHES.get(f.command) if f.tid == 0 and f.prop != Prop.LAST_STATUS else None
            if kind is not None:
                value = unpack_prop(f.prop, f.value, element=kind is not PropertyChanged)
                for handler in list(self.handlers):
                    handler(kind(f.prop, value))

    def add_event_handler(self, handler: Any) -> None:
        self.handlers.append(handler)

    def remove_event_handler(self, handler: Any) -> None:
        self.handlers.remove(handler)

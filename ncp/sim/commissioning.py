"""The commissioner and the joiner, as ot-ncp-ftd answers for them (``ncp_base_ftd.cpp``, ``ncp_base_mtd.cpp``).

No DTLS, no steering data and no MeshCoP messages are modelled: a joiner "proves" its PSKd by comparison.
What a host sees follows the real NCP (2023 and 2025 builds): SET MESHCOP_COMMISSIONER_STATE = active is
answered "petition" (INVALID_STATE unless attached, ALREADY when running) and becomes active a moment later;
the joiner table (INSERT: INVALID_STATE while the commissioner is off, INVALID_ARGUMENT for a PSKd Thread
forbids; REMOVE: ITEM_NOT_FOUND) lists milliseconds left, an entry is gone at its end, and an EUI-64 entry
whose device joined is cut to 20 s; nothing of it is pushed.  A simulated device joins through the control
socket (``joiner_start``): it becomes a node when the commissioner holds an entry for its EUI-64, or ``*``,
with its PSKd (the best match wins, as in OpenThread), and fails with ``Security`` otherwise, ``NotFound``
without a commissioner, as ``ot-cli-ftd`` reports it.

The NCP as a joiner (SET MESHCOP_JOINER_COMMISSIONING, which needs NET_IF_UP and Thread off, and is answered
LAST_STATUS OK) reports its outcome as a pushed LAST_STATUS after ``joiner_delay``: JOIN_SUCCESS when its
PSKd is ``SimConfig.joinable_pskd`` (the existing network's credentials then become its active dataset; no
other router is simulated, so it leads its own partition of that network), JOIN_SECURITY for another PSKd,
JOIN_NO_PEERS when no joinable network is configured.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ncp.commissioning import CommissionerState, JoinerState, PskdError, check_pskd
from ncp.meshcop import Dataset
from ncp.spinel import Command, Prop, SpinelError, Status, pack_prop
from ncp.spinel.format import pack, unpack

if TYPE_CHECKING:
    from .core import SimNcp

__all__ = ["JOINED_REMAINS", "Commissioning"]

log = logging.getLogger(__name__)

JOINED_REMAINS = 20.0  # OpenThread's kRemoveJoinerDelay
PETITION_DELAY = 0.1  # petition → active (ot-ncp-ftd: within its first state read)
URL_MAX = 64  # OT_PROVISIONING_URL_MAX_SIZE


@dataclass
class _Entry:
    joiner_id: bytes  # the id struct: b"" any, 8 bytes an EUI-64, else a discerner
    pskd: str
    expires: float


class Commissioning:
    """Runtime state (created anew at every power-on): the commissioner, its joiners, the NCP's own joiner."""

    def __init__(self, ncp: SimNcp, rng: random.Random) -> None:
        self.ncp = ncp
        self.rng = rng
        self.state = CommissionerState.DISABLED
        self.session_id = 0
        self.provisioning_url = ""
        self.entries: dict[bytes, _Entry] = {}
        self.joiner_state = JoinerState.IDLE

    # --- the commissioner ---------------------------------------------------------------------------------

    def set_state(self, value: bytes, now: float) -> Status:
        self.check_attached()
        state = unpack("C", value)[0]
        if state == CommissionerState.ACTIVE:
            if self.state != CommissionerState.DISABLED:
                return Status.ALREADY
            if not self.ncp.stack.attached:
                return Status.INVALID_STATE
            self.state = CommissionerState.PETITION
            self.ncp.timers.after(now, PETITION_DELAY, "commissioner", self._petition_accepted)
            return Status.OK
        if state == CommissionerState.DISABLED:
            if self.state == CommissionerState.DISABLED:
                return Status.ALREADY
            self.stop()
            log.info("commissioner disabled by the host")
            return Status.OK
        return Status.INVALID_ARGUMENT

    def _petition_accepted(self, now: float) -> None:
        if self.state == CommissionerState.PETITION and self.ncp.stack.attached:
            self.state = CommissionerState.ACTIVE
            self.session_id = self.rng.randrange(1, 0xFFFF)

    def stop(self) -> None:
        """Commissioner off: its joiners go with it (also when the NCP detaches)."""
        self.state = CommissionerState.DISABLED
        self.entries.clear()
        self.ncp.timers.cancel("commissioner")
        self.ncp.timers.cancel("joiner")

    def check_attached(self) -> None:
        """A commissioner lives only while its node is attached (OpenThread stops it on detaching)."""
        if self.state != CommissionerState.DISABLED and not self.ncp.stack.attached:
            self.stop()

    def set_url(self, value: bytes) -> Status:
        url = unpack("U", value)[0]
        if len(url.encode()) > URL_MAX:
            return Status.INVALID_ARGUMENT
        self.provisioning_url = url
        return Status.OK

    def change_joiner(self, prop: int, value: bytes, insert: bool) -> Status:
        """INSERT / REMOVE MESHCOP_COMMISSIONER_JOINERS."""
        if insert:
            joiner_id, timeout, pskd = unpack("dLU", value)
        else:
            joiner_id = unpack("d", value)[0]
        self.check_attached()
        if self.state != CommissionerState.ACTIVE:
            return Status.INVALID_STATE
        if 0 < len(joiner_id) < 8:
            return Status.PARSE_ERROR
        now = self.ncp.now
        timer = f"joiner:{joiner_id.hex()}"
        if not insert:
            if self.entries.pop(joiner_id, None) is None:
                return Status.ITEM_NOT_FOUND
            self.ncp.timers.cancel(timer)
            return Status.OK
        try:
            check_pskd(pskd)
        except PskdError:
            return Status.INVALID_ARGUMENT
        self.entries.pop(joiner_id, None)  # added again: its new PSKd and time, at the end of the table
        self.entries[joiner_id] = _Entry(joiner_id, pskd, now + timeout)
        self._expire_at(joiner_id, now + timeout)
        return Status.OK

    def _expire_at(self, joiner_id: bytes, when: float) -> None:
        def expire(now: float) -> None:
            entry = self.entries.get(joiner_id)
            if entry is not None and entry.expires <= now:
                del self.entries[joiner_id]

        self.ncp.timers.after(self.ncp.now, max(0.0, when - self.ncp.now), f"joiner:{joiner_id.hex()}", expire)

    def joiner_table(self) -> bytes:
        """GET MESHCOP_COMMISSIONER_JOINERS: ``A(t(t(E|CX)LU))``, milliseconds left."""
        now = self.ncp.now
        return b"".join(pack("t(dLU)", (e.joiner_id, max(0, int((e.expires - now) * 1000) - 1), e.pskd))
                        for e in self.entries.values())

    def device_joins(self, eui64: bytes, pskd: str) -> str | None:
        """A device ran ``joiner start PSKD``: None when it joined, else what ot-cli-ftd reports."""
        self.check_attached()
        if self.state != CommissionerState.ACTIVE:
            return "NotFound"  # no joinable network answers the discovery
        entry = self.entries.get(eui64) or self.entries.get(b"")
        if entry is None:
            return "NotFound"  # the steering data names another device
        if entry.pskd != pskd:
            return "Security"  # the DTLS handshake fails
        if entry.joiner_id:  # OpenThread removes an EUI-64 entry 20 s after its device joined
            entry.expires = min(entry.expires, self.ncp.now + JOINED_REMAINS)
            self._expire_at(entry.joiner_id, entry.expires)
        return None

    # --- the NCP as a joiner ------------------------------------------------------------------------------

    def set_joiner_commissioning(self, value: bytes, now: float) -> Status:
        start = unpack("b", value)[0]
        if not start:
            self.ncp.timers.cancel("ncp-joiner")
            self.joiner_state = JoinerState.IDLE
            return Status.OK
        try:
            pskd = unpack("bU", value)[1]
        except SpinelError:
            return Status.PARSE_ERROR
        stack = self.ncp.stack
        if not stack.if_up or stack.stack_up:
            return Status.INVALID_STATE
        if self.joiner_state != JoinerState.IDLE:
            return Status.BUSY
        try:
            check_pskd(pskd)
        except PskdError:
            return Status.INVALID_ARGUMENT
        self.joiner_state = JoinerState.DISCOVER
        self.ncp.timers.after(now, self.ncp.config.joiner_delay, "ncp-joiner", lambda now: self._joined(pskd))
        return Status.OK

    def _joined(self, pskd: str) -> None:
        wanted = self.ncp.config.joinable_pskd
        self.joiner_state = JoinerState.IDLE
        if wanted is None:
            status = Status.JOIN_NO_PEERS
        elif pskd != wanted:
            status = Status.JOIN_SECURITY
        else:
            status = Status.JOIN_SUCCESS
            network = Dataset.generate(name="sim-existing", channel=self.ncp.dataset.channel or 15,
                                       rng=random.Random(wanted))
            self.ncp.meshcop.set_active(network)
        self.ncp.out.send(0, Command.PROP_VALUE_IS, Prop.LAST_STATUS, pack_prop(Prop.LAST_STATUS, int(status)))

"""What the simulated NCP keeps across RESET and restarts: its flash.

OpenThread's settings outlive a reset, and a host depends on that (a restarted former leader takes its
old RLOC16 again, lists its old children with their old RLOC16s).  Everything else in the simulator is
runtime state that a power-on drops; this is the one place that is not, and how it is saved as JSON.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from ncp.meshcop import Dataset, MeshCoPError

__all__ = ["Flash"]

log = logging.getLogger(__name__)


@dataclass
class Flash:
    """What survives RESET and restarts (an NCP's flash)."""

    dataset: Dataset = field(default_factory=Dataset)
    pending: Dataset | None = None  # the pending dataset, with its whole delay
    committed: bool = False  # a complete active dataset was written
    ext_addr: bytes = b""
    # OpenThread's network info and child info settings: whether it led this network, its router id (it
    # keeps it when it leads again), and its children (EUI-64 -> child id)
    led: bool = False
    router_id: int | None = None
    children: dict[bytes, int] = field(default_factory=dict)

    def to_state(self, eui64: bytes) -> dict[str, Any]:
        """The JSON-able state ``python -m ncp.sim --state`` writes (with the NCP's EUI-64)."""
        return {
            "dataset": self.dataset.hex(),
            "pending": self.pending.hex() if self.pending is not None else "",
            "committed": self.committed,
            "ext_addr": self.ext_addr.hex(),
            "eui64": eui64.hex(),
            "led": self.led,
            "router_id": self.router_id,
            "children": {eui.hex(): child_id for eui, child_id in self.children.items()},
        }

    def load(self, state: dict[str, Any], *, read_eui64: bool) -> bytes | None:
        """Take what :meth:`to_state` wrote; returns the stored EUI-64 if ``read_eui64`` and there is one.

        An unreadable field is logged and ends the loading: what came before it is kept.
        """
        eui64 = None
        try:
            self.dataset = Dataset.from_hex(state.get("dataset", ""))
            self.committed = bool(state.get("committed")) and self.dataset.is_complete
            self.pending = Dataset.from_hex(state["pending"]) if state.get("pending") else None
            if state.get("ext_addr"):
                self.ext_addr = bytes.fromhex(state["ext_addr"])
            if state.get("eui64") and read_eui64:
                eui64 = bytes.fromhex(state["eui64"])
            router_id = state.get("router_id")
            if isinstance(router_id, int) and 0 <= router_id < 63:
                self.router_id = router_id
                self.led = bool(state.get("led"))
            self.children = {bytes.fromhex(eui): int(child_id)
                             for eui, child_id in (state.get("children") or {}).items()
                             if 1 <= int(child_id) <= 511 and len(bytes.fromhex(eui)) == 8}
        except (AttributeError, MeshCoPError, TypeError, ValueError) as exc:
            log.warning("ignoring unreadable simulator state: %s", exc)
        return eui64

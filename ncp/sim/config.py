"""The simulator's knobs: delays of the Thread state machine, the build to imitate, seeds.

Kept apart from the state machine so the command line (``python -m ncp.sim``), tests and the testbed
build one :class:`SimConfig` without importing the protocol core.
"""

from __future__ import annotations

from dataclasses import dataclass

from .generation import GENERATIONS

__all__ = ["SimConfig"]


@dataclass
class SimConfig:
    leader_delay: float = 0.5  # stack up -> leader
    attach_delay: float = 0.2  # leader (or node added) -> child attached
    mle_interval: float = 10.0  # own MLE multicast forwarded to the host; 0 disables
    # FTD child -> router.  OpenThread waits a random time up to its router selection jitter (120 s).
    router_upgrade_delay: float = 120.0
    dnssd_server: bool = False  # OT_DNSSD_SERVER: UDP 53 to the NCP's addresses is answered by the NCP
    # A former leader bringing its stack up again (RESET, restart, stack down/up) with no router around runs
    # OpenThread's whole attach cycle before it leads again (ot-ncp-ftd 2023 and 2025: 30-34.5 s after a
    # restart), unless the host SETs NET_ROLE = leader.
    reattach_delay: float = 33.0
    # ...and lists each child it restored from its settings once the child answered (0.2-0.9 s after leading)
    child_restore_delay: float = 0.5
    # The PSKd an existing network's commissioner holds for this NCP as a joiner (None: no joinable network), and
    # how long joining takes (ot-ncp-ftd on the simulated radio: 5-7 s)
    joinable_pskd: str | None = None
    joiner_delay: float = 0.5
    ncp_generation: str = "2025"  # a key of GENERATIONS
    # Other simulated NCPs share the radio (ncp/sim/radio.py): one mesh, several border routers; a peer (our
    # leader included) silent this long is gone
    shared_radio: bool = False
    radio_timeout: float = 3.0
    eui64: bytes | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.ncp_generation not in GENERATIONS:
            raise ValueError(f"ncp_generation must be one of {sorted(GENERATIONS)}")

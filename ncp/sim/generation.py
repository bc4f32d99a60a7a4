"""The ot-ncp-ftd builds the simulator imitates, and what differs between them.

A host must cope with NCPs of several OpenThread vintages; every behaviour that depends on the build is
a field of :class:`Generation` here, so the rest of the simulator asks ``generation.<quirk>`` instead of
comparing version strings.  Checked against OpenThread 714aeeb70 (2025) and 28f30b3ce (2023).
"""

from __future__ import annotations

from dataclasses import dataclass

from ncp.spinel import Prop

__all__ = ["CAPS", "GENERATIONS", "PROTOCOL_VERSION", "Generation"]

PROTOCOL_VERSION = (4, 3)
# SPINEL_CAP_* exactly as ot-ncp-ftd lists them (both generations); no CMD_MULTI.
CAPS = [5, 12, 24, 32, 513, 518, 53, 54, 14, 512, 6, 520, 515, 517, 516, 522, 523, 48, 49, 1024, 1027, 1028,
        1026, 1029, 526, 528]


@dataclass(frozen=True)
class Generation:
    """What differs between the OpenThread NCP builds the simulator imitates (seen on ot-ncp-ftd)."""

    name: str
    commit: str
    built: str  # __DATE__ __TIME__ of the build; here the commit's date
    dataset_tlvs: bool  # THREAD_ACTIVE_/PENDING_DATASET_TLVS exist (added in 2024); else PROP_NOT_FOUND
    pending_needs_newer: bool  # a pending dataset becomes active only if newer (2023: whatever its timestamp)
    ml_preferred: bool  # mesh-local addresses listed with preferred lifetime 0xFFFFFFFF (2023: 0)
    if_up_pushed: bool  # NET_IF_UP changes are pushed
    border_agent: bool  # BORDER_AGENT_MESHCOP_SERVICE_STATE is pushed
    locators_to_host: bool  # packets for the NCP's RLOC/ALOC reach the host (2023: dropped)
    # 2023: no NET_ROLE "disabled" (reported as detached), no ping offload mode RLOC_ALOC_ONLY (offload is
    # off by default, yet echo requests to an RLOC/ALOC are always answered by the NCP)
    modern_roles: bool

    @property
    def ncp_version(self) -> str:
        return f"OPENTHREAD/{self.commit}; SIMULATION; {self.built}"

    @property
    def unsol_update_list(self) -> list[int]:
        props = [112, 96, 97, 99, 65, 67, 72, 71, 5389, 82, 90, 91, 66, 73, 0, 0, 4609, 102, 33, 54, 68, 69,
                 70, 75, 34, 6400, 6413]
        return props if self.if_up_pushed else [p for p in props if p != Prop.NET_IF_UP]


GENERATIONS = {
    "2023": Generation("2023", "28f30b3ce", "Oct 23 2023 05:17:51", dataset_tlvs=False, pending_needs_newer=False,
                       ml_preferred=False,
                       if_up_pushed=False, border_agent=False, locators_to_host=False, modern_roles=False),
    "2025": Generation("2025", "714aeeb70", "Nov 14 2025 16:17:19", dataset_tlvs=True, pending_needs_newer=True,
                       ml_preferred=True,
                       if_up_pushed=True, border_agent=True, locators_to_host=True, modern_roles=True),
}

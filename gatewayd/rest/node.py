"""What the REST API does to the node, through the Thread component's public operations.

The reads and writes are the ones the gatewayctl commands run (``state``, ``dataset active``, ``thread
enable``/``disable``, ``dataset set``, ``factory-reset``: :class:`gatewayd.thread.network.ThreadNetwork`),
so the API shows and does what gatewayctl does; only what otbr-agent serves and gatewayctl has no command
for (the border agent id, the NCP's extended address, RLOC16 and router count) is read here.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterator
from typing import Any

from gatewayd.control import CommandError
from gatewayd.ncp.component import NcpComponent
from gatewayd.thread.network import ThreadNetwork, ThreadRefused, ThreadUnavailable, optional
from gatewayd.thread.state import ThreadState
from ncp.client import NcpClient
from ncp.meshcop import Dataset
from ncp.spinel import Prop

VIA = "the REST API"


class Conflict(Exception):
    """The node is in a state that refuses the request (409)."""


class Unavailable(Exception):
    """The Thread network or the NCP is not running (503)."""


class Invalid(Exception):
    """The request carries what the node cannot take (400)."""


@contextlib.contextmanager
def _answers() -> Iterator[None]:
    """The Thread component's refusals as the REST API's: 503, 409, or 400 for a dataset it cannot take."""
    try:
        yield
    except ThreadUnavailable as exc:
        raise Unavailable(str(exc)) from None
    except ThreadRefused as exc:
        raise Conflict(str(exc)) from None
    except CommandError as exc:
        raise Invalid(str(exc)) from None


class Node:
    def __init__(self, ncp: NcpComponent | None, thread: ThreadNetwork | None, state_dir: str):
        self.ncp = ncp
        self.thread = thread
        self.state = ThreadState(state_dir)

    # ---- reads ---------------------------------------------------------------------------------
    def _network(self) -> ThreadNetwork:
        if self.thread is None:
            raise Unavailable("the Thread network is not configured")
        return self.thread

    def _client(self) -> NcpClient:
        client = self.ncp.client if self.ncp is not None else None
        if client is None or not self.ncp.running:  # type: ignore[union-attr]
            raise Unavailable("the NCP is not connected")
        return client

    async def role(self) -> str:
        """``gatewayctl state``'s role; otbr-agent says "disabled" where gatewayd knows none."""
        role = self._network().role_name()
        return "disabled" if role == "unknown" else role

    async def active_tlvs(self) -> bytes | None:
        """What ``gatewayctl dataset active -x --show-secrets`` prints; None without an active dataset."""
        dataset = await self.active_dataset()
        return dataset.to_tlvs() if dataset is not None else None

    async def active_dataset(self) -> Dataset | None:
        return self._network().active_dataset()

    async def pending_dataset(self) -> Dataset | None:
        """What ``gatewayctl dataset pending`` shows (the NCP's, its delay counting down); None without one."""
        with _answers():
            return await self._network().pending_dataset()

    def coprocessor_version(self) -> str:
        """The NCP's version string, as ``gatewayctl ncp`` shows it."""
        return str(self._client().info.get("ncp_version", ""))

    async def ext_address(self) -> bytes:
        return bytes(await self._client().get(Prop.MAC_15_4_LADDR))

    def border_agent_id(self) -> bytes:
        """The one the ``_meshcop._udp`` record carries too (kept in state_dir)."""
        return self.state.border_agent_id()

    async def node_info(self) -> dict[str, Any]:
        """``GET /node`` (otbr-agent's Node2Json), from what the NCP and the Thread component know."""
        client = self._client()
        dataset = await self.active_dataset()
        rloc16 = await optional(client, "rloc16", client.get(Prop.THREAD_RLOC16))
        routers = await optional(client, "router table", client.get(Prop.THREAD_ROUTER_TABLE))
        info: dict[str, Any] = {
            "BaId": self.border_agent_id().hex().upper(),
            "State": await self.role(),
            "NumOfRouter": len(routers or ()),
            "ExtAddress": (await self.ext_address()).hex().upper(),
        }
        if dataset is not None:
            info["NetworkName"] = dataset.network_name
            info["ExtPanId"] = (dataset.extended_pan_id or b"").hex().upper()
            if isinstance(rloc16, int) and dataset.mesh_local_prefix is not None:
                base = int(dataset.mesh_local_prefix.network_address)  # RLOC: <mesh-local /64>:0:ff:fe00:<rloc16>
                info["RlocAddress"] = str(ipaddress.IPv6Address(base | 0xFF_FE00_0000 | rloc16))
        if isinstance(rloc16, int):
            info["Rloc16"] = rloc16
        return info

    # ---- writes: what gatewayctl thread enable/disable, dataset set and factory-reset do ---------
    async def set_enabled(self, enabled: bool) -> None:
        """otbr-agent's ``PUT /node/state``: Thread (and the IPv6 interface) on or off."""
        with _answers():
            await self._network().enable(enabled, VIA)

    async def set_active_dataset(self, dataset: Dataset) -> None:
        """A new active dataset for a stopped Thread stack (otbr-agent answers 409 otherwise)."""
        with _answers():
            await self._network().replace_active_dataset(dataset, VIA)

    async def set_pending_dataset(self, dataset: Dataset) -> Dataset:
        """What ``gatewayctl channel change`` does after making the dataset: the NCP takes it after its delay."""
        with _answers():
            return await self._network().set_pending_dataset(dataset, VIA)

    async def clear_pending_dataset(self) -> None:
        """``gatewayctl dataset pending clear``."""
        with _answers():
            await self._network().clear_pending_dataset(VIA)

    async def factory_reset(self) -> None:
        """otbr-agent's ``DELETE /node``: detach and forget the network until a dataset is set."""
        with _answers():
            await self._network().forget_network(VIA)

"""What the REST API does to the node, on top of the Thread and NCP components.

Reads go through the gatewayctl commands' own implementations (``state``, ``dataset active -x
--show-secrets``, ``ncp``), so the API shows what gatewayctl shows. The writes otbr-agent offers (Thread
on/off, a new active dataset, factory reset) have no gatewayctl command yet; they are done here with the
Thread component's own pieces (``set_active_dataset``, its ``ThreadState``), and belong in
``gatewayd/thread/network.py`` once gatewayctl gets the same commands.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
from pathlib import Path
from typing import Any

from gatewayd.control import CommandError, Request
from gatewayd.ncp.component import NcpComponent
from gatewayd.thread.network import ThreadNetwork, optional, set_active_dataset
from gatewayd.thread.state import write_private
from ncp.client import NcpClient, NcpError
from ncp.meshcop import Dataset
from ncp.spinel import Prop

log = logging.getLogger("gatewayd.rest")
ROOT = 0  # the uid the REST API's reads run gatewayctl commands as: it serves the secrets itself, by its own rules


class Conflict(Exception):
    """The node is in a state that refuses the request (409)."""


class Unavailable(Exception):
    """The Thread network or the NCP is not running (503)."""


class Node:
    def __init__(self, ncp: NcpComponent | None, thread: ThreadNetwork | None, state_dir: str,
                 dataset_configured: bool):
        self.ncp = ncp
        self.thread = thread
        self.ba_id_path = Path(state_dir) / "border_agent_id"
        self.dataset_configured = dataset_configured

    # ---- reads: the gatewayctl commands --------------------------------------------------------
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
        try:
            role = (await self._network()._cmd_state(Request([])))["role"]
        except CommandError as exc:
            raise Unavailable(str(exc)) from None
        return "disabled" if role == "unknown" else role

    async def active_tlvs(self) -> bytes | None:
        """``gatewayctl dataset active -x --show-secrets``; None without an active dataset."""
        try:
            text = await self._network()._cmd_dataset(Request(["-x", "--show-secrets"], uid=ROOT))
        except CommandError:
            return None
        return bytes.fromhex(text)

    async def active_dataset(self) -> Dataset | None:
        tlvs = await self.active_tlvs()
        return Dataset.from_tlvs(tlvs) if tlvs is not None else None

    def coprocessor_version(self) -> str:
        """The NCP's version string, as ``gatewayctl ncp`` shows it."""
        return str(self._client().info.get("ncp_version", ""))

    async def ext_address(self) -> bytes:
        return bytes(await self._client().get(Prop.MAC_15_4_LADDR))

    def border_agent_id(self) -> bytes:
        """16 random bytes made once and kept in state_dir (otbr-agent keeps its own in its settings):
        Home Assistant tells border routers apart by it."""
        try:
            value = bytes.fromhex(self.ba_id_path.read_text().strip())
            if len(value) == 16:
                return value
        except (FileNotFoundError, ValueError):
            pass
        value = secrets.token_bytes(16)
        self.ba_id_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(self.ba_id_path, value.hex() + "\n")
        return value

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

    # ---- writes --------------------------------------------------------------------------------
    async def stack_up(self) -> bool:
        return bool(await self._client().get(Prop.NET_STACK_UP))

    async def set_enabled(self, enabled: bool) -> None:
        """otbr-agent's ``PUT /node/state``: Thread (and the IPv6 interface) on or off.

        The Thread component follows the role the NCP pushes; a restarted daemon or NCP brings Thread up
        again (otbr-agent's auto-attach does the same)."""
        client = self._client()
        if enabled:
            if self._network().dataset is None:
                raise Conflict("no active dataset: PUT /node/dataset/active first")
            await client.set(Prop.NET_IF_UP, True)
            await client.set(Prop.NET_STACK_UP, True)
        else:
            await client.set(Prop.NET_STACK_UP, False)
            await client.set(Prop.NET_IF_UP, False)
        log.info("Thread %s through the REST API", "enabled" if enabled else "disabled")

    async def set_active_dataset(self, dataset: Dataset) -> None:
        """A new active dataset for a stopped Thread stack (otbr-agent answers 409 otherwise), kept in
        state_dir so a restart rejoins it, like one gatewayd formed."""
        network = self._network()
        if self.dataset_configured:
            raise Conflict("[thread] dataset in the configuration fixes the active dataset")
        if await self.stack_up():
            raise Conflict("Thread is enabled: PUT /node/state \"disable\" first, or change it through a "
                           "pending dataset")
        if not dataset.is_complete:
            raise ValueError("the dataset is not complete")
        await set_active_dataset(self._client(), dataset)
        network.state.save_dataset(dataset)
        network.dataset = dataset
        network.changed()
        log.info("active dataset set through the REST API: network %s, channel %s", dataset.network_name,
                 dataset.channel)

    async def factory_reset(self) -> None:
        """otbr-agent's ``DELETE /node``: detach and forget the network. Thread stays off without an active
        dataset until one is set; a daemon restarted before that forms a new network, as on first start."""
        network = self._network()
        if self.dataset_configured:
            raise Conflict("[thread] dataset in the configuration fixes the active dataset")
        try:
            await self.set_enabled(False)
        except NcpError as exc:
            raise Conflict(f"cannot detach: {exc}") from None
        network.state.dataset_path.unlink(missing_ok=True)
        network.dataset = None
        network.changed()
        log.warning("factory reset through the REST API: the active dataset is forgotten and Thread is off")

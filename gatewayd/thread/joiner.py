"""Joining an existing Thread network as a joiner: the NCP proves the PSKd to that network's commissioner and
gets the network's credentials, so a second border router is added the way nodes are (``[thread] joiner_pskd``).

Seen on ot-ncp-ftd (2023 and 2025 builds): SET MESHCOP_JOINER_COMMISSIONING needs NET_IF_UP (INVALID_STATE
otherwise) and is answered LAST_STATUS OK at once; the outcome comes 5-7 s later as a pushed LAST_STATUS
(JOIN_SUCCESS, JOIN_SECURITY for a PSKd the commissioner does not hold, JOIN_NO_PEERS when no joinable
network answers, JOIN_RSP_TIMEOUT).  Right after JOIN_SUCCESS the NCP holds only part of the active dataset
(no network name); the whole of it is read once the NCP has attached.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ncp.client import NcpClient, NcpError, PropertyChanged
from ncp.commissioning import joiner_commissioning
from ncp.meshcop import Dataset
from ncp.spinel import NetRole, Prop, Status

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

log = logging.getLogger("gatewayd.thread")

#: How long the whole join may take: OpenThread's joiner scans every channel, then runs DTLS through a
#: joiner router (5-7 s on the simulated radio; a real radio's scan of 16 channels takes longer).
JOIN_TIMEOUT = 120.0
ATTACH_TIMEOUT = 60.0
_ATTACHED = (NetRole.CHILD, NetRole.ROUTER, NetRole.LEADER)
_JOIN_RESULTS = {Status.JOIN_SUCCESS, Status.JOIN_SECURITY, Status.JOIN_NO_PEERS, Status.JOIN_RSP_TIMEOUT,
                 Status.JOIN_FAILURE, Status.JOIN_INCOMPATIBLE}
#: What to do about each failure, for the log and the component's error.
ADVICE = {
    Status.JOIN_SECURITY: "the commissioner refused the PSKd: check [thread] joiner_pskd against the joiner "
                          "entry the commissioner holds for this NCP (its EUI-64, or *)",
    Status.JOIN_NO_PEERS: "no joinable network answered: start a commissioner on the network and add a joiner "
                          "entry for this NCP, within radio range",
    Status.JOIN_RSP_TIMEOUT: "the commissioner stopped answering: check it is still running",
}


class JoinFailed(NcpError):
    """The NCP could not join with the PSKd; ``status`` is the JOIN_* LAST_STATUS it reported."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def join(client: NcpClient, pskd: str, read_dataset: Callable[[NcpClient], Awaitable[Dataset | None]],
               *, vendor_model: str = "gatewayd", timeout: float = JOIN_TIMEOUT) -> Dataset:
    """Join with ``pskd`` and attach; the network's active dataset, read from the NCP once attached."""
    loop = asyncio.get_running_loop()
    result: asyncio.Future[int] = loop.create_future()
    attached = asyncio.Event()

    def on_event(event: object) -> None:
        if not isinstance(event, PropertyChanged):
            return
        if event.prop == Prop.LAST_STATUS and event.value in _JOIN_RESULTS and not result.done():
            result.set_result(event.value)
        elif event.prop == Prop.NET_ROLE and event.value in _ATTACHED:
            attached.set()

    client.add_event_handler(on_event)
    try:
        await client.set(Prop.NET_STACK_UP, False)  # OpenThread starts a joiner only while Thread is off
        await client.set(Prop.NET_IF_UP, True)
        log.info("joining a Thread network with the PSKd of [thread] joiner_pskd",
                 extra={"fields": {"JOINER_STATE": "started"}})
        await client.set(Prop.MESHCOP_JOINER_COMMISSIONING,
                         joiner_commissioning(True, pskd, vendor_name="gatewayd", vendor_model=vendor_model))
        try:
            status = await asyncio.wait_for(result, timeout)
        except TimeoutError:
            await _stop_joiner(client)
            raise JoinFailed(Status.JOIN_FAILURE, f"the NCP reported no join result within {timeout:g} s") from None
        if status != Status.JOIN_SUCCESS:
            name = Status(status).name
            advice = ADVICE.get(status, "see the commissioner's log")
            log.warning("joining failed: %s; %s", name, advice, extra={"fields": {"JOINER_STATE": name}})
            raise JoinFailed(status, f"joining failed ({name}): {advice}")
        log.info("joined: the NCP has the network's credentials; attaching",
                 extra={"fields": {"JOINER_STATE": "JOIN_SUCCESS"}})
        await client.set(Prop.NET_STACK_UP, True)
        if await client.get(Prop.NET_ROLE) not in _ATTACHED:
            try:
                await asyncio.wait_for(attached.wait(), ATTACH_TIMEOUT)
            except TimeoutError:
                raise NcpError(f"joined, but the NCP did not attach within {ATTACH_TIMEOUT:g} s") from None
        dataset = await read_dataset(client)
        if dataset is None or not dataset.is_complete:
            raise NcpError("joined and attached, but the NCP holds no complete active dataset")
        return dataset
    finally:
        client.remove_event_handler(on_event)


async def _stop_joiner(client: NcpClient) -> None:
    try:
        await client.set(Prop.MESHCOP_JOINER_COMMISSIONING, joiner_commissioning(False))
    except NcpError as exc:
        log.debug("stopping the joiner: %s", exc)

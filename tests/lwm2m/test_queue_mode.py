"""Queue mode that queues: a client offline (past its awake window) keeps its notifications, up to the
bound, counts what it drops, and sends the kept ones, oldest first, right after its next Update; the
server's requests in the awake window that follows are answered."""

from __future__ import annotations

import asyncio

import aiocoap
import pytest
from aiocoap.numbers.codes import Code

from gatewayd.lwm2m.client.queue import NotificationQueue
from gatewayd.lwm2m.codecs import ContentFormat
from gatewayd.lwm2m.paths import LwM2MPath

from .servers import until
from .test_client_ops import registered

pytestmark = pytest.mark.timeout(60)
TIME = LwM2MPath(3, 0, 13)


async def test_offline_notifications_are_held_to_the_bound_and_sent_after_the_next_update(server, clients):
    client = await registered(server, clients, queue_mode=True, awake_time=0.5, queue_limit=3, keepalive=0)
    assert server.registrations["ep-1"].query.get("Q") == "", "registered in queue mode"
    obs = server.observe("ep-1", "/3/0/13")
    first = await obs.first()
    assert first.payload == b"1700000000"
    client.store.set(TIME, 1_700_000_001)  # awake: goes out at once
    assert (await obs.next()).payload == b"1700000001"

    await until(lambda: client.queue.offline)
    for i in range(2, 7):  # five changes while offline: three kept, two dropped
        client.store.set(TIME, 1_700_000_000 + i)
        await until(lambda i=i: client.queue.counters["stored"] == i - 1)
    assert client.info()["queued"] == 3 and client.info()["queue_dropped"] == 2
    await asyncio.sleep(0.2)
    assert obs.notifications.empty(), "nothing reaches the server while the client is offline"

    updates = server.count("update", "ep-1")
    client.trigger_update()
    got = [(await obs.next()).payload for _ in range(3)]
    assert server.count("update", "ep-1") == updates + 1, "the held notifications follow the Update"
    assert got == [b"1700000004", b"1700000005", b"1700000006"], "the newest three, oldest first"
    assert client.info()["queue_delivered"] == 3 and client.info()["queued"] == 0

    # the awake window after the Update: the server's requests are answered, notifications go at once
    assert not client.queue.offline
    resp = await server.op("ep-1", Code.GET, "/3/0/13")
    assert resp.code == Code.CONTENT and resp.payload == b"1700000006"
    client.store.set(TIME, 1_700_000_100)
    assert (await obs.next()).payload == b"1700000100"
    obs.cancel()


class Pipe:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def add_response(self, message: aiocoap.Message, is_last: bool) -> None:
        self.sent.append(message.payload)


def test_the_queue_alone_bound_order_and_a_cancelled_observation():
    queue = NotificationQueue(limit=2, awake_time=60)
    a, b = Pipe(), Pipe()
    assert queue.offline, "offline until the first Register or Update"
    for pipe, payload in ((a, b"1"), (b, b"2"), (a, b"3")):
        assert queue.hold(pipe, aiocoap.Message(code=Code.CONTENT, payload=payload))
    assert queue.counters == {"stored": 3, "dropped": 1, "delivered": 0, "discarded": 0}
    queue.forget(b)  # the server cancelled b's observation while we were offline
    assert queue.wake() == 1 and a.sent == [b"3"] and b.sent == []
    assert not queue.offline and not queue.hold(a, aiocoap.Message(code=Code.CONTENT, payload=b"4"))


async def test_notification_storing_off_discards_what_falls_due_offline(server, clients):
    """/1/0/6 "Notification Storing When Disabled or Offline": true by default (stored as above); the
    server writes it false, and what falls due offline is discarded and counted, not sent after the
    Update; written true again, the client stores again."""
    client = await registered(server, clients, queue_mode=True, awake_time=0.5, queue_limit=3, keepalive=0)
    resp = await server.op("ep-1", Code.GET, "/1/0/6", accept=ContentFormat.TEXT)
    assert resp.code == Code.CONTENT and resp.payload == b"1", "stores notifications unless told otherwise"
    resp = await server.op("ep-1", Code.PUT, "/1/0/6", b"0", ContentFormat.TEXT)
    assert resp.code == Code.CHANGED
    assert (await server.op("ep-1", Code.GET, "/1/0/6", accept=ContentFormat.TEXT)).payload == b"0"
    obs = server.observe("ep-1", "/3/0/13")
    await obs.first()

    await until(lambda: client.queue.offline)
    for i in range(1, 4):
        client.store.set(TIME, 1_700_000_000 + i)
        await until(lambda i=i: client.queue.counters["discarded"] == i)
    info = client.info()
    assert info["queued"] == 0 and info["queue_discarded"] == 3 and info["queue_dropped"] == 0
    updates = server.count("update", "ep-1")
    client.trigger_update()
    await server.wait_until(lambda: server.count("update", "ep-1") == updates + 1)
    await asyncio.sleep(0.2)
    assert obs.notifications.empty(), "nothing discarded reaches the server after the Update"
    assert client.info()["queue_delivered"] == 0
    # awake: a change goes out at once, storing or not
    client.store.set(TIME, 1_700_000_010)
    assert (await obs.next()).payload == b"1700000010"

    assert (await server.op("ep-1", Code.PUT, "/1/0/6", b"1", ContentFormat.TEXT)).code == Code.CHANGED
    await until(lambda: client.queue.offline)
    client.store.set(TIME, 1_700_000_011)
    await until(lambda: client.info()["queued"] == 1)
    client.trigger_update()
    assert (await obs.next()).payload == b"1700000011", "stored again once /1/0/6 is true"
    obs.cancel()


def test_the_queue_alone_storing_off():
    storing = True
    queue = NotificationQueue(limit=5, awake_time=60)
    queue.storing = lambda: storing
    a = Pipe()
    assert queue.hold(a, aiocoap.Message(code=Code.CONTENT, payload=b"1"))
    storing = False
    assert queue.hold(a, aiocoap.Message(code=Code.CONTENT, payload=b"2")), "taken, not sent: discarded"
    assert queue.counters["discarded"] == 1 and len(queue.items) == 1
    # turned false with one held: discarded at the wake-up, nothing sent
    assert queue.wake() == 0 and a.sent == [] and queue.counters["discarded"] == 2
    assert queue.info()["queue_discarded"] == 2


async def test_without_queue_mode_nothing_is_held(server, clients):
    client = await registered(server, clients, keepalive=0)
    assert client.queue is None and "queued" not in client.info()

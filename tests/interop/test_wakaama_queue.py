"""Queue mode against Eclipse Wakaama's ``lwm2mserver``: gatewayd registers with ``Q``; while it is
offline its notifications are held (to [lwm2m] queue_limit, the rest counted as dropped) and reach
Wakaama right after the next Update. Skipped unless GATEWAYD_INTEROP_DIR names the Wakaama binaries."""

from __future__ import annotations

import json
import re
import time

import pytest

from tests.interop.wakaama import gatewayd_toml

pytestmark = pytest.mark.timeout(90)
EP = "gw-queue"


def show(gw) -> dict:
    return json.loads(gw.ctl("--json", "lwm2m", "show", EP).stdout)


def test_held_notifications_and_a_queued_read_follow_the_update(lwm2mserver, daemon) -> None:
    server = lwm2mserver
    # awake 1 s after each Update, an Update every 6 s (keepalive), at most 2 notifications held
    extra = "queue_mode = true\nawake_time = 1\nqueue_limit = 2\n"
    toml = gatewayd_toml(server.uri, endpoint=EP).replace("[lwm2m]\n", "[lwm2m]\n" + extra, 1)
    toml = toml.replace("keepalive = 0\n", "keepalive = 6\n")
    gw = daemon(toml)
    c = server.client_id(EP)
    assert server.registration(c)["binding"] == '"UDP, queue mode"'
    start = server.mark
    server.command(f"observe {c} /3/0/13")  # the current time: changes every second
    # the Observe's answer (Wakaama prints it as a notification) in the awake window of the Register
    server.result(c, "/3/0/13", 10, start, notification=True)

    # offline from 1 s after the Register: a change a second is held, the newest two kept; the Update
    # keepalive sends after 6 s brings them
    updated = server.wait_for(rf"^Client #{c} updated\.", 15, start)
    numbers = [int(n) for n in re.findall(rf"^Notify from client #{c} /3/0/13 number (\d+)",
                                          server.output[start:updated.start()], re.M)]
    assert len(numbers) <= 3, f"only the awake second's notifications come before the Update: {numbers}"
    server.wait_for(rf"^Notify from client #{c} /3/0/13 number", 5, updated.end())
    held = server.result(c, "/3/0/13", 5, updated.end(), notification=True)
    assert held.number is not None and held.number > numbers[-1] + 1, \
        f"observe numbers skip the dropped notifications: {numbers} then {held.number}"
    wait_until(lambda: show(gw)["queue_delivered"] >= 2)
    assert show(gw)["queue_dropped"] >= 1

    # Wakaama does not hold requests for a queue-mode client (its core only parses the Q flag) and
    # sends a Read at once: the gateway, never really asleep, answers it even while "offline"
    wait_until(lambda: show(gw)["offline"])
    start = server.mark
    result = server.request(f"read {c} /3/0/0")
    assert result.code == "2.05" and "gatewayd interop" in result.body, result


def test_wakaama_turns_notification_storing_off(lwm2mserver, daemon) -> None:
    """Wakaama writes /1/0/6 (Notification Storing When Disabled or Offline) false: what falls due while
    the gateway is offline is discarded and counted, none of it follows the Update."""
    server = lwm2mserver
    extra = "queue_mode = true\nawake_time = 1\nqueue_limit = 2\n"
    toml = gatewayd_toml(server.uri, endpoint=EP).replace("[lwm2m]\n", "[lwm2m]\n" + extra, 1)
    gw = daemon(toml.replace("keepalive = 0\n", "keepalive = 6\n"))
    c = server.client_id(EP)
    # within the awake window of the Register (requests outside it are answered too, see above)
    assert json.loads(server.request(f"read {c} /1/0/6").body) == [{"bn": "/1/0/6", "vb": True}], \
        "stores notifications by default"
    assert server.request(f"write {c} /1/0/6 0").code == "2.04"
    start = server.mark
    server.command(f"observe {c} /3/0/13")
    server.result(c, "/3/0/13", 10, start, notification=True)
    wait_until(lambda: show(gw)["queue_discarded"] >= 2, 20)
    updated = server.wait_for(rf"^Client #{c} updated\.", 15, server.mark)
    time.sleep(0.5)
    assert show(gw)["queue_delivered"] == 0 and show(gw)["queued"] == 0
    assert show(gw)["queue_dropped"] == 0, "nothing stored, so nothing over the bound"
    after = server.output[updated.end():]
    # the awake second after the Update may notify a change of its own: at most one or two, not a batch
    assert len(re.findall(rf"^Notify from client #{c} /3/0/13 number", after, re.M)) <= 2


def wait_until(predicate, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)

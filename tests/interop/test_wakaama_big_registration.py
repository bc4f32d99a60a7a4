"""A gateway-mode registration with thousands of devices against Eclipse Wakaama's ``lwm2mserver``.

The object list (``</25/0>,</25/1>,…``) goes out block-wise (Block1), which Wakaama reassembles; but it
parses the Register payload with 16-bit offsets and answers 4.00 to one over 65,535 bytes (about 6,000
devices). gatewayd then says why in the client's error, and registers once the list is short enough.
The gateway client runs in the test's process (what the daemon does with it is covered elsewhere).
Skipped unless GATEWAYD_INTEROP_DIR names the Wakaama binaries.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.lwm2m.servers import gateway_with_devices, until

pytestmark = pytest.mark.timeout(120)
EP = "gw-big"


async def test_a_long_object_list_is_refused_with_the_reason_then_registers_shorter(lwm2mserver) -> None:
    server = lwm2mserver
    gateway, engine = await gateway_with_devices(server.uri, EP, 6500, backoff_initial=0.5, backoff_max=1.0)
    try:
        await gateway.start()
        # 70,469 bytes: reassembled by Wakaama, then refused
        await until(lambda: "object list is" in gateway.last_error, 30)
        assert "Register rejected with 4.00 (the object list is 70469 bytes, over the 65535" in gateway.last_error
        # (Wakaama keeps a nameless client it made for the first block: a quirk of its Block1 handling)
        assert EP not in await asyncio.to_thread(server.listing)

        for i in range(5900, 6500):  # 600 devices leave: 63,869 bytes, still 63 blocks of 1 KiB
            await engine.remove(f"node-{i:04d}")
        # (Wakaama's output is waited for in a thread: the gateway client runs on this event loop)
        c = await asyncio.to_thread(server.client_id, EP, 30)
        listed = (await asyncio.to_thread(server.registration, c))["objects"].rstrip(", ").split(", ")
        assert listed[-1] == "/25/5899" and listed.count("/25 (2.0)") == 1
        assert len([o for o in listed if o.startswith("/25/")]) == 5900
        assert gateway.last_error == "" and len(gateway.registration.objects) == 63869
    finally:
        await engine.stop()
        await gateway.stop()

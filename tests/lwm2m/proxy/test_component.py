"""The proxy inside the daemon's LwM2M component: devices from the configuration, reload, gatewayctl."""

from __future__ import annotations

import pytest
from aiocoap.numbers.codes import Code

from gatewayd.config.loader import ConfigError, parse
from gatewayd.control import Request
from gatewayd.lwm2m.component import LwM2MComponent

pytestmark = pytest.mark.timeout(60)


def device(ep: str, port: int, extra: str = "") -> str:
    return (f'[[lwm2m.device]]\nendpoint = "{ep}"\naddress = "::ffff:127.0.0.1"\nport = {port}\n{extra}'
            f'[lwm2m.device.resources]\n"/3303/0/5700" = {{ get = "/sensors/temp", type = "float" }}\n')


def config(tmp_path, uri: str, devices: str):
    return parse(f'[daemon]\nstate_dir = "{tmp_path}"\n[lwm2m]\nenabled = true\n[lwm2m.server]\nuri = "{uri}"\n'
                 f'lifetime = 60\n[lwm2m.gateway]\nenabled = false\n{devices}', base_dir=tmp_path)


@pytest.mark.parametrize(("toml", "message"), [
    ('[[lwm2m.device]]\nendpoint = "a"\n[lwm2m.device.resources]\n"/3303/0/5700" = { gett = "/t" }\n',
     "gatewayd.toml:3: lwm2m.device[0].resources: '/3303/0/5700': unknown field 'gett' (did you mean get?)"),
    ('[[lwm2m.device]]\nendpoint = "a"\nresources = { "/3303/0" = { get = "/t" } }\n',
     "gatewayd.toml:3: lwm2m.device[0].resources: '/3303/0': expected a LwM2M resource path "
     "(not /object/instance/resource)"),
    ('[[lwm2m.device]]\nendpoint = "a"\nresources = { "/3303/0/5700" = { get = "t" } }\n',
     "lwm2m.device[0].resources: '/3303/0/5700': field get: expected a CoAP path"),
    ('[[lwm2m.device]]\nendpoint = "a"\neui64 = "0011"\n', "lwm2m.device[0].eui64: expected an EUI-64"),
    ('[lwm2m.thread_devices]\nabsence_timeout = 0\n', "lwm2m.thread_devices.absence_timeout: expected a number"),
])
def test_config_errors_name_file_line_and_key(toml, message) -> None:
    with pytest.raises(ConfigError) as err:
        parse(toml)
    assert message in str(err.value)


async def test_devices_from_config_and_live_reload(server, sensors, tmp_path) -> None:
    a, b, c = sensors
    comp = LwM2MComponent(config(tmp_path, server.uri, device("dev-a", a.port) + device("dev-b", b.port)))
    await comp.start()
    try:
        await server.wait_until(lambda: {"dev-a", "dev-b"} <= set(server.registrations))
        resp = await server.op("dev-a", Code.GET, "/3303/0/5700")
        assert resp.payload == b"21.5"
        rows = {r["endpoint"]: r for r in await comp._cmd_clients(Request([]))}
        assert rows["dev-a"]["adapter"] == "coap" and rows["dev-a"]["device"].startswith("::ffff:127.0.0.1")
        assert rows["dev-a"]["state"] == "registered" and rows["dev-a"]["location"].startswith("/rd/")
        shown = await comp._cmd_show(Request(["dev-a"]))
        assert shown["values"][0]["path"] == "/3303/0/5700" and shown["values"][0]["value"] == 21.5

        # reload: dev-b removed, dev-c added, dev-a changed only in a way that leaves it alone
        loc_a = server.registrations["dev-a"].location
        registers = server.count("register", "dev-a")
        await comp.reload(config(tmp_path, server.uri, device("dev-a", a.port) + device("dev-c", c.port)))
        await server.wait_until(lambda: "dev-c" in server.registrations and "dev-b" not in server.registrations)
        assert server.registrations["dev-a"].location == loc_a and server.count("register", "dev-a") == registers
        assert ("deregister", "dev-b") in server.log
        # a changed entry is replaced: a new registration for that endpoint only
        await comp.reload(config(tmp_path, server.uri, device("dev-a", a.port, "lifetime = 90\n")
                                 + device("dev-c", c.port)))
        await server.wait_until(lambda: server.count("register", "dev-a") == registers + 1)
        assert server.registrations["dev-a"].query["lt"] == "90" and server.count("register", "dev-c") == 1
    finally:
        await comp.stop()
    assert not server.registrations

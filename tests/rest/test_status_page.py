"""The status page (``/``) and its data (``/status.json``) of gatewayd on the simulated NCP: what gatewayctl
shows, the last problems from the log, no secrets; and the page as Debian's headless Chromium renders it."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from gatewayd import __version__
from tests.conftest import wait_until
from tests.rest.test_metrics import NAT64, PORT, ctl, get
from tests.thread.conftest import Topology

pytestmark = [pytest.mark.root, pytest.mark.slow]
# a server name that cannot resolve: the gateway's LwM2M client fails at once, and says so in the log
LWM2M = '[lwm2m]\nenabled = true\n[lwm2m.server]\nuri = "coap://no-such-server.invalid:5683"\n'


def status(topo: Topology) -> dict:
    code, ctype, text = get(topo, "/status.json")
    assert code == 200 and ctype.startswith("application/json"), (code, ctype)
    return json.loads(text)


def test_status_page_shows_what_gatewayctl_shows(topo: Topology):
    token = "page-t0ken"
    (topo.tmp / "rest-token").write_text(token + "\n")
    gw = topo.start_daemon(f'[rest]\nenabled = true\nlisten = ["127.0.0.1:{PORT}", "0.0.0.0:{PORT + 1}"]\n'
                           f'token_file = "{topo.tmp}/rest-token"\n' + NAT64 + LWM2M)
    wait_until(lambda: ctl(gw, "state")["role"] == "leader", timeout=20, what="leader")
    wait_until(lambda: "REST API on" in gw.output(), what="the REST API listening")
    wait_until(lambda: gw.ctl("nat64", "counters", check=False).returncode == 0, timeout=20, what="NAT64")
    wait_until(lambda: any(c["state"] == "failed" for c in ctl(gw, "lwm2m", "clients")), timeout=30,
               what="the LwM2M client failed")
    children = wait_until(lambda: len(ctl(gw, "child table")) == ctl(gw, "state")["children"] > 0
                          and ctl(gw, "child table"), what="the children listed")

    page = status(topo)
    state = ctl(gw, "state")
    assert page["thread"]["role"] == "leader" == state["role"]
    assert (page["thread"]["channel"], page["thread"]["network_name"]) == (state["channel"], state["network_name"])
    assert page["thread"]["children"] == state["children"] == len(page["children"])
    assert {c["extaddr"] for c in page["children"]} == {c["extaddr"] for c in children}
    assert [r["rloc16"] for r in page["routers"]] == [r["rloc16"] for r in ctl(gw, "router table")]
    assert page["netdata"] == ctl(gw, "netdata", "show")
    assert page["nat64"]["sessions"] == ctl(gw, "nat64", "counters")["sessions"]
    assert page["nat64"]["mappings"] == ctl(gw, "nat64", "mappings")
    # the client retries its unknown server (failed → registering → failed): the page and gatewayctl agree
    # whenever it stands still between the two reads
    wait_until(lambda: [(c["endpoint"], c["state"]) for c in status(topo)["lwm2m"]]
               == [(c["endpoint"], c["state"]) for c in ctl(gw, "lwm2m", "clients")], what="the same LwM2M clients")
    clients = ctl(gw, "lwm2m", "clients")
    assert page["ncp"]["version"] == ctl(gw, "status")["components"]["ncp"]["version"]
    problems = page["problems"]
    assert any(p["level"] == "warning" and "failed" in p["message"] and p["component"] == "lwm2m"
               for p in problems), problems
    assert all(p["level"] in ("warning", "error", "critical") for p in problems)

    # no secrets, on the LAN listener without a token too
    tlvs = ctl(gw, "dataset", "active", "-x", "--show-secrets").lower()
    for port in (PORT, PORT + 1):
        for path in ("/", "/status.json"):
            code, _, text = get(topo, path, port=port)
            assert code == 200 and tlvs[-32:] not in text.lower() and token not in text
            assert "networkkey" not in text.lower().replace("_", "")

    code, ctype, html = get(topo, "/")
    assert ctype.startswith("text/html") and "<title>gatewayd</title>" in html and 'fetch("status.json"' in html
    assert 'name="viewport"' in html, "laid out for a phone"

    # rendered by Debian's headless Chromium: the text a user reads, filled in by the page's script
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it)")
    dom = subprocess.run(
        ["ip", "netns", "exec", topo.br, chromium, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-dev-shm-usage", "--user-data-dir=" + str(topo.tmp / "chromium"), "--virtual-time-budget=8000",
         "--dump-dom", f"http://127.0.0.1:{PORT}/"],
        capture_output=True, text=True, timeout=120).stdout
    assert '<span id="role" class="leader">leader</span>' in dom, dom[:2000]
    assert state["network_name"] in dom and children[0]["extaddr"] in dom
    assert clients[0]["endpoint"] in dom and "failed" in dom
    assert "64:ff9b::/96" in dom, "the NAT64 route in the network data"
    assert f'<div id="updated" class="muted">gatewayd {__version__} · updated' in dom, "filled in from status.json"

"""The _meshcop._udp record gatewayd publishes on a real OpenThread NCP, against what the real NCP and a
real node say of the same network: an mDNS browser in the LAN namespace reads it."""

from __future__ import annotations

import re

import pytest

from ncp.border_agent import DUMMY_PORT, ConnMode, IfState, StateBitmap, TxtRole
from tests.border.meshcop import DTLS_HANDSHAKE_FAILURE, Browser, bitmap, dtls_hello, txt
from tests.interop.conftest import InteropBed

pytestmark = [pytest.mark.timeout(300)]


def test_the_advertised_record_matches_the_real_ncp_and_node(bed: InteropBed) -> None:
    browser = Browser(bed, bed.lan)
    bed.start()
    node = bed.join_node(2)  # a child of the NCP: its parent is the border router
    event = browser.wait("added", "updated", timeout=60,
                         where=lambda e: bitmap(e).role == TxtRole.LEADER and "pt" in txt(e))
    values = txt(event)
    ba = bed.ctl_json("ba")
    assert isinstance(ba, dict) and event["name"] == ba["service"]

    # what the real node, attached to this network, says of it
    assert values["nn"] == node.value("networkname").encode()
    assert values["xp"].hex() == node.value("extpanid")
    leader = "\n".join(node.cmd("leaderdata"))
    assert int.from_bytes(values["pt"], "big") == int(re.search(r"Partition ID: (\d+)", leader).group(1))
    parent = "\n".join(node.cmd("parent"))
    assert values["xa"].hex() == re.search(r"Ext Addr: ([0-9a-f]{16})", parent).group(1)

    # what the NCP's own border agent would publish (OpenThread since 2024; the 2023 NCP has none)
    ours = {k: v.hex() if k not in ("nn", "tv", "rv") else v.decode() for k, v in values.items() if v is not None}
    if "ncp_agent" in ba:
        theirs = ba["ncp_agent"]["txt"]
        assert ba["ncp_agent"]["running"] is True
        for key in ("rv", "tv", "nn", "xp", "xa", "pt", "at"):
            assert ours[key] == theirs[key], key
        sb_theirs = StateBitmap.from_int(int(theirs["sb"], 16))
        assert (bitmap(event).if_state, bitmap(event).role) == (sb_theirs.if_state, sb_theirs.role) \
            == (IfState.ACTIVE, TxtRole.LEADER)
    else:
        assert ours["tv"] == "1.3.0"
        assert bed.ctl_json("ncp")["features"].get("border_agent") == "none"  # type: ignore[union-attr]

    # the port: the NCP's own border agent through the relay (2024 on), else none to connect to
    if "ncp_agent" in ba:
        assert event["port"] == ba["relay"]["port"] and bitmap(event).conn_mode == ConnMode.PSKC
        # OpenThread's DTLS server answers the LAN peer (see DTLS_HANDSHAKE_FAILURE)
        assert dtls_hello(bed, bed.lan, "fd00:1a4::1", event["port"]) == DTLS_HANDSHAKE_FAILURE
        assert ba["relay"]["ncp_port"] == ba["ncp_agent"]["port"]
        assert bed.ctl_json("ba")["relay"]["from_ncp"] >= 1  # type: ignore[index]
    else:
        assert event["port"] == DUMMY_PORT and bitmap(event).conn_mode == ConnMode.DISABLED

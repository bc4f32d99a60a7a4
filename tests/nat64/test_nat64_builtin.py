"""Builtin backend helpers: the routes the daemon must add and the nftables masquerade ruleset."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

from nat64.backends.builtin import NFT_TABLE, Route, masquerade_ruleset, required_routes


def test_required_routes_cover_prefix_and_every_pool_network():
    routes = required_routes("2001:db8:64::/96", ["100.64.1.1", "100.64.2.0/30"], "nat64")
    assert routes == [Route("2001:db8:64::/96", "nat64"), Route("100.64.1.1/32", "nat64"),
                      Route("100.64.2.0/30", "nat64")]
    assert [r.family for r in routes] == [6, 4, 4]


def test_masquerade_ruleset_names_its_own_table_and_pool():
    text = masquerade_ruleset(["100.64.1.1", "100.64.2.0/30"], "eth0")
    assert f"table ip {NFT_TABLE}" in text
    assert 'oifname "eth0" ip saddr { 100.64.1.1/32, 100.64.2.0/30 } masquerade' in text
    assert len(text.splitlines()) > 3  # multi-line form: nft 1.0.6 rejects the one-line one


@pytest.mark.root
def test_masquerade_ruleset_is_accepted_by_nft():
    if os.geteuid() != 0 or not shutil.which("nft"):
        pytest.skip("needs root and nft")
    ns = f"n64nft-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        r = subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=masquerade_ruleset("100.64.1.1", "lo"),
                           text=True, capture_output=True)
        assert r.returncode == 0, r.stderr
        listed = subprocess.run(["ip", "netns", "exec", ns, "nft", "list", "table", "ip", NFT_TABLE],
                                capture_output=True, text=True)
        assert "masquerade" in listed.stdout
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)

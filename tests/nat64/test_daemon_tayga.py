"""The tayga backend's pieces that need no root: its config, its dynamic.map and its output."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address, IPv6Network
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nat64.backends.tayga import TaygaConfig, TaygaMapping, parse_dynamic_map, parse_log_line

# What tayga 0.9.2 wrote after one mesh host talked through it (checked on the real daemon).
DYNAMIC_MAP = """###
###
### TAYGA dynamic map database
###
### You can edit this (carefully!) as long as you shut down TAYGA first
###
###
### Last written: Sat Nov 21 18:31:34 2026
###
###

100.64.1.255\tfd00::1\t1795285890
"""


def test_config_for_a_network_specific_prefix(tmp_path: Path):
    c = TaygaConfig.for_pool("fd64:64::/96", ["100.64.1.0/24"], "nat64", tmp_path)
    text = c.render()
    assert "tun-device nat64\n" in text and "ipv4-addr 100.64.1.1\n" in text
    assert "prefix fd64:64::/96\n" in text and "dynamic-pool 100.64.1.0/24\n" in text
    assert f"data-dir {tmp_path}\n" in text
    assert "ipv6-addr" not in text, "tayga derives its own IPv6 address from the prefix"
    assert c.extra_routes() == []


def test_well_known_prefix_with_a_private_pool_gets_an_ipv6_address_of_its_own(tmp_path: Path):
    c = TaygaConfig.for_pool(IPv6Network("64:ff9b::/96"), ["192.168.255.0/24"], "nat64", tmp_path)
    assert c.ipv6_addr is not None and c.ipv6_addr in IPv6Network("64:ff9b:1::/48")
    assert f"ipv6-addr {c.ipv6_addr}\n" in c.render()
    routes = c.extra_routes()
    assert [(r.dst, r.ifname) for r in routes] == [(f"{c.ipv6_addr}/128", "nat64")]


def test_a_single_address_pool_is_refused_with_a_hint(tmp_path: Path):
    with pytest.raises(ValueError, match=r"192\.168\.255\.0/24"):
        TaygaConfig.for_pool("64:ff9b::/96", ["192.168.255.1/32"], "nat64", tmp_path)


def test_dynamic_map_as_tayga_writes_it():
    rows, bad = parse_dynamic_map(DYNAMIC_MAP)
    assert bad == 0
    assert rows == [TaygaMapping(IPv4Address("100.64.1.255"), IPv6Address("fd00::1"), 1795285890.0)]


def test_dynamic_map_counts_bad_lines():
    rows, bad = parse_dynamic_map("1.2.3.4 fd00::1 5\nnonsense\n1.2.3.4 not-v6 1\n5.6.7.8 fd00::2\n")
    assert [str(r.ipv4) for r in rows] == ["1.2.3.4", "5.6.7.8"] and bad == 2


def test_log_line_announces_a_map():
    m = parse_log_line("assigned new pool address 100.64.1.255 (fd00::1)")
    assert m == TaygaMapping(IPv4Address("100.64.1.255"), IPv6Address("fd00::1"), None)
    assert parse_log_line("starting TAYGA 0.9.2") is None
    assert parse_log_line("assigned new pool address 999.1.1.1 (fd00::1)") is None


maps = st.lists(st.tuples(st.ip_addresses(v=4), st.ip_addresses(v=6), st.integers(0, 2**36)), max_size=20)


@given(maps)
def test_dynamic_map_round_trip(entries):
    text = "### header\n" + "".join(f"{a}\t{b}\t{t}\n" for a, b, t in entries)
    rows, bad = parse_dynamic_map(text)
    assert bad == 0
    assert [(r.ipv4, r.ipv6, r.last_use) for r in rows] == [(a, b, float(t)) for a, b, t in entries]


@given(st.text())
def test_dynamic_map_never_raises(text):
    rows, bad = parse_dynamic_map(text)
    assert bad >= 0 and all(isinstance(r, TaygaMapping) for r in rows)
    assert parse_log_line(text) is None or isinstance(parse_log_line(text), TaygaMapping)

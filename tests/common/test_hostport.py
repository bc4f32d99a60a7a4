"""Endpoints as configs write them: every written form parses back, anything else is a clear ValueError."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from common.hostport import split_host_port

addresses = st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6))


@given(addresses, st.integers(1, 65535))
def test_every_written_form_parses_back(address: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> None:
    written = f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"
    assert split_host_port(written, 53) == (str(address), port)
    assert split_host_port(str(address), 53) == (str(address), 53)


@pytest.mark.parametrize("text", ["[::1", "[::1]8081", "host:53", "1.2.3.4:0", "1.2.3.4:65536", "[::1]:x", ""])
def test_bad_endpoints_say_what_is_wrong(text: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        split_host_port(text, 53)


@given(st.text(max_size=40))
def test_any_text_parses_or_raises_value_error(text: str) -> None:
    try:
        host, port = split_host_port(text, 53)
    except ValueError:
        return
    assert ipaddress.ip_address(host) and 0 < port < 65536

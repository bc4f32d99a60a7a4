"""The commissioning codecs: PSKd rules, the joiner table as ot-ncp-ftd sends it, INSERT/REMOVE values."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ncp.commissioning import (
    ANY,
    JoinerEntry,
    PskdError,
    check_pskd,
    decode_joiners,
    joiner_commissioning,
    joiner_id,
    joiner_insert,
    joiner_remove,
    parse_joiner,
)
from ncp.spinel import SpinelError
from ncp.spinel.format import pack

# GET MESHCOP_COMMISSIONER_JOINERS on ot-ncp-ftd (714aeeb70): any joiner J01NME with 119999 ms left, and
# EUI-64 18b4300000000002 with ABCDEF and 59999 ms left.
REAL_TABLE = bytes.fromhex("0d000000bfd401004a30314e4d45001500080018b43000000000025fea000041424344454600")

PSKD_CHARS = "0123456789ABCDEFGHJKLMNPRSTUVWXY"
pskds = st.text(alphabet=PSKD_CHARS, min_size=6, max_size=32)
euis = st.none() | st.binary(min_size=8, max_size=8)


def test_the_real_ncps_table_decodes():
    rows = decode_joiners(REAL_TABLE)
    eui = bytes.fromhex("18b4300000000002")
    assert rows == [JoinerEntry(None, 119999, "J01NME"), JoinerEntry(eui, 59999, "ABCDEF")]
    assert [r.name for r in rows] == ["*", "18b4300000000002"]


def test_a_joiner_entry_never_shows_its_pskd():
    assert "J01NME" not in repr(decode_joiners(REAL_TABLE))


def test_insert_and_remove_are_what_ot_ncp_ftd_takes():
    # what the real NCP answered INSERTED to (the same bytes echoed)
    assert joiner_insert(None, "J01NME", 120) == bytes.fromhex("0000780000004a30314e4d4500")
    assert joiner_insert(bytes.fromhex("18b4300000000002"), "ABCDEF", 60) == bytes.fromhex(
        "080018b43000000000023c000000414243444546" "00")
    assert joiner_remove(None) == b"\x00\x00"


def test_joiner_commissioning_value():
    assert joiner_commissioning(False) == b"\x00"
    assert joiner_commissioning(True, "J01NME") == b"\x01J01NME\x00" + b"\x00" * 4


@pytest.mark.parametrize("pskd", ["J01NME", "123456", "A" * 32, "ABCDEFGHJKLMNPRSTUVWXY0123456789"])
def test_valid_pskds(pskd):
    assert check_pskd(pskd) == pskd


@pytest.mark.parametrize("pskd, says", [
    ("J01NM", "6 to 32 characters"), ("A" * 33, "6 to 32 characters"), ("", "6 to 32"),
    ("J01NMEI", "I, O, Q or Z"), ("OOOOOO", "I, O, Q or Z"), ("QZQZQZ", "I, O, Q or Z"),
    ("j01nme", "lowercase"), ("J01 NME", "lowercase"), ("J01-NME", "lowercase"), ("J01NMÉ", "lowercase"),
])
def test_bad_pskds_are_refused_without_echoing_them(pskd, says):
    with pytest.raises(PskdError, match=says) as info:
        check_pskd(pskd)
    if pskd:
        assert pskd not in str(info.value)


@given(st.text(max_size=40))
def test_check_pskd_accepts_exactly_the_thread_alphabet(text):
    ok = 6 <= len(text) <= 32 and all(c in PSKD_CHARS for c in text)
    try:
        check_pskd(text)
    except PskdError:
        assert not ok
    else:
        assert ok


@given(st.lists(st.tuples(euis, st.integers(0, 2**32 - 1), pskds), max_size=5))
def test_table_round_trip(rows):
    data = b"".join(pack("t(dLU)", (e or b"", t, p)) for e, t, p in rows)
    assert decode_joiners(data) == [JoinerEntry(e, t, p) for e, t, p in rows]


def test_discerner_entries_decode():
    data = pack("t(dLU)", (pack("CX", 16, 0x1234), 5000, "ABCDEF"))
    (row,) = decode_joiners(data)
    assert row.discerner == (16, 0x1234) and row.eui64 is None and row.name == "discerner:1234/16"


@given(st.binary(max_size=200))
def test_decoder_raises_only_spinel_error(data):
    try:
        decode_joiners(data)
    except SpinelError:
        pass


def test_parse_joiner():
    assert parse_joiner(ANY) is None
    eui = bytes.fromhex("18b4300000000002")
    assert parse_joiner("18b4300000000002") == parse_joiner("18:b4:30:00:00:00:00:02") == eui
    for bad in ("", "18b43000000000", "xyz", "18b430000000000200", "**"):
        with pytest.raises(ValueError, match="EUI-64"):
            parse_joiner(bad)


def test_joiner_id_is_the_hashed_eui64_with_the_local_bit():
    # Thread 1.3 8.4.3.1: SHA-256 of the EUI-64, first 8 bytes, bit 1 of the first byte set
    jid = joiner_id(bytes.fromhex("18b4300000000002"))
    assert len(jid) == 8 and jid[0] & 0x02

"""Property tests: arbitrary bytes into the DNS64 query path never raise or hang."""

from __future__ import annotations

import importlib.util
import struct
from pathlib import Path

import dns.message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_spec = importlib.util.spec_from_file_location(
    "fuzz_dns64", Path(__file__).resolve().parents[1] / "fuzz" / "fuzz_dns64.py"
)
fuzz = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fuzz)


@given(st.binary(max_size=700))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_arbitrary_bytes_never_break_the_query_path(data):
    fuzz.TestOneInput(data)


@given(
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.sampled_from(fuzz.NAMES),
    st.integers(0, 300),
    st.binary(max_size=40),
)
@settings(max_examples=300, deadline=None)
def test_mutated_queries_from_allowed_client_get_a_matching_answer(qid, flags, name, qtype, tail):
    loop, server = fuzz._server()
    wire = struct.pack("!HHHHHH", qid, flags & 0x7FFF, 1, 0, 0, 0) + name + struct.pack("!HH", qtype, 1) + tail
    out = loop.run_until_complete(server.handle_wire(wire, ("::1", 1)))
    # Queries (QR=0) always get an answer with their ID; it must parse.
    assert out is not None
    r = dns.message.from_wire(out)
    assert r.id == qid and r.flags & dns.flags.QR

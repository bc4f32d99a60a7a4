"""Commissioning as real OpenThread NCPs (2025 and 2023) answered it, from recordings tests/interop made
(tests/interop/test_commissioning.py with GATEWAYD_RECORD_DIR): the joiner table decodes, the answers to the
commissioner and joiner requests are what the driver and the simulator expect, and nothing is pushed."""

from __future__ import annotations

import pytest

from ncp.commissioning import CommissionerState, decode_joiners
from ncp.record import load
from ncp.spinel import Command, Prop, Status, unpack_prop
from tests.ncp.replay import RECORDINGS, exchanges

COMMISSIONER = {p.stem[p.stem.rindex("ot-"):]: p for p in RECORDINGS.glob("a_node_joins_with_the_pskd*.jsonl")}
JOINER = {p.stem[p.stem.rindex("ot-"):]: p for p in RECORDINGS.glob("the_border_router_joins_*.jsonl")}
MESHCOP = {Prop.MESHCOP_COMMISSIONER_STATE, Prop.MESHCOP_COMMISSIONER_JOINERS, Prop.MESHCOP_COMMISSIONER_SESSION_ID,
           Prop.MESHCOP_JOINER_STATE}


def test_recordings_exist_for_both_generations() -> None:
    assert set(COMMISSIONER) == set(JOINER) == {"ot-current", "ot-2023"}


@pytest.mark.parametrize("generation", ["ot-current", "ot-2023"])
def test_the_commissioner_as_the_real_ncp_answered(generation: str) -> None:
    pairs, unsolicited = exchanges(load(COMMISSIONER[generation]))
    starts = [unpack_prop(Prop.MESHCOP_COMMISSIONER_STATE, reply.value) for req, reply in pairs
              if req.command == Command.PROP_VALUE_SET and req.prop == Prop.MESHCOP_COMMISSIONER_STATE
              and reply.prop == Prop.MESHCOP_COMMISSIONER_STATE]
    assert starts and starts[0] == CommissionerState.PETITION  # active comes a moment later
    inserts = [(req, reply) for req, reply in pairs
               if req.command == Command.PROP_VALUE_INSERT and req.prop == Prop.MESHCOP_COMMISSIONER_JOINERS]
    assert inserts and all(reply.command == Command.PROP_VALUE_INSERTED and reply.value == req.value
                           for req, reply in inserts)  # echoed
    tables = [decode_joiners(reply.value) for req, reply in pairs
              if req.command == Command.PROP_VALUE_GET and reply.prop == Prop.MESHCOP_COMMISSIONER_JOINERS]
    rows = [row for table in tables for row in table]
    assert rows and {(r.name, r.pskd) for r in rows} == {("*", "J01NME")}
    assert all(0 < r.timeout_ms <= 120_000 for r in rows)
    assert not [f for f in unsolicited if f.prop in MESHCOP]  # the NCP pushes none of it


@pytest.mark.parametrize("generation", ["ot-current", "ot-2023"])
def test_the_ncp_as_joiner_as_the_real_one_answered(generation: str) -> None:
    pairs, unsolicited = exchanges(load(JOINER[generation]))
    (start,) = [reply for req, reply in pairs
                if req.command == Command.PROP_VALUE_SET and req.prop == Prop.MESHCOP_JOINER_COMMISSIONING]
    assert start.prop == Prop.LAST_STATUS and unpack_prop(Prop.LAST_STATUS, start.value) == Status.OK
    statuses = [unpack_prop(Prop.LAST_STATUS, f.value) for f in unsolicited if f.prop == Prop.LAST_STATUS]
    assert Status.JOIN_SUCCESS in statuses  # the outcome, pushed on TID 0

"""LwM2M paths: parsing, formatting, ordering, containment."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd.lwm2m.paths import ROOT, LwM2MPath, PathError


def test_parse_and_format():
    assert LwM2MPath.parse("/3/0/13") == LwM2MPath(3, 0, 13)
    assert LwM2MPath.parse("3/0/") == LwM2MPath(3, 0)
    assert LwM2MPath.parse("/") == ROOT == LwM2MPath()
    assert str(LwM2MPath(3, 0, 6, 1)) == "/3/0/6/1"
    assert str(ROOT) == "/"
    assert LwM2MPath(3, 0, 6, 1).resource_path == LwM2MPath(3, 0, 6)
    assert LwM2MPath(3, 0).child(5) == LwM2MPath(3, 0, 5)
    assert LwM2MPath(3, 0, 5).parent == LwM2MPath(3, 0)


@pytest.mark.parametrize("bad", ["/3/x", "/3//1", "/65536", "/01", "/1/2/3/4/5", "/-1", "/3/0/ 1", "/٣"])
def test_parse_rejects(bad):
    with pytest.raises(PathError):
        LwM2MPath.parse(bad)


def test_construction_rejects_gaps_and_ranges():
    with pytest.raises(PathError):
        LwM2MPath(3, None, 1)
    with pytest.raises(PathError):
        LwM2MPath(70000)
    with pytest.raises(PathError):
        LwM2MPath(True)  # type: ignore[arg-type]


def test_containment_and_levels():
    obj, inst, res, ri = LwM2MPath(3), LwM2MPath(3, 0), LwM2MPath(3, 0, 6), LwM2MPath(3, 0, 6, 1)
    assert ROOT.is_prefix_of(ri) and obj.is_prefix_of(ri) and inst.is_prefix_of(res) and res.is_prefix_of(res)
    assert not res.is_prefix_of(inst)
    assert not LwM2MPath(3, 0, 1).is_prefix_of(LwM2MPath(3, 0, 13))
    assert [p.depth for p in (ROOT, obj, inst, res, ri)] == [0, 1, 2, 3, 4]
    assert obj.is_object and inst.is_instance and res.is_resource and ri.is_resource_instance
    assert ri.relative_to(inst) == (6, 1)


def test_ordering_is_numeric_and_parents_first():
    paths = [LwM2MPath(10), LwM2MPath(3, 0, 13), LwM2MPath(3, 0), LwM2MPath(3, 0, 2), ROOT, LwM2MPath(3)]
    assert sorted(paths) == [
        ROOT,
        LwM2MPath(3),
        LwM2MPath(3, 0),
        LwM2MPath(3, 0, 2),
        LwM2MPath(3, 0, 13),
        LwM2MPath(10),
    ]


ids = st.lists(st.integers(0, 65535), max_size=4)


@given(ids)
def test_format_parse_round_trip(parts):
    path = LwM2MPath.from_ids(parts)
    assert LwM2MPath.parse(str(path)) == path
    assert hash(LwM2MPath.parse(str(path))) == hash(path)


@given(ids, ids)
def test_prefix_matches_id_prefix(a, b):
    pa, pb = LwM2MPath.from_ids(a), LwM2MPath.from_ids(b)
    assert pa.is_prefix_of(pb) == (tuple(b[: len(a)]) == tuple(a))


@given(st.text(max_size=20))
def test_parse_only_raises_path_error(text):
    try:
        LwM2MPath.parse(text)
    except PathError:
        pass

"""DDF loader: every shipped object loads with the right ids, types and operations; unsafe XML refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from gatewayd.lwm2m.ddf import MODELS_DIR, DDFError, load_ddf_file, load_registry, parse_ddf
from gatewayd.lwm2m.numbers import Operations, ResourceType

R, W, RW, E, NONE = Operations.R, Operations.W, Operations.RW, Operations.E, Operations.NONE
T = ResourceType

# object id: (name, multiple instances, mandatory, {resource id: (operations, type, multiple, mandatory)})
EXPECTED = {
    0: (
        "LWM2M Security",
        True,
        True,
        {
            0: (NONE, T.STRING, False, True),
            1: (NONE, T.BOOLEAN, False, True),
            2: (NONE, T.INTEGER, False, True),
            3: (NONE, T.OPAQUE, False, True),
            5: (NONE, T.OPAQUE, False, True),
            10: (NONE, T.INTEGER, False, False),
            16: (NONE, T.UNSIGNED, True, False),
            17: (NONE, T.OBJLNK, False, False),
        },
    ),
    1: (
        "LwM2M Server",
        True,
        True,
        {
            0: (R, T.INTEGER, False, True),
            1: (RW, T.INTEGER, False, True),
            4: (E, T.NONE, False, False),
            6: (RW, T.BOOLEAN, False, True),
            7: (RW, T.STRING, False, True),
            8: (E, T.NONE, False, True),
            10: (RW, T.OBJLNK, False, False),
            12: (R, T.TIME, False, False),
            23: (RW, T.BOOLEAN, False, False),
        },
    ),
    3: (
        "Device",
        False,
        True,
        {
            0: (R, T.STRING, False, False),
            4: (E, T.NONE, False, True),
            6: (R, T.INTEGER, True, False),
            11: (R, T.INTEGER, True, True),
            13: (RW, T.TIME, False, False),
            16: (R, T.STRING, False, True),
            22: (R, T.OBJLNK, True, False),
        },
    ),
    4: (
        "Connectivity Monitoring",
        False,
        False,
        {
            0: (R, T.INTEGER, False, True),
            1: (R, T.INTEGER, True, True),
            2: (R, T.INTEGER, False, True),
            4: (R, T.STRING, True, True),
            7: (R, T.STRING, True, False),
        },
    ),
    5: (
        "Firmware Update",
        False,
        False,
        {
            0: (W, T.OPAQUE, False, True),
            1: (RW, T.STRING, False, True),
            2: (E, T.NONE, False, True),
            3: (R, T.INTEGER, False, True),
            5: (R, T.INTEGER, False, True),
            8: (R, T.INTEGER, True, False),
            9: (R, T.INTEGER, False, True),
        },
    ),
    6: (
        "Location",
        False,
        False,
        {
            0: (R, T.FLOAT, False, True),
            1: (R, T.FLOAT, False, True),
            4: (R, T.OPAQUE, False, False),
            5: (R, T.TIME, False, True),
        },
    ),
    7: (
        "Connectivity Statistics",
        False,
        False,
        {
            2: (R, T.INTEGER, False, False),
            6: (E, T.NONE, False, True),
            7: (E, T.NONE, False, True),
            8: (RW, T.INTEGER, False, False),
        },
    ),
    25: ("LwM2M Gateway", True, False,
         {0: (R, T.STRING, False, True), 1: (R, T.STRING, False, True), 3: (R, T.CORELNK, False, True)}),
    3301: ("Illuminance", True, False, {5700: (R, T.FLOAT, False, True), 5605: (E, T.NONE, False, False)}),
    3303: (
        "Temperature",
        True,
        False,
        {
            5700: (R, T.FLOAT, False, True),
            5701: (R, T.STRING, False, False),
            5601: (R, T.FLOAT, False, False),
            5750: (RW, T.STRING, False, False),
            5518: (R, T.TIME, False, False),
        },
    ),
    3304: ("Humidity", True, False, {5700: (R, T.FLOAT, False, True), 5602: (R, T.FLOAT, False, False)}),
    3311: (
        "Light Control",
        True,
        False,
        {
            5850: (RW, T.BOOLEAN, False, True),
            5851: (RW, T.INTEGER, False, False),
            5706: (RW, T.STRING, False, False),
            5805: (R, T.FLOAT, False, False),
        },
    ),
    3312: ("Power Control", True, False, {5850: (RW, T.BOOLEAN, False, True), 5851: (RW, T.INTEGER, False, False)}),
    3342: (
        "On/Off switch",
        True,
        False,
        {
            5500: (R, T.BOOLEAN, False, True),
            5501: (R, T.INTEGER, False, False),
            5854: (RW, T.INTEGER, False, False),
        },
    ),
    3347: ("Push button", True, False, {5500: (R, T.BOOLEAN, False, True), 5501: (R, T.INTEGER, False, False)}),
}


def test_every_shipped_file_loads():
    files = sorted(MODELS_DIR.glob("*.xml"))
    assert {int(f.stem) for f in files} == set(EXPECTED)
    for file in files:
        (definition,) = load_ddf_file(file)
        assert definition.id == int(file.stem)


@pytest.mark.parametrize("object_id", sorted(EXPECTED))
def test_shipped_object_definition(object_id):
    name, multiple, mandatory, resources = EXPECTED[object_id]
    definition = load_registry()[object_id]
    assert (definition.name, definition.multiple, definition.mandatory) == (name, multiple, mandatory)
    assert definition.urn.startswith(f"urn:oma:lwm2m:{'oma' if object_id < 1024 else 'ext'}:{object_id}")
    for rid, (ops, rtype, multi, mand) in resources.items():
        rdef = definition.resources[rid]
        assert (rdef.operations, rdef.type, rdef.multiple, rdef.mandatory) == (ops, rtype, multi, mand), rdef
    for rdef in definition.resources.values():
        assert rdef.name and rdef.description
        assert (rdef.type is ResourceType.NONE) == rdef.executable


def test_versions_and_units():
    registry = load_registry()
    assert (registry[3].lwm2m_version, registry[3].object_version) == ("1.1", "1.1")
    assert registry[5].object_version == "1.0"
    assert registry[3303].resources[5700].units == "Cel"
    assert registry[3].resources[9].range_enumeration == "0..100"


def test_extra_directory_adds_and_overrides(tmp_path: Path):
    (tmp_path / "a.xml").write_text(
        "<LWM2M><Object><Name>Mine</Name><ObjectID>3303</ObjectID><MultipleInstances>Single</MultipleInstances>"
        "<Mandatory>Optional</Mandatory><Resources><Item ID='1'><Name>X</Name><Operations>RW</Operations>"
        "<MultipleInstances>Single</MultipleInstances><Mandatory>Optional</Mandatory><Type>Integer</Type></Item>"
        "</Resources></Object><Object><Name>New</Name><ObjectID>33000</ObjectID><Resources/></Object></LWM2M>"
    )
    registry = load_registry([tmp_path])
    assert registry[3303].name == "Mine" and set(registry[3303].resources) == {1}
    assert 33000 in registry and 3 in registry
    with pytest.raises(DDFError):
        load_registry([tmp_path / "missing"])


@pytest.mark.parametrize(
    "document",
    [
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><LWM2M/>',
        b"<!doctype x><LWM2M/>",
        b'<LWM2M><!ENTITY x SYSTEM "file:///etc/passwd"></LWM2M>',
        b"<LWM2M><Object>",
        b"<Other/>",
        b"<LWM2M/>",
        b"<LWM2M><Object><Name>x</Name></Object></LWM2M>",  # no ObjectID
        b"<LWM2M><Object><Name>x</Name><ObjectID>70000</ObjectID></Object></LWM2M>",
        b"<LWM2M><Object><Name>x</Name><ObjectID>1</ObjectID><MultipleInstances>Many</MultipleInstances>"
        b"</Object></LWM2M>",
        b"<LWM2M><Object><Name>x</Name><ObjectID>1</ObjectID><Resources><Item ID='0'><Operations>RX</Operations>"
        b"<Type>String</Type></Item></Resources></Object></LWM2M>",
        b"<LWM2M><Object><Name>x</Name><ObjectID>1</ObjectID><Resources><Item ID='0'><Operations>R</Operations>"
        b"<Type>Complex</Type></Item></Resources></Object></LWM2M>",
        b"<LWM2M><Object><Name>x</Name><ObjectID>1</ObjectID><Resources><Item ID='0'><Operations>R</Operations>"
        b"<Type>String</Type></Item><Item ID='0'><Operations>R</Operations><Type>String</Type></Item>"
        b"</Resources></Object></LWM2M>",
        b'<?xml version="1.0" encoding="nonsense"?><LWM2M/>',
    ],
)
def test_bad_or_unsafe_documents_are_refused(document):
    with pytest.raises(DDFError):
        parse_ddf(document)

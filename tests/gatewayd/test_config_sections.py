"""The typed section classes (gatewayd/config/sections.py) and the schema stay in step.

Every key of the schema must be a field of its table's class, annotated with the Python type the
loader hands over for it (derived here from the key's value type in types.py), and no class may
declare a field the schema lacks: adding a key to the schema without typing it fails here.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import types
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints, is_typeddict

import pytest

from gatewayd.config import Config, parse
from gatewayd.config import types as t
from gatewayd.config.schema import SCHEMA, Section, walk
from gatewayd.config.sections import SECTION_TYPES, Node, RootSection, Table
from gatewayd.secrets import Secret

TABLES = [("", SCHEMA), *walk()]


def scalar_type(vt: t.ValueType) -> Any:
    """The Python type a scalar value type's check() returns."""
    if isinstance(vt, t.Str):
        if vt.validate is not None:
            return get_type_hints(vt.validate)["return"]
        return Literal[vt.choices] if vt.choices else str
    returned = get_type_hints(type(vt).check)["return"]
    assert returned is not Any, f"{type(vt).__name__}.check returns Any: teach scalar_type its Python type"
    return returned


def assert_typed(hint: Any, vt: t.ValueType, where: str) -> None:
    """``hint`` (a class field's annotation) is the type of the values ``vt`` produces."""
    if isinstance(vt, t.List):
        assert get_origin(hint) is list, f"{where}: {hint} is not a list[...]"
        assert_typed(get_args(hint)[0], vt.item, f"{where}[]")
    elif isinstance(vt, t.Table):
        assert get_origin(hint) is dict and get_args(hint)[0] is str, f"{where}: {hint} is not a dict[str, ...]"
        assert_typed(get_args(hint)[1], vt.value, f"{where}{{}}")
    elif isinstance(vt, t.InlineTable):
        assert is_typeddict(hint), f"{where}: {hint} is not a TypedDict"
        assert hint.__total__ is False, f"{where}: only the fields the user wrote are present"
        fields = get_type_hints(hint)
        assert list(fields) == [name for name, _ in vt.fields], f"{where}: fields differ from the schema's"
        for name, item in vt.fields:
            assert_typed(fields[name], item, f"{where}.{name}")
    else:
        assert hint == scalar_type(vt), f"{where}: annotated {hint}, the schema gives {scalar_type(vt)}"


def class_fields(cls: type) -> dict[str, Any]:
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


@pytest.mark.parametrize(("path", "section"), TABLES, ids=[p or "root" for p, _ in TABLES])
def test_every_table_has_a_class_typing_every_key(path: str, section: Section):
    if section.free is not None:
        assert path not in SECTION_TYPES, f"{path} is a free table: a Node, not a class"
        return
    assert path in SECTION_TYPES, f"[{path}] has no class in sections.SECTION_TYPES"
    cls = SECTION_TYPES[path]
    assert issubclass(cls, Table) and dataclasses.is_dataclass(cls)
    assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    fields = class_fields(cls)
    # Same names in the schema's order (keys, then tables): items(), dump and flatten follow it.
    assert list(fields) == [k.name for k in section.keys] + [s.name for s in section.sections], (
        f"{cls.__name__}: fields differ from the schema's keys of [{path}]")
    for key in section.keys:
        where = f"{path}.{key.name}"
        if key.secret:
            assert fields[key.name] is Secret, f"{where} is a secret: annotate it Secret"
        else:
            assert_typed(fields[key.name], key.type, where)
    for sub in section.sections:
        sub_path = f"{path}.{sub.name}" if path else sub.name
        hint = fields[sub.name]
        if sub.free is not None:
            assert get_origin(hint) is Node, f"{sub_path}: a free table is a Node[...]"
            assert_typed(get_args(hint)[0], sub.free, f"{sub_path}.*")
        elif sub.array:
            assert get_origin(hint) is list and get_args(hint) == (SECTION_TYPES[sub_path],), (
                f"{sub_path}: [[{sub_path}]] is a list of its class")
        else:
            assert hint is SECTION_TYPES[sub_path], f"{sub_path}: annotated {hint}"


def test_no_class_for_a_table_the_schema_lacks():
    assert set(SECTION_TYPES) <= {path for path, _ in TABLES}


def test_config_exposes_every_top_level_section_typed():
    assert get_type_hints(Config)["root"] is RootSection
    for sub in SCHEMA.sections:
        prop = getattr(Config, sub.name, None)
        assert isinstance(prop, property), f"Config.{sub.name} is not a typed property"
        assert get_type_hints(prop.fget)["return"] is SECTION_TYPES[sub.name]


# ---- what the loader builds has the declared types ------------------------------------------------------

RICH = """
[thread]
dataset = "0e080000000000010000"
[border]
omr_prefix = "fd11:22::/64"
[dns64]
listen = ["fd00::1", "10.0.0.1"]
allowed = ["fd00::/8", "10.0.0.0/8"]
upstream = ["1.1.1.1:53"]
mesh_address = "fd00:53::53"
[lwm2m]
enabled = true
[lwm2m.server]
uri = "coaps://leshan.example:5684"
psk_identity = "id"
psk_key = "0011"
[[lwm2m.device]]
endpoint = "a"
address = "fd00::1"
resources = { "/3303/0/5700" = { get = "/t", type = "float", format = "json", pointer = "/v", observe = false } }
[[lwm2m.device]]
endpoint = "b"
eui64 = "0011223344556677"
[log.components]
ncp = "debug"
"""


def conforms(value: Any, hint: Any) -> bool:
    origin, args = get_origin(hint), get_args(hint)
    if origin is Literal:
        return value in args
    if origin in (Union, types.UnionType):
        return any(conforms(value, a) for a in args)
    if origin is list:
        return isinstance(value, list) and all(conforms(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) and conforms(v, args[1]) for k, v in value.items())
    if origin is Node:
        return isinstance(value, Node) and all(conforms(v, args[0]) for _, v in value.items())
    if is_typeddict(hint):
        fields = get_type_hints(hint)
        return isinstance(value, dict) and all(k in fields and conforms(v, fields[k]) for k, v in value.items())
    if hint is type(None):
        return value is None
    if hint is float:
        return type(value) is float  # the loader turns TOML integers into floats
    return isinstance(value, hint) and not (hint is int and isinstance(value, bool))


def check_table(table: Table, where: str) -> None:
    for name, hint in class_fields(type(table)).items():
        value = getattr(table, name)
        assert conforms(value, hint), f"{where}{name} = {value!r} is not a {hint}"
        if isinstance(value, Table):
            check_table(value, f"{where}{name}.")
        elif isinstance(value, list) and value and isinstance(value[0], Table):
            for i, item in enumerate(value):
                check_table(item, f"{where}{name}[{i}].")


@pytest.mark.parametrize("text", ["", RICH], ids=["defaults", "rich"])
def test_loaded_values_have_the_declared_types(text: str):
    config = parse(text)
    check_table(config.root, "")
    assert len(config.lwm2m.device) == (2 if text else 0)
    assert isinstance(config.nat64.prefix, ipaddress.IPv6Network)


def test_sections_keep_the_mapping_access_of_a_table():
    config = parse(RICH)
    nat64 = config.nat64
    assert "prefix" in nat64 and "bogus" not in nat64 and 3 not in nat64
    assert nat64["prefix"] == nat64.prefix
    with pytest.raises(KeyError):
        nat64["bogus"]
    with pytest.raises(AttributeError):
        nat64.bogus  # type: ignore[attr-defined]  # noqa: B018
    assert [name for name, _ in config.lwm2m.items()][-4:] == ["server", "device", "thread_devices", "gateway"]
    assert parse(RICH).root == config.root and parse("").root != config.root
    assert dict(config.log.components.items()) == {"ncp": "debug"} and config.log.components.ncp == "debug"
    with pytest.raises(dataclasses.FrozenInstanceError):
        nat64.prefix = ipaddress.IPv6Network("64:ff9b::/96")  # type: ignore[misc]

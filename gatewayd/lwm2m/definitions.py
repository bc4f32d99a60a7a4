"""LwM2M object definitions: resource values (:class:`ObjLnk`, type checks), resource and object
definitions, and the registry of definitions by object id (filled from DDF files by :mod:`.ddf`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .numbers import INT64_MAX, INT64_MIN, UINT64_MAX, Operations, ResourceType
from .paths import LwM2MPath


class ObjLnk(NamedTuple):
    """An object link value: the object id and instance id it points to (0xFFFF:0xFFFF is none)."""

    object_id: int
    instance_id: int

    def __str__(self) -> str:
        return f"{self.object_id}:{self.instance_id}"

    @classmethod
    def parse(cls, text: str) -> ObjLnk:
        left, sep, right = text.partition(":")
        if not sep or not left.isdigit() or not right.isdigit() or not left.isascii() or not right.isascii():
            raise ValueError(f"bad objlnk {text!r}")
        link = cls(int(left), int(right))
        check_value(ResourceType.OBJLNK, link)
        return link


def check_value(rtype: ResourceType, value: Any) -> Any:
    """Return ``value`` normalised for ``rtype`` or raise ValueError if it does not fit the type."""
    if rtype in (ResourceType.INTEGER, ResourceType.TIME):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{rtype.value} needs an int, not {type(value).__name__}")
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError(f"{rtype.value} {value} outside 64 bits")
        return value
    if rtype is ResourceType.UNSIGNED:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"Unsigned Integer needs an int, not {type(value).__name__}")
        if not 0 <= value <= UINT64_MAX:
            raise ValueError(f"Unsigned Integer {value} outside 0..2^64-1")
        return value
    if rtype is ResourceType.FLOAT:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"Float needs a number, not {type(value).__name__}")
        try:
            out = float(value)
        except OverflowError as exc:
            raise ValueError(f"Float {value} out of range") from exc
        if not math.isfinite(out):
            raise ValueError("Float must be finite")
        return out
    if rtype is ResourceType.BOOLEAN:
        if not isinstance(value, bool):
            raise ValueError(f"Boolean needs a bool, not {type(value).__name__}")
        return value
    if rtype in (ResourceType.STRING, ResourceType.CORELNK):
        if not isinstance(value, str):
            raise ValueError(f"{rtype.value} needs a str, not {type(value).__name__}")
        return value
    if rtype is ResourceType.OPAQUE:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise ValueError(f"Opaque needs bytes, not {type(value).__name__}")
        return bytes(value)
    if rtype is ResourceType.OBJLNK:
        if not isinstance(value, tuple) or len(value) != 2:
            raise ValueError(f"Objlnk needs an ObjLnk, not {type(value).__name__}")
        oid, iid = value
        for part in (oid, iid):
            if isinstance(part, bool) or not isinstance(part, int) or not 0 <= part <= 0xFFFF:
                raise ValueError(f"Objlnk part {part!r} outside 0..65535")
        return ObjLnk(oid, iid)
    raise ValueError(f"{rtype.value} resources carry no value")


def infer_type(value: Any) -> ResourceType:
    """The natural resource type of a Python value, for resources without a definition."""
    if isinstance(value, bool):
        return ResourceType.BOOLEAN
    if isinstance(value, int):
        return ResourceType.INTEGER if value <= INT64_MAX else ResourceType.UNSIGNED
    if isinstance(value, float):
        return ResourceType.FLOAT
    if isinstance(value, str):
        return ResourceType.STRING
    if isinstance(value, bytes | bytearray | memoryview):
        return ResourceType.OPAQUE
    if isinstance(value, ObjLnk):
        return ResourceType.OBJLNK
    raise ValueError(f"no LwM2M type for {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class ResourceDefinition:
    id: int
    name: str
    operations: Operations
    type: ResourceType
    multiple: bool = False
    mandatory: bool = False
    range_enumeration: str = ""
    units: str = ""
    description: str = field(default="", repr=False)

    @property
    def readable(self) -> bool:
        return Operations.R in self.operations

    @property
    def writable(self) -> bool:
        return Operations.W in self.operations

    @property
    def executable(self) -> bool:
        return Operations.E in self.operations


@dataclass(frozen=True, slots=True)
class ObjectDefinition:
    id: int
    name: str
    resources: dict[int, ResourceDefinition]
    urn: str = ""
    lwm2m_version: str = "1.0"
    object_version: str = "1.0"
    multiple: bool = False
    mandatory: bool = False
    description: str = field(default="", repr=False)

    def resource(self, resource_id: int) -> ResourceDefinition | None:
        return self.resources.get(resource_id)


class ObjectRegistry:
    """Object definitions by id; a later definition of the same id replaces the earlier one."""

    def __init__(self, definitions: list[ObjectDefinition] | tuple[ObjectDefinition, ...] = ()) -> None:
        self._objects: dict[int, ObjectDefinition] = {}
        for d in definitions:
            self.add(d)

    def add(self, definition: ObjectDefinition) -> None:
        self._objects[definition.id] = definition

    def get(self, object_id: int) -> ObjectDefinition | None:
        return self._objects.get(object_id)

    def __getitem__(self, object_id: int) -> ObjectDefinition:
        return self._objects[object_id]

    def __contains__(self, object_id: object) -> bool:
        return object_id in self._objects

    def __iter__(self) -> Iterator[ObjectDefinition]:
        return iter(sorted(self._objects.values(), key=lambda d: d.id))

    def __len__(self) -> int:
        return len(self._objects)

    def resource(self, path: LwM2MPath) -> ResourceDefinition | None:
        """The definition of the resource a resource or resource-instance path names, if known."""
        if path.resource is None or path.object is None:
            return None
        obj = self._objects.get(path.object)
        return obj.resource(path.resource) if obj else None


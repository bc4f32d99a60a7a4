"""Shared pieces of the LwM2M content-format codecs: content-format numbers, errors, entry shapes.

Every codec turns bytes into a list of *entries* ``(LwM2MPath, value)`` and back. A value is a Python
scalar typed by the object model (int, float, bool, str, bytes, :class:`ObjLnk`), or, for a
multiple-instance resource addressed at resource level, a ``dict[resource_instance_id, scalar]``.
A path naming a resource instance always carries a scalar.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any

from aiocoap.numbers.codes import Code

from ..definitions import ObjectRegistry, ResourceDefinition, check_value, infer_type
from ..errors import LwM2MError
from ..numbers import ResourceType
from ..paths import LwM2MPath, PathError

Entry = tuple[LwM2MPath, Any]


class ContentFormat(enum.IntEnum):
    TEXT = 0
    LINK_FORMAT = 40
    OPAQUE = 42
    CBOR = 60
    SENML_JSON = 110
    SENML_CBOR = 112
    TLV = 11542
    LWM2M_JSON = 11543
    LWM2M_CBOR = 11544
    # Numbers of the LwM2M 1.0 drafts that some 1.0-era servers still send.
    OLD_TEXT = 1541
    OLD_TLV = 1542
    OLD_JSON = 1543
    OLD_OPAQUE = 1544


class CodecError(LwM2MError, ValueError):
    """A payload that does not decode (or a value that cannot be encoded); answers 4.00 Bad Request."""

    def __init__(self, message: str) -> None:
        super().__init__(Code.BAD_REQUEST, message)


class UnsupportedContentFormat(LwM2MError):
    """The content format is unknown or cannot carry the addressed path.

    ``code`` is 4.15 (for a request payload); a Read whose Accept option names such a format answers
    ``accept_code`` 4.06 Not Acceptable.
    """

    accept_code = Code.NOT_ACCEPTABLE

    def __init__(self, message: str) -> None:
        super().__init__(Code.UNSUPPORTED_CONTENT_FORMAT, message)


class Codec:
    """One content format; subclasses implement :meth:`encode` and :meth:`decode`."""

    content_format: ContentFormat

    def encode(self, base_path: LwM2MPath, entries: Iterable[Entry], model: ObjectRegistry | None = None) -> bytes:
        raise NotImplementedError

    def decode(
        self,
        base_path: LwM2MPath,
        payload: bytes,
        model: ObjectRegistry | None = None,
        default_instance: int | None = None,
    ) -> list[Entry]:
        """Decode ``payload`` that answers or targets ``base_path``.

        ``default_instance`` names the instance for a Create on an object path whose payload carries no
        instance id; without it such a payload is a CodecError.
        """
        raise NotImplementedError


def resource_def(model: ObjectRegistry | None, path: LwM2MPath) -> ResourceDefinition | None:
    return model.resource(path) if model is not None else None


def value_type(model: ObjectRegistry | None, path: LwM2MPath, value: Any) -> ResourceType:
    """The type a value is encoded as: the definition's, else the one its Python type suggests."""
    rdef = resource_def(model, path)
    if rdef is not None and rdef.type is not ResourceType.NONE:
        return rdef.type
    try:
        return infer_type(value)
    except ValueError as exc:
        raise CodecError(f"{path}: {exc}") from None


def checked(rtype: ResourceType, value: Any, path: LwM2MPath) -> Any:
    try:
        return check_value(rtype, value)
    except ValueError as exc:
        raise CodecError(f"{path}: {exc}") from None


def flatten(entries: Iterable[Entry]) -> list[Entry]:
    """Expand multiple-instance resource dicts into one entry per resource instance."""
    out: list[Entry] = []
    for path, value in entries:
        if isinstance(value, dict):
            if not path.is_resource:
                raise CodecError(f"{path}: a dict value needs a resource path")
            out.extend((path.child(ri), v) for ri, v in sorted(value.items()))
        else:
            out.append((path, value))
    return out


def group(flat: Iterable[Entry], base_path: LwM2MPath) -> list[Entry]:
    """Fold resource-instance entries into per-resource dicts (unless the base is a resource instance).

    Raises CodecError on a path given twice or on a path outside ``base_path``.
    """
    out: list[Entry] = []
    index: dict[LwM2MPath, int] = {}
    for path, value in flat:
        if not base_path.is_prefix_of(path):
            raise CodecError(f"{path} is outside {base_path}")
        if path.is_resource_instance and not base_path.is_resource_instance:
            rpath = path.resource_path
            slot = index.get(rpath)
            if slot is None:
                index[rpath] = len(out)
                out.append((rpath, {path.resource_instance: value}))
                continue
            existing = out[slot][1]
            if not isinstance(existing, dict) or path.resource_instance in existing:
                raise CodecError(f"{path} given twice")
            existing[path.resource_instance] = value
            continue
        if path in index:
            raise CodecError(f"{path} given twice")
        index[path] = len(out)
        out.append((path, value))
    return out


def parse_name(name: str, base_path: LwM2MPath) -> LwM2MPath:
    """Resolve a SenML/JSON record name (absolute, or relative to ``base_path``) to a path."""
    if not isinstance(name, str):
        raise CodecError(f"name is not a string: {name!r}")
    if not name.startswith("/"):
        prefix = str(base_path)
        name = (prefix if prefix.endswith("/") else prefix + "/") + name
    try:
        path = LwM2MPath.parse(name)
    except PathError as exc:
        raise CodecError(str(exc)) from None
    return path


def single_entry(base_path: LwM2MPath, entries: Iterable[Entry], what: str) -> Any:
    """The one value a single-value format (text, opaque, CBOR) carries for ``base_path``."""
    if not (base_path.is_resource or base_path.is_resource_instance):
        raise UnsupportedContentFormat(f"{what} carries one resource value, not {base_path}")
    items = list(entries)
    if len(items) != 1 or items[0][0] != base_path:
        raise UnsupportedContentFormat(f"{what} carries exactly one value for {base_path}")
    value = items[0][1]
    if isinstance(value, dict):
        raise UnsupportedContentFormat(f"{what} cannot carry the multiple-instance resource {base_path}")
    return value


def single_target(
    base_path: LwM2MPath, model: ObjectRegistry | None, what: str, only: ResourceType | None = None
) -> ResourceDefinition | None:
    """Check a single-value payload may target ``base_path``; return the resource definition if known.

    ``only`` is the one resource type the format carries (Opaque for opaque), if it is limited to one.
    """
    if not (base_path.is_resource or base_path.is_resource_instance):
        raise UnsupportedContentFormat(f"{what} carries one resource value, not {base_path}")
    rdef = resource_def(model, base_path)
    if rdef is not None and rdef.multiple and base_path.is_resource:
        raise UnsupportedContentFormat(f"{what} cannot carry the multiple-instance resource {base_path}")
    if only is not None and rdef is not None and rdef.type is not only:
        raise UnsupportedContentFormat(f"{base_path} is {rdef.type.value}, not {only.value}")
    return rdef

"""Loader for OMA DDF XML object definitions (the LwM2M registry format).

``<LWM2M><Object ObjectType="MODefinition"><Name/><ObjectID/><ObjectURN/><LWM2MVersion/>
<ObjectVersion/><MultipleInstances/><Mandatory/><Resources><Item ID="0">...``. The stdlib XML parser
is not hardened against entity expansion, so documents with a DOCTYPE or ENTITY declaration are
refused before parsing.
"""

from __future__ import annotations

import logging
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

from .definitions import ObjectDefinition, ObjectRegistry, ResourceDefinition
from .numbers import Operations, ResourceType

log = logging.getLogger("gatewayd.lwm2m")

MODELS_DIR = Path(__file__).with_name("models")
MAX_DOCUMENT = 1024 * 1024
_FORBIDDEN = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)
_TYPES = {t.value.lower(): t for t in ResourceType}
_TYPES[""] = ResourceType.NONE
_TYPES["unsigned"] = ResourceType.UNSIGNED
_TYPES["objectlink"] = ResourceType.OBJLNK


class DDFError(ValueError):
    """A DDF document that is not well-formed, unsafe, or not a valid object definition."""


def _text(elem: ET.Element, tag: str, default: str | None = None) -> str:
    child = elem.find(tag)
    if child is None:
        if default is None:
            raise DDFError(f"missing <{tag}>")
        return default
    return (child.text or "").strip()


def _multiple(text: str, where: str) -> bool:
    value = text.strip().lower()
    if value == "multiple":
        return True
    if value == "single":
        return False
    raise DDFError(f"{where}: MultipleInstances {text!r} is neither Single nor Multiple")


def _mandatory(text: str, where: str) -> bool:
    value = text.strip().lower()
    if value == "mandatory":
        return True
    if value == "optional":
        return False
    raise DDFError(f"{where}: Mandatory {text!r} is neither Mandatory nor Optional")


def _id(text: str, where: str) -> int:
    text = text.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 5 or int(text) > 65535:
        raise DDFError(f"{where}: bad id {text!r}")
    return int(text)


def _resource(item: ET.Element, object_id: int) -> ResourceDefinition:
    rid = _id(item.get("ID", ""), f"object {object_id} resource")
    where = f"/{object_id}/x/{rid}"
    try:
        ops = Operations.parse(_text(item, "Operations", ""))
    except ValueError as exc:
        raise DDFError(f"{where}: {exc}") from None
    type_text = _text(item, "Type", "")
    rtype = _TYPES.get(type_text.strip().lower())
    if rtype is None:
        raise DDFError(f"{where}: unknown Type {type_text!r}")
    if ops == Operations.E:
        rtype = ResourceType.NONE
    elif rtype is ResourceType.NONE and ops != Operations.NONE:
        raise DDFError(f"{where}: a readable or writable resource needs a Type")
    return ResourceDefinition(
        id=rid,
        name=_text(item, "Name", ""),
        operations=ops,
        type=rtype,
        multiple=_multiple(_text(item, "MultipleInstances", "Single"), where),
        mandatory=_mandatory(_text(item, "Mandatory", "Optional"), where),
        range_enumeration=_text(item, "RangeEnumeration", ""),
        units=_text(item, "Units", ""),
        description=_text(item, "Description", ""),
    )


def _object(elem: ET.Element) -> ObjectDefinition:
    oid = _id(_text(elem, "ObjectID"), "ObjectID")
    where = f"object {oid}"
    resources: dict[int, ResourceDefinition] = {}
    container = elem.find("Resources")
    for item in container.findall("Item") if container is not None else []:
        rdef = _resource(item, oid)
        if rdef.id in resources:
            raise DDFError(f"{where}: resource {rdef.id} defined twice")
        resources[rdef.id] = rdef
    return ObjectDefinition(
        id=oid,
        name=_text(elem, "Name"),
        resources=resources,
        urn=_text(elem, "ObjectURN", ""),
        lwm2m_version=_text(elem, "LWM2MVersion", "1.0") or "1.0",
        object_version=_text(elem, "ObjectVersion", "1.0") or "1.0",
        multiple=_multiple(_text(elem, "MultipleInstances", "Single"), where),
        mandatory=_mandatory(_text(elem, "Mandatory", "Optional"), where),
        description=_text(elem, "Description1", "") or _text(elem, "Description", ""),
    )


def parse_ddf(document: bytes | str) -> list[ObjectDefinition]:
    """The object definitions in one DDF document (a ``<LWM2M>`` root holding ``<Object>`` elements)."""
    data = document.encode("utf-8") if isinstance(document, str) else bytes(document)
    if len(data) > MAX_DOCUMENT:
        raise DDFError("DDF document too large")
    if _FORBIDDEN.search(data):
        raise DDFError("DOCTYPE/ENTITY declarations are refused")
    try:
        root = ET.fromstring(data)
    except (ET.ParseError, ValueError, LookupError, RecursionError) as exc:
        raise DDFError(f"bad XML: {exc}") from None
    if root.tag != "LWM2M":
        raise DDFError(f"root element is <{root.tag}>, not <LWM2M>")
    objects = [_object(elem) for elem in root.findall("Object")]
    if not objects:
        raise DDFError("no <Object> in the document")
    return objects


def load_ddf_file(path: str | Path) -> list[ObjectDefinition]:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DDFError(f"{path}: {exc}") from None
    try:
        return parse_ddf(data)
    except DDFError as exc:
        raise DDFError(f"{path.name}: {exc}") from None


def load_directory(directory: str | Path, registry: ObjectRegistry | None = None) -> ObjectRegistry:
    """Add every ``*.xml`` of ``directory`` (sorted by name) to ``registry``; bad files raise DDFError."""
    registry = registry if registry is not None else ObjectRegistry()
    for file in sorted(Path(directory).glob("*.xml")):
        for definition in load_ddf_file(file):
            if definition.id in registry:
                log.debug("object %d from %s replaces an earlier definition", definition.id, file.name)
            registry.add(definition)
    return registry


def load_registry(extra_dirs: Iterable[str | Path] = ()) -> ObjectRegistry:
    """The shipped object definitions, then those of ``extra_dirs`` (which win on the same id)."""
    registry = load_directory(MODELS_DIR)
    for directory in extra_dirs:
        if not Path(directory).is_dir():
            raise DDFError(f"object definition directory {directory} does not exist")
        load_directory(directory, registry)
    return registry

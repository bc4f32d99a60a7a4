"""CoRE Link Format (RFC 6690, content format 40) for Register/Update payloads and Discover answers.

Register: ``</>;rt="oma.lwm2m";ct=110,</1>;ver=1.1,</1/0>,</3/0>``. Discover:
``</3/0>;pmin=10,</3/0/7>;dim=2;gt=50``. Attribute values stay strings; typed access goes through
:meth:`Link.int_attr` / :meth:`Link.float_attr`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..paths import LwM2MPath, PathError
from .base import CodecError, ContentFormat

_PTOKEN = re.compile(r"[!#$%&'()*+\-.:<=>?@\[\]^_`{|}~/0-9A-Za-z]+")
_PARMNAME = re.compile(r"[!#$&+\-.^_`|~0-9A-Za-z*]+")
# uri: Bootstrap-Discover (LwM2M 1.1 §5.2.7.3) shows the server URI as a quoted string
QUOTED_ATTRS = frozenset({"rt", "if", "title", "anchor", "rel", "rev", "hreflang", "media", "type", "uri"})
#: the longest link-format document decoded: a gateway's Register lists up to 65,535 /25 instances
#: (``</25/65534>,``, about 770 KB; 10,000 devices make about 110 KB), so 1 MiB holds any registration
#: the LwM2M Gateway enabler allows with room for the rest of the object list
MAX_PAYLOAD = 1 << 20
CONTENT_FORMAT = ContentFormat.LINK_FORMAT


@dataclass(slots=True)
class Link:
    """One link: its target (``/3/0``) and attributes in order (None for a valueless attribute)."""

    target: str
    attributes: dict[str, str | None] = field(default_factory=dict)

    @property
    def path(self) -> LwM2MPath:
        """The target as an LwM2M path (CodecError if it is not one)."""
        try:
            return LwM2MPath.parse(self.target)
        except PathError as exc:
            raise CodecError(f"link target {self.target!r}: {exc}") from None

    def int_attr(self, name: str) -> int | None:
        value = self.attributes.get(name)
        if value is None:
            return None
        if not re.fullmatch(r"-?[0-9]{1,20}", value):
            raise CodecError(f"attribute {name}={value!r} is not an integer")
        return int(value)

    def float_attr(self, name: str) -> float | None:
        value = self.attributes.get(name)
        if value is None:
            return None
        if not re.fullmatch(r"-?([0-9]{1,40}(\.[0-9]{0,40})?|\.[0-9]{1,40})([eE][+-]?[0-9]{1,3})?", value):
            raise CodecError(f"attribute {name}={value!r} is not a number")
        out = float(value)
        if not math.isfinite(out):
            raise CodecError(f"attribute {name}={value!r} is out of range")
        return out


def _format_value(name: str, value: str) -> str:
    if name not in QUOTED_ATTRS and _PTOKEN.fullmatch(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_link(link: Link) -> str:
    if ">" in link.target or "<" in link.target:
        raise CodecError(f"bad link target {link.target!r}")
    parts = [f"<{link.target}>"]
    for name, value in link.attributes.items():
        if not _PARMNAME.fullmatch(name):
            raise CodecError(f"bad attribute name {name!r}")
        parts.append(name if value is None else f"{name}={_format_value(name, value)}")
    return ";".join(parts)


def encode_links(links: Iterable[Link]) -> bytes:
    return ",".join(format_link(link) for link in links).encode("utf-8")


def decode_links(payload: bytes) -> list[Link]:
    """Parse a link-format document; whitespace around separators is tolerated."""
    if len(payload) > MAX_PAYLOAD:
        raise CodecError(f"link-format payload of {len(payload)} bytes is over the {MAX_PAYLOAD} byte bound")
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CodecError(f"link format is not UTF-8: {exc}") from None
    links: list[Link] = []
    pos, end = 0, len(text)

    def skip_ws() -> None:
        nonlocal pos
        while pos < end and text[pos] in " \t\r\n":
            pos += 1

    skip_ws()
    if pos == end:
        return links
    while True:
        skip_ws()
        if pos >= end or text[pos] != "<":
            raise CodecError(f"expected '<' at {pos}")
        close = text.find(">", pos + 1)
        if close < 0:
            raise CodecError("unterminated link target")
        if "<" in text[pos + 1 : close]:
            raise CodecError(f"'<' inside the link target at {pos}")
        link = Link(text[pos + 1 : close])
        pos = close + 1
        skip_ws()
        while pos < end and text[pos] == ";":
            pos += 1
            skip_ws()
            m = _PARMNAME.match(text, pos)
            if not m:
                raise CodecError(f"bad attribute name at {pos}")
            name = m.group(0)
            pos = m.end()
            skip_ws()
            value: str | None = None
            if pos < end and text[pos] == "=":
                pos += 1
                skip_ws()
                if pos < end and text[pos] == '"':
                    pos += 1
                    chars = []
                    while True:
                        if pos >= end:
                            raise CodecError("unterminated quoted string")
                        ch = text[pos]
                        if ch == "\\" and pos + 1 < end:
                            chars.append(text[pos + 1])
                            pos += 2
                            continue
                        pos += 1
                        if ch == '"':
                            break
                        chars.append(ch)
                    value = "".join(chars)
                else:
                    m = _PTOKEN.match(text, pos)
                    value = m.group(0) if m else ""
                    pos = m.end() if m else pos
            link.attributes[name] = value
            skip_ws()
        links.append(link)
        if pos == end:
            return links
        if text[pos] != ",":
            raise CodecError(f"expected ',' or ';' at {pos}")
        pos += 1


# --- LwM2M payloads ---------------------------------------------------------------------------------


def registration_links(
    objects: Mapping[int, Iterable[int]],
    versions: Mapping[int, str] | None = None,
    content_format: int | None = None,
    alternate_path: str | None = None,
) -> list[Link]:
    """The Register/Update object list: ``</o>;ver=`` for non-1.0 objects, then ``</o/i>`` per instance.

    ``objects`` maps object id to its instance ids (none: the object alone is listed). A root link
    ``</>;rt="oma.lwm2m"`` (with ``ct``) leads when ``content_format`` or ``alternate_path`` is given.
    """
    versions = versions or {}
    links: list[Link] = []
    root = alternate_path or "/"
    if content_format is not None or alternate_path:
        attrs: dict[str, str | None] = {"rt": "oma.lwm2m"}
        if content_format is not None:
            attrs["ct"] = str(content_format)
        links.append(Link(root, attrs))
    prefix = "" if root == "/" else root.rstrip("/")
    for oid in sorted(objects):
        instances = sorted(objects[oid])
        version = versions.get(oid, "1.0")
        if version != "1.0" or not instances:
            links.append(Link(f"{prefix}/{oid}", {"ver": version} if version != "1.0" else {}))
        links.extend(Link(f"{prefix}/{oid}/{iid}") for iid in instances)
    return links


def parse_registration(payload: bytes) -> tuple[dict[int, list[int]], dict[int, str]]:
    """Object ids with their instances, and object versions, from a Register payload."""
    objects: dict[int, list[int]] = {}
    versions: dict[int, str] = {}
    root = "/"
    links = decode_links(payload)
    for link in links:
        if link.attributes.get("rt") == "oma.lwm2m":
            root = link.target if link.target.endswith("/") else link.target + "/"
    seen: set[tuple[int, int]] = set()  # a list scan per link would be quadratic: 65,535 /25 instances
    for link in links:
        target = link.target
        if root != "/" and target.startswith(root):
            target = "/" + target[len(root) :]
        try:
            path = LwM2MPath.parse(target)
        except PathError:
            continue
        if path.depth not in (1, 2):
            continue
        assert path.object is not None
        objects.setdefault(path.object, [])
        if path.instance is not None and (path.object, path.instance) not in seen:
            seen.add((path.object, path.instance))
            objects[path.object].append(path.instance)
        if link.attributes.get("ver"):
            versions[path.object] = link.attributes["ver"] or ""
    return objects, versions


def discover_link(path: LwM2MPath, attributes: Mapping[str, object] | None = None, dim: int | None = None) -> Link:
    """One Discover answer link: the path, ``dim`` for a multiple-instance resource, then attributes."""
    attrs: dict[str, str | None] = {}
    if dim is not None:
        attrs["dim"] = str(dim)
    for name, value in (attributes or {}).items():
        attrs[name] = None if value is None else _attr_text(value)
    return Link(str(path), attrs)


def _attr_text(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return str(value)

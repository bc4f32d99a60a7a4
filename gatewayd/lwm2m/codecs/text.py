"""Plain text (content format 0; 1541 in the 1.0 drafts): one resource value as UTF-8 text."""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Iterable
from typing import Any

from ..definitions import ObjectRegistry, ObjLnk
from ..numbers import ResourceType
from ..paths import LwM2MPath
from .base import (
    Codec,
    CodecError,
    ContentFormat,
    Entry,
    checked,
    single_entry,
    single_target,
    value_type,
)

_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
MAX_DIGITS = 40


def format_value(rtype: ResourceType, value: Any) -> str:
    if rtype is ResourceType.BOOLEAN:
        return "1" if value else "0"
    if rtype is ResourceType.FLOAT:
        return repr(float(value))
    if rtype in (ResourceType.INTEGER, ResourceType.UNSIGNED, ResourceType.TIME):
        return str(int(value))
    if rtype is ResourceType.OPAQUE:
        return base64.b64encode(value).decode("ascii")
    if rtype is ResourceType.OBJLNK:
        return f"{value[0]}:{value[1]}"
    if rtype in (ResourceType.STRING, ResourceType.CORELNK):
        return value
    raise CodecError(f"{rtype.value} resources carry no value")


def parse_value(rtype: ResourceType | None, text: str) -> Any:
    """A typed scalar from its text form; with no known type the text stays a string."""
    if rtype is None or rtype in (ResourceType.STRING, ResourceType.CORELNK):
        return text
    body = text.strip()
    if rtype in (ResourceType.INTEGER, ResourceType.UNSIGNED, ResourceType.TIME):
        if len(body) > MAX_DIGITS or not _INT.fullmatch(body):
            raise CodecError(f"bad {rtype.value} {text[:40]!r}")
        return int(body)
    if rtype is ResourceType.FLOAT:
        if len(body) > 400 or not _FLOAT.fullmatch(body):
            raise CodecError(f"bad Float {text[:40]!r}")
        value = float(body)
        if not math.isfinite(value):
            raise CodecError(f"Float out of range {text[:40]!r}")
        return value
    if rtype is ResourceType.BOOLEAN:
        if body in ("1", "true"):
            return True
        if body in ("0", "false"):
            return False
        raise CodecError(f"bad Boolean {text[:40]!r}")
    if rtype is ResourceType.OPAQUE:
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CodecError(f"bad base64: {exc}") from None
    if rtype is ResourceType.OBJLNK:
        try:
            return ObjLnk.parse(body)
        except ValueError as exc:
            raise CodecError(str(exc)) from None
    raise CodecError(f"{rtype.value} resources carry no value")


class TextCodec(Codec):
    content_format = ContentFormat.TEXT

    def encode(self, base_path: LwM2MPath, entries: Iterable[Entry], model: ObjectRegistry | None = None) -> bytes:
        value = single_entry(base_path, entries, "plain text")
        rtype = value_type(model, base_path, value)
        return format_value(rtype, checked(rtype, value, base_path)).encode("utf-8")

    def decode(
        self,
        base_path: LwM2MPath,
        payload: bytes,
        model: ObjectRegistry | None = None,
        default_instance: int | None = None,
    ) -> list[Entry]:
        rdef = single_target(base_path, model, "plain text")
        try:
            text = bytes(payload).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CodecError(f"text is not UTF-8: {exc}") from None
        rtype = rdef.type if rdef else None
        value = parse_value(rtype, text)
        if rtype is not None:
            value = checked(rtype, value, base_path)
        return [(base_path, value)]

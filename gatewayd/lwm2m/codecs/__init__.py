"""LwM2M content-format codecs (sans-I/O) and the registry that picks one by content-format number.

``decode(cf, base_path, payload, model)`` returns entries ``[(LwM2MPath, value), ...]`` (see
:mod:`.base` for the value shapes); ``encode(cf, base_path, entries, model)`` returns bytes.
Bad payloads raise :class:`CodecError` (4.00); a format that is unknown or cannot carry the path
raises :class:`UnsupportedContentFormat` (4.15, or 4.06 for an Accept option). Link format (40)
has its own API in :mod:`.linkformat`.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..definitions import ObjectRegistry
from ..paths import LwM2MPath
from .base import Codec, CodecError, ContentFormat, Entry, UnsupportedContentFormat
from .cbor import CborCodec
from .linkformat import Link, decode_links, discover_link, encode_links, parse_registration, registration_links
from .lwm2m_cbor import LwM2MCborCodec
from .lwm2m_json import LwM2MJsonCodec
from .opaque import OpaqueCodec
from .senml import SenMLCborCodec, SenMLJsonCodec, SenMLRecord
from .text import TextCodec
from .tlv import TlvCodec

__all__ = [
    "CONTENT_FORMATS",
    "Codec",
    "CodecError",
    "ContentFormat",
    "Entry",
    "Link",
    "SenMLRecord",
    "UnsupportedContentFormat",
    "codec_for",
    "decode",
    "decode_links",
    "discover_link",
    "encode",
    "encode_links",
    "parse_registration",
    "registration_links",
]

_CODECS: dict[int, Codec] = {}
for _codec in (
    TextCodec(),
    OpaqueCodec(),
    CborCodec(),
    SenMLJsonCodec(),
    SenMLCborCodec(),
    TlvCodec(),
    LwM2MJsonCodec(),
    LwM2MCborCodec(),
):
    _CODECS[_codec.content_format] = _codec
_CODECS[ContentFormat.OLD_TEXT] = _CODECS[ContentFormat.TEXT]
_CODECS[ContentFormat.OLD_TLV] = _CODECS[ContentFormat.TLV]
_CODECS[ContentFormat.OLD_JSON] = _CODECS[ContentFormat.LWM2M_JSON]
_CODECS[ContentFormat.OLD_OPAQUE] = _CODECS[ContentFormat.OPAQUE]

#: Every content format :func:`codec_for` accepts (value formats; link format is separate).
CONTENT_FORMATS: frozenset[int] = frozenset(_CODECS)


def codec_for(content_format: int) -> Codec:
    """The codec for a content-format number, draft 1.0 numbers included."""
    try:
        return _CODECS[content_format]
    except (KeyError, TypeError):
        raise UnsupportedContentFormat(f"content format {content_format!r} is not supported") from None


def encode(
    content_format: int, base_path: LwM2MPath, entries: Iterable[Entry], model: ObjectRegistry | None = None
) -> bytes:
    return codec_for(content_format).encode(base_path, entries, model)


def decode(
    content_format: int,
    base_path: LwM2MPath,
    payload: bytes,
    model: ObjectRegistry | None = None,
    default_instance: int | None = None,
) -> list[Entry]:
    return codec_for(content_format).decode(base_path, payload, model, default_instance)

"""LwM2M client foundation: paths, object model and store, DDF loader, content-format codecs."""

from .codecs import CodecError, ContentFormat, UnsupportedContentFormat, codec_for, decode, encode
from .ddf import DDFError, load_registry, parse_ddf
from .definitions import ObjectDefinition, ObjectRegistry, ObjLnk, ResourceDefinition
from .errors import LwM2MError
from .numbers import Operations, ResourceType
from .paths import LwM2MPath, PathError
from .store import ObjectInstance, ObjectStore, Origin

__all__ = [
    "CodecError",
    "ContentFormat",
    "DDFError",
    "LwM2MError",
    "LwM2MPath",
    "ObjLnk",
    "ObjectDefinition",
    "ObjectInstance",
    "ObjectRegistry",
    "ObjectStore",
    "Operations",
    "Origin",
    "PathError",
    "ResourceDefinition",
    "ResourceType",
    "UnsupportedContentFormat",
    "codec_for",
    "decode",
    "encode",
    "load_registry",
    "parse_ddf",
]

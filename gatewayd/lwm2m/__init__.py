"""LwM2M client foundation: paths, object model and store, DDF loader, content-format codecs."""

from .codecs import CodecError, ContentFormat, UnsupportedContentFormat, codec_for, decode, encode
from .ddf import DDFError, load_registry, parse_ddf
from .model import (
    LwM2MError,
    ObjectDefinition,
    ObjectInstance,
    ObjectRegistry,
    ObjectStore,
    ObjLnk,
    Operations,
    Origin,
    ResourceDefinition,
    ResourceType,
    ResponseCode,
)
from .paths import LwM2MPath, PathError

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
    "ResponseCode",
    "UnsupportedContentFormat",
    "codec_for",
    "decode",
    "encode",
    "load_registry",
    "parse_ddf",
]

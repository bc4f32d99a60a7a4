"""Server operations on a client's objects, sans-I/O: a decoded CoAP request in, a response out.

Device Management and Information Reporting (LwM2M 1.1 §5.4, §5.5) map onto CoAP as: GET → Read
(Accept 40: Discover), FETCH → Read-Composite (SenML, or LwM2M CBOR for 1.2), PUT → Write (replace) or, without payload,
Write-Attributes, POST → Execute on a resource, Create on an object, Write (partial update) on an
instance, iPATCH → Write-Composite, DELETE → Delete. The Bootstrap interface (§5.2) reuses PUT, GET,
DELETE with ``bootstrap=True`` store semantics. Errors come back as responses with the CoAP code an
:class:`LwM2MError` carries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiocoap.numbers.codes import Code

from ..codecs import (
    CodecError,
    ContentFormat,
    UnsupportedContentFormat,
    codec_for,
    decode,
    discover_link,
    encode,
    encode_links,
)
from ..codecs.lwm2m_cbor import LwM2MCborCodec
from ..codecs.senml import SenMLJsonCodec
from ..errors import LwM2MError
from ..numbers import ResourceType
from ..observe import AttributeStore
from ..paths import LwM2MPath, PathError
from ..store import ObjectStore

# Success codes as the plain ints (class << 5 | detail) an OpResponse carries; errors raise LwM2MError with a Code.
CREATED = (2 << 5) | 1
DELETED = (2 << 5) | 2
CHANGED = (2 << 5) | 4
CONTENT = (2 << 5) | 5
SENML_FORMATS = frozenset({ContentFormat.SENML_JSON, ContentFormat.SENML_CBOR})
#: what Read-, Observe- and Write-Composite carry: SenML (LwM2M 1.1) and LwM2M CBOR (1.2)
COMPOSITE_FORMATS = SENML_FORMATS | {ContentFormat.LWM2M_CBOR}
SINGLE_VALUE_FORMATS = frozenset(
    {ContentFormat.TEXT, ContentFormat.OLD_TEXT, ContentFormat.OPAQUE, ContentFormat.OLD_OPAQUE, ContentFormat.CBOR}
)


@dataclass(slots=True)
class OpRequest:
    """What the client needs of a server's CoAP request."""

    method: str  # GET, FETCH, PUT, POST, DELETE, iPATCH
    uri_path: tuple[str, ...] = ()
    query: tuple[str, ...] = ()
    content_format: int | None = None
    accept: int | None = None
    payload: bytes = b""
    observe: int | None = None


@dataclass(slots=True)
class OpResponse:
    code: int
    payload: bytes = b""
    content_format: int | None = None
    location: tuple[str, ...] = ()
    #: what a Read answered, so an observation can remember the value it reported
    entries: list[tuple[LwM2MPath, Any]] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return self.code >> 5 == 2


def error_response(exc: LwM2MError) -> OpResponse:
    return OpResponse(int(exc.code), exc.message.encode("utf-8", "replace")[:128])


def parse_path(uri_path: tuple[str, ...]) -> LwM2MPath:
    """The LwM2M path of a request; anything else is 4.04."""
    parts = [p for p in uri_path if p != ""]
    try:
        return LwM2MPath.parse("/" + "/".join(parts))
    except PathError as exc:
        raise LwM2MError(Code.NOT_FOUND, str(exc)) from None


class ServerOperations:
    """Dispatches one server's requests to an :class:`ObjectStore` with that server's attributes.

    A Read or Observe answers in the format its Accept names (4.06 when no codec can carry the path in
    it: text, opaque and CBOR carry one resource value only); without Accept, values spanning more than
    one resource go out in ``preferred_format`` (the one the client registered: TLV for 1.0 servers,
    SenML JSON for 1.1 ones) and a single resource as plain text (opaque as opaque), which is what
    servers that print the payload, such as lwm2m-node-lib, expect. A notification answers as the
    Observe did. Writes take every format the codecs decode.
    """

    def __init__(
        self,
        store: ObjectStore,
        attributes: AttributeStore | None = None,
        preferred_format: int = ContentFormat.TLV,
        version: str = "1.1",
    ) -> None:
        self.store = store
        self.attributes = attributes if attributes is not None else AttributeStore()
        self.preferred_format = preferred_format
        #: the LwM2M version a Bootstrap-Discover of the root names (``</>;lwm2m=``)
        self.version = version

    # --- entry point ------------------------------------------------------------------------------
    def handle(self, req: OpRequest, *, bootstrap: bool = False) -> OpResponse:
        try:
            if bootstrap:
                return self._bootstrap(req)
            return self._dm(req)
        except UnsupportedContentFormat as exc:
            return error_response(exc)
        except LwM2MError as exc:
            return error_response(exc)

    # --- device management ------------------------------------------------------------------------
    def _dm(self, req: OpRequest) -> OpResponse:
        method = req.method
        if method == "FETCH":
            return self.read_composite(req)
        if method == "iPATCH":
            return self.write_composite(req)
        path = parse_path(req.uri_path)
        if method == "GET":
            if req.accept == ContentFormat.LINK_FORMAT:
                return self.discover(path)
            return self.read(path, req.accept)
        if method == "PUT":
            if not req.payload and req.content_format is None:
                return self.write_attributes(path, req.query)
            return self.write(path, req, replace=True)
        if method == "POST":
            if path.is_resource:
                self.store.execute(path, req.payload)
                return OpResponse(CHANGED)
            if path.is_object:
                return self.create(path, req)
            if path.is_instance:
                return self.write(path, req, replace=False)
            raise LwM2MError(Code.METHOD_NOT_ALLOWED, f"POST on {path}")
        if method == "DELETE":
            if not path.is_instance:
                raise LwM2MError(Code.METHOD_NOT_ALLOWED, f"Delete on {path}")
            self.store.delete(path)
            self.attributes.drop_below(path)
            return OpResponse(DELETED)
        raise LwM2MError(Code.METHOD_NOT_ALLOWED, f"{method} is not an LwM2M operation")

    def read(self, path: LwM2MPath, accept: int | None, *, bootstrap: bool = False) -> OpResponse:
        entries = self.store.read(path, bootstrap=bootstrap)
        cf = self._read_format(path, entries, accept)
        try:
            payload = encode(cf, path, entries, self.store.registry)
        except UnsupportedContentFormat as exc:
            raise LwM2MError(exc.accept_code, exc.message) from None
        return OpResponse(CONTENT, payload, cf, entries=entries)

    def _read_format(self, path: LwM2MPath, entries: list[tuple[LwM2MPath, Any]], accept: int | None) -> int:
        if accept is not None:
            try:
                codec_for(accept)
            except UnsupportedContentFormat as exc:
                raise LwM2MError(exc.accept_code, exc.message) from None
            return accept
        if path.depth >= 3 and len(entries) == 1 and not isinstance(entries[0][1], dict):
            rdef = self.store.registry.resource(path)
            if rdef is not None and rdef.type is ResourceType.OPAQUE:
                return ContentFormat.OPAQUE
            return ContentFormat.TEXT
        return self.preferred_format

    def discover(self, path: LwM2MPath, *, bootstrap: bool = False) -> OpResponse:
        found = self.store.discover(path, bootstrap=bootstrap)
        links = []
        for p, dim in found:
            attrs = {} if bootstrap else self.attributes.at(p)
            if bootstrap and p.is_instance and p.object in (0, 1):
                attrs = self._bootstrap_discover_attrs(p)
            links.append(discover_link(p, attrs, dim))
        if bootstrap:
            links.insert(0, discover_link(LwM2MPath(), {}))
            links[0].attributes["lwm2m"] = self.version if self.version != "1.0" else "1.1"
        return OpResponse(CONTENT, encode_links(links), ContentFormat.LINK_FORMAT)

    def _bootstrap_discover_attrs(self, path: LwM2MPath) -> dict[str, object]:
        inst = self.store.instance(path.object, path.instance)  # type: ignore[arg-type]
        if inst is None:
            return {}
        if path.object == 0:
            out: dict[str, object] = {}
            if inst.values.get(10) is not None and not inst.values.get(1):
                out["ssid"] = inst.values[10]
            if inst.values.get(0):
                out["uri"] = inst.values[0]
            return out
        return {"ssid": inst.values[0]} if 0 in inst.values else {}

    def write(self, path: LwM2MPath, req: OpRequest, *, replace: bool, bootstrap: bool = False) -> OpResponse:
        if req.content_format is None:
            raise LwM2MError(Code.BAD_REQUEST, "Write without Content-Format")
        entries = self._decode(req.content_format, path, req.payload)
        self.store.write(path, entries, replace=replace, bootstrap=bootstrap)
        return OpResponse(CHANGED)

    def create(self, path: LwM2MPath, req: OpRequest) -> OpResponse:
        assert path.object is not None
        default_instance = self.store.next_instance_id(path.object)
        entries: list[tuple[LwM2MPath, Any]] = []
        if req.payload:
            if req.content_format is None:
                raise LwM2MError(Code.BAD_REQUEST, "Create without Content-Format")
            entries = decode(req.content_format, path, req.payload, self.store.registry, default_instance)
        iid = self.store.create(path.object, [e for e in entries if e[0].depth >= 3] or [], None)
        return OpResponse(CREATED, location=(str(path.object), str(iid)))

    def write_attributes(self, path: LwM2MPath, query: tuple[str, ...]) -> OpResponse:
        if path.depth == 0:
            raise LwM2MError(Code.METHOD_NOT_ALLOWED, "Write-Attributes on the root")
        self.store.discover(path)  # 4.04 for a path that does not exist
        rdef = self.store.registry.resource(path) if path.depth >= 3 else None
        self.attributes.write(path, query, rdef.type if rdef else None)
        return OpResponse(CHANGED)

    def read_composite(self, req: OpRequest) -> OpResponse:
        paths = self.composite_paths(req)
        entries = self.composite_entries(paths)
        cf = req.accept if req.accept is not None else req.content_format
        if cf not in COMPOSITE_FORMATS:
            raise LwM2MError(Code.NOT_ACCEPTABLE, f"Read-Composite answers in SenML or LwM2M CBOR, not {cf}")
        return OpResponse(CONTENT, encode(cf, LwM2MPath(), entries, self.store.registry), cf, entries=entries)

    def composite_paths(self, req: OpRequest) -> list[LwM2MPath]:
        if req.content_format not in COMPOSITE_FORMATS:
            raise LwM2MError(Code.UNSUPPORTED_CONTENT_FORMAT, "composite requests carry SenML or LwM2M CBOR")
        codec = codec_for(req.content_format)
        assert isinstance(codec, SenMLJsonCodec | LwM2MCborCodec)
        paths = codec.decode_paths(req.payload)
        if not paths:
            raise LwM2MError(Code.BAD_REQUEST, "composite request names no path")
        return paths

    def composite_entries(self, paths: list[LwM2MPath]) -> list[tuple[LwM2MPath, Any]]:
        entries: list[tuple[LwM2MPath, Any]] = []
        for p in paths:
            try:
                entries.extend(e for e in self.store.read(p) if not (e[0].is_instance and e[1] is None))
            except LwM2MError as exc:
                if exc.code != Code.NOT_FOUND:
                    raise
        if not entries:
            raise LwM2MError(Code.NOT_FOUND, "none of the composite paths exists")
        return entries

    def write_composite(self, req: OpRequest) -> OpResponse:
        if req.content_format not in COMPOSITE_FORMATS:
            raise LwM2MError(Code.UNSUPPORTED_CONTENT_FORMAT, "Write-Composite carries SenML or LwM2M CBOR")
        entries = self._decode(req.content_format, LwM2MPath(), req.payload)
        by_resource: dict[LwM2MPath, list[tuple[LwM2MPath, Any]]] = {}
        for p, v in entries:
            if p.depth < 3:
                raise LwM2MError(Code.BAD_REQUEST, f"{p} is not a resource")
            by_resource.setdefault(p, []).append((p, v))
        for p in by_resource:  # check everything before changing anything
            self.store.read(p.parent if p.is_resource_instance else LwM2MPath(p.object, p.instance))
        for p, items in by_resource.items():
            self.store.write(p, items, replace=False)
        return OpResponse(CHANGED)

    def _decode(self, cf: int, path: LwM2MPath, payload: bytes) -> list[tuple[LwM2MPath, Any]]:
        try:
            return decode(cf, path, payload, self.store.registry)
        except (CodecError, UnsupportedContentFormat):
            raise
        except ValueError as exc:  # defensive: decoders document CodecError only
            raise CodecError(str(exc)) from None

    # --- bootstrap interface ----------------------------------------------------------------------
    def _bootstrap(self, req: OpRequest) -> OpResponse:
        method = req.method
        path = parse_path(req.uri_path)
        if method == "GET":
            if req.accept == ContentFormat.LINK_FORMAT:
                if path.depth > 1:
                    raise LwM2MError(Code.BAD_REQUEST, "Bootstrap-Discover on an object or the root")
                return self.discover(path, bootstrap=True)
            if path.object not in (1, 2) or path.depth == 0:
                raise LwM2MError(Code.BAD_REQUEST, "Bootstrap-Read is for Server and ACL objects")
            return self.read(path, req.accept if req.accept is not None else self.preferred_format, bootstrap=True)
        if method == "PUT":
            if path.depth == 0:
                raise LwM2MError(Code.BAD_REQUEST, "Bootstrap-Write on the root")
            return self.write(path, req, replace=True, bootstrap=True)
        if method == "DELETE":
            if path.depth > 2:
                raise LwM2MError(Code.BAD_REQUEST, "Bootstrap-Delete on a resource")
            self.store.delete(path, bootstrap=True)
            self.attributes.drop_below(path)
            return OpResponse(DELETED)
        raise LwM2MError(Code.METHOD_NOT_ALLOWED, f"{method} {path} during bootstrap")

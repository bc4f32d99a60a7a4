"""LwM2M CBOR (content format 11544, LwM2M 1.2 Core §7.4.6): nested CBOR maps keyed by path ids.

The payload is one CBOR map. A key is one path id (an unsigned integer) or several (an array of
them, outermost first); its value is either another such map, for the levels below, or the value of
the resource or resource instance the ids so far name. Paths are absolute, from the root, and at
most four ids deep. Values carry the resource's type the way CBOR (60) does: integers, floats (a
decimal fraction, tag 4, is read as a float), booleans, text strings, byte strings for Opaque,
``"oid:iid"`` text for Objlnk, an integer (or tag 1) for Time. ``null`` marks a path without a value:
what Read-Composite and Observe-Composite requests carry.

The encoder writes definite-length maps and folds a chain of single children into one array key
(``{[3, 0, 9]: 80}`` rather than ``{3: {0: {9: 80}}}``); the decoder accepts every shape above,
definite or indefinite length.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..definitions import ObjectRegistry
from ..numbers import ResourceType
from ..paths import MAX_ID, LwM2MPath
from .base import Codec, CodecError, ContentFormat, Entry, checked, flatten, group, resource_def, value_type
from .cbor import from_cbor_item, loads_one, to_cbor_item

#: the value a path-only node carries (Read-Composite / Observe-Composite requests)
NO_VALUE = None


def _key_ids(key: Any, where: LwM2MPath) -> tuple[int, ...]:
    """The path ids one map key names."""
    ids = key if isinstance(key, tuple | list) else (key,)
    if not ids:
        raise CodecError(f"empty path key under {where}")
    for i in ids:
        if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i <= MAX_ID:
            raise CodecError(f"path key {i!r} under {where} is not an id 0..{MAX_ID}")
    return tuple(ids)


def walk(item: Any) -> list[tuple[LwM2MPath, Any]]:
    """Every (path, raw CBOR value) leaf of a decoded LwM2M CBOR map, in payload order."""
    if not isinstance(item, dict):
        raise CodecError("LwM2M CBOR payload is not a map")
    out: list[tuple[LwM2MPath, Any]] = []
    _walk((), item, out)
    return out


def _walk(prefix: tuple[int, ...], node: dict[Any, Any], out: list[tuple[LwM2MPath, Any]]) -> None:
    # at most four levels: every key adds at least one id and a fifth is refused
    for key, value in node.items():
        ids = prefix + _key_ids(key, LwM2MPath.from_ids(prefix))
        if len(ids) > 4:
            raise CodecError(f"path /{'/'.join(map(str, ids))} is deeper than a resource instance")
        if isinstance(value, dict):
            if len(ids) == 4:
                raise CodecError(f"/{'/'.join(map(str, ids))}: a resource instance holds a value, not a map")
            _walk(ids, value, out)
        else:
            out.append((LwM2MPath.from_ids(ids), value))


def _typed(path: LwM2MPath, raw: Any, model: ObjectRegistry | None) -> Any:
    rdef = resource_def(model, path)
    rtype = rdef.type if rdef is not None and rdef.type is not ResourceType.NONE else None
    if path.depth < 3:
        raise CodecError(f"{path}: a value needs a resource path")
    if rdef is not None and rdef.multiple and path.is_resource:
        raise CodecError(f"{path} is a multiple-instance resource: its values need instance ids")
    from decimal import Decimal  # what cbor2 decodes tag 4 to; imported with it, on first use

    if isinstance(raw, Decimal):  # tag 4, decimal fraction
        if rtype not in (None, ResourceType.FLOAT):
            raise CodecError(f"{path}: a decimal fraction is no {rtype.value}")
        try:
            raw = float(raw)
        except (OverflowError, ValueError) as exc:
            raise CodecError(f"{path}: bad decimal fraction: {exc}") from None
        return checked(ResourceType.FLOAT, raw, path)
    return from_cbor_item(rtype, raw, path)


def _tree(flat: list[Entry], model: ObjectRegistry | None) -> dict[int, Any]:
    root: dict[int, Any] = {}
    for path, value in flat:
        node = root
        for i in path.ids[:-1]:
            nxt = node.setdefault(i, {})
            if not isinstance(nxt, dict):
                raise CodecError(f"{path} lies under a path that has a value")
            node = nxt
        last = path.ids[-1]
        if last in node:
            raise CodecError(f"{path} given twice")
        if value is NO_VALUE:
            node[last] = NO_VALUE
            continue
        rtype = value_type(model, path, value)
        node[last] = to_cbor_item(rtype, checked(rtype, value, path))
    return root


def _fold(node: dict[int, Any]) -> dict[Any, Any]:
    """Fold single-child chains into array keys: {3: {0: {9: 80}}} → {[3, 0, 9]: 80}."""
    out: dict[Any, Any] = {}
    for key, value in node.items():
        ids = [key]
        while isinstance(value, dict) and len(value) == 1:
            [(k, v)] = value.items()
            ids.append(k)
            value = v
        folded = _fold(value) if isinstance(value, dict) else value
        out[ids[0] if len(ids) == 1 else tuple(ids)] = folded
    return out


def dumps_tree(flat: list[Entry], model: ObjectRegistry | None) -> bytes:
    """Entries (scalars only, depth ≥ 3, or NO_VALUE at any depth) as a LwM2M CBOR map."""
    import cbor2  # on first use: see .cbor

    if not flat:
        return cbor2.dumps({})
    return cbor2.dumps(_fold(_tree(flat, model)))


class LwM2MCborCodec(Codec):
    content_format = ContentFormat.LWM2M_CBOR

    def encode(self, base_path: LwM2MPath, entries: Iterable[Entry], model: ObjectRegistry | None = None) -> bytes:
        flat = flatten(e for e in entries if not (e[0].depth < 3 and e[1] is None))
        for path, value in flat:
            if not base_path.is_prefix_of(path):
                raise CodecError(f"{path} is outside {base_path}")
            if value is NO_VALUE:
                raise CodecError(f"{path}: no value to encode")
            if path.depth < 3:
                raise CodecError(f"{path}: a value needs a resource path")
        return dumps_tree(flat, model)

    def decode(
        self,
        base_path: LwM2MPath,
        payload: bytes,
        model: ObjectRegistry | None = None,
        default_instance: int | None = None,
    ) -> list[Entry]:
        flat = []
        for path, raw in walk(loads_one(payload)):
            if not base_path.is_prefix_of(path):
                raise CodecError(f"{path} is outside {base_path}")
            if raw is NO_VALUE:
                raise CodecError(f"{path}: null where a value belongs")
            flat.append((path, _typed(path, raw, model)))
        return group(flat, base_path)

    def encode_paths(self, paths: Iterable[LwM2MPath]) -> bytes:
        """The paths a Read-Composite or Observe-Composite request names, each with ``null``."""
        paths = list(paths)
        if any(p.is_root for p in paths):
            return dumps_tree([], None)
        return dumps_tree([(p, NO_VALUE) for p in paths], None)

    def decode_paths(self, payload: bytes) -> list[LwM2MPath]:
        """The paths a Read-/Observe-Composite request names (values other than null are ignored)."""
        return [path for path, _ in walk(loads_one(payload))]

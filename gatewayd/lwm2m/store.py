"""The in-memory LwM2M object store (:class:`ObjectStore`) that gives LwM2M operations their semantics."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiocoap.numbers.codes import Code

from .definitions import ObjectDefinition, ObjectRegistry, ResourceDefinition, check_value
from .errors import LwM2MError
from .numbers import ResourceType
from .paths import LwM2MPath

log = logging.getLogger("gatewayd.lwm2m")

#: Objects a LwM2M Server may never touch (Security, OSCORE); only bootstrap operations reach them.
BOOTSTRAP_ONLY_OBJECTS = frozenset({0, 21})


class Origin(enum.Enum):
    """Who changed the store: a LwM2M Server, the Bootstrap-Server, or the gateway itself."""

    SERVER = "server"
    BOOTSTRAP = "bootstrap"
    LOCAL = "local"


ChangeCallback = Callable[[list[LwM2MPath], Origin], None]
ExecuteHandler = Callable[[LwM2MPath, bytes], object]
WriteHook = Callable[[LwM2MPath, list[tuple[LwM2MPath, Any]], Origin], None]


@dataclass(slots=True)
class ObjectInstance:
    """One object instance: resource id → value (a dict of resource instances for multiple resources)."""

    object_id: int
    instance_id: int
    values: dict[int, Any] = field(default_factory=dict)

    @property
    def path(self) -> LwM2MPath:
        return LwM2MPath(self.object_id, self.instance_id)

    def __repr__(self) -> str:
        # values stay out: Security instances hold PSKs and private keys
        return f"ObjectInstance(/{self.object_id}/{self.instance_id}, resources={sorted(self.values)})"


def _err(code: Code, message: str) -> LwM2MError:
    return LwM2MError(code, message)


def parse_execute_arguments(data: bytes) -> dict[int, str | None]:
    """Execute arguments ``0='a',1,2='b'`` (LwM2M 1.1 §5.4.5) as digit → value; BAD_REQUEST if malformed."""
    try:
        text = bytes(data).decode("ascii")
    except UnicodeDecodeError:
        raise _err(Code.BAD_REQUEST, "execute arguments are not ASCII") from None
    out: dict[int, str | None] = {}
    pos, end = 0, len(text)
    while pos < end:
        if not text[pos].isdigit():
            raise _err(Code.BAD_REQUEST, f"bad execute argument at {pos}")
        digit = int(text[pos])
        pos += 1
        value: str | None = None
        if pos < end and text[pos] == "=":
            if pos + 1 >= end or text[pos + 1] != "'":
                raise _err(Code.BAD_REQUEST, "execute argument value must be quoted")
            close = text.find("'", pos + 2)
            if close < 0:
                raise _err(Code.BAD_REQUEST, "unterminated execute argument value")
            value = text[pos + 2 : close]
            pos = close + 1
        if digit in out:
            raise _err(Code.BAD_REQUEST, f"execute argument {digit} given twice")
        out[digit] = value
        if pos < end:
            if text[pos] != ",":
                raise _err(Code.BAD_REQUEST, f"expected ',' at {pos}")
            pos += 1
            if pos == end:
                raise _err(Code.BAD_REQUEST, "trailing ',' in execute arguments")
    return out


class ObjectStore:
    """In-memory object instances with LwM2M operation semantics.

    Server operations (:meth:`read`, :meth:`write`, :meth:`execute`, :meth:`create`, :meth:`delete`,
    :meth:`discover`) enforce the object definitions and raise :class:`LwM2MError` carrying the response
    code; ``bootstrap=True`` gives the Bootstrap-Server's view (no R/W checks, Security visible). The
    local API (:meth:`add_instance`, :meth:`set`, :meth:`get`, :meth:`remove_instance`) is for the
    gateway's own code and only checks types. Every change is reported to :meth:`on_change` callbacks
    with the changed resource paths (instance paths for created or deleted instances).
    """

    def __init__(self, registry: ObjectRegistry) -> None:
        self.registry = registry
        self._objects: dict[int, dict[int, ObjectInstance]] = {}
        self._callbacks: list[ChangeCallback] = []
        self._execute: dict[tuple[int, int | None, int], ExecuteHandler] = {}
        self._write_hooks: dict[int, WriteHook] = {}

    # --- registration of objects and hooks -------------------------------------------------------
    def add_object(self, object_id: int) -> ObjectDefinition:
        """Declare support for an object (it is registered even before it has instances)."""
        definition = self.registry.get(object_id)
        if definition is None:
            raise KeyError(f"object {object_id} has no definition")
        self._objects.setdefault(object_id, {})
        return definition

    def on_change(self, callback: ChangeCallback) -> Callable[[], None]:
        """Call ``callback(paths, origin)`` after every change; returns a function that unsubscribes."""
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback) if callback in self._callbacks else None

    def set_execute_handler(
        self, object_id: int, resource_id: int, handler: ExecuteHandler, instance_id: int | None = None
    ) -> None:
        """Handle Execute on ``/object_id/*/resource_id`` (or one instance); ``handler(path, args)``."""
        rdef = self.registry.resource(LwM2MPath(object_id, 0, resource_id))
        if rdef is None or not rdef.executable:
            raise KeyError(f"/{object_id}/x/{resource_id} is not an executable resource")
        self._execute[(object_id, instance_id, resource_id)] = handler

    def set_write_hook(self, object_id: int, hook: WriteHook) -> None:
        """Run ``hook(path, entries, origin)`` before a server write or create on the object applies;
        a LwM2MError it raises rejects the operation and nothing changes."""
        self._write_hooks[object_id] = hook

    # --- introspection ----------------------------------------------------------------------------
    def object_ids(self) -> list[int]:
        return sorted(self._objects)

    def instance_ids(self, object_id: int) -> list[int]:
        return sorted(self._objects.get(object_id, {}))

    def instance(self, object_id: int, instance_id: int) -> ObjectInstance | None:
        return self._objects.get(object_id, {}).get(instance_id)

    def next_instance_id(self, object_id: int) -> int:
        used = self._objects.get(object_id, {})
        iid = 0
        while iid in used:
            iid += 1
        return iid

    def registered_objects(self) -> tuple[dict[int, list[int]], dict[int, str]]:
        """Objects with instance ids and non-1.0 object versions for Register (no Security/OSCORE)."""
        objects = {oid: sorted(insts) for oid, insts in self._objects.items() if oid not in BOOTSTRAP_ONLY_OBJECTS}
        versions = {
            oid: self.registry[oid].object_version
            for oid in objects
            if self.registry[oid].object_version not in ("", "1.0")
        }
        return objects, versions

    # --- local API ---------------------------------------------------------------------------------
    def add_instance(
        self, object_id: int, instance_id: int | None = None, values: dict[int, Any] | None = None
    ) -> ObjectInstance:
        """Create an instance from the gateway's side (types checked, operations not)."""
        definition = self.add_object(object_id)
        insts = self._objects[object_id]
        iid = self.next_instance_id(object_id) if instance_id is None else instance_id
        if iid in insts:
            raise _err(Code.BAD_REQUEST, f"/{object_id}/{iid} exists")
        if not definition.multiple and insts:
            raise _err(Code.BAD_REQUEST, f"object {object_id} allows one instance")
        checked_values = {rid: self._check(LwM2MPath(object_id, iid, rid), v) for rid, v in (values or {}).items()}
        insts[iid] = ObjectInstance(object_id, iid, checked_values)
        self._notify([LwM2MPath(object_id, iid)], Origin.LOCAL)
        return insts[iid]

    def remove_instance(self, object_id: int, instance_id: int) -> None:
        if self._objects.get(object_id, {}).pop(instance_id, None) is None:
            raise _err(Code.NOT_FOUND, f"/{object_id}/{instance_id} does not exist")
        self._notify([LwM2MPath(object_id, instance_id)], Origin.LOCAL)

    def get(self, path: LwM2MPath, default: Any = None) -> Any:
        """The value at a resource or resource-instance path, or ``default``."""
        inst = self.instance(path.object, path.instance) if path.depth >= 3 else None  # type: ignore[arg-type]
        if inst is None or path.resource not in inst.values:
            return default
        value = inst.values[path.resource]
        if path.is_resource_instance:
            return value.get(path.resource_instance, default) if isinstance(value, dict) else default
        return dict(value) if isinstance(value, dict) else value

    def set(self, path: LwM2MPath, value: Any, origin: Origin = Origin.LOCAL) -> bool:
        """Set a resource (or resource instance) from the gateway's side; True if the value changed."""
        inst = self._instance_or_404(path)
        if path.depth < 3:
            raise _err(Code.BAD_REQUEST, f"{path} is not a resource")
        assert path.resource is not None
        if path.is_resource_instance:
            self._definition_or_404(path, multiple=True)
            new = dict(inst.values.get(path.resource, {}))
            new[path.resource_instance] = self._check(path, value)
        else:
            new = self._check(path, value)
        if inst.values.get(path.resource) == new and path.resource in inst.values:
            return False
        inst.values[path.resource] = new
        self._notify([path.resource_path], origin)
        return True

    # --- server operations ------------------------------------------------------------------------
    def read(self, path: LwM2MPath, *, bootstrap: bool = False) -> list[tuple[LwM2MPath, Any]]:
        """Read: entries of readable resources at or below ``path`` (a dict per multiple resource)."""
        self._guard(path, bootstrap)
        if path.depth == 0:
            raise _err(Code.METHOD_NOT_ALLOWED, "Read on the root")
        if path.is_object:
            self._object_or_404(path)
            out: list[tuple[LwM2MPath, Any]] = []
            for inst in self._instances(path):
                entries = self._read_instance(inst, bootstrap)
                out.extend(entries if entries else [(inst.path, None)])
            return out
        inst = self._instance_or_404(path)
        if path.is_instance:
            return self._read_instance(inst, bootstrap)
        rdef = self._definition_or_404(path)
        if not bootstrap and not rdef.readable:
            raise _err(Code.METHOD_NOT_ALLOWED, f"{path} is not readable")
        if path.resource not in inst.values:
            raise _err(Code.NOT_FOUND, f"{path} has no value")
        value = inst.values[path.resource]  # type: ignore[index]
        if path.is_resource:
            return [(path, dict(value) if isinstance(value, dict) else value)]
        if not isinstance(value, dict) or path.resource_instance not in value:
            raise _err(Code.NOT_FOUND, f"{path} does not exist")
        return [(path, value[path.resource_instance])]

    def write(
        self,
        path: LwM2MPath,
        entries: list[tuple[LwM2MPath, Any]],
        *,
        replace: bool = True,
        bootstrap: bool = False,
    ) -> None:
        """Write (``replace``: PUT) or Partial Update (POST) of decoded ``entries`` at ``path``.

        Replacing an instance removes its optional writable resources the payload leaves out;
        replacing a multiple resource drops the resource instances left out; a partial update merges.
        Bootstrap-Write also creates missing instances and may address a whole object.
        """
        self._guard(path, bootstrap)
        origin = Origin.BOOTSTRAP if bootstrap else Origin.SERVER
        if path.depth == 0 or (path.is_object and not bootstrap):
            raise _err(Code.METHOD_NOT_ALLOWED, f"Write on {path}")
        for p, _ in entries:
            if not path.is_prefix_of(p):
                raise _err(Code.BAD_REQUEST, f"{p} is outside {path}")
        if path.is_object:
            definition = self._object_or_404(path, create=True)
            by_instance: dict[int, list[tuple[LwM2MPath, Any]]] = {}
            for p, v in entries:
                if p.instance is None:
                    raise _err(Code.BAD_REQUEST, f"{p} names no instance")
                by_instance.setdefault(p.instance, []).append((p, v))
            plans = []
            for iid, inst_entries in sorted(by_instance.items()):
                ipath = path.child(iid)
                current = self.instance(definition.id, iid)
                if current is None and not definition.multiple and self._objects.get(definition.id):
                    raise _err(Code.BAD_REQUEST, f"object {definition.id} allows one instance")
                base = dict(current.values) if current else {}
                plans.append((iid, self._plan_instance(ipath, base, inst_entries, replace, bootstrap)))
            self._run_hook(path, entries, origin)
            changed: list[LwM2MPath] = []
            for iid, new_values in plans:
                changed += self._apply_instance(definition.id, iid, new_values)
            self._notify(changed, origin)
            return
        if path.is_instance:
            definition = self._object_or_404(path, create=bootstrap)
            current = self.instance(definition.id, path.instance)  # type: ignore[arg-type]
            if current is None:
                if not bootstrap:
                    raise _err(Code.NOT_FOUND, f"{path} does not exist")
                if not definition.multiple and self._objects.get(definition.id):
                    raise _err(Code.BAD_REQUEST, f"object {definition.id} allows one instance")
            base = dict(current.values) if current else {}
            new_values = self._plan_instance(path, base, entries, replace, bootstrap)
            self._run_hook(path, entries, origin)
            self._notify(self._apply_instance(definition.id, path.instance, new_values), origin)  # type: ignore[arg-type]
            return
        inst = self._instance_or_404(path)
        rdef = self._definition_or_404(path)
        if not bootstrap and not rdef.writable:
            raise _err(Code.METHOD_NOT_ALLOWED, f"{path} is not writable")
        if len(entries) != 1 or entries[0][0] != path:
            raise _err(Code.BAD_REQUEST, f"Write on {path} needs exactly its value")
        value = entries[0][1]
        assert path.resource is not None
        if path.is_resource_instance:
            if not rdef.multiple:
                raise _err(Code.NOT_FOUND, f"{path.resource_path} has no resource instances")
            new = dict(inst.values.get(path.resource, {}))
            new[path.resource_instance] = self._check(path, value)
        elif rdef.multiple and not replace:
            new = dict(inst.values.get(path.resource, {}))
            new.update(self._check(path, value))
        else:
            new = self._check(path, value)
        self._run_hook(path, entries, origin)
        old = inst.values.get(path.resource, _MISSING)
        inst.values[path.resource] = new
        if old != new:
            self._notify([path.resource_path], origin)

    def execute(self, path: LwM2MPath, arguments: bytes = b"") -> object:
        """Execute: run the handler registered for the resource with the raw argument bytes."""
        self._guard(path, False)
        if not path.is_resource:
            raise _err(Code.METHOD_NOT_ALLOWED, f"Execute on {path}")
        self._instance_or_404(path)
        rdef = self._definition_or_404(path)
        if not rdef.executable:
            raise _err(Code.METHOD_NOT_ALLOWED, f"{path} is not executable")
        assert path.object is not None and path.resource is not None
        handler = self._execute.get((path.object, path.instance, path.resource)) or self._execute.get(
            (path.object, None, path.resource)
        )
        if handler is None:
            raise _err(Code.NOT_FOUND, f"{path} is not implemented")
        try:
            return handler(path, bytes(arguments))
        except LwM2MError:
            raise
        except Exception as exc:
            log.exception("execute handler for %s failed", path)
            raise _err(Code.INTERNAL_SERVER_ERROR, f"{path}: {type(exc).__name__}") from exc

    def create(
        self,
        object_id: int,
        entries: list[tuple[LwM2MPath, Any]] = (),  # type: ignore[assignment]
        instance_id: int | None = None,
        *,
        bootstrap: bool = False,
    ) -> int:
        """Create: a new instance from decoded ``entries``; returns its id (Location-Path ``/o/i``)."""
        opath = LwM2MPath(object_id)
        self._guard(opath, bootstrap)
        definition = self._object_or_404(opath, create=bootstrap)
        named = {p.instance for p, _ in entries}
        if None in named or len(named) > 1:
            raise _err(Code.BAD_REQUEST, "Create payload must name one instance")
        if named:
            (iid,) = named
            if instance_id is not None and iid != instance_id:
                raise _err(Code.BAD_REQUEST, f"payload names instance {iid}, not {instance_id}")
        else:
            iid = self.next_instance_id(object_id) if instance_id is None else instance_id
        assert iid is not None
        insts = self._objects.setdefault(object_id, {})
        if iid in insts:
            raise _err(Code.BAD_REQUEST, f"/{object_id}/{iid} exists")
        if not definition.multiple and insts:
            raise _err(Code.BAD_REQUEST, f"object {object_id} allows one instance")
        ipath = LwM2MPath(object_id, iid)
        for p, v in entries:
            if p.is_instance and v is None:
                continue  # an instance TLV without resources
            if p.depth < 3:
                raise _err(Code.BAD_REQUEST, f"{p} is not a resource")
            rdef = self._definition_or_404(p)
            if not bootstrap and not rdef.writable:
                raise _err(Code.BAD_REQUEST, f"{p} is not writable")
        new_values = self._plan_instance(ipath, {}, list(entries), True, True)
        if not bootstrap:
            missing = [
                r.id for r in definition.resources.values() if r.mandatory and r.writable and r.id not in new_values
            ]
            if missing:
                raise _err(Code.BAD_REQUEST, f"Create on {opath} lacks mandatory resources {missing}")
        self._run_hook(ipath, list(entries), Origin.BOOTSTRAP if bootstrap else Origin.SERVER)
        insts[iid] = ObjectInstance(object_id, iid, new_values)
        self._notify([ipath], Origin.BOOTSTRAP if bootstrap else Origin.SERVER)
        return iid

    def delete(self, path: LwM2MPath, *, bootstrap: bool = False) -> None:
        """Delete an instance; Bootstrap-Delete may also address an object or the root."""
        self._guard(path, bootstrap)
        origin = Origin.BOOTSTRAP if bootstrap else Origin.SERVER
        if path.is_instance:
            definition = self._object_or_404(path)
            if not bootstrap and definition.mandatory and not definition.multiple:
                raise _err(Code.METHOD_NOT_ALLOWED, f"{path} cannot be deleted")
            self._instance_or_404(path)
            del self._objects[path.object][path.instance]  # type: ignore[index,arg-type]
            self._notify([path], origin)
            return
        if not bootstrap or path.depth > 1:
            raise _err(Code.METHOD_NOT_ALLOWED, f"Delete on {path}")
        if path.is_object:
            self._object_or_404(path)
        removed: list[LwM2MPath] = []
        for oid in [path.object] if path.is_object else list(self._objects):
            if oid == 3:
                continue  # the Device object survives a Bootstrap-Delete
            for iid in list(self._objects.get(oid, {})):  # type: ignore[arg-type]
                if oid == 0 and self._objects[0][iid].values.get(1) is True:
                    continue  # keep the Bootstrap-Server account
                del self._objects[oid][iid]  # type: ignore[index]
                removed.append(LwM2MPath(oid, iid))
        self._notify(removed, origin)

    def discover(self, path: LwM2MPath, *, bootstrap: bool = False) -> list[tuple[LwM2MPath, int | None]]:
        """Discover: the paths at and below ``path`` with ``dim`` for multiple resources (no attributes)."""
        self._guard(path, bootstrap)
        if path.depth == 0 and not bootstrap:
            raise _err(Code.METHOD_NOT_ALLOWED, "Discover on the root")
        if path.is_resource_instance:
            raise _err(Code.BAD_REQUEST, "Discover on a resource instance")
        if path.depth == 0:
            out: list[tuple[LwM2MPath, int | None]] = []
            for oid in self.object_ids():
                out.append((LwM2MPath(oid), None))
                out.extend((LwM2MPath(oid, iid), None) for iid in self.instance_ids(oid))
            return out
        self._object_or_404(path)
        if path.is_object:
            out = [(path, None)]
            for inst in self._instances(path):
                out.append((inst.path, None))
                if not bootstrap:
                    out.extend(self._discover_resources(inst))
            return out
        inst = self._instance_or_404(path)
        if path.is_instance:
            return [(path, None), *self._discover_resources(inst)]
        self._definition_or_404(path)
        listed = dict(self._discover_resources(inst))
        if path not in listed:
            raise _err(Code.NOT_FOUND, f"{path} does not exist")
        return [(path, listed[path])]

    # --- internals ------------------------------------------------------------------------------
    def _guard(self, path: LwM2MPath, bootstrap: bool) -> None:
        if not bootstrap and path.object in BOOTSTRAP_ONLY_OBJECTS:
            raise _err(Code.UNAUTHORIZED, f"{path} is for the Bootstrap-Server only")

    def _object_or_404(self, path: LwM2MPath, create: bool = False) -> ObjectDefinition:
        assert path.object is not None
        definition = self.registry.get(path.object)
        if definition is None or (path.object not in self._objects and not create):
            raise _err(Code.NOT_FOUND, f"object {path.object} is not supported")
        return definition

    def _instances(self, path: LwM2MPath) -> list[ObjectInstance]:
        insts = self._objects.get(path.object, {})  # type: ignore[arg-type]
        return [insts[i] for i in sorted(insts)]

    def _instance_or_404(self, path: LwM2MPath) -> ObjectInstance:
        if path.depth < 2:
            raise _err(Code.BAD_REQUEST, f"{path} names no instance")
        self._object_or_404(path)
        inst = self.instance(path.object, path.instance)  # type: ignore[arg-type]
        if inst is None:
            raise _err(Code.NOT_FOUND, f"{LwM2MPath(path.object, path.instance)} does not exist")
        return inst

    def _definition_or_404(self, path: LwM2MPath, multiple: bool | None = None) -> ResourceDefinition:
        rdef = self.registry.resource(path)
        if rdef is None:
            raise _err(Code.NOT_FOUND, f"{path.resource_path} is not defined")
        if multiple and not rdef.multiple:
            raise _err(Code.NOT_FOUND, f"{path.resource_path} has no resource instances")
        return rdef

    def _check(self, path: LwM2MPath, value: Any) -> Any:
        """Type-check a value for a resource path (a dict for a whole multiple resource)."""
        rdef = self._definition_or_404(path)
        if rdef.executable or rdef.type is ResourceType.NONE:
            raise _err(Code.METHOD_NOT_ALLOWED, f"{path} is executable and holds no value")
        try:
            if rdef.multiple and path.is_resource:
                if not isinstance(value, dict):
                    raise ValueError("a multiple resource needs a dict of resource instances")
                out = {}
                for ri, v in value.items():
                    if isinstance(ri, bool) or not isinstance(ri, int) or not 0 <= ri <= 0xFFFF:
                        raise ValueError(f"bad resource instance id {ri!r}")
                    out[ri] = check_value(rdef.type, v)
                return out
            if isinstance(value, dict):
                raise ValueError("a single resource takes one value")
            return check_value(rdef.type, value)
        except ValueError as exc:
            raise _err(Code.BAD_REQUEST, f"{path}: {exc}") from None

    def _plan_instance(
        self,
        ipath: LwM2MPath,
        base: dict[int, Any],
        entries: list[tuple[LwM2MPath, Any]],
        replace: bool,
        bootstrap: bool,
    ) -> dict[int, Any]:
        """The instance's values after a write of ``entries``; raises before anything changes."""
        definition = self.registry[ipath.object]  # type: ignore[index]
        given: dict[int, Any] = {}
        for p, v in entries:
            if p.depth < 3:
                if p.is_instance and v is None:
                    continue
                raise _err(Code.BAD_REQUEST, f"{p} is not a resource")
            rdef = self._definition_or_404(p)
            if not bootstrap and not rdef.writable:
                raise _err(Code.METHOD_NOT_ALLOWED, f"{p.resource_path} is not writable")
            assert p.resource is not None
            if p.is_resource_instance:
                self._definition_or_404(p, multiple=True)
                slot = given.setdefault(p.resource, {})
                if not isinstance(slot, dict) or p.resource_instance in slot:
                    raise _err(Code.BAD_REQUEST, f"{p} given twice")
                slot[p.resource_instance] = self._check(p, v)
                continue
            if p.resource in given:
                raise _err(Code.BAD_REQUEST, f"{p} given twice")
            given[p.resource] = self._check(p, v)
        new = dict(base)
        if replace:
            for rid, rdef in definition.resources.items():
                if rid not in given and rdef.writable and not rdef.mandatory and not bootstrap:
                    new.pop(rid, None)
            new.update(given)
        else:
            for rid, value in given.items():
                if isinstance(value, dict) and isinstance(new.get(rid), dict):
                    new[rid] = {**new[rid], **value}
                else:
                    new[rid] = value
        return new

    def _apply_instance(self, object_id: int, instance_id: int, values: dict[int, Any]) -> list[LwM2MPath]:
        insts = self._objects.setdefault(object_id, {})
        current = insts.get(instance_id)
        if current is None:
            insts[instance_id] = ObjectInstance(object_id, instance_id, values)
            return [LwM2MPath(object_id, instance_id)]
        changed = [
            LwM2MPath(object_id, instance_id, rid)
            for rid in sorted(set(current.values) | set(values))
            if current.values.get(rid, _MISSING) != values.get(rid, _MISSING)
        ]
        current.values = values
        return changed

    def _read_instance(self, inst: ObjectInstance, bootstrap: bool) -> list[tuple[LwM2MPath, Any]]:
        definition = self.registry[inst.object_id]
        out: list[tuple[LwM2MPath, Any]] = []
        for rid in sorted(inst.values):
            rdef = definition.resource(rid)
            if rdef is None or not (bootstrap or rdef.readable):
                continue
            value = inst.values[rid]
            out.append(
                (LwM2MPath(inst.object_id, inst.instance_id, rid), dict(value) if isinstance(value, dict) else value)
            )
        return out

    def _discover_resources(self, inst: ObjectInstance) -> list[tuple[LwM2MPath, int | None]]:
        definition = self.registry[inst.object_id]
        out: list[tuple[LwM2MPath, int | None]] = []
        for rid, rdef in sorted(definition.resources.items()):
            path = LwM2MPath(inst.object_id, inst.instance_id, rid)
            if rid in inst.values:
                value = inst.values[rid]
                out.append((path, len(value) if isinstance(value, dict) else None))
            elif rdef.executable and (
                (inst.object_id, inst.instance_id, rid) in self._execute or (inst.object_id, None, rid) in self._execute
            ):
                out.append((path, None))
        return out

    def _run_hook(self, path: LwM2MPath, entries: list[tuple[LwM2MPath, Any]], origin: Origin) -> None:
        hook = self._write_hooks.get(path.object)  # type: ignore[arg-type]
        if hook is not None:
            hook(path, list(entries), origin)

    def _notify(self, paths: list[LwM2MPath], origin: Origin) -> None:
        if not paths:
            return
        for callback in list(self._callbacks):
            try:
                callback(list(paths), origin)
            except Exception:
                log.exception("change callback failed for %s", paths)


_MISSING = object()

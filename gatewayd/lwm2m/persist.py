"""Client state that survives a restart: registration, bootstrap-written accounts, server-written values.

One JSON file per endpoint under ``<state_dir>/lwm2m/``, written atomically (temporary file, fsync,
rename) with mode 0600 because Security instances hold PSKs. Values keep their LwM2M types through
tagged JSON: ``{"$b": base64}`` opaque, ``{"$l": [o, i]}`` object link, ``{"$m": {ri: value}}`` a
multiple resource.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from common.files import write_private

from .definitions import ObjLnk
from .errors import LwM2MError
from .paths import LwM2MPath, PathError
from .store import ObjectStore

log = logging.getLogger("gatewayd.lwm2m")
FORMAT_VERSION = 1


class PersistError(ValueError):
    """A state file that cannot be read back (it is then ignored and replaced)."""


def encode_value(value: Any) -> Any:
    if isinstance(value, ObjLnk):
        return {"$l": [value.object_id, value.instance_id]}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$b": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, dict):
        return {"$m": {str(k): encode_value(v) for k, v in value.items()}}
    return value


def decode_value(raw: Any) -> Any:
    if isinstance(raw, dict):
        try:
            if "$l" in raw:
                oid, iid = raw["$l"]
                return ObjLnk(int(oid), int(iid))
            if "$b" in raw:
                return base64.b64decode(raw["$b"], validate=True)
            if "$m" in raw:
                return {int(k): decode_value(v) for k, v in raw["$m"].items()}
        except (ValueError, TypeError) as exc:
            raise PersistError(f"bad stored value: {exc}") from None
        raise PersistError("unknown tagged value")
    if raw is None or isinstance(raw, bool | int | float | str):
        return raw
    raise PersistError(f"bad stored value of type {type(raw).__name__}")


def snapshot_instances(store: ObjectStore, object_ids: tuple[int, ...]) -> dict[str, dict[str, dict[str, Any]]]:
    """Every instance of ``object_ids`` with all its values (Security included)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for oid in object_ids:
        for iid in store.instance_ids(oid):
            inst = store.instance(oid, iid)
            assert inst is not None
            out.setdefault(str(oid), {})[str(iid)] = {str(r): encode_value(v) for r, v in inst.values.items()}
    return out


def restore_instances(store: ObjectStore, data: dict[str, Any]) -> list[LwM2MPath]:
    """Replace the instances of every object named in ``data`` with the stored ones."""
    restored: list[LwM2MPath] = []
    try:
        for oid_text, instances in data.items():
            oid = int(oid_text)
            for iid in store.instance_ids(oid):
                store.remove_instance(oid, iid)
            for iid_text, values in instances.items():
                iid = int(iid_text)
                store.add_instance(oid, iid, {int(r): decode_value(v) for r, v in values.items()})
                restored.append(LwM2MPath(oid, iid))
    except (LwM2MError, KeyError, AttributeError, TypeError, ValueError) as exc:
        raise PersistError(f"cannot restore stored instances: {exc}") from None
    return restored


def restore_values(store: ObjectStore, values: dict[str, Any]) -> int:
    """Set stored server-written values on instances that exist; returns how many applied."""
    applied = 0
    for text, raw in values.items():
        try:
            path = LwM2MPath.parse(text)
            if store.instance(path.object, path.instance) is None:  # type: ignore[arg-type]
                continue
            store.set(path, decode_value(raw))
            applied += 1
        except (PathError, PersistError, LwM2MError) as exc:
            log.warning("ignoring stored value of %s: %s", text, exc)
    return applied


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class StateStore:
    """Per-endpoint JSON state files in one directory."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def path_for(self, endpoint: str) -> Path:
        name = _UNSAFE.sub(lambda m: f"%{ord(m.group()):02X}", endpoint)
        return self.directory / f"{name[:200]}.json"

    def load(self, endpoint: str) -> dict[str, Any] | None:
        path = self.path_for(endpoint)
        try:
            data = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable LwM2M state %s: %s", path, exc)
            return None
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION or data.get("endpoint") != endpoint:
            log.warning("ignoring LwM2M state %s written for something else", path)
            return None
        return data

    def save(self, endpoint: str, data: dict[str, Any]) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.path_for(endpoint)
        body = json.dumps({"version": FORMAT_VERSION, "endpoint": endpoint, **data}, separators=(",", ":"))
        write_private(path, body)

    def remove(self, endpoint: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path_for(endpoint).unlink()

"""LwM2M paths: /Object/Instance/Resource/ResourceInstance.

A path names the root (``/``), an object, an object instance, a resource or a resource instance; every
level below the first missing one is missing too, so a path is always a prefix chain of ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import total_ordering

MAX_ID = 65535


class PathError(ValueError):
    """A string or id tuple that is not a valid LwM2M path."""


def _parse_id(text: str, whole: str) -> int:
    if not text or not text.isascii() or not text.isdigit():
        raise PathError(f"bad id {text!r} in path {whole!r}")
    if len(text) > 1 and text[0] == "0":
        raise PathError(f"leading zero in path {whole!r}")
    value = int(text)
    if value > MAX_ID:
        raise PathError(f"id {value} over {MAX_ID} in path {whole!r}")
    return value


@total_ordering
@dataclass(frozen=True, slots=True)
class LwM2MPath:
    """An LwM2M path; ``LwM2MPath()`` is the root, ``LwM2MPath(3, 0, 13)`` is ``/3/0/13``."""

    object: int | None = None
    instance: int | None = None
    resource: int | None = None
    resource_instance: int | None = None

    def __post_init__(self) -> None:
        missing = False
        for part in self.ids_all:
            if part is None:
                missing = True
                continue
            if missing:
                raise PathError(f"id after a missing level: {self.ids_all}")
            if isinstance(part, bool) or not isinstance(part, int) or not 0 <= part <= MAX_ID:
                raise PathError(f"id out of range: {part!r}")

    @property
    def ids_all(self) -> tuple[int | None, int | None, int | None, int | None]:
        return (self.object, self.instance, self.resource, self.resource_instance)

    @property
    def ids(self) -> tuple[int, ...]:
        """The present ids, outermost first."""
        return tuple(i for i in self.ids_all if i is not None)

    @property
    def depth(self) -> int:
        """0 for the root, 1 object, 2 instance, 3 resource, 4 resource instance."""
        return len(self.ids)

    @classmethod
    def from_ids(cls, ids: tuple[int, ...] | list[int]) -> LwM2MPath:
        if len(ids) > 4:
            raise PathError(f"too many levels: {ids}")
        return cls(*ids)

    @classmethod
    def parse(cls, text: str) -> LwM2MPath:
        """Parse ``/3/0/1`` (a leading slash is optional, one trailing slash is tolerated)."""
        if not isinstance(text, str):
            raise PathError(f"path is not a string: {text!r}")
        body = text[1:] if text.startswith("/") else text
        if body.endswith("/"):
            body = body[:-1]
        if not body:
            return cls()
        parts = body.split("/")
        if len(parts) > 4:
            raise PathError(f"too many levels in path {text!r}")
        return cls(*(_parse_id(p, text) for p in parts))

    def __str__(self) -> str:
        return "/" + "/".join(str(i) for i in self.ids)

    def __repr__(self) -> str:
        return f"LwM2MPath({str(self)!r})"

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, LwM2MPath):
            return NotImplemented
        return self.ids < other.ids

    @property
    def is_root(self) -> bool:
        return self.object is None

    @property
    def is_object(self) -> bool:
        return self.depth == 1

    @property
    def is_instance(self) -> bool:
        return self.depth == 2

    @property
    def is_resource(self) -> bool:
        return self.depth == 3

    @property
    def is_resource_instance(self) -> bool:
        return self.depth == 4

    def is_prefix_of(self, other: LwM2MPath) -> bool:
        """True if ``other`` is this path or lies below it."""
        mine = self.ids
        return other.ids[: len(mine)] == mine

    def child(self, ident: int) -> LwM2MPath:
        return LwM2MPath.from_ids((*self.ids, ident))

    @property
    def parent(self) -> LwM2MPath:
        if self.is_root:
            raise PathError("the root has no parent")
        return LwM2MPath.from_ids(self.ids[:-1])

    def relative_to(self, base: LwM2MPath) -> tuple[int, ...]:
        """The ids below ``base``; raises PathError if this path is not under it."""
        if not base.is_prefix_of(self):
            raise PathError(f"{self} is not under {base}")
        return self.ids[base.depth :]

    @property
    def resource_path(self) -> LwM2MPath:
        """This path cut to the resource level (for a resource instance: its resource)."""
        if self.depth < 3:
            raise PathError(f"{self} does not name a resource")
        return LwM2MPath(self.object, self.instance, self.resource)


ROOT = LwM2MPath()

"""Notification attributes and observation scheduling (LwM2M 1.1 §5.1.2, §5.5), sans-I/O.

Attributes are written per path (object, instance, resource) with Write-Attributes; an observation of a
path uses the attributes of that path merged over those of its ancestors. :class:`Observation` decides
*when* a notification is due from the attributes, the time and the values it is told about; the client
turns the deadlines into timers and sends what it reads at that time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiocoap.numbers.codes import Code

from .errors import LwM2MError
from .numbers import ResourceType
from .paths import LwM2MPath

ATTRIBUTE_NAMES = ("pmin", "pmax", "gt", "lt", "st", "epmin", "epmax")
INTEGER_ATTRIBUTES = frozenset({"pmin", "pmax", "epmin", "epmax"})
NUMERIC_ATTRIBUTES = frozenset({"gt", "lt", "st"})
NUMERIC_TYPES = frozenset({ResourceType.INTEGER, ResourceType.UNSIGNED, ResourceType.FLOAT, ResourceType.TIME})

Attributes = dict[str, float]


def parse_attribute_query(query: Iterable[str]) -> tuple[Attributes, set[str]]:
    """Write-Attributes query (``pmin=10``, ``gt=20.5``, ``pmax`` to clear) as (set, cleared)."""
    values: Attributes = {}
    cleared: set[str] = set()
    for item in query:
        name, sep, text = item.partition("=")
        if name not in ATTRIBUTE_NAMES:
            raise LwM2MError(Code.BAD_REQUEST, f"unknown attribute {name!r}")
        if name in values or name in cleared:
            raise LwM2MError(Code.BAD_REQUEST, f"attribute {name} given twice")
        if not sep or text == "":
            cleared.add(name)
            continue
        try:
            number = int(text) if name in INTEGER_ATTRIBUTES else float(text)
        except ValueError:
            raise LwM2MError(Code.BAD_REQUEST, f"attribute {name}={text!r} is not a number") from None
        if not math.isfinite(number) or (name in INTEGER_ATTRIBUTES and number < 0) or (name == "st" and number < 0):
            raise LwM2MError(Code.BAD_REQUEST, f"attribute {name}={text!r} is out of range")
        values[name] = number
    return values, cleared


def check_attributes(attrs: Attributes) -> None:
    """The consistency rules of §5.1.2: pmax >= pmin, epmax > epmin, lt + 2*st < gt."""
    if "pmin" in attrs and "pmax" in attrs and attrs["pmax"] < attrs["pmin"]:
        raise LwM2MError(Code.BAD_REQUEST, "pmax is less than pmin")
    if "epmin" in attrs and "epmax" in attrs and attrs["epmax"] <= attrs["epmin"]:
        raise LwM2MError(Code.BAD_REQUEST, "epmax is not greater than epmin")
    if "lt" in attrs and "gt" in attrs and attrs["lt"] + 2 * attrs.get("st", 0) >= attrs["gt"]:
        raise LwM2MError(Code.BAD_REQUEST, "lt + 2*st must be less than gt")


@dataclass(slots=True)
class AttributeStore:
    """Attributes written by one LwM2M Server, by path (object, instance, resource or resource instance)."""

    by_path: dict[LwM2MPath, Attributes] = field(default_factory=dict)
    #: pmin/pmax from the Server object (/1/x/2, /1/x/3) apply when no path sets them.
    default_pmin: float | None = None
    default_pmax: float | None = None

    def write(self, path: LwM2MPath, query: Iterable[str], rtype: ResourceType | None = None) -> None:
        """Apply a Write-Attributes; gt/lt/st only on numeric resources, all or nothing."""
        if path.depth == 0:
            raise LwM2MError(Code.METHOD_NOT_ALLOWED, "Write-Attributes on the root")
        values, cleared = parse_attribute_query(query)
        if not values and not cleared:
            raise LwM2MError(Code.BAD_REQUEST, "Write-Attributes without attributes")
        if NUMERIC_ATTRIBUTES & set(values) and (path.depth < 3 or rtype not in NUMERIC_TYPES):
            raise LwM2MError(Code.BAD_REQUEST, "gt, lt and st need a numeric resource")
        new = {k: v for k, v in self.by_path.get(path, {}).items() if k not in cleared}
        new.update(values)
        check_attributes(new)
        if new:
            self.by_path[path] = new
        else:
            self.by_path.pop(path, None)

    def at(self, path: LwM2MPath) -> Attributes:
        """Attributes written on exactly this path (what Discover shows)."""
        return dict(self.by_path.get(path, {}))

    def effective(self, path: LwM2MPath) -> Attributes:
        """Attributes in force for an observation of ``path``: nearer levels override farther ones."""
        out: Attributes = {}
        if self.default_pmin is not None:
            out["pmin"] = self.default_pmin
        if self.default_pmax is not None:
            out["pmax"] = self.default_pmax
        for depth in range(1, path.depth + 1):
            out.update(self.by_path.get(LwM2MPath.from_ids(path.ids[:depth]), {}))
        if path.depth < 3:
            for name in NUMERIC_ATTRIBUTES:
                out.pop(name, None)
        return out

    def drop_below(self, path: LwM2MPath) -> None:
        """Forget attributes of a deleted instance."""
        for p in [p for p in self.by_path if path.is_prefix_of(p)]:
            del self.by_path[p]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass(slots=True)
class Observation:
    """When to notify one observed path (or set of paths for Observe-Composite).

    ``changed(now, value)`` reports a new value; ``deadline(now)`` gives the monotonic time of the next
    notification (or None); ``sent(now, value)`` records one was sent. A change only counts when the
    gt/lt/st conditions hold (for a numeric resource); pmin delays it, pmax forces a notification even
    without change, epmax forces a re-evaluation (the client reads the value again and reports it).
    """

    paths: tuple[LwM2MPath, ...]
    attributes: Attributes = field(default_factory=dict)
    last_sent: float = 0.0
    last_value: Any = None
    last_evaluated: float = 0.0
    pending: bool = False
    notifications: int = 0

    @property
    def pmin(self) -> float:
        return self.attributes.get("pmin", 0.0)

    @property
    def pmax(self) -> float | None:
        pmax = self.attributes.get("pmax")
        return pmax if pmax and pmax >= self.pmin else None

    def start(self, now: float, value: Any) -> None:
        self.last_sent = self.last_evaluated = now
        self.last_value = value
        self.pending = False

    def changed(self, now: float, value: Any) -> bool:
        """A new value; returns True if it makes a notification pending."""
        self.last_evaluated = now
        if self.pending:
            return True
        if value == self.last_value:
            return False
        self.pending = self._crosses(value)
        return self.pending

    def _crosses(self, value: Any) -> bool:
        attrs = self.attributes
        new, old = _number(value), _number(self.last_value)
        if new is None or old is None or not (NUMERIC_ATTRIBUTES & set(attrs)):
            return True
        if "gt" in attrs and (old > attrs["gt"]) != (new > attrs["gt"]):
            return True
        if "lt" in attrs and (old < attrs["lt"]) != (new < attrs["lt"]):
            return True
        return "st" in attrs and abs(new - old) >= attrs["st"]

    def deadline(self, now: float) -> float | None:
        """Monotonic time of the next notification or re-evaluation, None if nothing is scheduled."""
        times: list[float] = []
        if self.pending:
            at = self.last_sent + self.pmin
            if "epmin" in self.attributes:
                at = max(at, self.last_evaluated + self.attributes["epmin"])
            times.append(at)
        if self.pmax is not None:
            times.append(self.last_sent + self.pmax)
        epmax = self.attributes.get("epmax")
        if epmax:
            times.append(self.last_evaluated + epmax)
        return min(times) if times else None

    def due(self, now: float) -> bool:
        """True if a notification must go out now (pending past pmin, or pmax elapsed)."""
        if self.pending and now >= self.last_sent + self.pmin:
            return True
        return self.pmax is not None and now >= self.last_sent + self.pmax

    def sent(self, now: float, value: Any) -> None:
        self.last_sent = self.last_evaluated = now
        self.last_value = value
        self.pending = False
        self.notifications += 1

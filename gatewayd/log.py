"""Logging: native journal records with structured fields under systemd, a readable
one-line format on stderr otherwise, and a summary instead of floods of the same error.

The daemon logs through ``logging.getLogger("gatewayd.<component>")``, the libraries (ncp/, nat64/)
by module name; both are shown and filtered by component (:data:`LIBRARY_COMPONENTS`). Event fields
go in ``extra={"fields": {"NCP_STATE": "RUNNING"}}``. The journal protocol is spoken
directly (it is a datagram of KEY=VALUE lines) so the records can be tested on a
plain Unix socket and no C binding is needed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import struct
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gatewayd.config.schema import COMPONENTS

IDENTIFIER = "gatewayd"
# The libraries' logger trees and the component each belongs to, most specific first.
LIBRARY_COMPONENTS = (("nat64.dns64", "dns64"), ("nat64", "nat64"), ("ncp", "ncp"))
JOURNAL_SOCKET = "/run/systemd/journal/socket"
NOTICE = 25
logging.addLevelName(NOTICE, "NOTICE")

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "notice": NOTICE,
          "warning": logging.WARNING, "error": logging.ERROR}
_PRIORITY = ((logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (NOTICE, 5), (logging.INFO, 6))

# Journal field names: uppercase letters, digits and underscores, not starting with "_".
_FIELD_OK = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def component_of(logger_name: str) -> str:
    """``gatewayd.ncp.client`` → ``ncp``, ``nat64.dns64.server`` → ``dns64``; the daemon's own → ``daemon``."""
    parts = logger_name.split(".")
    if parts[0] == IDENTIFIER:
        return parts[1] if len(parts) > 1 else "daemon"
    for tree, component in LIBRARY_COMPONENTS:
        if logger_name == tree or logger_name.startswith(tree + "."):
            return component
    return parts[0]


def _loggers_of(component: str) -> list[logging.Logger]:
    return [logging.getLogger(f"{IDENTIFIER}.{component}"),
            *(logging.getLogger(tree) for tree, owner in LIBRARY_COMPONENTS if owner == component)]


def priority(levelno: int) -> int:
    for threshold, prio in _PRIORITY:
        if levelno >= threshold:
            return prio
    return 7


def record_fields(record: logging.LogRecord) -> dict[str, str]:
    """The journal fields of one record."""
    fields: dict[str, str] = {
        "MESSAGE": record.getMessage(),
        "PRIORITY": str(priority(record.levelno)),
        "SYSLOG_IDENTIFIER": IDENTIFIER,
        "GATEWAYD_COMPONENT": component_of(record.name),
        "LOGGER": record.name,
        "CODE_FILE": record.pathname,
        "CODE_LINE": str(record.lineno),
        "CODE_FUNC": record.funcName,
    }
    if record.exc_info and record.exc_info[0] is not None:
        fields["TRACEBACK"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
    extra: Mapping[str, Any] = getattr(record, "fields", None) or {}
    for name, value in extra.items():
        key = name.upper()
        if key and key[0] != "_" and set(key) <= _FIELD_OK:
            fields[key] = str(value)
    return fields


def encode_journal(fields: Mapping[str, str]) -> bytes:
    """The journal's native datagram: KEY=VALUE lines, binary form for multi-line values."""
    out = bytearray()
    for key, value in fields.items():
        data = value.encode("utf-8", "replace")
        if b"\n" in data:
            out += key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += key.encode() + b"=" + data + b"\n"
    return bytes(out)


class JournalHandler(logging.Handler):
    """Sends records to journald over its native socket."""

    def __init__(self, path: str = JOURNAL_SOCKET):
        super().__init__()
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setblocking(False)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.sock.sendto(encode_journal(record_fields(record))[:200_000], self.path)
        except OSError:
            # The journal being unavailable must not take the daemon down; stderr is the fallback.
            sys.stderr.write(f"{component_of(record.name)}: {record.getMessage()}\n")

    def close(self) -> None:
        self.sock.close()
        super().close()


class TextFormatter(logging.Formatter):
    """``18:02:11 ncp      warning  message  [NCP_STATE=LINK_LOST]``"""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        extra = getattr(record, "fields", None) or {}
        tail = ("  [" + " ".join(f"{k}={v}" for k, v in extra.items()) + "]") if extra else ""
        text = (f"{stamp} {component_of(record.name):<8} {record.levelname.lower():<8} "
                f"{record.getMessage()}{tail}")
        if record.exc_info and record.exc_info[0] is not None:
            text += "\n" + self.formatException(record.exc_info)
        return text


@dataclass
class _Held:
    start: float
    last: float
    count: int
    record: logging.LogRecord


class RepeatLimiter(logging.Handler):
    """Passes records to ``target``, holding back repeats of the same warning or error
    within ``interval`` seconds and reporting them as "repeated N times"."""

    def __init__(self, target: logging.Handler, interval: float,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.target = target
        self.interval = interval
        self.clock = clock
        self.on_hold: Callable[[], None] | None = None  # a repeat was held back: a summary will be due
        self._held: dict[tuple[str, int, str], _Held] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.WARNING or self.interval <= 0:
            self.target.handle(record)
            return
        now = self.clock()
        self.flush_expired(now)
        key = (record.name, record.levelno, record.getMessage())
        held = self._held.get(key)
        if held is not None:
            held.count, held.last, held.record = held.count + 1, now, record
            if held.count == 1 and self.on_hold is not None:
                self.on_hold()
            return
        self._held[key] = _Held(now, now, 0, record)
        self.target.handle(record)

    def next_due(self) -> float | None:
        """When the first summary is due (clock time), or None when nothing is held back."""
        due = [h.start + self.interval for h in self._held.values() if h.count]
        return min(due) if due else None

    def flush_expired(self, now: float | None = None, everything: bool = False) -> None:
        """Emit the summaries of windows that have closed (all of them on shutdown)."""
        now = self.clock() if now is None else now
        for key, held in list(self._held.items()):
            if everything or now - held.start >= self.interval:
                del self._held[key]
                if held.count:
                    summary = logging.makeLogRecord(held.record.__dict__)
                    times = "time" if held.count == 1 else "times"
                    summary.msg = (f"{held.record.getMessage()} (repeated {held.count} {times} "
                                   f"in {held.last - held.start:.0f} s)")
                    summary.args = None
                    self.target.handle(summary)

    def close(self) -> None:
        self.flush_expired(everything=True)
        self.target.close()
        super().close()


def journal_wanted(target: str, env: Mapping[str, str] = os.environ) -> bool:
    """auto: the journal when systemd connected our stderr to it, or when stderr is not a
    terminal on a machine with a journal."""
    if target != "auto":
        return target == "journal"
    stream = env.get("JOURNAL_STREAM")
    if stream:
        try:
            st = os.fstat(2)
            dev, ino = (int(x) for x in stream.split(":"))
            if (st.st_dev, st.st_ino) == (dev, ino):
                return True
        except (OSError, ValueError):
            pass
    return not sys.stderr.isatty() and _is_socket(JOURNAL_SOCKET) and "INVOCATION_ID" in env


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


_handler: RepeatLimiter | None = None


def setup(level: str = "info", components: Mapping[str, str] | None = None, target: str = "auto",
          rate_limit_interval: float = 10.0) -> logging.Handler:
    """(Re)configure the ``gatewayd`` logger tree; safe to call again on reload."""
    global _handler
    teardown()
    if journal_wanted(target):
        inner: logging.Handler = JournalHandler()
    else:
        inner = logging.StreamHandler(sys.stderr)
        inner.setFormatter(TextFormatter())
    _handler = RepeatLimiter(inner, rate_limit_interval)
    for root in _roots():
        root.addHandler(_handler)
        root.propagate = False
    apply_levels(level, components or {})
    return _handler


def _roots() -> list[logging.Logger]:
    return [logging.getLogger(IDENTIFIER), *(logging.getLogger(tree) for tree, _ in LIBRARY_COMPONENTS
                                             if "." not in tree)]


def teardown() -> None:
    """Detach and close the handler, writing held-back summaries while its stream is still open
    (logging.shutdown at exit may find stderr already closed, as under pytest)."""
    global _handler
    if _handler is None:
        return
    for root in _roots():
        root.removeHandler(_handler)
    _handler.close()
    _handler = None


def apply_levels(level: str, components: Mapping[str, str]) -> None:
    logging.getLogger(IDENTIFIER).setLevel(LEVELS[level])
    for name in COMPONENTS:
        for logger in _loggers_of(name):
            logger.setLevel(LEVELS[components.get(name, level)])


def set_rate_limit(interval: float) -> None:
    if _handler is not None:
        _handler.interval = interval


def flush() -> None:
    if _handler is not None:
        with _handler.lock or contextlib.nullcontext():  # records also arrive from the NAT64 thread
            _handler.flush_expired()


def next_due() -> float | None:
    """When a held-back summary is due (time.monotonic), or None: the daemon need not wake for it."""
    return _handler.next_due() if _handler is not None else None


def on_hold(callback: Callable[[], None] | None) -> None:
    """Call ``callback`` (from any thread) when a repeat starts being held back."""
    if _handler is not None:
        _handler.on_hold = callback

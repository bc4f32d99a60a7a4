"""Journal records and log rate limiting, checked on the wire the journal reads."""

from __future__ import annotations

import logging
import socket
import struct
from pathlib import Path

from gatewayd import log as gwlog
from gatewayd.log import JournalHandler, RepeatLimiter, TextFormatter, component_of


def parse_journal(data: bytes) -> dict[str, str]:
    """Decode the journal's native datagram (both the KEY=VALUE and the binary form)."""
    fields: dict[str, str] = {}
    i = 0
    while i < len(data):
        end = data.index(b"\n", i)
        line = data[i:end]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            i = end + 1
        else:
            key = line
            (size,) = struct.unpack("<Q", data[end + 1:end + 9])
            value = data[end + 9:end + 9 + size]
            i = end + 9 + size + 1
        fields[key.decode()] = value.decode()
    return fields


class Sink(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_journal_record_carries_component_and_event_fields(tmp_path: Path):
    path = tmp_path / "journal.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(str(path))
    server.settimeout(2)
    handler = JournalHandler(str(path))
    logger = logging.getLogger("ncp.client")  # the library logs by module name
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        logger.warning("NCP link lost: %s", "EOF", extra={"fields": {"NCP_STATE": "LINK_LOST", "bad key": 1}})
        fields = parse_journal(server.recv(65536))
        try:
            raise ValueError("boom\nsecond line")
        except ValueError:
            logger.exception("oops")
        tb_fields = parse_journal(server.recv(65536))
    finally:
        logger.removeHandler(handler)
        handler.close()
        server.close()
    assert fields["MESSAGE"] == "NCP link lost: EOF"
    assert fields["SYSLOG_IDENTIFIER"] == "gatewayd"
    assert fields["GATEWAYD_COMPONENT"] == "ncp"
    assert fields["NCP_STATE"] == "LINK_LOST"
    assert fields["PRIORITY"] == "4"
    assert "BAD KEY" not in fields
    assert fields["CODE_FUNC"] == "test_journal_record_carries_component_and_event_fields"
    assert tb_fields["PRIORITY"] == "3"
    assert "second line" in tb_fields["TRACEBACK"]


def test_repeated_errors_are_summarised():
    now = [0.0]
    sink = Sink()
    limiter = RepeatLimiter(sink, interval=10, clock=lambda: now[0])
    logger = logging.getLogger("gatewayd.nat64.test")
    logger.addHandler(limiter)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        for _ in range(50):
            logger.error("uplink %s is down", "eth1")
            now[0] += 0.1
        logger.error("a different error")
        logger.info("info is never held back")
        logger.info("info is never held back")
        now[0] += 10
        limiter.flush_expired()
    finally:
        logger.removeHandler(limiter)
    messages = [r.getMessage() for r in sink.records]
    assert messages[0] == "uplink eth1 is down"
    assert messages.count("info is never held back") == 2
    assert "a different error" in messages
    summary = [m for m in messages if "repeated" in m]
    assert summary == ["uplink eth1 is down (repeated 49 times in 5 s)"]


def test_text_format_is_one_readable_line():
    record = logging.LogRecord("gatewayd.thread", logging.WARNING, __file__, 1, "role %s", ("leader",), None)
    record.fields = {"THREAD_ROLE": "leader"}
    line = TextFormatter().format(record)
    assert "thread" in line and "warning" in line and line.endswith("role leader  [THREAD_ROLE=leader]")


def test_library_loggers_are_shown_and_filtered_by_component(capsys) -> None:
    """ncp/ and nat64/ log by module name; the journal and [log.components] still see components."""
    assert [component_of(n) for n in ("ncp.links.cascoda", "nat64.dns64.server", "nat64.translator",
                                      "gatewayd.thread", "gatewayd")] == ["ncp", "dns64", "nat64", "thread",
                                                                         "daemon"]
    try:
        gwlog.setup("warning", {"dns64": "debug"}, target="stderr", rate_limit_interval=0)
        logging.getLogger("nat64.dns64.server").debug("dns64 detail")
        logging.getLogger("nat64.translator").info("nat64 chatter below the level")
        logging.getLogger("ncp.client").warning("NCP link lost")
        err = capsys.readouterr().err
    finally:
        gwlog.setup("info", target="stderr")
    assert "dns64    debug    dns64 detail" in err and "ncp      warning  NCP link lost" in err
    assert "chatter" not in err


def test_the_daemon_is_told_when_a_summary_becomes_due_and_when() -> None:
    """So it sleeps while nothing is held back, and wakes once to emit the summary."""
    now = [100.0]
    limiter = RepeatLimiter(Sink(), interval=10, clock=lambda: now[0])
    pokes: list[int] = []
    limiter.on_hold = lambda: pokes.append(1)
    logger = logging.getLogger("gatewayd.test.due")
    logger.addHandler(limiter)
    logger.propagate = False
    try:
        logger.error("uplink down")
        assert limiter.next_due() is None and pokes == [], "a first error holds nothing back"
        now[0] += 2
        logger.error("uplink down")
        logger.error("uplink down")
        assert limiter.next_due() == 110.0 and pokes == [1], "told once, when the first repeat is held"
        now[0] = 110.0
        limiter.flush_expired()
        assert limiter.next_due() is None
        assert limiter.target.records[-1].getMessage() == "uplink down (repeated 2 times in 2 s)"
    finally:
        logger.removeHandler(limiter)

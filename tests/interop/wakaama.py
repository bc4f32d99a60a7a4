"""Eclipse Wakaama's ``lwm2mserver`` and ``bootstrap_server`` as test peers, and gatewayd set up for them.

Both programs read one command per ``select()`` + ``getline()``: a write carrying several lines runs
only the first, so :meth:`LwM2MServer.command` sends one line and waits for its answer (``OK``,
``Error: ...``) before the next. On EOF of stdin they spin printing prompts, so stdin stays an open
pipe until ``q`` (or a kill). Results (Read answers, notifications, registrations) come later on stdout
and are matched there; stderr gets hex dumps of what they receive.

``python -m tests.interop.wakaama record`` runs gatewayd against both through a UDP relay that notes
every datagram and rewrites ``tests/lwm2m/data/wakaama.txt``: what Wakaama sent, replayed by
``tests/lwm2m/test_wakaama_replay.py`` where Wakaama is not installed.
"""

from __future__ import annotations

import contextlib
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import DaemonProcess
from tests.interop.peers import peer

DATA = Path(__file__).resolve().parents[1] / "lwm2m" / "data" / "wakaama.txt"
MANUFACTURER = "gatewayd interop"

# what Wakaama prints for a command's result or a notification (carriage returns dropped)
_RESULT = re.compile(
    r"^(?:Client|Notify from client) #(?P<client>\d+) (?P<uri>\S+)"
    r"(?: : (?P<code>\d\.\d\d) \((?P<name>\w+)\)| number (?P<number>\d+))\n"
    r"(?:    non block transfer\n)?"
    r"(?:    (?P<size>\d+) bytes received of type (?P<type>[^:\n]+):\n(?P<body>.*?))?\n\n?> ",
    re.M | re.S)
_HEX_BYTE = re.compile(r"[0-9A-F]{2}")
_ANSWER = re.compile(r"(?:^|> )(OK|Error: [^\n]*|Syntax error !|Invalid value !|Allocation error !|No client\.)$",
                     re.M)


@dataclass(slots=True)
class Result:
    """One result as ``lwm2mserver`` printed it: a response to a command, or a notification."""

    client: int
    uri: str
    code: str  # "2.05"; "" for a notification
    number: int | None  # the notification's number
    content_type: str
    size: int  # payload bytes
    body: str  # the payload as printed: JSON text as is, other types as a hex dump or a TLV tree

    @property
    def data(self) -> bytes:
        """The payload of a text/plain or opaque result, from its hex dump (16 bytes a line, then ASCII)."""
        out = bytearray()
        for line in self.body.splitlines():
            for token in line.split():
                if len(out) >= self.size or not _HEX_BYTE.fullmatch(token):
                    break
                out.append(int(token, 16))
        return bytes(out)


class _Program:
    """A Wakaama example program on pipes; its stdout collected (without CR) by a reader thread."""

    name = ""

    def __init__(self, argv: list[str], cwd: Path | None = None) -> None:
        self.argv = argv
        self.proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)
        self.output = ""
        self.errors = b""
        self._changed = threading.Condition()
        self._threads = [threading.Thread(target=self._read, args=(self.proc.stdout, True), daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stderr, False), daemon=True)]
        for t in self._threads:
            t.start()

    def _read(self, pipe: object, out: bool) -> None:
        fd = pipe.fileno()  # type: ignore[attr-defined]
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            with self._changed:
                if out:
                    self.output += data.decode("utf-8", "replace").replace("\r", "")
                else:
                    self.errors = (self.errors + data)[-200_000:]
                self._changed.notify_all()
            if not data:
                return

    @property
    def mark(self) -> int:
        """Where the output is now: pass as ``start`` to look only at what follows."""
        return len(self.output)

    def wait_for(self, pattern: str | re.Pattern[str], timeout: float = 10.0, start: int = 0) -> re.Match[str]:
        """The first match of ``pattern`` (multi-line) in the output after ``start``, waiting up to ``timeout`` s."""
        rx = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern, re.M)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                m = rx.search(self.output, start)
                if m:
                    return m
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    state = "did not appear" if self.proc.poll() is None else f"exited {self.proc.returncode}"
                    raise AssertionError(f"{self.name}: {rx.pattern!r} {state}; output tail:\n{self.output[-2500:]}")
                self._changed.wait(min(left, 0.5))

    def _started(self, ready: str) -> None:
        """Wait for the line that says it is ready; stopped again if it does not come."""
        try:
            self.wait_for(ready, 5)
        except BaseException:
            self.stop()
            raise

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        """``q``, then a kill if it does not leave; pipes closed."""
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                self.send("q")
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        for t in self._threads:
            t.join(2)


class LwM2MServer(_Program):
    """``lwm2mserver -4 -l PORT``: the Wakaama example LwM2M server on 127.0.0.1 (it binds 0.0.0.0), or
    with ``ipv6`` on ::1 (it binds ::).

    Under ``stdbuf -oL``: some lines (``Client #N unregistered.``) are not flushed until the next event.
    """

    name = "lwm2mserver"

    def __init__(self, port: int, binary: Path | None = None, netns: str | None = None, ipv6: bool = False) -> None:
        self.port = port
        self.ipv6 = ipv6
        prefix = ["ip", "netns", "exec", netns] if netns else []
        family = [] if ipv6 else ["-4"]
        super().__init__([*prefix, "stdbuf", "-oL", str(binary or peer("lwm2mserver")), *family, "-l", str(port)])
        self._started(r"^> ")

    @property
    def uri(self) -> str:
        return f"coap://[::1]:{self.port}" if self.ipv6 else f"coap://127.0.0.1:{self.port}"

    def command(self, line: str, timeout: float = 5.0) -> str:
        """Run one command and wait for its answer; AssertionError unless it is ``OK``."""
        start = max(0, self.mark - 2)  # the answer follows the prompt ("> ") already printed
        self.send(line)
        answer = self.wait_for(_ANSWER, timeout, start).group(1)
        if answer != "OK":
            raise AssertionError(f"lwm2mserver: {line!r} → {answer}")
        return answer

    def client_id(self, endpoint: str, timeout: float = 20.0, start: int = 0) -> int:
        """The number lwm2mserver gave ``endpoint`` when it registered (after ``start``)."""
        m = self.wait_for(rf'^New client #(\d+) registered\.\nClient #\1:\n\tname: "{re.escape(endpoint)}"\n',
                          timeout, start)
        return int(m.group(1))

    def listing(self) -> str:
        """What ``list`` prints now: ``No client.``, or a block per registered client."""
        start = max(0, self.mark - 2)
        self.send("list")
        first = self.wait_for(r"(?:^|> )(No client\.|Client #\d+:\n)", 5, start)
        end = self.wait_for(r"\n> ", 5, first.end())
        return self.output[first.start(1):end.start()].strip()

    def registration(self, client: int) -> dict[str, str]:
        """What ``list`` shows of a client now: name, version, binding, lifetime, objects."""
        m = re.search(rf"^Client #{client}:\n((?:\t[^\n]*\n?)+)", self.listing(), re.M)
        assert m is not None, f"lwm2mserver lists no client #{client}"
        return dict(line.strip().split(": ", 1) for line in m.group(1).splitlines() if ": " in line)

    def result(self, client: int, uri: str, timeout: float = 10.0, start: int = 0,
               notification: bool = False) -> Result:
        """The next result for ``uri`` of ``client`` after ``start`` (a notification if asked)."""
        kind = "Notify from client" if notification else "Client"
        rx = re.compile(rf"^{kind} #{client} {re.escape(uri)} ", re.M)
        deadline = time.monotonic() + timeout
        while True:
            m = self.wait_for(rx, max(deadline - time.monotonic(), 0.01), start)
            full = self.wait_for(_RESULT, max(deadline - time.monotonic(), 0.01), m.start())
            if full.start() == m.start():
                g = full.groupdict()
                return Result(int(g["client"]), g["uri"], g["code"] or "",
                              int(g["number"]) if g["number"] is not None else None, g["type"] or "",
                              int(g["size"] or 0), (g["body"] or "").strip())
            start = m.end()

    def request(self, line: str, timeout: float = 10.0) -> Result:
        """A command that names a client and a URI (read, write, exec, disc, ...) and its result."""
        _, client, uri, *_ = line.split()
        start = self.mark
        self.command(line)
        return self.result(int(client), uri, timeout, start)


class BootstrapServer(_Program):
    """``bootstrap_server -f INI -l PORT -4``, under ``stdbuf -oL`` too (it flushes its stdout seldom)."""

    name = "bootstrap_server"

    def __init__(self, port: int, ini: Path, binary: Path | None = None) -> None:
        self.port = port
        super().__init__(["stdbuf", "-oL", str(binary or peer("bootstrap_server")), "-f", str(ini),
                          "-l", str(port), "-4"], cwd=ini.parent)
        self._started(r"listening on port")

    @property
    def uri(self) -> str:
        return f"coap://127.0.0.1:{self.port}"


def bootstrap_ini(endpoint: str, server_uri: str, server_id: int = 1, lifetime: int = 120) -> str:
    """A bootstrap_server.ini that gives ``endpoint`` one NoSec LwM2M server account.

    The trailing ``[end]`` section is there because the ini parser drops the last section it reads.
    """
    return (f"[Server]\nid={server_id}\nuri={server_uri}\nbootstrap=no\nlifetime={lifetime}\nsecurity=NoSec\n\n"
            f"[Endpoint]\nName={endpoint}\nDelete=/0\nDelete=/1\nServer={server_id}\n\n[end]\n")


def lwm2m_toml(server_uri: str, *, endpoint: str = "gw-wakaama", version: str = "1.1", bootstrap: bool = False,
               lifetime: int = 120, extra: str = "") -> str:
    """The [lwm2m] part of a gatewayd configuration: the gateway's own client registers with ``server_uri``."""
    return (f'[lwm2m]\nenabled = true\nlwm2m_version = "{version}"\nkeepalive = 0\nretry_max_backoff = 2\n'
            f'[lwm2m.server]\nuri = "{server_uri}"\nlifetime = {lifetime}\nbootstrap = {str(bootstrap).lower()}\n'
            f'[lwm2m.gateway]\nendpoint = "{endpoint}"\nmanufacturer = "{MANUFACTURER}"\n' + extra)


#: the rest of the configuration keeps the daemon off the host's network: no NCP is attached (the url names
#: a device that does not exist, so the Thread components retry in the background), NAT64 and DNS64 off,
#: no sysctl changes, no Router Advertisements
NO_NCP_TOML = ('[ncp]\nurl = "spinel+hdlc+uart:///dev/null-no-ncp?baudrate=115200"\n'
               "[nat64]\nenabled = false\n[dns64]\nenabled = false\n"
               '[border]\nforwarding = false\ninfra_interface = ""\nrouter_advertisements = false\n')


def gatewayd_toml(server_uri: str, **options: object) -> str:
    """A whole gatewayd configuration without a Thread radio; ``options`` as for :func:`lwm2m_toml`."""
    return NO_NCP_TOML + lwm2m_toml(server_uri, **options)  # type: ignore[arg-type]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- recording -----------------------------------------------------------------------------------------


class UdpRelay:
    """A UDP relay on 127.0.0.1:``port`` to a server: a client that uses it as its server reaches the
    server, and the server reaches the client through it (for one client). ``on_datagram(from_server,
    data)`` hears of every datagram as it passes."""

    def __init__(self, port: int, server_port: int, on_datagram: Callable[[bool, bytes], None]) -> None:
        self.port = port
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", port))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.connect(("127.0.0.1", server_port))
        self.on_datagram = on_datagram
        self.client: tuple[str, int] | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop:
            ready, _, _ = select.select([self.front, self.back], [], [], 0.2)
            for sock in ready:
                try:
                    data, addr = sock.recvfrom(65536)
                except OSError:
                    continue
                if sock is self.front:
                    self.client = addr
                    self.on_datagram(False, data)
                    self.back.send(data)
                elif self.client is not None:
                    self.on_datagram(True, data)
                    self.front.sendto(data, self.client)

    def close(self) -> None:
        self._stop = True
        self._thread.join(2)
        self.front.close()
        self.back.close()


def describe(data: bytes) -> str:
    """A CoAP message in a few words: ``GET /3/0 Accept=110 Observe=0``, ``2.01 Created``, ``empty ACK``."""
    import aiocoap

    msg = aiocoap.Message.decode(data)
    if msg.code.is_request():
        words = [str(msg.code), "/" + "/".join(msg.opt.uri_path)]
        if msg.opt.uri_query:
            words[-1] += "?" + "&".join(msg.opt.uri_query)
        for name, value in (("Content-Format", msg.opt.content_format), ("Accept", msg.opt.accept),
                            ("Observe", msg.opt.observe)):
            if value is not None:
                words.append(f"{name}={int(value)}")
        return " ".join(words)
    if msg.code == aiocoap.EMPTY:
        return f"empty {msg.mtype.name}"
    where = "/" + "/".join(msg.opt.location_path) if msg.opt.location_path else ""
    return f"{msg.code.dotted} {msg.code.name_printable}" + (f" Location-Path={where}" if where else "")


class _Recorder:
    """Notes what the servers sent, in order: each request under the command that made the server send
    it, each answer with the client's request it answers."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.step = ""
        self._asked: dict[int, str] = {}  # message id of the client's requests → what it asked
        self._lock = threading.Lock()

    def section(self, title: str) -> None:
        with self._lock:
            self.lines += ["", f"## {title}"]

    def relay(self, who: str) -> Callable[[bool, bytes], None]:
        import aiocoap

        def note(from_server: bool, data: bytes) -> None:
            msg = aiocoap.Message.decode(data)
            with self._lock:
                if not from_server:
                    if msg.code.is_request():
                        self._asked[msg.mid] = describe(data)
                    return
                if msg.code.is_request():
                    text = f"{describe(data)} ({self.step})"
                else:
                    asked = self._asked.get(msg.mid)
                    text = describe(data) + (f" answering {asked}" if asked else "")
                self.lines += [f"# {who}: {text}", data.hex()]
        return note


def _quiet(seconds: float) -> None:
    time.sleep(seconds)  # let retransmissions and late notifications pass before the next step


def record(out: Path = DATA, work: Path | None = None) -> None:
    """Run the scenarios once through relays and write what the Wakaama servers sent to ``out``."""
    import tempfile

    rec = _Recorder()
    with tempfile.TemporaryDirectory(prefix="wakaama-record-") as tmp_name:
        tmp = work or Path(tmp_name)
        for version in ("1.1", "1.0"):
            rec.section(f"lwm2mserver, client registered with lwm2m={version}")
            server = LwM2MServer(free_udp_port())
            relay = UdpRelay(free_udp_port(), server.port, rec.relay("lwm2mserver"))
            (tmp / f"dm-{version}").mkdir(parents=True, exist_ok=True)
            gw = DaemonProcess(tmp / f"dm-{version}", gatewayd_toml(f"coap://127.0.0.1:{relay.port}", version=version))
            try:
                rec.step = "Register"
                gw.start()
                c = server.client_id("gw-wakaama")
                _quiet(0.5)
                for line in (f"read {c} /3/0", f"read {c} /3/0/0", f"read {c} /3/0/11", f"read {c} /4/0",
                             f"disc {c} /3/0", f"write {c} /3/0/14 +02", f"read {c} /3/0/14",
                             f"write {c} /1/0/1 90", f"exec {c} /1/0/8", f"time {c} /3/0/13 1 5"):
                    rec.step = line
                    server.request(line)
                    _quiet(0.5)
                rec.step = f"observe {c} /3/0/13"
                start = server.mark
                server.command(rec.step)
                server.result(c, "/3/0/13", 10, start, notification=True)
                _quiet(1.5)
                rec.step = f"cancel {c} /3/0/13"
                server.request(rec.step)
                _quiet(1.5)
                rec.step = "gatewayd stopped"
                gw.stop()
                server.wait_for(rf"^Client #{c} unregistered\.", 10)
            finally:
                gw.stop()
                relay.close()
                server.stop()

        rec.section("bootstrap_server, then lwm2mserver (client lwm2m=1.1)")
        server = LwM2MServer(free_udp_port())
        dm_relay = UdpRelay(free_udp_port(), server.port, rec.relay("lwm2mserver"))
        (tmp / "bs").mkdir(parents=True, exist_ok=True)
        ini = tmp / "bs" / "bootstrap.ini"
        ini.write_text(bootstrap_ini("gw-wakaama", f"coap://127.0.0.1:{dm_relay.port}"))
        bs = BootstrapServer(free_udp_port(), ini)
        bs_relay = UdpRelay(free_udp_port(), bs.port, rec.relay("bootstrap_server"))
        gw = DaemonProcess(tmp / "bs", gatewayd_toml(f"coap://127.0.0.1:{bs_relay.port}", bootstrap=True))
        try:
            rec.step = "[Endpoint] Name=gw-wakaama"
            gw.start()
            c = server.client_id("gw-wakaama")
            _quiet(0.5)
            rec.step = f"read {c} /1/1"
            server.request(rec.step)
            _quiet(0.5)
            rec.step = "gatewayd stopped"
            gw.stop()
            server.wait_for(rf"^Client #{c} unregistered\.", 10)
        finally:
            gw.stop()
            for r in (bs_relay, dm_relay):
                r.close()
            bs.stop()
            server.stop()

    header = [
        "# What Eclipse Wakaama's lwm2mserver and bootstrap_server sent to gatewayd's own client, recorded by",
        "# `python -m tests.interop.wakaama record` (GATEWAYD_INTEROP_DIR set) and replayed by",
        "# tests/lwm2m/test_wakaama_replay.py. Each message: a note (`# sender: the message in words`, with the",
        "# command that made the server send a request, or the client's request an answer answers), then the",
        "# CoAP message in hex. `## ` starts a session (one server, one registration).",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(header + rec.lines) + "\n")


if __name__ == "__main__":
    if sys.argv[1:2] != ["record"]:
        sys.exit("usage: python -m tests.interop.wakaama record [OUT]")
    record(Path(sys.argv[2]) if len(sys.argv) > 2 else DATA)

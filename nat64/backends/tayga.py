"""Tayga backend: Debian's tayga as a supervised child on its own TUN device.

Tayga is a stateless NAT64 with a dynamic pool: each IPv6 host that talks through it gets one IPv4
address of the pool for itself (its "dynamic map"), and many hosts sharing one address is left to an
nftables masquerade on the uplink. So the pool must be a network, not a single address.

:class:`TaygaConfig` renders tayga.conf; :func:`parse_dynamic_map` reads the ``dynamic.map`` file tayga
keeps in its data-dir (written when it stops and from time to time); :func:`parse_log_line` picks the
maps tayga announces on its debug output, so mappings are known before the file is rewritten.
:class:`TaygaNat64` makes the TUN (``tayga --mktun``), brings it up, runs ``tayga -d`` and restarts it
with exponential backoff when it dies; routes and the masquerade stay with the caller, as for the
builtin backend (:func:`nat64.backends.builtin.required_routes` plus :meth:`TaygaConfig.extra_routes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from pathlib import Path

from common.aio import cancel_and_wait
from common.backoff import Backoff
from nat64.backends.builtin import Route

__all__ = ["TaygaConfig", "TaygaMapping", "TaygaNat64", "parse_dynamic_map", "parse_log_line"]

log = logging.getLogger(__name__)

HEALTHY_RUN = 10.0  # seconds; an exit after a run this long is retried from the first step

WELL_KNOWN = IPv6Network("64:ff9b::/96")
LOCAL_USE = IPv6Network("64:ff9b:1::/48")  # RFC 8215: local-use IPv4/IPv6 translation prefix
MAP_FILE = "dynamic.map"
_ASSIGNED = re.compile(r"assigned new pool address (\S+) \((\S+)\)")


@dataclass(frozen=True, slots=True)
class TaygaConfig:
    tun_device: str
    ipv4_addr: IPv4Address
    prefix: IPv6Network
    dynamic_pool: IPv4Network
    data_dir: Path
    #: Tayga's own IPv6 address, needed only when it cannot be derived from ipv4_addr (see for_pool).
    ipv6_addr: IPv6Address | None = None

    @classmethod
    def for_pool(cls, prefix: IPv6Network | str, pool: list[IPv4Network] | list[str], tun_device: str,
                 data_dir: Path) -> TaygaConfig:
        """The same prefix and pool as the builtin backend would use.

        The first pool network becomes tayga's dynamic pool and its first host tayga's own address
        (tayga skips it when assigning). Under the Well-Known Prefix a private ipv4_addr has no IPv6
        form (RFC 6052 §3.1), so tayga gets one in the RFC 8215 local-use prefix instead.
        """
        prefix = IPv6Network(prefix)
        if not pool:
            raise ValueError("the IPv4 pool is empty")
        net = IPv4Network(pool[0])
        if net.prefixlen > 30:
            raise ValueError(f"tayga gives every mesh host an IPv4 address of its own: the pool {net} is too "
                             "small; give [nat64] pool a network such as 192.168.255.0/24")
        if len(pool) > 1:
            log.warning("tayga uses one dynamic pool: only %s of the pool is used", net)
        ipv4 = next(net.hosts())
        ipv6 = None
        if prefix == WELL_KNOWN and not ipv4.is_global:
            ipv6 = IPv6Address(int(LOCAL_USE.network_address) | 0xFFFF << 32 | int(ipv4))
        return cls(tun_device, ipv4, prefix, net, Path(data_dir), ipv6)

    def render(self) -> str:
        lines = [
            "# Written by gatewayd from [nat64]; edits are overwritten at the next start.",
            f"tun-device {self.tun_device}",
            f"ipv4-addr {self.ipv4_addr}",
        ]
        if self.ipv6_addr is not None:
            lines.append(f"ipv6-addr {self.ipv6_addr}")
        lines += [f"prefix {self.prefix}", f"dynamic-pool {self.dynamic_pool}", f"data-dir {self.data_dir}"]
        return "\n".join(lines) + "\n"

    def extra_routes(self) -> list[Route]:
        """Routes besides the prefix and pool: tayga's own IPv6 address when it lies outside the prefix."""
        if self.ipv6_addr is None or self.ipv6_addr in self.prefix:
            return []
        return [Route(f"{self.ipv6_addr}/128", self.tun_device)]


@dataclass(frozen=True, slots=True)
class TaygaMapping:
    ipv4: IPv4Address
    ipv6: IPv6Address
    last_use: float | None  # Unix time; None when only seen on tayga's output


def parse_dynamic_map(text: str) -> tuple[list[TaygaMapping], int]:
    """Rows of a dynamic.map ("ipv4 ipv6 last-use" per line, # comments); returns (mappings, bad lines).

    Never raises: the file may be half-written or edited by hand, so a bad line is counted, not fatal.
    """
    out: list[TaygaMapping] = []
    bad = 0
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        try:
            if len(words) not in (2, 3):
                raise ValueError(line)
            last = float(words[2]) if len(words) == 3 else None
            if last is not None and not (0 <= last < 1e12):
                raise ValueError(line)
            out.append(TaygaMapping(IPv4Address(words[0]), IPv6Address(words[1]), last))
        except ValueError:
            bad += 1
    return out, bad


def parse_log_line(line: str) -> TaygaMapping | None:
    """The mapping a tayga output line announces ("assigned new pool address A (B)"), if any."""
    m = _ASSIGNED.search(line)
    if m is None:
        return None
    try:
        return TaygaMapping(IPv4Address(m.group(1)), IPv6Address(m.group(2)), None)
    except ValueError:
        return None


@dataclass
class _Child:
    restarts: int = 0
    last_exit: int | None = None
    started_at: float | None = None
    assigned: dict[IPv6Address, TaygaMapping] = field(default_factory=dict)


class TaygaNat64:
    """Runs and supervises tayga; ``on_failure`` hears when it keeps dying (after ``give_up`` quick exits)."""

    def __init__(self, config: TaygaConfig, conf_path: Path, *, executable: str = "tayga",
                 on_failure: Callable[[BaseException], None] | None = None, max_backoff: float = 30.0,
                 give_up: int = 5, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.conf_path = Path(conf_path)
        self.executable = executable
        self.on_failure = on_failure
        self.max_backoff = max_backoff
        self.give_up = give_up
        self._clock = clock
        self._proc: asyncio.subprocess.Process | None = None
        self._task: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._child = _Child()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self.running and self._proc is not None else None

    async def start(self) -> None:
        c = self.config
        if shutil.which(self.executable) is None:
            raise OSError(f"{self.executable} is not installed (apt install tayga), or pick [nat64] backend = builtin")
        c.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.conf_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.conf_path.write_text(c.render())
        mk = await asyncio.create_subprocess_exec(
            self.executable, "--config", str(self.conf_path), "--mktun",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await mk.communicate()
        if mk.returncode != 0:
            raise OSError(f"tayga --mktun failed ({mk.returncode}): {out.decode(errors='replace').strip()}")
        await asyncio.to_thread(_link_up, c.tun_device)
        await self._spawn()
        # A bad config makes tayga exit at once: say so from start() rather than from the supervisor.
        with contextlib.suppress(TimeoutError):
            assert self._proc is not None
            await asyncio.wait_for(asyncio.shield(self._proc.wait()), 0.3)
        if not self.running:
            await self._drain()
            raise OSError(f"tayga exited at start with status {self._child.last_exit}: see the log")
        self._task = asyncio.create_task(self._supervise(), name="tayga-supervisor")
        log.info("tayga running on %s for %s, pool %s", c.tun_device, c.prefix, c.dynamic_pool)

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.terminate()  # tayga writes dynamic.map on SIGTERM
            try:
                await asyncio.wait_for(proc.wait(), 3)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        self._reader_done()
        await asyncio.to_thread(_link_delete, self.config.tun_device)

    # --- the child ----------------------------------------------------------------------------------

    async def _spawn(self) -> None:
        # tayga's debug output goes to a block-buffered stdout: line-buffer it so maps show up at once.
        stdbuf = shutil.which("stdbuf")
        prefix = [stdbuf, "-oL"] if stdbuf else []
        self._proc = await asyncio.create_subprocess_exec(
            *prefix, self.executable, "-d", "--config", str(self.conf_path),
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        self._child.started_at = self._clock()
        self._reader = asyncio.create_task(self._read_output(self._proc), name="tayga-output")

    async def _read_output(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            text = line.decode(errors="replace").rstrip()
            mapping = parse_log_line(text)
            if mapping is not None:
                self._child.assigned[mapping.ipv6] = mapping
            log.info("tayga: %s", text)

    async def _drain(self) -> None:
        if self._proc is not None:
            self._child.last_exit = await self._proc.wait()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._reader, 1)

    def _reader_done(self) -> None:
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()

    async def _supervise(self) -> None:
        retry = Backoff(1.0, self.max_backoff, healthy=HEALTHY_RUN, clock=self._clock)
        while True:
            assert self._proc is not None
            retry.started()
            status = await self._proc.wait()
            await self._drain()
            self._child.last_exit = status
            ran = self._clock() - (self._child.started_at or self._clock())
            delay = retry.delay()
            quick_exits = retry.attempts  # this exit included; 1 after a healthy run
            log.error("tayga exited with status %s after %.1f s; restarting in %.0f s", status, ran, delay,
                      extra={"fields": {"NAT64_BACKEND": "tayga", "TAYGA_EXIT": str(status)}})
            if quick_exits >= self.give_up and self.on_failure is not None:
                self.on_failure(OSError(f"tayga keeps exiting (status {status}, {quick_exits} times in a row)"))
            await asyncio.sleep(delay)
            self._child.restarts += 1
            await self._spawn()

    # --- what it is doing ---------------------------------------------------------------------------

    def mappings(self) -> list[TaygaMapping] | None:
        """Dynamic maps: the data-dir file merged with those announced since; None when neither exists."""
        path = self.config.data_dir / MAP_FILE
        try:
            rows, bad = parse_dynamic_map(path.read_text(errors="replace"))
        except OSError:
            if not self._child.assigned:
                return None
            rows, bad = [], 0
        if bad:
            log.debug("%d unreadable lines in %s", bad, path)
        merged = {m.ipv6: m for m in self._child.assigned.values()}
        merged.update({m.ipv6: m for m in rows})
        return sorted(merged.values(), key=lambda m: int(m.ipv4))

    def counters(self) -> dict[str, int]:
        """Packets and bytes through the TUN as the kernel counts them (tayga keeps no counters)."""
        out: dict[str, int] = {"restarts": self._child.restarts}
        stats = Path("/sys/class/net") / self.config.tun_device / "statistics"
        for name in ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_dropped", "tx_dropped"):
            with contextlib.suppress(OSError, ValueError):
                out[f"tun_{name}"] = int((stats / name).read_text())
        return out

    def status(self) -> dict:
        c = self.config
        return {
            "backend": "tayga",
            "interface": c.tun_device,
            "running": self.running,
            "pid": self.pid,
            "prefix": str(c.prefix),
            "pool": str(c.dynamic_pool),
            "ipv4_addr": str(c.ipv4_addr),
            "restarts": self._child.restarts,
            "last_exit": self._child.last_exit,
            "uptime": round(self._clock() - self._child.started_at, 3)
            if self.running and self._child.started_at is not None else None,
        }


def _link_up(name: str) -> None:
    from common.netlink import Rtnl

    with Rtnl() as rt:
        link = rt.link(name=name)
        if link is None:
            raise OSError(f"tayga --mktun made no interface {name}")
        rt.set_link(link.index, up=True)


def _link_delete(name: str) -> None:
    from common.netlink import NetlinkError, Rtnl

    with Rtnl() as rt:
        link = rt.link(name=name)
        if link is not None:
            with contextlib.suppress(NetlinkError):
                rt.delete_link(link.index)

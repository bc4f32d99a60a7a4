"""Asyncio glue around :class:`SimNcp`: the host link on stdin/stdout, the mesh TUN, the control socket.

Nothing here decides protocol behaviour; it moves bytes, runs the core's timers and injects faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import tempfile
import termios
import tty
from pathlib import Path
from typing import Any

from ncp import cascoda, cascoda_dfu, hdlc
from ncp.spinel import SpinelError, SpinelFrame

from .addresses import MeshConfig
from .control import ControlCommand, ControlError, parse_command, reply
from .core import SimNcp
from .dfu import SimFirmware
from .mesh import MeshTun
from .radio_socket import RadioSocket

__all__ = ["SimApp", "save_state"]

log = logging.getLogger(__name__)


def save_state(path: Path, state: dict[str, Any]) -> None:
    """Atomic write, like flash that is either old or new after a crash."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    with os.fdopen(fd, "w") as f:
        json.dump(state, f)
    os.replace(tmp, path)


class _CascodaDevice:
    """Device end of the Cascoda UART framing: stream bytes travel as OT_SERIAL_UPLINK/DOWNLINK."""

    def __init__(self, eui64: bytes, firmware: SimFirmware | None = None) -> None:
        self.session = cascoda.CascodaSession()
        self.eui64 = eui64
        self.firmware = firmware or SimFirmware()
        self.installed = False  # a DFU REBOOT installed a new image: the NCP restarts into it

    def wrap(self, data: bytes, now: float) -> None:
        for i in range(0, len(data), cascoda.MAX_PAYLOAD):
            chunk = data[i : i + cascoda.MAX_PAYLOAD]
            self.session.send(cascoda.CascodaMessage(cascoda.Cmd.OT_SERIAL_UPLINK, chunk), now)

    def unwrap(self, data: bytes, now: float) -> bytes:
        stream = bytearray()
        for msg in self.session.feed(data, now):
            if msg.cmd == cascoda.Cmd.OT_SERIAL_DOWNLINK:
                stream += msg.payload
            elif msg.cmd == cascoda.Cmd.EVBME_GET_REQUEST and msg.payload:
                self._get_confirm(msg.payload[0], now)
            elif msg.cmd == cascoda.Cmd.EVBME_SET_REQUEST and msg.payload:
                self.session.send(cascoda.CascodaMessage(cascoda.Cmd.EVBME_SET_CONFIRM, b"\x00"), now)
            elif msg.cmd == cascoda.Cmd.EVBME_DFU_CMD:
                self._dfu(msg.payload, now)
        return bytes(stream)

    def _dfu(self, payload: bytes, now: float) -> None:
        try:
            status, installed = self.firmware.handle(cascoda_dfu.decode(payload))
        except cascoda_dfu.DfuError:
            status, installed = cascoda_dfu.DfuStatus(cascoda_dfu.CaError.INVALID_ARGS), False
        self.session.send(cascoda_dfu.encode(status), now)
        self.installed = self.installed or installed

    def _get_confirm(self, attribute: int, now: float) -> None:
        values = {
            cascoda.Attribute.VERSION: b"gatewayd-sim",
            cascoda.Attribute.PLATFORM: b"python",
            cascoda.Attribute.APPLICATION: b"ot-ncp",
            cascoda.Attribute.SERIALNO: self.eui64,
            cascoda.Attribute.OT_EUI64: self.eui64,
        }
        value = values.get(attribute)
        status, value = (0, value) if value is not None else (0xE8, b"")  # invalid parameter
        payload = bytes((status, attribute, len(value))) + value
        self.session.send(cascoda.CascodaMessage(cascoda.Cmd.EVBME_GET_CONFIRM, payload), now)


class SimApp:
    def __init__(
        self,
        core: SimNcp,
        mesh: MeshTun | None = None,
        *,
        fd_in: int = 0,
        fd_out: int = 1,
        link: str = "hdlc",
        control_path: str | None = None,
        state_path: str | None = None,
        firmware_path: str | None = None,
        radio: RadioSocket | None = None,
    ) -> None:
        self.core = core
        self.mesh = mesh
        self.radio = radio
        self.fd_in = fd_in
        self.fd_out = fd_out
        self.cascoda = _CascodaDevice(core.eui64, SimFirmware(firmware_path)) if link == "cascoda" else None
        if self.cascoda is not None:
            core.firmware_version = self.cascoda.firmware.version  # type: ignore[attr-defined]
        self.control_path = control_path
        self.state_path = Path(state_path) if state_path else None
        self.decoder = hdlc.HdlcDecoder()
        self.drop = 0
        self.corrupt = 0
        self.stalled_until = 0.0
        self.counters = {
            "rx_frames": 0,
            "rx_bad_spinel": 0,
            "tx_frames": 0,
            "dropped": 0,
            "corrupted": 0,
            "mesh_in": 0,
            "mesh_out": 0,
        }
        self._out = bytearray()
        self._held: list[bytes] = []
        self._applied = MeshConfig()
        self._timer: asyncio.TimerHandle | None = None
        self._done: asyncio.Future[int] | None = None
        self._reading = False
        self._writer_armed = False
        self._server: asyncio.AbstractServer | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    # --- lifecycle --------------------------------------------------------------------------------------

    async def run(self) -> int:
        self.loop = loop = asyncio.get_running_loop()
        self._done = loop.create_future()
        if os.isatty(self.fd_in):
            with contextlib.suppress(termios.error):
                # No echo, no CR/LF mangling; TCSANOW keeps what the host already wrote (TCSAFLUSH drops it).
                tty.setraw(self.fd_in, termios.TCSANOW)
        if self.state_path is not None:
            self.core.on_persist = lambda state: save_state(self.state_path, state)  # type: ignore[arg-type]
        if self.mesh is not None and self.mesh.fd is not None:
            loop.add_reader(self.mesh.fd, self._on_mesh)
        if self.radio is not None and self.radio.sock is not None:
            loop.add_reader(self.radio.sock.fileno(), self._on_radio)
        if self.control_path:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.control_path)
            self._server = await asyncio.start_unix_server(self._on_control, path=self.control_path)
        loop.add_signal_handler(signal.SIGUSR1, self._event, self._reset)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, self._finish, 0)
        self._start_reading()
        self._event(self.core.boot)
        try:
            return await self._done
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        loop = self.loop
        assert loop is not None
        if self._timer is not None:
            self._timer.cancel()
        self._stop_reading()
        if self._writer_armed:
            loop.remove_writer(self.fd_out)
        for sig in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        if self.mesh is not None and self.mesh.fd is not None:
            loop.remove_reader(self.mesh.fd)
        if self.radio is not None and self.radio.sock is not None:
            loop.remove_reader(self.radio.sock.fileno())
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.control_path or "")

    def _finish(self, code: int) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(code)

    # --- the core -------------------------------------------------------------------------------------

    def _now(self) -> float:
        assert self.loop is not None
        return self.loop.time()

    def _event(self, action, *args: Any) -> Any:
        """Run a core action now, then flush its output and re-arm the timers."""
        result = action(*args, self._now())
        self._flush()
        return result

    def _reset(self, now: float) -> None:
        self.decoder.reset()
        self.core.reset(now)

    def _flush(self) -> None:
        now = self._now()
        frames, packets = self.core.take()
        for frame in frames:
            self._send_frame(frame, now)
        for packet in packets:
            self.counters["mesh_out"] += 1
            if self.mesh is not None:
                self.mesh.write(packet)
        for datagram in self.core.take_radio():
            if self.radio is not None:
                self.radio.send(datagram)
        config = self.core.mesh_config()
        if config != self._applied and self.mesh is not None:
            try:
                self.mesh.apply(config)
            except Exception:
                log.exception("applying mesh addresses failed")
        self._applied = config
        self._rearm()

    def _rearm(self) -> None:
        assert self.loop is not None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        times = [self.core.next_deadline()]
        if self.cascoda is not None:
            times.append(self.cascoda.session.next_deadline())
        if self.stalled_until:
            times.append(self.stalled_until)
        pending = [t for t in times if t is not None]
        if pending:
            self._timer = self.loop.call_at(min(pending), self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = self._now()
        if self.stalled_until and now >= self.stalled_until:
            self.stalled_until = 0.0
            held, self._held = self._held, []
            for wire in held:
                self._write(wire)
            self._start_reading()
        if self.cascoda is not None:
            self.cascoda.session.tick(now)
            self._write_raw(self.cascoda.session.data_to_send())
        self.core.poll(now)
        self._flush()

    # --- host link ------------------------------------------------------------------------------------

    def _send_frame(self, frame: SpinelFrame, now: float) -> None:
        if self.drop > 0:
            self.drop -= 1
            self.counters["dropped"] += 1
            return
        wire = hdlc.encode(frame.encode())
        if self.corrupt > 0:
            self.corrupt -= 1
            self.counters["corrupted"] += 1
            # The header byte (0x80..0xBF) is never escaped; flipping a bit in it breaks the FCS.
            wire = wire[:1] + bytes((wire[1] ^ 0x01,)) + wire[2:]
        self.counters["tx_frames"] += 1
        if self.stalled_until:
            self._held.append(wire)
        else:
            self._write(wire)

    def _write(self, wire: bytes) -> None:
        if self.cascoda is not None:
            self.cascoda.wrap(wire, self._now())
            self._write_raw(self.cascoda.session.data_to_send())
        else:
            self._write_raw(wire)

    def _write_raw(self, data: bytes) -> None:
        if not data:
            return
        self._out += data
        self._drain()

    def _drain(self) -> None:
        assert self.loop is not None
        while self._out:
            try:
                n = os.write(self.fd_out, self._out)
            except BlockingIOError:
                break
            except OSError as exc:
                log.info("host link closed (%s)", exc)
                self._out.clear()
                self._finish(0)
                return
            del self._out[:n]
        if self._out and not self._writer_armed:
            self.loop.add_writer(self.fd_out, self._drain)
            self._writer_armed = True
        elif not self._out and self._writer_armed:
            self.loop.remove_writer(self.fd_out)
            self._writer_armed = False

    def _start_reading(self) -> None:
        if not self._reading and self.loop is not None:
            self.loop.add_reader(self.fd_in, self._on_input)
            self._reading = True

    def _stop_reading(self) -> None:
        if self._reading and self.loop is not None:
            self.loop.remove_reader(self.fd_in)
            self._reading = False

    def _on_input(self) -> None:
        try:
            data = os.read(self.fd_in, 4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""  # EIO: the pty master is gone
        if not data:
            log.info("host link closed")
            self._stop_reading()
            self._finish(0)
            return
        now = self._now()
        if self.cascoda is not None:
            data = self.cascoda.unwrap(data, now)
            self._write_raw(self.cascoda.session.data_to_send())
            if self.cascoda.installed:  # the boot loader installed a new image: the NCP starts again
                self.cascoda.installed = False
                self.core.firmware_version = self.cascoda.firmware.version  # type: ignore[attr-defined]
                self._reset(now)
        for raw in self.decoder.feed(data):
            try:
                frame = SpinelFrame.decode(raw)
            except SpinelError:
                self.counters["rx_bad_spinel"] += 1
                continue
            self.counters["rx_frames"] += 1
            self.core.handle_frame(frame, now)
        self._flush()

    # --- mesh -----------------------------------------------------------------------------------------

    def _on_mesh(self) -> None:
        assert self.mesh is not None
        now = self._now()
        for _ in range(64):
            packet = self.mesh.read()
            if packet is None:
                break
            self.counters["mesh_in"] += 1
            self.core.handle_mesh_packet(packet, now)
        self._flush()

    def _on_radio(self) -> None:
        assert self.radio is not None
        now = self._now()
        for _ in range(64):
            datagram = self.radio.recv()
            if datagram is None:
                break
            self.core.radio_heard(datagram, now)
        self._flush()

    # --- control --------------------------------------------------------------------------------------

    async def _on_control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                if not line.strip():
                    continue
                try:
                    answer = self.control(parse_command(line))
                except (ControlError, ValueError, KeyError) as exc:
                    answer = reply(False, error=str(exc))
                writer.write(answer)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def control(self, command: ControlCommand) -> bytes:
        """Apply one control command; returns the reply line."""
        now = self._now()
        if command.cmd == "reset":
            self._event(self._reset)
        elif command.cmd == "drop":
            self.drop = command.count
        elif command.cmd == "corrupt":
            self.corrupt = command.count
        elif command.cmd == "stall":
            self.stalled_until = now + command.seconds
            self._stop_reading()
            self._rearm()
        elif command.cmd == "die":
            assert self.loop is not None
            self.loop.call_soon(self._finish, 1)
        elif command.cmd == "node_add":
            node = self._event(lambda now: self.core.add_node(command.name, command.eui64, now, command.kind))
            return reply(name=node.name, eui64=node.eui64.hex(), kind=node.kind)
        elif command.cmd == "joiner_start":
            result = self._event(lambda now: self.core.joiner_start(command.name, command.eui64, command.pskd, now,
                                                                    command.kind))
            return reply(**result)
        elif command.cmd == "node_remove":
            self._event(self.core.remove_node, command.name)
        elif command.cmd == "border_router":
            self._event(self.core.border_router, command.rloc16, command.prefixes, command.routes)
        elif command.cmd == "state":
            return reply(**self.core.state(), counters={**self.counters, **self.decoder.counters.as_dict()})
        return reply()

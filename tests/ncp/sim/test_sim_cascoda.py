"""The simulator behind the Cascoda UART framing (--link cascoda), driven by the host-side session."""

import os
import select
import time

from ncp import cascoda, hdlc
from ncp.spinel import Command, Prop, SpinelFrame, Status, unpack_prop

from .simproc import SimProcess


class CascodaHost:
    def __init__(self, p: SimProcess):
        self.p = p
        self.session = cascoda.CascodaSession()
        self.decoder = hdlc.HdlcDecoder()
        self.frames: list[SpinelFrame] = []
        self.evbme: list[cascoda.CascodaMessage] = []

    def _flush(self):
        out = self.session.data_to_send()
        if out:
            os.write(self.p.master, out)

    def send_frame(self, frame: SpinelFrame):
        self.session.send_stream(hdlc.encode(frame.encode()), time.monotonic())
        self._flush()

    def send(self, message: cascoda.CascodaMessage):
        self.session.send(message, time.monotonic())
        self._flush()

    def pump_until(self, predicate, timeout=5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = predicate(self)
            if found is not None:
                return found
            ready, _, _ = select.select([self.p.master], [], [], 0.05)
            now = time.monotonic()
            if ready:
                for msg in self.session.feed(os.read(self.p.master, 4096), now):
                    if msg.cmd == cascoda.Cmd.OT_SERIAL_UPLINK:
                        self.frames += [SpinelFrame.decode(raw) for raw in self.decoder.feed(msg.payload)]
                    else:
                        self.evbme.append(msg)
            self.session.tick(now)
            self._flush()
        raise TimeoutError(f"frames={self.frames} evbme={self.evbme}")


def test_spinel_inside_cascoda_messages(tmp_path):
    p = SimProcess("--link", "cascoda", "--mle-interval", "0", "--eui64", "0011223344556677", log=tmp_path / "sim.log")
    try:
        host = CascodaHost(p)
        # The device announces its boot (and is only then listening: no RXRDY is missed afterwards).
        boot = host.pump_until(lambda h: next((f for f in h.frames if f.prop == Prop.LAST_STATUS), None))
        assert unpack_prop(Prop.LAST_STATUS, boot.value) == Status.RESET_POWER_ON
        host.send(cascoda.CascodaMessage(cascoda.Cmd.EVBME_HOST_CONNECTED))
        # A request whose HDLC frame needs escaping and two Cascoda chunks (> 254 bytes).
        name = "x" * 16
        host.send_frame(SpinelFrame(0, 2, Command.PROP_VALUE_GET, Prop.PROTOCOL_VERSION, b"\x7e" * 300))
        host.send_frame(SpinelFrame(0, 3, Command.PROP_VALUE_SET, Prop.NET_NETWORK_NAME, name.encode() + b"\0"))
        reply = host.pump_until(lambda h: next((f for f in h.frames if f.tid == 2), None))
        assert unpack_prop(Prop.PROTOCOL_VERSION, reply.value) == (4, 3)
        reply = host.pump_until(lambda h: next((f for f in h.frames if f.tid == 3), None))
        assert unpack_prop(Prop.NET_NETWORK_NAME, reply.value) == name
        # EVBME attributes: the OpenThread EUI-64.
        host.send(cascoda.get_request(cascoda.Attribute.OT_EUI64))
        msg = host.pump_until(lambda h: next((m for m in h.evbme if m.cmd == cascoda.Cmd.EVBME_GET_CONFIRM), None))
        confirm = cascoda.parse_get_confirm(msg.payload)
        assert (confirm.status, confirm.value) == (0, bytes.fromhex("0011223344556677"))
        assert host.session.counters.ack_timeouts == 0
    finally:
        p.stop()

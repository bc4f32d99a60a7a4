"""Link URLs, the raw UART link on a pty, and the forkpty link."""

from __future__ import annotations

import asyncio
import os
import sys
import tty

import pytest

from ncp.links import LinkDown, create_link, parse_link_url
from ncp.links.cascoda import CascodaLink
from ncp.links.forkpty import ForkptyLink
from ncp.links.uart import UartLink


def test_urls_pick_the_link_with_defaults():
    u = parse_link_url("spinel+hdlc+uart:///dev/ttyACM0")
    assert (u.scheme, u.path, u.baudrate, u.rtscts) == ("spinel+hdlc+uart", "/dev/ttyACM0", 115200, False)
    u = parse_link_url("spinel+hdlc+uart:///dev/ttyUSB1?baudrate=460800&flow-control=rtscts")
    assert (u.baudrate, u.rtscts) == (460800, True)
    assert parse_link_url("cascoda+uart:///dev/serial0").baudrate == 1_000_000
    u = parse_link_url("spinel+hdlc+forkpty:///usr/bin/ot-ncp-ftd?args=--foo&args=bar&args=1")
    assert u.args == ("--foo", "bar", "1")
    assert isinstance(create_link("spinel+hdlc+uart:///dev/ttyACM0"), UartLink)
    assert isinstance(create_link("cascoda+uart:///dev/serial0"), CascodaLink)
    assert isinstance(create_link("spinel+hdlc+forkpty:///bin/true"), ForkptyLink)


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("", "empty"),
        ("tcp:///dev/x", "unknown scheme 'tcp'"),
        ("spinel+hdlc+uart://dev/ttyACM0", "three slashes"),
        ("spinel+hdlc+uart://", "missing device"),
        ("spinel+hdlc+uart:///dev/x?baudrate=fast", "baudrate must be a positive integer"),
        ("spinel+hdlc+uart:///dev/x?baudrate=0", "baudrate"),
        ("spinel+hdlc+uart:///dev/x?flow-control=xonxoff", "flow-control must be"),
        ("spinel+hdlc+uart:///dev/x?parity=even", "unknown parameter 'parity'"),
        ("cascoda+uart:///dev/x?flow-control=rtscts", "unknown parameter 'flow-control'"),
        ("spinel+hdlc+uart:///dev/x?baudrate=1&baudrate=2", "more than once"),
    ],
)
def test_bad_urls_say_what_is_wrong(url, complaint):
    with pytest.raises(ValueError, match=complaint):
        parse_link_url(url)


async def test_uart_link_moves_bytes_both_ways_and_reports_eof():
    master, slave = os.openpty()
    tty.setraw(slave)
    link = create_link(f"spinel+hdlc+uart://{os.ttyname(slave)}?baudrate=115200")
    try:
        await link.open()
        link.write(b"\x7e\x81\x02\x01\xc5\xb2\x7e")
        await asyncio.sleep(0.05)
        assert os.read(master, 100) == b"\x7e\x81\x02\x01\xc5\xb2\x7e"
        os.write(master, b"\x7e\x80\x06\x00\x70\xee\x74\x7e")
        assert await asyncio.wait_for(link.read(), 1) == b"\x7e\x80\x06\x00\x70\xee\x74\x7e"
        os.close(master)
        master = -1
        with pytest.raises(LinkDown):
            await asyncio.wait_for(link.read(), 1)
        with pytest.raises(LinkDown):
            link.write(b"x")
    finally:
        await link.close()
        if master >= 0:
            os.close(master)
        os.close(slave)


async def test_large_writes_are_buffered_not_lost():
    master, slave = os.openpty()
    tty.setraw(slave)
    link = create_link(f"spinel+hdlc+uart://{os.ttyname(slave)}")
    try:
        await link.open()
        blob = bytes(range(256)) * 400  # more than a pty buffer holds
        link.write(blob)
        got = bytearray()
        os.set_blocking(master, False)
        async with asyncio.timeout(5):
            while len(got) < len(blob):
                try:
                    got += os.read(master, 65536)
                except BlockingIOError:
                    await asyncio.sleep(0.005)
        assert bytes(got) == blob
    finally:
        await link.close()
        os.close(master)
        os.close(slave)


async def test_forkpty_runs_program_in_raw_mode_with_args_and_restarts():
    # The child echoes its arguments, then everything it reads (cat). Raw mode: no echo, no CR/LF mangling.
    script = "import sys,os; os.write(1, ('|'.join(sys.argv[1:])+'\\n').encode()); os.execvp('cat', ['cat'])"
    link = ForkptyLink(sys.executable, ("-c", script, "--foo", "bar"))
    try:
        await link.open()
        first = link.process.pid
        got = b""
        async with asyncio.timeout(3):
            while b"\n" not in got:
                got += await link.read()
        assert got.startswith(b"--foo|bar\n")
        link.write(b"\x7e\x0a\x0d\x03\x7e")
        got = b""
        async with asyncio.timeout(3):
            while len(got) < 5:
                got += await link.read()
        assert got == b"\x7e\x0a\x0d\x03\x7e"
        link.process.kill()
        with pytest.raises(LinkDown):
            async with asyncio.timeout(3):
                while True:
                    await link.read()
        await link.close()
        await link.open()
        assert link.process.pid != first and link.spawn_count == 2
    finally:
        await link.close()


async def test_forkpty_missing_program_is_a_link_error():
    link = create_link("spinel+hdlc+forkpty:///nonexistent/ncp")
    with pytest.raises(LinkDown, match="cannot start"):
        await link.open()

"""The Chili2's EVBME DFU commands (ncp.cascoda_dfu) and the simulator's flash that answers them."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ncp import cascoda_dfu as dfu
from ncp.cascoda import Cmd
from ncp.sim.dfu import SimFirmware


def chilictl_crc(page: bytes) -> int:
    """The CRC-32 chilictl's Flasher::verify_done computes: zlib's nibble-table algorithm, written out."""
    table = [0] * 16
    for i in range(16):
        c = i
        for _ in range(4):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        table[i] = c
    crc = 0xFFFFFFFF
    for byte in page:
        crc ^= byte
        crc = table[crc & 0x0F] ^ (crc >> 4)
        crc = table[crc & 0x0F] ^ (crc >> 4)
    return ~crc & 0xFFFFFFFF


def image(size: int = 5000, version: bytes = b"OPENTHREAD/cafe123; CASCODA; Dec  3 2026") -> bytes:
    """A Cortex-M application image: vector table (SP in SRAM, Thumb reset handler), then a version."""
    body = struct.pack("<II", 0x20008000, 0x00000101) + version + b"\0"
    return body + bytes(i & 0xFF for i in range(size - len(body)))


def test_wire_layout_follows_evbme_messages_h() -> None:
    assert dfu.encode(dfu.DfuReboot(dfu.RebootMode.DFU)).encode() == bytes((0xDE, 0xA3, 2, 0, 1))
    msg = dfu.encode(dfu.DfuErase(0x10000, 0x800))
    assert msg.cmd == Cmd.EVBME_DFU_CMD and msg.payload == bytes.fromhex("01 00000100 00080000")
    assert dfu.encode(dfu.DfuWrite(0x20, b"\x01\x02\x03\x04")).payload == bytes.fromhex("02 20000000 01020304")
    assert dfu.encode(dfu.DfuCheck(0, 0x800, 0xDEADBEEF)).payload == bytes.fromhex("03 00000000 00080000 efbeadde")
    assert dfu.decode(bytes((4, 0))) == dfu.DfuStatus(0) and dfu.decode(bytes((4, 7))).status == 7
    with pytest.raises(dfu.DfuError):
        dfu.encode(dfu.DfuWrite(0, b"\x01\x02\x03"))  # whole words only


@given(st.binary(max_size=dfu.PAGE_SIZE))
def test_page_checksum_is_chilictls_crc(page) -> None:
    assert dfu.page_checksum(page) == chilictl_crc(page.ljust(dfu.PAGE_SIZE, b"\xff"))


commands = st.one_of(
    st.builds(dfu.DfuReboot, st.sampled_from(list(dfu.RebootMode))),
    st.builds(dfu.DfuErase, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    st.builds(dfu.DfuWrite, st.integers(0, 2**32 - 1),
              st.integers(0, dfu.WRITE_MAX // 4).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n))),
    st.builds(dfu.DfuCheck, st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    st.builds(dfu.DfuStatus, st.integers(0, 255)),
)


@given(commands)
def test_decode_undoes_encode(command) -> None:
    assert dfu.decode(dfu.encode(command).payload) == command


@given(st.binary(max_size=300))
def test_any_payload_decodes_or_is_a_dfu_error(payload) -> None:
    try:
        dfu.decode(payload)
    except dfu.DfuError:
        pass


def test_images_that_are_no_chili2_application_are_refused() -> None:
    dfu.check_image(image())
    for bad in (b"", b"\x00" * 100, b"PK\x03\x04" + b"\x00" * 100, struct.pack("<II", 0x20008000, 0x100) * 4):
        with pytest.raises(dfu.ImageError) as err:
            dfu.check_image(bad)
        assert not err.value.too_large
    with pytest.raises(dfu.ImageError) as err:
        dfu.check_image(image(dfu.MAX_IMAGE + 4))
    assert err.value.too_large
    assert dfu.image_version(image()) == "OPENTHREAD/cafe123; CASCODA; Dec  3 2026"


@given(st.integers(8, 3 * dfu.PAGE_SIZE + 7))
def test_plan_writes_every_byte_and_checks_every_page(size) -> None:
    img = image(max(size, 60))
    plan = dfu.update_plan(img)
    erase, *writes_checks, reboot = plan
    assert isinstance(erase, dfu.DfuErase) and erase.start == dfu.STAGING_BASE and erase.length % dfu.PAGE_SIZE == 0
    assert reboot == dfu.DfuReboot(dfu.RebootMode.APROM)
    written = b"".join(w.data for w in writes_checks if isinstance(w, dfu.DfuWrite))
    assert written[: len(img)] == img and len(written) % 4 == 0
    checks = [c for c in writes_checks if isinstance(c, dfu.DfuCheck)]
    assert len(checks) * dfu.PAGE_SIZE == erase.length
    assert all(len(dfu.encode(c).payload) <= 254 for c in plan)


def run(fw: SimFirmware, plan) -> list[tuple[int, bool]]:
    return [(status.status, restart) for status, restart in (fw.handle(c) for c in plan)]


def test_simulated_flash_installs_a_checked_image_and_keeps_it(tmp_path) -> None:
    path = str(tmp_path / "fw.json")
    fw = SimFirmware(path)
    assert fw.version == ""
    results = run(fw, dfu.update_plan(image()))
    assert all(status == 0 for status, _ in results) and results[-1] == (0, True)
    assert fw.version.startswith("OPENTHREAD/cafe123") and SimFirmware(path).version == fw.version
    # writing where nothing was erased fails as the BSP's flash write does
    assert fw.handle(dfu.DfuWrite(dfu.STAGING_BASE, b"\0\0\0\0"))[0].status == dfu.CaError.INVALID_ARGS
    assert fw.handle(dfu.DfuErase(0x1000, dfu.PAGE_SIZE))[0].status == dfu.CaError.INVALID_ARGS


def test_interrupted_or_corrupted_staging_leaves_the_old_firmware(tmp_path) -> None:
    path = str(tmp_path / "fw.json")
    fw = SimFirmware(path)
    run(fw, dfu.update_plan(image(version=b"OPENTHREAD/old")))
    plan = dfu.update_plan(image(version=b"OPENTHREAD/new"))
    # power cut half-way through the writes: the next start runs the old firmware, and a REBOOT without a
    # whole staged image installs nothing
    half = len(plan) // 2
    run(fw, plan[:half])
    again = SimFirmware(path)
    assert again.version == "OPENTHREAD/old"
    assert again.handle(dfu.DfuReboot(dfu.RebootMode.APROM)) == (dfu.DfuStatus(0), False)
    # a page that does not check out (a write went wrong) spoils the staged image
    fw = SimFirmware(path)
    bad = [dfu.DfuCheck(c.start, c.length, c.checksum ^ 1) if isinstance(c, dfu.DfuCheck) and c.start ==
           dfu.STAGING_BASE else c for c in plan]
    results = run(fw, bad)
    assert dfu.CaError.FAIL in [s for s, _ in results] and results[-1] == (0, False)
    assert fw.version == "OPENTHREAD/old" and fw.counters["check_failed"] == 1

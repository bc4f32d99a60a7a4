"""Firmware Update (object 5, LwM2M 1.1 Appendix E.6) of the radio: the gateway's NCP.

A server delivers the package either by pushing it (Write on Package, /5/0/0; a large one arrives
block-wise, RFC 7959 Block1, reassembled by the CoAP layer) or by naming it (Write on Package URI,
/5/0/1: ``coap://``, ``coaps://`` with the gateway's own PSK, ``http://``, ``https://``), which the
gateway then downloads. The package is checked before anything touches the NCP (an image the installer
cannot take is refused at once); then Execute on Update (/5/0/2) hands it to the installer, which writes
it to the NCP and restarts it (:mod:`gatewayd.ncp.firmware`: the Chili2's EVBME DFU commands).

State (/5/0/3) and Update Result (/5/0/5) follow the object's state machine:

========================  ==========================================  ========================
event                     State                                       Update Result
========================  ==========================================  ========================
URI written               0 → 1 Downloading                           0
download done, image ok   1 → 2 Downloaded (push: 0 → 2 at once)      0
download failed           → 0 Idle                                    4 lost, 7 bad URI, 9 scheme
image refused             → 0 Idle                                    2 too large, 6 wrong image
Update executed           2 → 3 Updating                              0
NCP reports the image's   3 → 0 Idle                                  1 success
version
a page does not check     3 → 0 Idle (package dropped)                5 integrity check failure
link lost, old firmware   3 → 2 Downloaded (Update may be executed    8 update failed
still running             again)
empty Package / URI       → 0 Idle                                    0
========================  ==========================================  ========================

Why a failure happened is logged (``LWM2M_FIRMWARE`` journal field) and kept for ``gatewayctl lwm2m show``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from aiocoap.numbers.codes import Code

from common.aio import cancel_and_wait

from .errors import LwM2MError
from .paths import LwM2MPath
from .store import ObjectStore, Origin

log = logging.getLogger("gatewayd.lwm2m")

FIRMWARE = 5
PACKAGE, PACKAGE_URI, UPDATE, STATE, UPDATE_RESULT = 0, 1, 2, 3, 5
PKG_NAME, PKG_VERSION, PROTOCOLS, DELIVERY = 6, 7, 8, 9
#: /5/0/8 Firmware Update Protocol Support: 0 CoAP, 1 CoAPS, 2 HTTP 1.1, 3 HTTPS 1.1
SCHEMES = {"coap": 0, "coaps": 1, "http": 2, "https": 3}
DELIVERY_BOTH = 2  # /5/0/9: pull and push
DOWNLOAD_TIMEOUT = 120.0
MAX_PACKAGE = 1 << 20


class FirmwareState(enum.IntEnum):
    IDLE = 0
    DOWNLOADING = 1
    DOWNLOADED = 2
    UPDATING = 3


class UpdateResult(enum.IntEnum):
    INITIAL = 0
    SUCCESS = 1
    NOT_ENOUGH_FLASH = 2
    OUT_OF_RAM = 3
    CONNECTION_LOST = 4
    INTEGRITY_CHECK_FAILURE = 5
    UNSUPPORTED_PACKAGE_TYPE = 6
    INVALID_URI = 7
    UPDATE_FAILED = 8
    UNSUPPORTED_PROTOCOL = 9


class UpdateFailed(Exception):
    """A download, check or installation that did not work: the Update Result and why."""

    def __init__(self, result: UpdateResult, reason: str) -> None:
        super().__init__(reason)
        self.result = result
        self.reason = reason


class Installer(Protocol):
    """What writes a package to the device it is for (here the NCP)."""

    def check(self, package: bytes) -> None:
        """Raise UpdateFailed (NOT_ENOUGH_FLASH, UNSUPPORTED_PACKAGE_TYPE) for a package it cannot take."""

    async def install(self, package: bytes) -> str:
        """Write and start the package; the version the device reports now. UpdateFailed otherwise."""


Fetcher = Callable[[str, int], Awaitable[bytes]]


@dataclass
class CoapsCredentials:
    identity: bytes
    key: bytes


async def fetch_package(uri: str, limit: int = MAX_PACKAGE, psk: CoapsCredentials | None = None) -> bytes:
    """Download ``uri`` (at most ``limit`` bytes): CoAP(S) with block-wise transfer, HTTP(S) with urllib."""
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        return await asyncio.wait_for(asyncio.to_thread(_http_get, uri, limit), DOWNLOAD_TIMEOUT)
    import aiocoap

    ctx = await aiocoap.Context.create_client_context(
        loggername="gatewayd.lwm2m.firmware.coap", transports=["tinydtls" if parts.scheme == "coaps" else "udp6"])
    try:
        if parts.scheme == "coaps":
            from aiocoap.credentials import DTLS

            if psk is None:
                raise UpdateFailed(UpdateResult.UNSUPPORTED_PROTOCOL, "coaps:// needs the server's PSK")
            ctx.client_credentials[f"coaps://{parts.netloc}/*"] = DTLS(psk.key, psk.identity)
        request = ctx.request(aiocoap.Message(code=Code.GET, uri=uri), handle_blockwise=True)
        resp = await asyncio.wait_for(request.response, DOWNLOAD_TIMEOUT)
        if not resp.code.is_successful():
            raise UpdateFailed(UpdateResult.INVALID_URI, f"{uri} answered {resp.code.dotted}")
        if len(resp.payload) > limit:
            raise UpdateFailed(UpdateResult.NOT_ENOUGH_FLASH, f"package of {len(resp.payload)} bytes")
        return bytes(resp.payload)
    finally:
        await asyncio.wait_for(ctx.shutdown(), 3)


def _http_get(uri: str, limit: int) -> bytes:
    try:
        with urllib.request.urlopen(uri, timeout=30) as resp:  # the scheme was checked: http or https
            body = resp.read(limit + 1)
    except urllib.error.HTTPError as exc:
        raise UpdateFailed(UpdateResult.INVALID_URI, f"{uri} answered HTTP {exc.code}") from None
    if len(body) > limit:
        raise UpdateFailed(UpdateResult.NOT_ENOUGH_FLASH, f"package larger than {limit} bytes")
    return body


class FirmwareUpdate:
    """Object 5 instance 0 in ``store``, driving ``installer``."""

    def __init__(self, store: ObjectStore, installer: Installer, *, fetch: Fetcher | None = None,
                 limit: int = MAX_PACKAGE, on_installed: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.installer = installer
        self.fetch = fetch or (lambda uri, limit: fetch_package(uri, limit))
        self.limit = limit
        self.on_installed = on_installed
        self.package = b""
        self.reason = ""  # why the last download or update failed
        self.updated_at: float | None = None
        self._task: asyncio.Task[None] | None = None
        store.add_instance(FIRMWARE, 0, {PACKAGE_URI: "", STATE: 0, UPDATE_RESULT: 0, PKG_NAME: "", PKG_VERSION: "",
                                          PROTOCOLS: dict(enumerate(SCHEMES.values())), DELIVERY: DELIVERY_BOTH})
        store.set_write_hook(FIRMWARE, self._written)
        store.set_execute_handler(FIRMWARE, UPDATE, self._execute_update)

    @property
    def state(self) -> FirmwareState:
        return FirmwareState(self.store.get(LwM2MPath(FIRMWARE, 0, STATE)))

    @property
    def result(self) -> UpdateResult:
        return UpdateResult(self.store.get(LwM2MPath(FIRMWARE, 0, UPDATE_RESULT)))

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state.name.lower(), "update_result": self.result.name.lower(),
                               "package_bytes": len(self.package)}
        if self.reason:
            out["reason"] = self.reason
        return out

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    # --- the state machine ---------------------------------------------------------------------------
    def _set(self, state: FirmwareState, result: UpdateResult, reason: str = "") -> None:
        self.store.set(LwM2MPath(FIRMWARE, 0, STATE), int(state))
        self.store.set(LwM2MPath(FIRMWARE, 0, UPDATE_RESULT), int(result))
        if reason:
            self.reason = reason
            log.warning("firmware update: %s (Update Result %d)", reason, int(result),
                        extra={"fields": {"LWM2M_FIRMWARE": result.name, "LWM2M_FIRMWARE_STATE": state.name}})
        elif result is UpdateResult.SUCCESS:
            self.reason = ""

    def _written(self, path: LwM2MPath, entries: list[tuple[LwM2MPath, Any]], origin: Origin) -> None:
        if origin is not Origin.SERVER:
            return
        for p, value in entries:
            if p.resource == PACKAGE:
                self._push(bytes(value))
            elif p.resource == PACKAGE_URI:
                self._pull(str(value))
        # the package itself is kept here, not in the store (Package is write-only)
        asyncio.get_running_loop().call_soon(self.store.set, LwM2MPath(FIRMWARE, 0, PACKAGE), b"")

    def _busy(self) -> None:
        if self.state is FirmwareState.UPDATING:
            raise LwM2MError(Code.METHOD_NOT_ALLOWED, "an update is in progress")

    def _push(self, package: bytes) -> None:
        self._busy()
        self._cancel_download()
        if package in (b"", b"\0"):
            self.package = b""
            self._set(FirmwareState.IDLE, UpdateResult.INITIAL)
            return
        self._accept(package)

    def _accept(self, package: bytes) -> None:
        try:
            if len(package) > self.limit:
                raise UpdateFailed(UpdateResult.NOT_ENOUGH_FLASH, f"package of {len(package)} bytes")
            self.installer.check(package)
        except UpdateFailed as exc:
            self.package = b""
            self._set(FirmwareState.IDLE, exc.result, f"package refused: {exc.reason}")
            return
        self.package = package
        self._set(FirmwareState.DOWNLOADED, UpdateResult.INITIAL)

    def _pull(self, uri: str) -> None:
        self._busy()
        self._cancel_download()
        self.package = b""
        if not uri:
            self._set(FirmwareState.IDLE, UpdateResult.INITIAL)
            return
        parts = urlsplit(uri)
        if parts.scheme not in SCHEMES:
            self._set(FirmwareState.IDLE, UpdateResult.UNSUPPORTED_PROTOCOL, f"scheme of {uri!r} not supported")
            return
        if not parts.netloc:
            self._set(FirmwareState.IDLE, UpdateResult.INVALID_URI, f"{uri!r} names no host")
            return
        self._set(FirmwareState.DOWNLOADING, UpdateResult.INITIAL)
        self._task = asyncio.get_running_loop().create_task(self._download(uri), name="lwm2m firmware download")

    def _cancel_download(self) -> None:
        if self._task is not None and self.state is FirmwareState.DOWNLOADING:
            self._task.cancel()
            self._task = None

    async def _download(self, uri: str) -> None:
        try:
            package = await self.fetch(uri, self.limit)
        except asyncio.CancelledError:
            raise
        except UpdateFailed as exc:
            self._set(FirmwareState.IDLE, exc.result, f"download of {uri} failed: {exc.reason}")
            return
        except Exception as exc:  # unreachable, refused, timed out, DNS: the connection is lost
            self._set(FirmwareState.IDLE, UpdateResult.CONNECTION_LOST,
                      f"download of {uri} failed: {type(exc).__name__}: {exc}")
            return
        log.info("firmware update: downloaded %d bytes from %s", len(package), uri)
        self._accept(package)

    def _execute_update(self, path: LwM2MPath, args: bytes) -> None:
        if self.state is not FirmwareState.DOWNLOADED or not self.package:
            raise LwM2MError(Code.METHOD_NOT_ALLOWED, "no package downloaded (State is not 2)")
        self._set(FirmwareState.UPDATING, UpdateResult.INITIAL)
        self._task = asyncio.get_running_loop().create_task(self._update(self.package), name="lwm2m firmware update")

    async def _update(self, package: bytes) -> None:
        started = time.monotonic()
        try:
            version = await self.installer.install(package)
        except asyncio.CancelledError:
            raise
        except UpdateFailed as exc:
            if exc.result is UpdateResult.UPDATE_FAILED:
                self._set(FirmwareState.DOWNLOADED, exc.result, f"update failed, old firmware kept: {exc.reason}")
            else:
                self.package = b""
                self._set(FirmwareState.IDLE, exc.result, f"update failed, old firmware kept: {exc.reason}")
            return
        except Exception as exc:  # a bug in the installer: reported, never raised into the loop
            log.exception("firmware installer failed")
            self._set(FirmwareState.DOWNLOADED, UpdateResult.UPDATE_FAILED, f"installer error: {type(exc).__name__}")
            return
        self.package = b""
        self.updated_at = time.time()
        self.store.set(LwM2MPath(FIRMWARE, 0, PKG_VERSION), version[:255])
        self._set(FirmwareState.IDLE, UpdateResult.SUCCESS)
        log.info("firmware update: the NCP runs %s (%.1f s)", version, time.monotonic() - started,
                 extra={"fields": {"LWM2M_FIRMWARE": "SUCCESS"}})
        if self.on_installed is not None:
            self.on_installed(version)

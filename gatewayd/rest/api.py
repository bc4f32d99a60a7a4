"""otbr-agent's REST API (ot-br-posix ``src/rest``, its ``openapi.yaml``) on aiohttp: the paths, methods,
content types and status codes python-otbr-api relies on.

| path | methods |
|---|---|
| ``/node`` | GET (node info), DELETE (factory reset) |
| ``/node/state`` | GET (``"leader"``…), PUT ``"enable"``/``"disable"`` |
| ``/node/dataset/active`` | GET, PUT: JSON, or hex TLVs with ``Accept``/``Content-Type: text/plain``; 204 without one |
| ``/node/dataset/pending`` | GET (204 without one), PUT (JSON with ``Delay``, or hex TLVs; 201 when none was in \
place, 412 with ``If-None-Match: *`` while one is, 409 when the NCP would never take it), DELETE |
| ``/node/ba-id``, ``/node/ext-address``, ``/node/coprocessor/version`` | GET |
| ``/metrics`` | GET: Prometheus' text format (``[rest] metrics``; gatewayd's own, not otbr-agent's) |
| ``/``, ``/status.json`` | GET: the status page and what it shows (gatewayd's own) |

``/api/actions`` and ``/.well-known/thread/br-rest`` are absent (404), so python-otbr-api speaks the
PascalCase generation of the API; ``/node/ba-epskc/*`` is absent (no border agent: 404 means "not
supported" to python-otbr-api).

A listener on a non-loopback address wants ``Authorization: Bearer <[rest] token>`` on every request that
reads the dataset or changes the network (401 otherwise); on loopback the API answers as otbr-agent does.
``/metrics``, ``/`` and ``/status.json`` show no secret, so they are open on every listener, as the node's
state is.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import web

from gatewayd import __version__
from gatewayd.rest.dataset_json import (
    BadDataset,
    dataset_from_json,
    dataset_json,
    merge,
    pending_dataset_json,
    pending_from_json,
)
from gatewayd.rest.node import Conflict, Invalid, Node, Unavailable
from gatewayd.rest.page import PAGE
from gatewayd.rest.readings import Readings
from gatewayd.rest.recent import RecentProblems
from ncp.client import NcpError
from ncp.meshcop import Dataset, MeshCoPError

log = logging.getLogger("gatewayd.rest")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PLAIN = "text/plain"
# Cross-origin reads only of what reveals nothing: otbr-agent allows every origin everything, which lets any
# web page opened on the machine read the network key from the loopback API and pass a preflight for writes.
CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET"}
SECRET_OR_WRITE = ("/node/dataset/active", "/node/dataset/pending")


def error(status: int, detail: str = "") -> web.Response:
    """otbr-agent's error body ({"ErrorCode", "ErrorMessage"}), with what went wrong as ``detail``."""
    phrase = HTTPStatus(status).phrase
    body: dict[str, Any] = {"ErrorCode": status, "ErrorMessage": f"{status} {phrase}"}
    if detail:
        body["detail"] = detail
    return ok_json(body, status)


def ok_json(value: Any, status: int = 200) -> web.Response:
    """A JSON body, ``Content-Type: application/json`` exactly as otbr-agent's (no charset)."""
    return web.Response(body=json.dumps(value).encode(), status=status, headers={"Content-Type": "application/json"})


class RestApi:
    """The API as served on one listener: ``trusted`` (loopback) or wanting ``token``."""

    def __init__(self, node: Node, trusted: bool, token: bytes, readings: Readings | None = None,
                 metrics: bool = False, recent: RecentProblems | None = None):
        self.node = node
        self.recent = recent
        self.trusted = trusted
        self.token = token
        self.readings = readings
        self.metrics = metrics and readings is not None

    def application(self) -> web.Application:
        app = web.Application(middlewares=[self._errors], client_max_size=64 * 1024)
        r = app.router
        r.add_get("/node", self.get_node)
        r.add_delete("/node", self._guarded(self.delete_node))
        r.add_get("/node/ba-id", self.get_ba_id)
        r.add_get("/node/ext-address", self.get_ext_address)
        r.add_get("/node/coprocessor/version", self.get_coprocessor_version)
        r.add_get("/node/state", self.get_state)
        r.add_put("/node/state", self._guarded(self.put_state))
        r.add_get("/node/dataset/active", self._guarded(self.get_active))
        r.add_put("/node/dataset/active", self._guarded(self.put_active))
        r.add_get("/node/dataset/pending", self._guarded(self.get_pending))
        r.add_put("/node/dataset/pending", self._guarded(self.put_pending))
        r.add_delete("/node/dataset/pending", self._guarded(self.delete_pending))
        if self.metrics:
            r.add_get("/metrics", self.get_metrics)
        if self.readings is not None:
            r.add_get("/", self.get_page)
            r.add_get("/status.json", self.get_status)
        for path in ("/node/state", "/node/dataset/active", "/node/dataset/pending"):
            r.add_route("OPTIONS", path, self.options)
        app.on_response_prepare.append(_cors)
        return app

    # ---- cross-cutting ---------------------------------------------------------------------------
    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPMethodNotAllowed:
            return error(405)
        except web.HTTPNotFound:
            return error(404)
        except Unavailable as exc:
            return error(503, str(exc))
        except Conflict as exc:
            return error(409, str(exc))
        except (BadDataset, Invalid, MeshCoPError) as exc:
            return error(400, str(exc))
        except UnicodeDecodeError:
            return error(400, "the body is not UTF-8 text")
        except NcpError as exc:
            log.warning("%s %s: the NCP refused: %s", request.method, request.path, exc)
            return error(500, f"the NCP refused: {exc}")

    def _guarded(self, handler: Handler) -> Handler:
        """Reads of the dataset and every change: on a non-loopback listener only with the bearer token."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            if not self.trusted:
                token = self.token
                given = request.headers.get("Authorization", "")
                scheme, _, value = given.partition(" ")
                if not token or scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token):
                    log.info("refused %s %s from %s: no valid bearer token", request.method, request.path,
                             request.remote)
                    response = error(401, "this request needs Authorization: Bearer <[rest] token>")
                    response.headers["WWW-Authenticate"] = 'Bearer realm="gatewayd"'
                    return response
            return await handler(request)

        return guarded

    async def options(self, request: web.Request) -> web.Response:
        return web.Response(status=200)

    # ---- /node -----------------------------------------------------------------------------------
    async def get_node(self, request: web.Request) -> web.Response:
        return ok_json(await self.node.node_info())

    async def delete_node(self, request: web.Request) -> web.Response:
        await self.node.factory_reset()
        return web.Response(status=200)

    async def get_ba_id(self, request: web.Request) -> web.Response:
        return ok_json(self.node.border_agent_id().hex().upper())

    async def get_ext_address(self, request: web.Request) -> web.Response:
        return ok_json((await self.node.ext_address()).hex().upper())

    async def get_coprocessor_version(self, request: web.Request) -> web.Response:
        return ok_json(self.node.coprocessor_version())

    async def get_state(self, request: web.Request) -> web.Response:
        return ok_json(await self.node.role())

    async def put_state(self, request: web.Request) -> web.Response:
        try:
            wanted = json.loads(await request.text())
        except ValueError:
            return error(400, 'expected "enable" or "disable"')
        if wanted not in ("enable", "disable"):
            return error(400, 'expected "enable" or "disable"')
        await self.node.set_enabled(wanted == "enable")
        return web.Response(status=200)

    # ---- gatewayd's own ------------------------------------------------------------------------------
    async def get_metrics(self, request: web.Request) -> web.Response:
        """Prometheus' scrape: read now (nothing is collected between scrapes); no secrets, no token."""
        from gatewayd.rest import metrics  # prometheus_client only once scraped

        assert self.readings is not None
        body = metrics.render(await self.readings.metrics())
        return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE})

    async def get_page(self, request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html", headers={"Cache-Control": "no-cache"})

    async def get_status(self, request: web.Request) -> web.Response:
        """The status page's data: the gatewayctl readings (no secrets) and the last problems logged."""
        assert self.readings is not None
        status = await self.readings.status_page()
        status["version"] = __version__
        status["problems"] = self.recent.rows() if self.recent is not None else []
        return web.Response(body=json.dumps(status).encode(), content_type="application/json",
                            headers={"Cache-Control": "no-store"})

    # ---- datasets --------------------------------------------------------------------------------
    async def get_active(self, request: web.Request) -> web.Response:
        tlvs = await self.node.active_tlvs()
        if tlvs is None:
            return web.Response(status=204)
        if request.headers.get("Accept") == PLAIN:
            return web.Response(body=tlvs.hex().upper().encode(), headers={"Content-Type": PLAIN})
        return ok_json(dataset_json(Dataset.from_tlvs(tlvs)))

    async def put_active(self, request: web.Request) -> web.Response:
        """Updates the active dataset with the fields given (otDatasetUpdateTlvs); without one, a new network's
        is made first (otDatasetCreateNewNetwork) and the answer is 201."""
        current = await self.node.active_dataset()
        status = 200
        if current is None:
            current, status = Dataset.generate(), 201
        update = await _update(request, dataset_from_json, current)
        await self.node.set_active_dataset(merge(current, update))
        return web.Response(status=status)

    async def get_pending(self, request: web.Request) -> web.Response:
        """``gatewayctl dataset pending``: 204 without one; the delay is what remains."""
        dataset = await self.node.pending_dataset()
        if dataset is None:
            return web.Response(status=204)
        if request.headers.get("Accept") == PLAIN:
            return web.Response(body=dataset.to_tlvs().hex().upper().encode(), headers={"Content-Type": PLAIN})
        return ok_json(pending_dataset_json(dataset))

    async def put_pending(self, request: web.Request) -> web.Response:
        """What ``gatewayctl channel change`` runs, with the dataset the client made: the fields given update the
        pending dataset in place, or (none in place: 201) the active dataset. otbr-agent starts from a new
        network's there, which python-otbr-api's complete datasets override anyway; starting from the active
        one keeps a partial update (a channel and a delay) on this network. ``If-None-Match: *`` refuses (412)
        while a pending dataset is in place, as ot-br-posix#3552."""
        current = await self.node.pending_dataset()
        if current is not None and request.headers.get("If-None-Match", "").strip() == "*":
            return error(412, "a pending dataset is in place: wait until it is active, or DELETE it")
        status = 200
        if current is None:
            current, status = await self.node.active_dataset() or Dataset(), 201
        update = await _update(request, pending_from_json, current)
        await self.node.set_pending_dataset(merge(current, update))
        return web.Response(status=status)

    async def delete_pending(self, request: web.Request) -> web.Response:
        """``gatewayctl dataset pending clear``."""
        await self.node.clear_pending_dataset()
        return web.Response(status=200)


async def _update(request: web.Request, from_json: Callable[[Any, Dataset | None], Dataset], base: Dataset) -> Dataset:
    """The fields a PUT sets: hex TLVs with ``Content-Type: text/plain``, else JSON read by ``from_json`` against
    ``base``, the dataset they update."""
    body = await request.text()
    if request.headers.get("Content-Type", "").split(";")[0].strip() == PLAIN:
        try:
            return Dataset.from_tlvs(bytes.fromhex(body.strip()))
        except ValueError as exc:
            raise BadDataset(f"not hex TLVs: {exc}") from None
    try:
        parsed = json.loads(body)
    except ValueError:
        raise BadDataset("not JSON") from None
    return from_json(parsed, base)


async def _cors(request: web.Request, response: web.StreamResponse) -> None:
    if request.method == "GET" and request.path not in SECRET_OR_WRITE:
        for name, value in CORS.items():
            response.headers.setdefault(name, value)

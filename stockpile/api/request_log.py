"""One log line and one count per request (see ``stockpile.logs`` and ``stockpile.metrics``): who
asked what, how it ended, how long it took.

The line names the route template (``/api/v1/lots/{lot_id}``), never the path with its ids,
and the principal by name; never a token or a body. Probes and scrapes (``/health``, ``/metrics``)
are logged at DEBUG. Every line written while the request is served carries its request id, which
the response returns as ``X-Request-Id``. The request metrics (``stockpile_requests_total`` and its
kin) are labelled by the same route template; scrapes of ``/metrics`` are not counted.

The middleware starts the clock, names the request and counts it in progress; the line and the
counts are written as the response starts (a ``before_send`` hook), so a request ended by an
exception — also one raised before its handler, such as a 401 — is logged and counted with the
status its problem document was sent with.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from stockpile.api.audit import request_id
from stockpile.logs import REQUEST_ID
from stockpile.metrics import http_metrics

log = logging.getLogger("stockpile.api.requests")

ROUTINE_PATHS = ("/health", "/metrics")
UNCOUNTED_PATHS = ("/metrics",)
APP_NAME = "stockpile"

# Labelled children of the request metrics, by (method, route template, status): found once per
# route and status rather than by prometheus_client's locked lookup on every request.
_finished: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
_running: dict[tuple[str, str], Any] = {}


def request_log(app: ASGIApp) -> ASGIApp:
    async def timed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["started"] = time.perf_counter()
        token = REQUEST_ID.set(request_id(scope))
        running = None
        if not scope["path"].startswith(UNCOUNTED_PATHS):
            running = _in_progress(scope["method"], _route(scope))
            running.inc()
        try:
            await app(scope, receive, send)
        finally:
            if running is not None:
                running.dec()
            REQUEST_ID.reset(token)

    return timed


async def log_response(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start" or scope["type"] != "http":
        return
    rid = request_id(scope)
    message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode("latin-1", "replace"))]
    state, path, status = scope.get("state", {}), scope.get("path", ""), message["status"]
    started, route = state.get("started"), _route(scope)
    duration = None if started is None else time.perf_counter() - started
    # Counted only once a route was found (the middleware ran): an unknown path is no label value.
    if duration is not None and not path.startswith(UNCOUNTED_PATHS):
        requests, errors, seconds = _counts(scope["method"], route, status)
        requests.inc()
        seconds.observe(duration)
        if errors is not None:
            errors.inc()
    client = state.get("client_address") or (scope.get("client") or ("",))[0]
    log.log(logging.DEBUG if path.startswith(ROUTINE_PATHS) else logging.INFO, "request", extra={
        "request_id": rid, "principal": getattr(scope.get("user"), "name", None),
        "route": route, "method": scope.get("method"), "status": status, "client": client,
        "duration_ms": None if duration is None else round(duration * 1000, 3)})


def _route(scope: Scope) -> str:
    return scope.get("path_template") or scope.get("path", "")


def _in_progress(method: str, route: str) -> Any:
    child = _running.get((method, route))
    if child is None:
        child = _running[method, route] = http_metrics().in_progress.labels(method, route, 200, APP_NAME)
    return child


def _counts(method: str, route: str, status: int) -> tuple[Any, Any, Any]:
    children = _finished.get((method, route, status))
    if children is None:
        m, labels = http_metrics(), (method, route, status, APP_NAME)
        children = _finished[method, route, status] = (
            m.requests.labels(*labels), m.errors.labels(*labels) if status >= 500 else None,
            m.duration.labels(*labels))
    return children

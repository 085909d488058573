"""One log line per request (see ``stockpile.logs``): who asked what, how it ended, how long it took.

The line names the route template (``/api/v1/lots/{lot_id:str}``), never the path with its ids,
and the principal by name; never a token or a body. Probes and scrapes (``/health``, ``/metrics``)
are logged at DEBUG. Every line written while the request is served carries its request id, which
the response returns as ``X-Request-Id``.

The middleware starts the clock and names the request; the line itself is written as the response
starts (a ``before_send`` hook), so a request ended by an exception is logged with the status its
problem document was sent with.
"""

from __future__ import annotations

import logging
import time

from litestar.types import ASGIApp, Message, Receive, Scope, Send

from stockpile.api.audit import request_id
from stockpile.logs import REQUEST_ID

log = logging.getLogger("stockpile.api.requests")

ROUTINE_PATHS = ("/health", "/metrics")


def request_log(app: ASGIApp) -> ASGIApp:
    async def timed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})["started"] = time.perf_counter()
        token = REQUEST_ID.set(request_id(scope))
        try:
            await app(scope, receive, send)
        finally:
            REQUEST_ID.reset(token)

    return timed


async def log_response(message: Message, scope: Scope) -> None:
    if message["type"] != "http.response.start" or scope["type"] != "http":
        return
    rid = request_id(scope)
    message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode("latin-1", "replace"))]
    state, path = scope.get("state", {}), scope.get("path", "")
    started = state.get("started")
    client = state.get("client_address") or (scope.get("client") or ("",))[0]
    log.log(logging.DEBUG if path.startswith(ROUTINE_PATHS) else logging.INFO, "request", extra={
        "request_id": rid, "principal": getattr(scope.get("user"), "name", None),
        "route": scope.get("path_template") or path, "method": scope.get("method"), "status": message["status"],
        "client": client,
        "duration_ms": None if started is None else round((time.perf_counter() - started) * 1000, 3)})

"""The OpenAPI document and the interactive docs.

The document is built by Litestar from the routes (their parameters, request Structs, return
annotations and ``responses=``) and finished here once, when the app starts:

- every ``/api/v1`` operation needs the bearer token (security scheme ``bearer``) and can answer
  401 and 429; one that takes parameters or a body can answer 422; a guarded one 403;
- Litestar's generic ``400 {status_code, detail, extra}`` answer is dropped: the service never
  sends it (a bad request is a 422 ``validation`` problem);
- the list endpoints that export CSV say so (``text/csv`` beside JSON, see ``CSV_EXPORTS``);
- the main operations carry an example request and answer (``stockpile.api.schemas.examples``).

The docs (Swagger UI at ``/docs`` and ``/schema``) load their scripts and styles from the service
itself (``stockpile/api/static/swagger-ui``, shipped with the package with its licence), so they
work on a network with no way out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.openapi.spec.enums import OpenAPIType
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import (
    Components, OpenAPIMediaType as MediaType, OpenAPIResponse, Operation, Reference, Schema, SecurityScheme,
)
from litestar.routes import HTTPRoute
from litestar.static_files import create_static_files_router

from stockpile import __version__
from stockpile.api.problems import PROBLEM_JSON
from stockpile.api.schemas import examples
from stockpile.api.schemas.problems import Problem as ProblemSchema
from stockpile.api.schemas.problems import problem_answer

ASSETS = Path(__file__).parent / "static" / "swagger-ui"
ASSETS_PATH = "/docs/assets"
SECURITY = "bearer"

# The lists that also answer ``Accept: text/csv`` (API.md, Exports): same filters, every row.
CSV_EXPORTS = frozenset({
    "/api/v1/stock", "/api/v1/lots", "/api/v1/movements", "/api/v1/transfers", "/api/v1/coverage",
    "/api/v1/alerts", "/api/v1/rotation-orders", "/api/v1/allocation-requests", "/api/v1/audit-events",
})

DESCRIPTION = """Jointly held national reserves: ledger, stock, transfers, targets, rotation, readiness and allocation.

Every `/api/v1` operation needs `Authorization: Bearer <token>` (make one with `stockpile token create`;
here: **Authorize**). Quantities are exact decimal strings in the material's decimals. Errors are RFC 9457
problem details (`application/problem+json`) with a stable `type`. Ledger POSTs need an `Idempotency-Key`:
the same key and body answer the first result again (`Idempotent-Replayed: true`). Lists take `limit`
(1–1000, default 100) and `cursor` (the `next_cursor` of the page before) and answer `{items, next_cursor}`."""


def docs_plugin() -> SwaggerRenderPlugin:
    """Swagger UI with its assets served by the service (``/docs/assets``), never a CDN."""
    return SwaggerRenderPlugin(
        js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js", css_url=f"{ASSETS_PATH}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS_PATH}/swagger-ui-standalone-preset.js",
        favicon=f"<link rel='icon' type='image/png' href='{ASSETS_PATH}/favicon-32x32.png'>",
        path="/swagger",
    )


def docs_assets():
    """The router serving the docs' scripts, styles and licence from the package."""
    return create_static_files_router(path=ASSETS_PATH, directories=[ASSETS], include_in_schema=False,
                                      cache_control=None, name="docs-assets")


def config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="stockpile", version=__version__, path="/schema", description=DESCRIPTION,
        components=Components(security_schemes={SECURITY: SecurityScheme(
            type="http", scheme="bearer",
            description="An API token made with `stockpile token create` (stored hashed, shown once).")}),
        render_plugins=[docs_plugin()],
    )


def finish(app: Litestar) -> None:
    """Complete the document before the first request reads it (an ``on_startup`` hook; running it
    again changes nothing)."""
    document = app.openapi_schema
    guarded = _guarded_operations(app)
    # Registered by the routes' problem answers (``problem_answers``; /health/ready declares 503).
    problem = Reference(ref=f"#/components/schemas/{ProblemSchema.__name__}")
    assert ProblemSchema.__name__ in document.components.schemas, "no route declares a problem answer"
    for path, item in (document.paths or {}).items():
        for method in ("get", "put", "post", "delete", "patch"):
            operation: Operation | None = getattr(item, method)
            if operation is not None:
                _finish_operation(path, method, operation, (path, method.upper()) in guarded, problem)


def _guarded_operations(app: Litestar) -> set[tuple[str, str]]:
    found = set()
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                if isinstance(handler, HTTPRouteHandler) and handler.resolve_guards():
                    found.update((route.path_format, method) for method in handler.http_methods)
    return found


def _finish_operation(path: str, method: str, operation: Operation, guarded: bool, problem: Reference) -> None:
    responses = operation.responses if operation.responses is not None else {}
    operation.responses = responses
    default_400 = responses.get("400")
    if isinstance(default_400, OpenAPIResponse) and _is_framework_error(default_400):
        del responses["400"]
    common: list[int] = []
    if path.startswith("/api/v1"):
        operation.security = [{SECURITY: []}]
        common += [401, 429]
        if guarded:
            common.append(403)
    if operation.parameters or operation.request_body is not None:
        common.append(422)
    if operation.request_body is not None:
        common.append(413)
    for status in common:
        responses.setdefault(str(status), _problem(status, problem))
    if method == "get" and path in CSV_EXPORTS:
        _add_csv(responses)
    examples.attach(path, method, operation)


def _is_framework_error(response: OpenAPIResponse) -> bool:
    """Litestar's own 400 body (``{status_code, detail, extra}``), not one of ours."""
    for media in (response.content or {}).values():
        schema = media.schema
        if isinstance(schema, Schema) and schema.properties and "status_code" in schema.properties:
            return True
    return False


def _problem(status: int, schema: Reference) -> OpenAPIResponse:
    spec = problem_answer(status)
    return OpenAPIResponse(
        description=spec.description,
        content={PROBLEM_JSON: MediaType(
            schema=schema,
            examples={e.summary or str(status): e for e in spec.examples or []} or None,
        )},
    )


def _add_csv(responses: dict[str, Any]) -> None:
    ok = responses.get("200")
    if isinstance(ok, OpenAPIResponse):
        ok.content = dict(ok.content or {})
        ok.content["text/csv"] = MediaType(schema=Schema(
            type=OpenAPIType.STRING,
            description="With `Accept: text/csv`: one header row of the JSON member names (nested ones dotted), "
                        "then every matching row, same filters, no paging."))


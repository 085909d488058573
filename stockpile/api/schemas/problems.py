"""RFC 9457 problem details as the document shows them, and the one helper that declares an
operation's problem answers (``responses=problem_answers(404, 409)``).

Every answer the service gives outside 2xx is ``application/problem+json`` with a stable ``type``
(``stockpile.api.problems.STATUS``). The answers every ``/api/v1`` operation can give — 401
without a valid token, 429 when rate-limited, 422 when it takes parameters or a body, 403 when
it is guarded — are added to each operation by ``stockpile.api.openapi``; an operation declares
the others it can give (404 for something it reads or changes by id, 409 for a refused change).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example

from stockpile.api.problems import PROBLEM_JSON
from stockpile.api.schemas import Quantity, Schema


class FieldError(Schema):
    field: Annotated[str, msgspec.Meta(description="The member, parameter or header at fault (dotted for nested members).")]
    message: str


class Problem(Schema):
    """A problem detail. Clients branch on ``type``; some types carry extra members (listed here)."""

    type: Annotated[str, msgspec.Meta(description="Stable problem type, e.g. `insufficient-stock`, `not-found`.")]
    title: str
    status: int
    detail: str
    instance: Annotated[str | None, msgspec.Meta(description="The path of the request that failed.")] = None
    errors: Annotated[list[FieldError] | None, msgspec.Meta(description="`validation`: what is wrong, per field.")] = None
    available: Annotated[Quantity | None, msgspec.Meta(description="`insufficient-stock`: what could be taken.")] = None
    index: Annotated[int | None, msgspec.Meta(description="A batch's failing movement (0-based).")] = None
    retry_after: Annotated[float | None, msgspec.Meta(description="`rate-limited`: seconds to wait (also `Retry-After`).")] = None


# The stable types each status can carry, as the document describes them.
TYPES: dict[int, tuple[str, ...]] = {
    401: ("unauthenticated",),
    403: ("forbidden",),
    404: ("not-found",),
    409: ("conflict", "insufficient-stock", "unusable-lot", "floor-protected", "idempotency-conflict"),
    413: ("payload-too-large",),
    422: ("validation", "plan-too-large"),
    429: ("rate-limited",),
    503: ("retry", "not-ready"),
}

MEANING = {
    401: "No valid bearer token",
    403: "The token's principal may not do this here (role, scope or clearance)",
    404: "Nothing with this id or code that the caller may see",
    409: "Refused: the change would break a rule of the reserve",
    413: "The request body is too large",
    422: "The request is not valid (per-field `errors`)",
    429: "Too many requests from this principal or address (see `Retry-After`)",
    503: "Not available now: retry (see `Retry-After`) or not ready",
}

EXAMPLES: dict[int, dict[str, Any]] = {
    401: {"type": "unauthenticated", "title": "Authentication required", "status": 401,
          "detail": "missing or invalid bearer token", "instance": "/api/v1/stock"},
    403: {"type": "forbidden", "title": "Forbidden", "status": 403,
          "detail": "no operator rights at warehouse WH-S-02", "instance": "/api/v1/movements"},
    404: {"type": "not-found", "title": "Not found", "status": 404,
          "detail": "no lot 0b6c1a0e-3f43-4c55-9d1c-0f1b3e1d9a11", "instance": "/api/v1/lots/0b6c1a0e-3f43-4c55-9d1c-0f1b3e1d9a11"},
    409: {"type": "insufficient-stock", "title": "Insufficient stock", "status": 409,
          "detail": "only 300.0 L of DIESEL-0 owned by CIV-RES-BUREAU is usable at WH-N-01", "available": "300.0",
          "instance": "/api/v1/movements"},
    413: {"type": "payload-too-large", "title": "Request body too large", "status": 413,
          "detail": "Request Entity Too Large"},
    422: {"type": "validation", "title": "Invalid request", "status": 422,
          "detail": "quantity: more precision than DIESEL-0 allows (1 decimal)",
          "errors": [{"field": "quantity", "message": "more precision than DIESEL-0 allows (1 decimal)"}]},
    429: {"type": "rate-limited", "title": "Too many requests", "status": 429,
          "detail": "too many requests; retry later", "retry_after": 1.0},
    503: {"type": "retry", "title": "Concurrent update, retry", "status": 503,
          "detail": "the transaction was rolled back; retry it"},
}


def problem_answer(status: int) -> ResponseSpec:
    """The documented answer for one problem status."""
    types = ", ".join(f"`{t}`" for t in TYPES.get(status, ()))
    return ResponseSpec(
        data_container=Problem, media_type=PROBLEM_JSON, generate_examples=False,
        description=f"{MEANING.get(status, 'Problem')}" + (f"; type {types}" if types else ""),
        examples=[Example(summary=EXAMPLES[status]["type"], value=EXAMPLES[status])] if status in EXAMPLES else None,
    )


def problem_answers(*statuses: int) -> dict[int, ResponseSpec]:
    """``responses=`` for a route: the problem answers it can give beyond the common ones."""
    return {status: problem_answer(status) for status in statuses}

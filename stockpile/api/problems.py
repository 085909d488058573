"""RFC 9457 problem details for every error the API returns.

Each failure has a stable ``type`` (a short slug clients branch on). Nothing here ever shows a
stack trace; unexpected errors are logged with the request id and answered with a bare 500.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import asyncpg
import msgspec
from litestar import Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)

from stockpile.domain.errors import DomainError

log = logging.getLogger("stockpile.api")

PROBLEM_JSON = "application/problem+json"

STATUS = {
    "insufficient-stock": 409, "idempotency-conflict": 409, "unusable-lot": 409, "floor-protected": 409,
    "conflict": 409, "not-found": 404, "validation": 422, "plan-too-large": 422, "forbidden": 403, "unauthenticated": 401,
}


class Problem(Exception):
    """An HTTP-level failure raised by the API layer itself (auth, headers, paging)."""

    def __init__(self, status: int, type_: str, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.type, self.title, self.detail, self.extra = status, type_, title, detail, extra


def problem_response(status: int, type_: str, title: str, detail: str, request: Request | None = None,
                     headers: dict[str, str] | None = None, **extra: Any) -> Response:
    body = {"type": type_, "title": title, "status": status, "detail": detail}
    if request is not None:
        body["instance"] = request.url.path
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(content=msgspec.json.encode(body), status_code=status, media_type=PROBLEM_JSON, headers=headers)


def problem_body(error: DomainError) -> tuple[int, dict[str, Any]]:
    """A domain error as (status, problem JSON) — used where a problem is stored, e.g. batch results."""
    status = STATUS.get(error.type, 409)
    return status, {"type": error.type, "title": error.title, "status": status, "detail": error.detail, **error.extra}


def domain_error(request: Request, exc: DomainError) -> Response:
    return problem_response(STATUS.get(exc.type, 409), exc.type, exc.title, exc.detail, request, **exc.extra)


def api_problem(request: Request, exc: Problem) -> Response:
    headers = {"Retry-After": str(max(1, round(exc.extra["retry_after"])))} if "retry_after" in exc.extra else None
    return problem_response(exc.status, exc.type, exc.title, exc.detail, request, headers=headers, **exc.extra)


# A missing or unknown member is reported at the object that lacks or has it; name the member itself.
MEMBER_ERROR = re.compile(r"^Object (?:missing required|contains unknown) field `([^`]+)`")
# A missing header or query parameter comes without field details; its name is in the message.
MISSING_PARAMETER = re.compile(r"^Missing required \w+ parameter '([^']+)'")


def validation_error(request: Request, exc: ValidationException) -> Response:
    errors = []
    for item in exc.extra or []:
        if isinstance(item, dict):
            field = str(item.get("key") or item.get("source") or "body")
            message = str(item.get("message", exc.detail))
            member = MEMBER_ERROR.match(message)
            if member and item.get("source") == "body":
                field = member.group(1) if field == "data" else f"{field}.{member.group(1)}"
            errors.append({"field": field, "message": message})
    if not errors:
        missing = MISSING_PARAMETER.match(exc.detail)
        errors = [{"field": missing.group(1) if missing else "body", "message": exc.detail}]
    detail = "; ".join(e["message"] for e in errors)
    return problem_response(422, "validation", "Invalid request", detail, request, errors=errors)


def http_error(request: Request, exc: HTTPException) -> Response:
    if isinstance(exc, NotAuthorizedException):
        return problem_response(401, "unauthenticated", "Authentication required", exc.detail, request,
                                headers={"WWW-Authenticate": "Bearer"})
    if isinstance(exc, PermissionDeniedException):
        return problem_response(403, "forbidden", "Forbidden", exc.detail, request)
    if isinstance(exc, NotFoundException):
        return problem_response(404, "not-found", "Not found", exc.detail, request)
    status = exc.status_code
    if status == 405:
        allow = {name.lower(): value for name, value in (exc.headers or {}).items()}.get("allow")
        return problem_response(405, "method-not-allowed", "Method not allowed", exc.detail, request,
                                headers={"Allow": allow} if allow else None)
    if status == 413:
        return problem_response(413, "payload-too-large", "Request body too large", exc.detail, request)
    if status == 400:
        return problem_response(422, "validation", "Invalid request", exc.detail, request,
                                errors=[{"field": "body", "message": exc.detail}])
    if status >= 500:
        log.error("http error status=%s detail=%s", status, exc.detail)
        return problem_response(status, "internal", "Internal error", "the service failed; see its logs", request)
    return problem_response(status, "http-error", exc.detail, exc.detail, request)


def database_error(request: Request, exc: asyncpg.PostgresError) -> Response:
    """Database errors that a client's input can still reach despite validation."""
    if isinstance(exc, asyncpg.SerializationError | asyncpg.DeadlockDetectedError):
        return problem_response(503, "retry", "Concurrent update, retry", "the transaction was rolled back; retry it",
                                request, headers={"Retry-After": "1"})
    if isinstance(exc, asyncpg.CheckViolationError) and exc.constraint_name in {"balance_not_negative", "reserved_within_balance"}:
        return problem_response(409, "insufficient-stock", "Insufficient stock", "the stock moved meanwhile; nothing was written",
                                request)
    if isinstance(exc, asyncpg.CharacterNotInRepertoireError):  # a NUL character: valid JSON, not storable text
        detail = "a text value contains a character that cannot be stored (NUL)"
        return problem_response(422, "validation", "Invalid request", detail, request,
                                errors=[{"field": "request", "message": detail}])
    return unexpected_error(request, exc)


def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error path=%s", request.url.path, exc_info=exc)
    return problem_response(500, "internal", "Internal error", "the service failed; nothing was written", request)


HANDLERS = {
    DomainError: domain_error,
    Problem: api_problem,
    ValidationException: validation_error,
    HTTPException: http_error,
    asyncpg.PostgresError: database_error,
    Exception: unexpected_error,
}

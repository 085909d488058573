"""Shared pieces of the controllers: JSON responses, paging, idempotent ledger POSTs."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
from litestar import Request, Response
from litestar.params import Parameter

from stockpile.api.audit import write_transaction
from stockpile.api.problems import Problem
from stockpile.domain.errors import Invalid
from stockpile.metrics import IDEMPOTENT_REPLAYS
from stockpile.services import idempotency
from stockpile.store.db import Database, Tx

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100

IDEMPOTENCY_HEADER = Parameter(header="Idempotency-Key", required=True,
                               description="1–200 printable ASCII characters; the same key and body answer the "
                                           "first result again")

# The paging parameters every list takes, declared once so the document shows their bounds.
Limit = Annotated[int | None, Parameter(
    ge=1, le=MAX_LIMIT, description=f"Items per page, 1–{MAX_LIMIT} (default {DEFAULT_LIMIT}).")]
Cursor = Annotated[str | None, Parameter(
    min_length=1, max_length=1000, pattern=r"^[A-Za-z0-9_-]+$",
    description="Opaque: the `next_cursor` of the page before, exactly as the service issued it.")]


def replayed(body: bytes, status: int) -> Response:
    IDEMPOTENT_REPLAYS.inc()
    return json_response(body, status, headers={"Idempotent-Replayed": "true"})


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    content = body if isinstance(body, bytes) else msgspec.json.encode(body)
    return Response(content=content, status_code=status, media_type="application/json", headers=headers)


def page_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid.field("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(value)).decode().rstrip("=")


# The keyset position of lists paged by a row id or sequence number (a PostgreSQL bigint).
RowCursor = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]


def decode_cursor(cursor: str | None, shape: Any = Any) -> Any:
    """The position a cursor points at, checked against the ``shape`` the list pages by, so a
    forged cursor is a 422 rather than a failed query."""
    if not cursor:
        return None
    try:
        return msgspec.json.decode(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)), type=shape)
    except (ValueError, msgspec.DecodeError):
        raise Invalid.field("cursor", "is not a cursor this service issued") from None


def page(items: list, limit: int, cursor_of: Callable[[Any], Any]) -> dict:
    """``{"items", "next_cursor"}``; fetch ``limit + 1`` rows to know whether there is more."""
    more = len(items) > limit
    items = items[:limit]
    return {"items": items, "next_cursor": encode_cursor(cursor_of(items[-1])) if more and items else None}


def _idempotency_key(request: Request) -> str:
    key = request.headers.get("idempotency-key")
    if key is None:
        raise Invalid.field("Idempotency-Key", "this request posts to the ledger and needs an Idempotency-Key header")
    if not 1 <= len(key) <= 200 or not key.isprintable() or not key.isascii():
        raise Invalid.field("Idempotency-Key", "must be 1 to 200 printable ASCII characters")
    return key


async def request_fingerprint(request: Request) -> tuple[str, bytes]:
    """The request's Idempotency-Key and a hash of what it asks (method, path, canonical body)."""
    key = _idempotency_key(request)
    raw = await request.body()
    try:  # an action without a body (a plan's dispatch) is fingerprinted by its method and path
        canonical = msgspec.json.encode(msgspec.json.decode(raw) if raw.strip() else None, order="sorted")
    except msgspec.DecodeError:
        raise Problem(422, "validation", "Invalid request", "the body is not JSON") from None
    return key, hashlib.sha256(f"{request.method} {request.url.path}\n".encode() + canonical).digest()


async def idempotent(request: Request, db: Database, run: Callable[[Tx], Awaitable[tuple[int, Any]]]) -> Response:
    """A ledger POST other than a movement: ``run`` makes the change and answers (status, JSON) once
    per (principal, Idempotency-Key), as ``services.idempotency.once`` decides (guarantee 5); a
    replay answers the stored response with ``Idempotent-Replayed: true``."""
    key, fingerprint = await request_fingerprint(request)
    status, content, was_replayed = await apply_once(request, db, key, fingerprint, run)
    return replayed(content, status) if was_replayed else json_response(content, status)


async def apply_once(request: Request, db: Database, key: str, fingerprint: bytes,
                     run: Callable[[Tx], Awaitable[tuple[int, Any]]]) -> tuple[int, bytes, bool]:
    """``idempotent`` for an entry point that reads its key and fingerprint elsewhere (the console's
    forms): (status, stored JSON body, whether it was a replay)."""
    async with write_transaction(request, db) as (tx, note):
        note.details["idempotency_key"] = key

        async def make() -> tuple[int, bytes]:
            status, body = await run(tx)
            note.details["id"] = body.get("id")
            return status, msgspec.json.encode(body)

        answer = await idempotency.once(tx.pg, request.user.id, key, fingerprint, make)
        note.status = answer.status
        if answer.replayed:
            note.details["replayed"] = True
    return answer.status, answer.body, answer.replayed

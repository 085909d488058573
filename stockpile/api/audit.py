"""The audit trail at the HTTP edge.

Successful state changes record their event inside the request's own transaction
(``write_transaction``), so the event commits with the change or not at all. Failed state changes
and every denied request (401/403, reads included) are recorded afterwards in a transaction of
their own by the ``record_failure`` exception hook.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from litestar import Request
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import Scope

from stockpile.api.problems import STATUS, Problem
from stockpile.domain.errors import DomainError
from stockpile.store import audit as audit_store
from stockpile.store.db import Database, Tx

log = logging.getLogger("stockpile.audit")
from stockpile.domain import audit as audit_rules

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass
class AuditNote:
    """What a handler says about its change; recorded when its transaction commits.

    ``restricted``: the handler's change concerns military stock (or anything need-to-know), so
    readers without military clearance see no target, details or client of its event. Events of a
    principal with military clearance are restricted whatever the handler says."""

    request: Request
    target: str
    details: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    taken: bool = False

    def take_event(self) -> list[Any]:
        """The event's INSERT values, for a handler that writes it within its own statement."""
        self.taken = True
        principal, scope = self.request.user, self.request.scope
    restricted: bool = False

    @property
    def need_to_know(self) -> bool:
        return audit_rules.is_restricted(flagged=self.restricted,
                                         actor_clearance=getattr(self.request.user, "clearance", None))
        return audit_store.event_values(
            at=datetime.now(timezone.utc), actor=principal.name, roles=sorted(principal.roles),
            action=_action(scope), target=self.target, outcome="ok", status=self.status,
            client=_client(scope), request_id=request_id(scope), details=self.details,
        )


def request_id(scope: Scope) -> str:
    """The caller's ``X-Request-Id`` if it sent one, else one made for this request (kept in scope)."""
    state = scope.setdefault("state", {})
    if "request_id" not in state:
        headers = {k.decode().lower(): v.decode(errors="replace") for k, v in scope.get("headers", [])}
        state["request_id"] = headers.get("x-request-id", "")[:100] or uuid.uuid4().hex
    return state["request_id"]


def _client(scope: Scope) -> str | None:
    client = scope.get("client")
    return client[0] if client else None


def _action(scope: Scope) -> str:
    return f"{scope.get('method', '?')} {scope.get('path_template') or scope.get('path', '?')}"


@asynccontextmanager
async def write_transaction(request: Request, db: Database) -> AsyncIterator[tuple[Tx, AuditNote]]:
    """A request's write transaction: the handler changes state, then its audit event is appended,
    then it commits — all before the response is sent."""
    note = AuditNote(request, target=request.url.path)
    async with db.transaction() as tx:
        yield tx, note
        if not note.taken:
            await tx.pg.execute(audit_store.insert_sql(1, restricted=note.need_to_know), *note.take_event())


def status_of(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, DomainError):
        return STATUS.get(exc.type, 409), exc.type
    if isinstance(exc, Problem):
        return exc.status, exc.type
    if isinstance(exc, ValidationException):
        return 422, "validation"
    if isinstance(exc, HTTPException):
        return exc.status_code, {401: "unauthenticated", 403: "forbidden", 404: "not-found"}.get(exc.status_code, "http-error")
    return 500, "internal"


async def record_failure(exc: Exception, scope: Scope) -> None:
    """After-exception hook: record failed writes and every denied request."""
    if scope.get("type") != "http":
        return
    status, type_ = status_of(exc)
    method = scope.get("method", "")
    if method not in WRITE_METHODS and status not in (401, 403):
        return
    principal = scope.get("user")
    db: Database = scope["litestar_app"].state.db
    try:
        async with db.transaction() as tx:
            await audit_store.append(
                tx.pg, at=datetime.now(timezone.utc), actor=getattr(principal, "name", None),
                roles=sorted(getattr(principal, "roles", ())), action=_action(scope), target=scope.get("path"),
                outcome="denied" if status in (401, 403) else "failed", status=status, client=_client(scope),
                request_id=request_id(scope), details={"type": type_},
            )
    except Exception:  # noqa: BLE001 - the client's answer must not depend on the audit write
        log.exception("audit write failed action=%s", _action(scope))

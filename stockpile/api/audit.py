"""The audit trail at the HTTP edge.

Successful state changes record their event inside the request's own transaction
(``write_transaction``), so the event commits with the change or not at all. A principal's failed
state change is recorded afterwards in a transaction of its own by the ``record_failure``
exception hook. Denied requests (401, 403, 429, reads included) are counted instead, per (minute,
principal or client address, route, status) in memory and added to ``audit_denials`` about once a
second (``DenialCounts``): a flood of unauthenticated requests costs no write per request.
Requests that match no route (unknown path or method) are not audited at all.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from litestar import Request
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import Scope

from stockpile.api import tasks
from stockpile.api.problems import STATUS, Problem
from stockpile.domain import audit as audit_rules
from stockpile.domain.errors import DomainError
from stockpile.store import audit as audit_store
from stockpile.store.db import Database, Tx

log = logging.getLogger("stockpile.audit")

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
    restricted: bool = False

    @property
    def need_to_know(self) -> bool:
        return audit_rules.is_restricted(flagged=self.restricted,
                                         actor_clearance=getattr(self.request.user, "clearance", None))

    def take_event(self) -> list[Any]:
        """The event's INSERT values, for a handler that writes it within its own statement."""
        self.taken = True
        principal, scope = self.request.user, self.request.scope
        return audit_store.event_values(
            at=datetime.now(timezone.utc), actor=principal.name, roles=sorted(principal.roles),
            action=_action(scope), target=self.target, outcome="ok", status=self.status,
            client=_client(scope), request_id=request_id(scope), details=self.details,
        )


def request_id(scope: Scope) -> str:
    """The caller's ``X-Request-Id`` if it sent one, else one made for this request (kept in scope)."""
    state = scope.setdefault("state", {})
    rid = state.get("request_id")
    if rid is None:
        sent = next((v for k, v in scope.get("headers", ()) if k.lower() == b"x-request-id"), b"")
        rid = state["request_id"] = sent.decode(errors="replace")[:100] or secrets.token_hex(16)
    return rid


def _client(scope: Scope) -> str | None:
    """The client address the request limits resolved (X-Forwarded-For from trusted proxies), else the peer's."""
    resolved = scope.get("state", {}).get("client_address")
    if resolved:
        return resolved
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
            await audit_store.insert_event(tx.pg, note.take_event(), restricted=note.need_to_know)


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


DENIED = frozenset({401, 403, 429})


class DenialCounts:
    """Denied requests counted in memory and added to ``audit_denials`` in one upsert a second.

    At most ``max_keys`` distinct (minute, actor, route, status) are kept between two flushes; past
    that, denials of unauthenticated clients are folded under the actor ``*`` (many addresses), so a
    spray from many addresses costs bounded memory and one row per route and minute.
    """

    OTHER_ADDRESSES = "*"

    def __init__(self, db: Database, flush_seconds: float = 1.0, max_keys: int = 10_000) -> None:
        self.db, self.flush_seconds, self.max_keys = db, flush_seconds, max_keys
        self._counts: dict[tuple[datetime, str, str, str, int], int] = {}
        self._task: asyncio.Task | None = None
        self._lock = asyncio.Lock()
        self.clock = lambda: datetime.now(timezone.utc)

    def add(self, *, actor_kind: str, actor: str, action: str, status: int) -> None:
        minute = self.clock().replace(second=0, microsecond=0)
        key = (minute, actor_kind, actor, action, status)
        if key not in self._counts and len(self._counts) >= self.max_keys and actor_kind == "address":
            key = (minute, actor_kind, self.OTHER_ADDRESSES, action, status)
        self._counts[key] = self._counts.get(key, 0) + 1

    async def flush(self) -> None:
        """Add what was counted since the last flush (kept for the next one if the write fails)."""
        async with self._lock:
            counts, self._counts = self._counts, {}
            if not counts:
                return
            try:
                async with self.db.transaction() as tx:
                    await audit_store.add_denials(tx.pg, [(*key, n) for key, n in counts.items()])
            except BaseException:
                for key, n in counts.items():
                    self._counts[key] = self._counts.get(key, 0) + n
                raise

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        await tasks.stop(self._task)
        self._task = None
        try:
            await self.flush()
        except Exception:  # noqa: BLE001 - shutting down: say what is lost
            log.exception("denial counts lost at shutdown: %d keys", len(self._counts))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            try:
                await self.flush()
            except Exception:  # noqa: BLE001 - kept for the next round
                log.warning("denial counts flush failed", exc_info=True)


async def record_failure(exc: Exception, scope: Scope) -> None:
    """After-exception hook: count denied requests, record a principal's failed writes; a request
    that matched no route is not audited (nothing there to protect, and it costs a flood nothing)."""
    if scope.get("type") != "http" or not scope.get("path_template"):
        return
    status, type_ = status_of(exc)
    principal = scope.get("user")
    if status in DENIED:
        denials: DenialCounts | None = getattr(scope["litestar_app"].state, "denials", None)
        if denials is not None:
            if principal is not None:
                denials.add(actor_kind="principal", actor=principal.name, action=_action(scope), status=status)
            else:
                denials.add(actor_kind="address", actor=_client(scope) or "unknown", action=_action(scope), status=status)
        return
    if scope.get("method", "") not in WRITE_METHODS or principal is None:
        return
    db: Database = scope["litestar_app"].state.db
    try:
        async with db.transaction() as tx:
            await audit_store.append(
                tx.pg, at=datetime.now(timezone.utc), actor=principal.name, roles=sorted(principal.roles),
                action=_action(scope), target=scope.get("path"), outcome="failed", status=status,
                client=_client(scope), request_id=request_id(scope), details={"type": type_},
            )
    except Exception:  # noqa: BLE001 - the client's answer must not depend on the audit write
        log.exception("audit write failed action=%s", _action(scope))

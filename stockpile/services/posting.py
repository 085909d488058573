"""Posting movements and batches to the ledger: the use case behind ``POST /movements`` and
``POST /movements/batch``, group-committed.

The walk of one request: ``GroupCommit.post`` queues it and waits; the next group's transaction
(``_commit``) claims the group's Idempotency-Keys in one statement (``services.idempotency.Keys``),
locks every position the group touches in one ordered statement (``Workspace.preload``), prepares
each movement in order in memory (``services.movements.prepare_movement``: the rules of
``domain.ledger`` on the locked positions), and appends every accepted movement — with its stored
answer and audit event — in one statement (``store.ledger.insert_movements``), then commits once.
Every request still gets its own answer, committed before it is sent: a refused request (or a
refused item of a non-atomic batch) is answered with its own problem and its claim is released in
the same transaction, so it leaves no trace.

An atomic batch is all or nothing: when one of its items is refused, the group's transaction is
rolled back and run again as three — the requests before the batch, the batch alone (which then
answers its own refusal), and the requests after it. If the transaction fails as a whole (a
deadlock with another process, say), each request is retried in a transaction of its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
import msgspec

from stockpile.domain.access import Principal
from stockpile.domain.errors import DomainError, Invalid
from stockpile.domain.idempotency import reuse_conflict
from stockpile.domain.moments import Clock
from stockpile.services import commands as c
from stockpile.services.idempotency import Answer, Ident, Keys
from stockpile.services.movements import Posted, prepare_movement
from stockpile.services.workspace import Pending, Workspace
from stockpile.store import audit as audit_store
from stockpile.store.db import Database

log = logging.getLogger("stockpile.posting")


class AuditNote(Protocol):
    """What the entry point records about its request (``api.audit.AuditNote``): the status and
    details are filled in here, the event's values taken once the answer is known."""

    status: int
    details: dict[str, Any]

    def take_event(self) -> list[Any]: ...


@dataclass(frozen=True)
class Presenters:
    """How answers are shown, given by the entry point: a posted movement as JSON, a refusal as
    (status, problem details). The group commit stores each answer in its transaction, so it shows
    them itself, with the entry point's own presenters."""

    movement: Callable[[Posted], dict[str, Any]]
    problem: Callable[[DomainError], tuple[int, dict[str, Any]]]


@dataclass
class LedgerRequest:
    """One request waiting for its group: what it asks, for whom, under which key, and where its
    answer goes."""

    command: c.Movement | c.Batch
    principal: Principal
    key: str
    fingerprint: bytes
    note: AuditNote
    clock: Clock
    future: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def ident(self) -> Ident:
        return self.principal.id, self.key

    @property
    def movements(self) -> list[c.Movement]:
        return self.command.movements if isinstance(self.command, c.Batch) else [self.command]


class Refused(Exception):
    """An atomic batch of the group was refused: the group's transaction must not commit."""

    def __init__(self, request: LedgerRequest, error: DomainError) -> None:
        super().__init__(error.detail)
        self.request, self.error = request, error


# A group's movements are appended in statements of about this many, each sent while the rules run
# on the next ones: PostgreSQL writes while the API process works.
APPEND_EVERY = 250


class GroupCommit:
    """Groups at most ``limit`` requests and, beyond the first request, at most ``movements``
    movements in one transaction."""

    def __init__(self, db: Database, presenters: Presenters, limit: int = 256, movements: int = 2000) -> None:
        self.db, self.presenters, self.limit, self.movements = db, presenters, limit, movements
        self._waiting: list[LedgerRequest] = []
        self._drainer: asyncio.Task | None = None

    async def post(self, request: LedgerRequest) -> Answer:
        """Post a movement or a batch: queued for the next group, answered once that group's
        transaction has committed. Raises the request's ``DomainError`` when it is refused."""
        self._waiting.append(request)
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await request.future

    async def _drain(self) -> None:
        while self._waiting:
            size = len(self._waiting[0].movements)
            count = 1
            while count < min(self.limit, len(self._waiting)):
                size += len(self._waiting[count].movements)
                if size > self.movements:
                    break
                count += 1
            group, self._waiting = self._waiting[:count], self._waiting[count:]
            await self._run(group)

    async def _run(self, group: list[LedgerRequest]) -> None:
        if not group:
            return
        try:
            await self._commit(group)
        except Refused as refused:
            if len(group) == 1:
                _settle(refused.request, refused.error)
                return
            at = next(i for i, request in enumerate(group) if request is refused.request)
            for part in (group[:at], [refused.request], group[at + 1:]):
                await self._run(part)
        except Exception as exc:  # noqa: BLE001 - the group as a whole failed; try each alone
            if len(group) == 1:
                _settle(group[0], exc)
                return
            log.warning("group of %d failed (%s); retrying one by one", len(group), type(exc).__name__)
            for request in group:
                await self._run([request])

    async def _commit(self, group: list[LedgerRequest]) -> None:
        async with self.db.transaction() as tx:
            answers = await in_transaction(tx.pg, group, self.presenters)
        for request, answer in zip(group, answers):
            _settle(request, answer)


def _settle(request: LedgerRequest, outcome: Answer | BaseException) -> None:
    if request.future.done():
        return
    if isinstance(outcome, BaseException):
        request.future.set_exception(outcome)
    else:
        request.future.set_result(outcome)


async def in_transaction(pg: asyncpg.Connection, group: list[LedgerRequest],
                         presenters: Presenters) -> list[Answer | Exception]:
    """Apply a group in the caller's transaction; each request's answer or refusal, in order."""
    first: dict[Ident, LedgerRequest] = {}
    for request in group:
        first.setdefault(request.ident, request)
    keys = await Keys.claim(pg, [(r.principal.id, r.key, r.fingerprint) for r in first.values()])
    ws = Workspace(pg, background=APPEND_EVERY)
    try:
        return await _apply(pg, ws, group, first, keys, presenters)
    finally:
        await ws.settle()


async def _apply(pg: asyncpg.Connection, ws: Workspace, group: list[LedgerRequest], first: dict[Ident, LedgerRequest],
                 keys: Keys, presenters: Presenters) -> list[Answer | Exception]:
    await ws.preload([(cmd, first[k].principal) for k in keys.claimed for cmd in first[k].movements])

    outcome: dict[Ident, Answer | Exception] = {}
    refused: list[Ident] = []
    for ident, request in first.items():
        if ident not in keys.claimed:
            outcome[ident] = keys.replay(ident, request.fingerprint)
        elif isinstance(request.command, c.Batch):
            outcome[ident] = await _batch(ws, request, presenters)
        else:
            try:
                outcome[ident] = await _single(ws, request, presenters)
            except DomainError as exc:
                outcome[ident] = exc
                refused.append(ident)
    await ws.flush()
    await Keys.release(pg, refused)

    answers: list[Answer | Exception] = []
    for request in group:
        result = outcome[request.ident]
        if first[request.ident] is not request:  # a duplicate of a request in this same group
            if request.ident not in keys.claimed:  # the key was used before: judge each by what was stored
                result = keys.replay(request.ident, request.fingerprint)
            elif (conflict := reuse_conflict(request.key, first[request.ident].fingerprint, request.fingerprint)) is not None:
                result = conflict
            elif isinstance(result, Answer):
                result = Answer(result.status, result.body, replayed=True)
        if isinstance(result, Answer) and result.replayed:
            request.note.status, request.note.details["replayed"] = result.status, True
            await audit_store.insert_event(pg, request.note.take_event())
        answers.append(result)
    return answers


async def _single(ws: Workspace, request: LedgerRequest, presenters: Presenters) -> Answer:
    """Prepare one movement and queue it with its stored answer and audit event."""
    posted = await prepare_movement(ws, request.command, request.principal, request.clock)
    body = msgspec.json.encode(presenters.movement(posted))
    request.note.status, request.note.details["id"] = 201, posted.id
    await ws.append_soon(Pending(posted, request.principal.id, (request.principal.id, request.key, 201, body),
                                 request.note.take_event()))
    return Answer(201, body, replayed=False, kinds=(posted.kind,))


async def _batch(ws: Workspace, request: LedgerRequest, presenters: Presenters) -> Answer:
    """Prepare a batch's movements in order, each seeing the balances the previous ones left.
    A refused item fails an atomic batch (``Refused``) and is reported in place in a non-atomic one;
    the batch's stored answer and audit event are appended after its movements."""
    batch: c.Batch = request.command
    results, kinds = [], []
    for index, cmd in enumerate(batch.movements):
        try:
            posted = await prepare_movement(ws, cmd, request.principal, request.clock)
        except DomainError as exc:
            if batch.atomic:
                raise Refused(request, _at_index(exc, index)) from None
            status, problem = presenters.problem(exc)
            results.append({"index": index, "status": status, "problem": problem})
            continue
        results.append({"index": index, "status": 201, "movement": presenters.movement(posted)})
        kinds.append(posted.kind)
        await ws.append_soon(Pending(posted, request.principal.id))
    status = 201 if batch.atomic else 200
    body = msgspec.json.encode({"atomic": batch.atomic, "results": results})
    request.note.status = status
    await ws.append_soon(Pending(None, request.principal.id, (request.principal.id, request.key, status, body),
                                 request.note.take_event()))
    return Answer(status, body, replayed=False, kinds=tuple(kinds))


def _at_index(exc: DomainError, index: int) -> DomainError:
    """The same failure, naming the batch item that caused it."""
    if isinstance(exc, Invalid):
        errors = [{"field": f"movements[{index}].{e['field']}", "message": e["message"]} for e in exc.errors]
        failed = Invalid(errors)
    else:
        failed = type(exc)(f"movements[{index}]: {exc.detail}", **exc.extra)
    failed.extra["index"] = index
    return failed

"""Group commit for ledger POSTs: single movements and batches.

Requests that arrive while a transaction is running wait for it, then go together in the next one:
their Idempotency-Keys are claimed in one statement, their positions locked in one ordered
statement, the rules applied in order in memory, and every accepted movement — with its stored
response and audit event — appended in one statement and committed once. Every request still gets
its own answer, committed before it is sent: a refused request (or a refused item of a non-atomic
batch) is answered with its own problem and its claim is released in the same transaction, so it
leaves no trace.

Batches share the transaction too, so concurrent batches of one process no longer queue on each
other's row locks. An atomic batch is all or nothing: when one of its items is refused, the group's
transaction is rolled back and run again as three — the requests before the batch, the batch alone
(which then answers its own refusal from a transaction that rolls back, as if it had been sent
alone), and the requests after it. If the transaction fails as a whole (a deadlock with another
process, say), each request is retried in a transaction of its own.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import msgspec

from stockpile.api.audit import AuditNote
from stockpile.api.presenters.movements import present_posted
from stockpile.api.problems import problem_bytes
from stockpile.domain.access import Principal
from stockpile.domain.errors import DomainError, Invalid
from stockpile.domain.idempotency import reuse_conflict
from stockpile.domain.moments import Clock
from stockpile.services import commands as c
from stockpile.services.movements import prepare_movement
from stockpile.services.workspace import Pending, Workspace
from stockpile.store import audit as audit_store
from stockpile.store import idempotency
from stockpile.store.db import Database

log = logging.getLogger("stockpile.api")


@dataclass
class Job:
    """One request waiting for its group: what it asks and where its answer goes."""

    request: c.Movement | c.Batch
    principal: Principal
    key: str
    fingerprint: bytes
    note: AuditNote
    clock: Clock
    future: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def ident(self) -> tuple[int, str]:
        return self.principal.id, self.key

    @property
    def commands(self) -> list[c.Movement]:
        return self.request.movements if isinstance(self.request, c.Batch) else [self.request]


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    replayed: bool
    kinds: tuple[str, ...] = ()


class Refused(Exception):
    """An atomic batch of the group was refused: the group's transaction must not commit."""

    def __init__(self, job: Job, error: DomainError) -> None:
        super().__init__(error.detail)
        self.job, self.error = job, error


# A group's movements are appended in statements of about this many, each sent while the rules run
# on the next ones: PostgreSQL writes while the API process works.
APPEND_EVERY = 250


class GroupCommitter:
    """Groups at most ``limit`` requests and, beyond the first request, at most ``movements``
    movements in one transaction."""

    def __init__(self, db: Database, limit: int = 256, movements: int = 2000) -> None:
        self.db, self.limit, self.movements = db, limit, movements
        self._waiting: list[Job] = []
        self._drainer: asyncio.Task | None = None

    async def submit(self, job: Job) -> Answer:
        """Queue the request and wait for the transaction that carries it to commit."""
        self._waiting.append(job)
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await job.future

    async def _drain(self) -> None:
        while self._waiting:
            size = len(self._waiting[0].commands)
            count = 1
            while count < min(self.limit, len(self._waiting)):
                size += len(self._waiting[count].commands)
                if size > self.movements:
                    break
                count += 1
            group, self._waiting = self._waiting[:count], self._waiting[count:]
            await self._run(group)

    async def _run(self, group: list[Job]) -> None:
        if not group:
            return
        try:
            await self._commit(group)
        except Refused as refused:
            if len(group) == 1:
                _settle(refused.job, refused.error)
                return
            at = next(i for i, job in enumerate(group) if job is refused.job)
            for part in (group[:at], [refused.job], group[at + 1:]):
                await self._run(part)
        except Exception as exc:  # noqa: BLE001 - the group as a whole failed; try each alone
            if len(group) == 1:
                _settle(group[0], exc)
                return
            log.warning("group of %d failed (%s); retrying one by one", len(group), type(exc).__name__)
            for job in group:
                await self._run([job])

    async def _commit(self, group: list[Job]) -> None:
        async with self.db.transaction() as tx:
            answers = await _in_transaction(tx.pg, group)
        for job, answer in zip(group, answers):
            _settle(job, answer)


def _settle(job: Job, outcome: Answer | BaseException) -> None:
    if job.future.done():
        return
    if isinstance(outcome, BaseException):
        job.future.set_exception(outcome)
    else:
        job.future.set_result(outcome)


async def _in_transaction(pg, group: list[Job]) -> list[Answer | Exception]:
    first: dict[tuple[int, str], Job] = {}
    for job in group:
        first.setdefault(job.ident, job)
    claimed = await idempotency.claim_many(pg, [(j.principal.id, j.key, j.fingerprint) for j in first.values()])
    stored = await idempotency.stored_many(pg, [k for k in first if k not in claimed])
    ws = Workspace(pg, background=APPEND_EVERY)
    try:
        return await _apply(pg, ws, group, first, claimed, stored)
    finally:
        await ws.settle()


async def _apply(pg, ws: Workspace, group: list[Job], first: dict[tuple[int, str], Job],
                 claimed: set[tuple[int, str]], stored: dict) -> list[Answer | Exception]:
    await ws.preload([(cmd, first[k].principal) for k in claimed for cmd in first[k].commands])

    outcome: dict[tuple[int, str], Answer | Exception] = {}
    refused: list[tuple[int, str]] = []
    for ident, job in first.items():
        if ident not in claimed:
            outcome[ident] = _replay(job, stored[ident])
            continue
        if isinstance(job.request, c.Batch):
            outcome[ident] = await _batch(ws, job)
            continue
        try:
            posted = await prepare_movement(ws, job.request, job.principal, job.clock)
        except DomainError as exc:
            outcome[ident] = exc
            refused.append(ident)
            continue
        body = msgspec.json.encode(present_posted(posted))
        job.note.status, job.note.details["id"] = 201, posted.id
        await ws.append_soon(Pending(posted, job.principal.id, (job.principal.id, job.key, 201, body), job.note.take_event()))
        outcome[ident] = Answer(201, body, replayed=False, kinds=(posted.kind,))
    await ws.flush()
    await idempotency.release_many(pg, refused)

    answers: list[Answer | Exception] = []
    for job in group:
        result = outcome[job.ident]
        if first[job.ident] is not job:  # a duplicate of a request in this same group
            if job.ident not in claimed:  # the key was used before: judge each by what was stored
                result = _replay(job, stored[job.ident])
            elif (refused := reuse_conflict(job.key, first[job.ident].fingerprint, job.fingerprint)) is not None:
                result = refused
            elif isinstance(result, Answer):
                result = Answer(result.status, result.body, replayed=True)
        if isinstance(result, Answer) and result.replayed:
            job.note.status, job.note.details["replayed"] = result.status, True
            await pg.execute(audit_store.insert_sql(1), *job.note.take_event())
        answers.append(result)
    return answers


async def _batch(ws: Workspace, job: Job) -> Answer:
    """Prepare a batch's movements in order, each seeing the balances the previous ones left.
    A refused item fails an atomic batch (``Refused``) and is reported in place in a non-atomic one;
    the batch's stored response and audit event are appended after its movements."""
    batch: c.Batch = job.request
    results, kinds = [], []
    for index, cmd in enumerate(batch.movements):
        try:
            posted = await prepare_movement(ws, cmd, job.principal, job.clock)
        except DomainError as exc:
            if batch.atomic:
                raise Refused(job, _at_index(exc, index)) from None
            status, body = problem_bytes(exc)
            results.append({"index": index, "status": status, "problem": msgspec.json.decode(body)})
            continue
        results.append({"index": index, "status": 201, "movement": present_posted(posted)})
        kinds.append(posted.kind)
        await ws.append_soon(Pending(posted, job.principal.id))
    status = 201 if batch.atomic else 200
    body = msgspec.json.encode({"atomic": batch.atomic, "results": results})
    job.note.status = status
    await ws.append_soon(Pending(None, job.principal.id, (job.principal.id, job.key, status, body), job.note.take_event()))
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


def _replay(job: Job, stored: idempotency.Stored) -> Answer | Exception:
    refused = reuse_conflict(job.key, stored.request_hash, job.fingerprint)
    return refused if refused is not None else Answer(stored.status_code, stored.body, replayed=True)

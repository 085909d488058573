"""Group commit for single-movement POSTs.

Requests that arrive while a transaction is running wait for it, then go together in the next one:
their Idempotency-Keys are claimed in one statement, their positions locked in one ordered
statement, the rules applied in order in memory, and every accepted movement — with its stored
response and audit event — appended in one statement and committed once. Every request still gets
its own answer, committed before it is sent: a refused request is answered with its own problem
and its claim is released in the same transaction, so it leaves no trace. If the transaction fails
as a whole (a deadlock with another process, say), each request is retried in a transaction of
its own.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import msgspec

from stockpile.api.audit import AuditNote
from stockpile.domain.access import Principal
from stockpile.domain.errors import DomainError, IdempotencyConflict
from stockpile.services import commands as c
from stockpile.services.movements import Clock, prepare_movement
from stockpile.services.workspace import Pending, Workspace
from stockpile.store import audit as audit_store
from stockpile.store import idempotency
from stockpile.store.db import Database

log = logging.getLogger("stockpile.api")


@dataclass
class Job:
    """One request waiting for its group: what it asks and where its answer goes."""

    cmd: c.Movement
    principal: Principal
    key: str
    fingerprint: bytes
    note: AuditNote
    clock: Clock
    future: asyncio.Future = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def ident(self) -> tuple[int, str]:
        return self.principal.id, self.key


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    replayed: bool
    kind: str | None = None


class GroupCommitter:
    def __init__(self, db: Database, limit: int = 256) -> None:
        self.db, self.limit = db, limit
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
            group, self._waiting = self._waiting[: self.limit], self._waiting[self.limit:]
            try:
                await self._commit(group)
            except Exception as exc:  # noqa: BLE001 - the group as a whole failed; try each alone
                if len(group) == 1:
                    _settle(group[0], exc)
                    continue
                log.warning("group of %d failed (%s); retrying one by one", len(group), type(exc).__name__)
                for job in group:
                    try:
                        await self._commit([job])
                    except Exception as alone:  # noqa: BLE001
                        _settle(job, alone)

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
    ws = Workspace(pg)
    await ws.preload([(first[k].cmd, first[k].principal) for k in claimed])

    outcome: dict[tuple[int, str], Answer | Exception] = {}
    refused: list[tuple[int, str]] = []
    for ident, job in first.items():
        if ident not in claimed:
            outcome[ident] = _replay(job, stored[ident])
            continue
        try:
            posted = await prepare_movement(ws, job.cmd, job.principal, job.clock)
        except DomainError as exc:
            outcome[ident] = exc
            refused.append(ident)
            continue
        body = msgspec.json.encode(posted.as_json())
        job.note.status, job.note.details["id"] = 201, posted.id
        ws.append(Pending(posted, job.principal.id, (job.principal.id, job.key, 201, body), job.note.take_event()))
        outcome[ident] = Answer(201, body, replayed=False, kind=posted.kind)
    await idempotency.release_many(pg, refused)
    await ws.flush()

    answers: list[Answer | Exception] = []
    for job in group:
        result = outcome[job.ident]
        if first[job.ident] is not job:  # a duplicate of a request in this same group
            if job.ident not in claimed:  # the key was used before: judge each by what was stored
                result = _replay(job, stored[job.ident])
            elif job.fingerprint != first[job.ident].fingerprint:
                result = _conflict(job)
            elif isinstance(result, Answer):
                result = Answer(result.status, result.body, replayed=True)
        if isinstance(result, Answer) and result.replayed:
            job.note.status, job.note.details["replayed"] = result.status, True
            await pg.execute(audit_store.insert_sql(1), *job.note.take_event())
        answers.append(result)
    return answers


def _replay(job: Job, stored: idempotency.Stored) -> Answer | Exception:
    if stored.request_hash != job.fingerprint:
        return _conflict(job)
    return Answer(stored.status_code, stored.body, replayed=True)


def _conflict(job: Job) -> IdempotencyConflict:
    return IdempotencyConflict(f"Idempotency-Key {job.key!r} was already used for a different request",
                               idempotency_key=job.key)

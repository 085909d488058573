"""Running one slot of one job: claim it in PostgreSQL, run it, record the outcome.

Every job is idempotent, and each (job, slot) is claimed by exactly one worker, so several worker
replicas can run side by side. The runner holds a short lease on its slot and renews it while the
job runs (a heartbeat); the replicas that lost the claim keep an eye on it and take the slot over
once the lease passes unrenewed — a worker that dies mid-run is replaced within the slot, i.e.
within one interval. A failing job is logged with its context and recorded; it never stops the
scheduler.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from stockpile.metrics import JOB_DURATION, JOB_LAST_SUCCESS, JOB_RUNS
from stockpile.store import audit, jobs
from stockpile.store.db import Database

log = logging.getLogger("stockpile.jobs")

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Job:
    name: str
    run: Callable[[Database], Awaitable[dict[str, Any]]]
    interval_seconds: float
    changes_state: bool  # state-changing runs are written to the audit trail
    lease: float | None = None  # default: half the interval, 2 to 30 s

    def slot(self, now: float) -> int:
        return int(now // self.interval_seconds)

    @property
    def lease_seconds(self) -> float:
        """Short enough that a dead runner's slot is taken over well within the interval; renewed
        every third of it while the job runs."""
        return self.lease if self.lease is not None else min(30.0, max(2.0, self.interval_seconds / 2))


@dataclass(frozen=True)
class Outcome:
    job: str
    slot: int
    ran: bool
    outcome: str | None = None
    detail: dict[str, Any] | None = None
    seconds: float = 0.0


async def run_slot(db: Database, job: Job, *, slot: int | None = None, worker: str = WORKER_ID,
                   take_over: bool = True) -> Outcome:
    """Claim and run one slot (the current one unless given). A slot another worker holds is left to
    it — unless its lease passes unrenewed before the slot ends (that worker died), then this worker
    takes it over (``take_over``). A finished slot is never run again."""
    slot = job.slot(time.time()) if slot is None else slot
    slot_ends = (slot + 1) * job.interval_seconds
    while not await _claim(db, job, slot, worker):
        async with db.transaction() as tx:
            left = await jobs.holder_lease_left(tx.pg, job.name, slot)
        if not take_over or left is None or time.time() + max(left, 0) >= slot_ends:
            return Outcome(job.name, slot, ran=False)
        await asyncio.sleep(max(left, 0) + 0.1)  # the holder renews its lease, finishes, or dies
    started = time.perf_counter()
    heartbeat = asyncio.create_task(_heartbeat(db, job, slot, worker))
    try:
        detail, outcome = await job.run(db), "ok"
    except Exception as exc:  # noqa: BLE001 - recorded and logged; the scheduler keeps going
        log.exception("job failed job=%s slot=%s worker=%s", job.name, slot, worker)
        detail, outcome = {"error": f"{type(exc).__name__}: {exc}"}, "failed"
    finally:
        heartbeat.cancel()
    seconds = time.perf_counter() - started
    async with db.transaction() as tx:
        await jobs.finish(tx.pg, job.name, slot, worker, outcome, detail)
        if job.changes_state and outcome == "ok":
            # A job sees the whole reserve, military stock included: its event is need-to-know, as a
            # cleared principal's is (uncleared auditors see that it ran, not what it reported).
            await audit.append(tx.pg, restricted=True, at=datetime.now(timezone.utc), actor=f"job:{job.name}", roles=[],
                               action=f"job {job.name}", target=None, outcome=outcome, status=None, client=worker,
                               request_id=f"{job.name}:{slot}", details=detail)
    JOB_RUNS.labels(job.name, outcome).inc()
    JOB_DURATION.labels(job.name).observe(seconds)
    if outcome == "ok":
        JOB_LAST_SUCCESS.labels(job.name).set(time.time())
    return Outcome(job.name, slot, ran=True, outcome=outcome, detail=detail, seconds=seconds)


async def _claim(db: Database, job: Job, slot: int, worker: str) -> bool:
    async with db.transaction() as tx:
        return await jobs.claim(tx.pg, job.name, slot, worker, lease_seconds=job.lease_seconds)


async def _heartbeat(db: Database, job: Job, slot: int, worker: str) -> None:
    """Renew the lease while the job runs, so only a dead (or frozen) runner loses its slot."""
    while True:
        await asyncio.sleep(job.lease_seconds / 3)
        try:
            async with db.transaction() as tx:
                held = await jobs.renew(tx.pg, job.name, slot, worker, job.lease_seconds)
        except Exception:  # noqa: BLE001 - the next beat tries again; the lease is three beats long
            log.warning("job lease renewal failed job=%s slot=%s worker=%s", job.name, slot, worker, exc_info=True)
            continue
        if not held:
            log.warning("job slot taken over by another worker job=%s slot=%s worker=%s", job.name, slot, worker)
            return


def manual_slot() -> int:
    """A slot of its own for `stockpile job run` (negative: never one the scheduler uses)."""
    return -int(time.time() * 1000)

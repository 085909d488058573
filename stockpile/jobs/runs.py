"""Running one slot of one job: claim it in PostgreSQL, run it, record the outcome.

Every job is idempotent, and each (job, slot) is claimed by exactly one worker, so several worker
replicas can run side by side. A slot whose worker died is taken over once its lease has passed.
A failing job is logged with its context and recorded; it never stops the scheduler.
"""

from __future__ import annotations

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

    def slot(self, now: float) -> int:
        return int(now // self.interval_seconds)


@dataclass(frozen=True)
class Outcome:
    job: str
    slot: int
    ran: bool
    outcome: str | None = None
    detail: dict[str, Any] | None = None
    seconds: float = 0.0


async def run_slot(db: Database, job: Job, *, slot: int | None = None, worker: str = WORKER_ID) -> Outcome:
    """Claim and run one slot (the current one unless given); a slot already claimed is skipped."""
    slot = job.slot(time.time()) if slot is None else slot
    async with db.transaction() as tx:
        claimed = await jobs.claim(tx.pg, job.name, slot, worker, lease_seconds=max(60.0, 2 * job.interval_seconds))
    if not claimed:
        return Outcome(job.name, slot, ran=False)
    started = time.perf_counter()
    try:
        detail, outcome = await job.run(db), "ok"
    except Exception as exc:  # noqa: BLE001 - recorded and logged; the scheduler keeps going
        log.exception("job failed job=%s slot=%s worker=%s", job.name, slot, worker)
        detail, outcome = {"error": f"{type(exc).__name__}: {exc}"}, "failed"
    seconds = time.perf_counter() - started
    async with db.transaction() as tx:
        await jobs.finish(tx.pg, job.name, slot, worker, outcome, detail)
        if job.changes_state and outcome == "ok":
            await audit.append(tx.pg, at=datetime.now(timezone.utc), actor=f"job:{job.name}", roles=[],
                               action=f"job {job.name}", target=None, outcome=outcome, status=None, client=worker,
                               request_id=f"{job.name}:{slot}", details=detail)
    JOB_RUNS.labels(job.name, outcome).inc()
    JOB_DURATION.labels(job.name).observe(seconds)
    if outcome == "ok":
        JOB_LAST_SUCCESS.labels(job.name).set(time.time())
    return Outcome(job.name, slot, ran=True, outcome=outcome, detail=detail, seconds=seconds)


def manual_slot() -> int:
    """A slot of its own for `stockpile job run` (negative: never one the scheduler uses)."""
    return -int(time.time() * 1000)

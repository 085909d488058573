"""`stockpile worker`: APScheduler 3 (AsyncIOScheduler) in its own process — never inside API
workers. Each job fires every interval, at the start of its slots (aligned to the epoch, so every
replica fires together); each firing claims its slot, so replicas run a slot once, and the ones that
lost the claim take it over if its runner dies (see ``stockpile.jobs.runs``)."""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import time
from datetime import datetime, timezone

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import start_http_server

from stockpile.config import Settings
from stockpile.jobs.catalog import catalog
from stockpile.jobs.runs import WORKER_ID, run_slot
from stockpile.store.db import Database

log = logging.getLogger("stockpile.worker")


def first_slot_start(interval_seconds: float, now: float | None = None) -> datetime:
    """The start of the next slot, a moment in: a clock slightly behind another replica's still
    computes the same slot number."""
    now = time.time() if now is None else now
    start = math.floor(now / interval_seconds + 1) * interval_seconds + min(0.5, interval_seconds / 20)
    return datetime.fromtimestamp(start, tz=timezone.utc)


async def run_worker(settings: Settings, url: str) -> None:
    db = Database(url, pool_size=4)
    scheduler = AsyncIOScheduler(timezone="UTC")
    for job in catalog(settings).values():
        scheduler.add_job(run_slot, "interval", seconds=job.interval_seconds, args=[db, job], id=job.name, name=job.name,
                          start_date=first_slot_start(job.interval_seconds), max_instances=1, coalesce=True,
                          misfire_grace_time=max(1, int(job.interval_seconds)))
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, addr=settings.host)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    scheduler.start()
    log.info("worker started id=%s jobs=%s", WORKER_ID, ",".join(job.id for job in scheduler.get_jobs()))
    try:
        await stop.wait()
    finally:
        scheduler.shutdown(wait=False)
        await db.dispose()
        log.info("worker stopped id=%s", WORKER_ID)

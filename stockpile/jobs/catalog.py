"""The worker's jobs. Each is idempotent: running a slot twice changes nothing more."""

from __future__ import annotations

import logging
from typing import Any

from datetime import datetime, timezone

from stockpile.config import Settings
from stockpile.domain.alerts import Wanted
from stockpile.services import alerts, allocation
from stockpile.services import rotation_plan
from stockpile.services import sensors
from stockpile.jobs.deliver import deliver_notifications
from stockpile.jobs.runs import Job
from stockpile.metrics import ledger_mismatched_accounts
from stockpile.store import allocation as allocation_store
from stockpile.store import audit, jobs, snapshots
from stockpile.store.db import Database, repeatable_read

log = logging.getLogger("stockpile.jobs")


def seal_audit(settings: Settings):
    """Chain the audit events of finished transactions into the hash chain and checkpoint its head,
    signed with ``STOCKPILE_AUDIT_KEY`` (unsigned without one)."""
    if not settings.audit_key:
        log.warning("STOCKPILE_AUDIT_KEY is not set: audit checkpoints are unsigned, so cutting off the end of "
                    "the audit chain is not detectable")

    async def run(db: Database) -> dict[str, Any]:
        async with db.transaction() as tx:
            return {"sealed": await audit.seal(tx.pg, settings.audit_key_bytes)}

    return run


async def check_ledger(db: Database) -> dict[str, Any]:
    """Guarantee 3 for every account: the stored balance equals the sum of its postings. Each broken
    account raises a critical ``ledger_invariant`` alert (it should never fire); a mended one resolves it."""
    async with db.transaction() as tx:
        await repeatable_read(tx.pg)  # one consistent snapshot
        broken = await jobs.ledger_mismatches(tx.pg)
        checked = await jobs.account_count(tx.pg)
    ledger_mismatched_accounts().set(len(broken))
    for row in broken:
        log.error("ledger invariant broken account=%s balance=%s postings=%s", row["id"], row["balance"], row["postings"])
    wanted = [Wanted("ledger_invariant", f"account:{r['id']}", "critical",
                     f"account {r['id']} holds {r['balance']} but its postings sum to {r['postings']}",
                     {"account": r["id"], "lot_id": r["lot_id"], "balance": r["balance"], "postings": r["postings"]},
                     military=True)
              for r in broken]
    async with db.transaction() as tx:
        changes = await alerts.apply(tx.pg, wanted, {"ledger_invariant"})
    return {"accounts_checked": checked, "alerts": changes, "mismatched": [
        {"account": r["id"], "type": r["type"], "lot_id": r["lot_id"], "balance": r["balance"], "postings": r["postings"]}
        for r in broken]}


def evaluate_alerts(settings: Settings):
    async def run(db: Database) -> dict[str, Any]:
        now = datetime.now(timezone.utc)
        async with db.transaction() as tx:
            return await alerts.evaluate(tx.pg, today=now.date(), now=now, expiring_days=settings.expiring_within_days)

    return run


def refresh_metrics(job_intervals: dict[str, float]):
    """Aggregate the reserve for the dashboards into the snapshot the API serves, with each job's
    interval (how stale its last success may grow: the StockpileJobStale alert)."""

    async def run(db: Database) -> dict[str, Any]:
        async with db.transaction() as tx:
            await repeatable_read(tx.pg)
            samples = await snapshots.aggregate(tx.pg, datetime.now(timezone.utc).date(), job_intervals=job_intervals)
            await snapshots.store(tx.pg, "business", samples)
        return {"series": len(samples)}

    return run


async def expire_reservations(db: Database) -> dict[str, Any]:
    """Approved plans not dispatched in time release their reservations; requests past their need
    date that have not received everything raise ``allocation_unfilled`` (resolved once received)."""
    now = datetime.now(timezone.utc)
    async with db.transaction() as tx:
        lapsed = await allocation.expire_reservations(tx.pg, now)
        short = await allocation_store.unfilled_requests(tx.pg, now.date())
        wanted = [Wanted("allocation_unfilled", f"request:{r['id']}", "critical" if r["priority"] == "flash" else "warning",
                         f"{r['priority']} request for {r['material'] or r['substitution_group']} at {r['destination']} "
                         f"was needed by {r['needed_by'].isoformat()} and is not fully received",
                         {"request_id": r["id"], "priority": r["priority"], "needed_by": r["needed_by"].isoformat()},
                         warehouse_id=r["destination_id"], military=r["requester_sector"] == "military")
                  for r in short]
        changes = await alerts.apply(tx.pg, wanted, {"allocation_unfilled"})
    return {"expired_plans": lapsed, "unfilled_requests": len(short), "alerts": changes}


async def plan_rotation(db: Database) -> dict[str, Any]:
    """Turn stock due for rotation into rotation orders, staggered within every target's floor and
    out-share cap; raise ``rotation_blocked`` and ``rotation_overdue`` (see ``services.rotation_plan``)."""
    async with db.transaction() as tx:
        return await rotation_plan.plan(tx.pg, today=datetime.now(timezone.utc).date(), reader=db)


def evaluate_sensors(settings: Settings):
    """Judge every sensor: a cold-chain excursion quarantines its lots and raises
    ``cold_chain_excursion``; a gauge at variance with the book raises ``stock_variance``; a silent
    sensor ``sensor_offline`` (see ``services.sensors``)."""
    async def run(db: Database) -> dict[str, Any]:
        async with db.transaction() as tx:
            return await sensors.evaluate(tx.pg, now=datetime.now(timezone.utc), gauge_tolerance=settings.gauge_tolerance,
                                          silence_minutes=settings.sensor_silence_minutes)

    return run


def maintain_readings(settings: Settings):
    """Make the readings' partitions of the week ahead; roll raw readings past their retention up by hour."""
    async def run(db: Database) -> dict[str, Any]:
        async with db.transaction() as tx:
            return await sensors.maintain(tx.pg, today=datetime.now(timezone.utc).date(),
                                          retention_days=settings.readings_retention_days)

    return run


def catalog(settings: Settings) -> dict[str, Job]:
    intervals: dict[str, float] = {}  # filled below, read by refresh-metrics when it runs
    jobs_ = [
        Job("seal-audit", seal_audit(settings), settings.job_seal_audit_seconds, changes_state=True),
        Job("check-ledger", check_ledger, settings.job_check_ledger_seconds, changes_state=True),
        Job("evaluate-alerts", evaluate_alerts(settings), settings.job_evaluate_alerts_seconds, changes_state=True),
        Job("deliver-notifications", deliver_notifications(settings), settings.job_deliver_notifications_seconds,
            changes_state=False),
        Job("refresh-metrics", refresh_metrics(intervals), settings.job_refresh_metrics_seconds, changes_state=False),
        Job("plan-rotation", plan_rotation, settings.job_plan_rotation_seconds, changes_state=True),
        Job("expire-reservations", expire_reservations, settings.job_expire_reservations_seconds, changes_state=True),
        Job("evaluate-sensors", evaluate_sensors(settings), settings.job_evaluate_sensors_seconds, changes_state=True),
        Job("maintain-readings", maintain_readings(settings), settings.job_maintain_readings_seconds, changes_state=True),
    ]
    intervals.update((job.name, job.interval_seconds) for job in jobs_)
    return {job.name: job for job in jobs_}

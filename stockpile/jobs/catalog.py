"""The worker's jobs. Each is idempotent: running a slot twice changes nothing more."""

from __future__ import annotations

import logging
from typing import Any

from stockpile.config import Settings
from stockpile.jobs.runs import Job
from stockpile.metrics import LEDGER_MISMATCHED_ACCOUNTS
from stockpile.store import audit, jobs
from stockpile.store.db import Database

log = logging.getLogger("stockpile.jobs")


async def seal_audit(db: Database) -> dict[str, Any]:
    """Chain the audit events of finished transactions into the hash chain."""
    async with db.transaction() as tx:
        return {"sealed": await audit.seal(tx.pg)}


async def check_ledger(db: Database) -> dict[str, Any]:
    """Guarantee 3 for every account: the stored balance equals the sum of its postings."""
    async with db.transaction() as tx:
        await tx.pg.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")  # one consistent snapshot
        broken = await jobs.ledger_mismatches(tx.pg)
        checked = await tx.pg.fetchval("SELECT count(*) FROM accounts")
    LEDGER_MISMATCHED_ACCOUNTS.set(len(broken))
    for row in broken:
        log.error("ledger invariant broken account=%s balance=%s postings=%s", row["id"], row["balance"], row["postings"])
    return {"accounts_checked": checked, "mismatched": [
        {"account": r["id"], "type": r["type"], "lot_id": r["lot_id"], "balance": r["balance"], "postings": r["postings"]}
        for r in broken]}


def catalog(settings: Settings) -> dict[str, Job]:
    jobs_ = [
        Job("seal-audit", seal_audit, settings.job_seal_audit_seconds, changes_state=True),
        Job("check-ledger", check_ledger, settings.job_check_ledger_seconds, changes_state=False),
    ]
    return {job.name: job for job in jobs_}

"""Job claims: which worker runs which slot of which job."""

from __future__ import annotations

import json
from typing import Any

import asyncpg


async def claim(pg: asyncpg.Connection, job: str, slot: int, worker: str, lease_seconds: float) -> bool:
    """Claim the slot; True for exactly one worker — the first, or the one taking over an expired lease."""
    claimed = await pg.fetchval(
        """INSERT INTO job_runs (job, slot, claimed_by, lease_until)
           VALUES ($1, $2, $3, now() + make_interval(secs => $4))
           ON CONFLICT (job, slot) DO UPDATE
              SET claimed_by = EXCLUDED.claimed_by, claimed_at = now(), lease_until = EXCLUDED.lease_until
            WHERE job_runs.finished_at IS NULL AND job_runs.lease_until < now()
           RETURNING true""",
        job, slot, worker, lease_seconds,
    )
    return bool(claimed)


async def holder_lease_left(pg: asyncpg.Connection, job: str, slot: int) -> float | None:
    """Seconds until the lease of the slot's unfinished run passes (≤ 0: passed); None when the
    slot has finished or was never claimed."""
    return await pg.fetchval(
        """SELECT extract(epoch FROM lease_until - now())::float8 FROM job_runs
            WHERE job = $1 AND slot = $2 AND finished_at IS NULL""",
        job, slot,
    )


async def renew(pg: asyncpg.Connection, job: str, slot: int, worker: str, lease_seconds: float) -> bool:
    """Extend this worker's lease on a slot it is running (the heartbeat); False if it lost the slot."""
    renewed = await pg.fetchval(
        """UPDATE job_runs SET lease_until = now() + make_interval(secs => $4)
            WHERE job = $1 AND slot = $2 AND claimed_by = $3 AND finished_at IS NULL
           RETURNING true""",
        job, slot, worker, lease_seconds,
    )
    return bool(renewed)


async def finish(pg: asyncpg.Connection, job: str, slot: int, worker: str, outcome: str, detail: dict[str, Any]) -> None:
    await pg.execute(
        """UPDATE job_runs SET finished_at = now(), outcome = $4, detail = $5::jsonb
            WHERE job = $1 AND slot = $2 AND claimed_by = $3""",
        job, slot, worker, outcome, json.dumps(detail, default=str),
    )


async def account_count(pg: asyncpg.Connection) -> int:
    """How many accounts exist (the ledger check reports how many it looked at)."""
    return await pg.fetchval("SELECT count(*) FROM accounts")


async def ledger_mismatches(pg: asyncpg.Connection, limit: int = 100) -> list[asyncpg.Record]:
    """Accounts whose stored balance differs from the sum of their postings (guarantee 3)."""
    return await pg.fetch(
        """SELECT a.id, a.type, a.lot_id::text AS lot_id, a.balance,
                  coalesce(p.total, 0) AS postings
             FROM accounts a
             LEFT JOIN (SELECT account_id, sum(delta)::bigint AS total FROM postings
                         WHERE account_id IS NOT NULL GROUP BY account_id) p ON p.account_id = a.id
            WHERE a.balance IS DISTINCT FROM coalesce(p.total, 0)
            ORDER BY a.id LIMIT $1""",
        limit,
    )

"""The SQL of the shared request limits: per-(key, window) counters every API process adds to.

One statement per reconciliation round: the process's admissions since the last round are added
(an upsert per (key, window), sorted so two processes lock rows in the same order), and the
totals of every window the process is watching come back, its own and everyone else's.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class WindowCount:
    key: str
    window_id: int
    count: int


async def add_and_read(pg: asyncpg.Connection, added: list[tuple[str, int, int, float]],
                       watched: list[tuple[str, int]]) -> list[WindowCount]:
    """Add ``(key, window_id, count, expires_at epoch)`` to the counters; return the totals of the
    added windows and of the ``(key, window_id)`` pairs in ``watched``."""
    added = sorted(added)
    sent = {(a[0], a[1]) for a in added}
    watched = [w for w in watched if w not in sent]  # the added windows' totals come back from the upsert
    rows = await pg.fetch(
        """WITH added AS (
               INSERT INTO rate_counters (key, window_id, count, expires_at)
               SELECT k, w, n, to_timestamp(e)
                 FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::float8[]) AS a(k, w, n, e)
                ORDER BY k, w
               ON CONFLICT (key, window_id) DO UPDATE SET count = rate_counters.count + EXCLUDED.count
               RETURNING key, window_id, count)
           SELECT key, window_id, count FROM added
           UNION ALL
           SELECT c.key, c.window_id, c.count
             FROM rate_counters c JOIN unnest($5::text[], $6::bigint[]) AS w(k, w) ON c.key = w.k AND c.window_id = w.w""",
        [a[0] for a in added], [a[1] for a in added], [a[2] for a in added], [a[3] for a in added],
        [w[0] for w in watched], [w[1] for w in watched],
    )
    return [WindowCount(r["key"], r["window_id"], r["count"]) for r in rows]


async def drop_expired(pg: asyncpg.Connection) -> int:
    """Delete the counters of windows no limit looks at any more; returns how many."""
    status = await pg.execute("DELETE FROM rate_counters WHERE expires_at < now()")
    return int(status.split()[-1])

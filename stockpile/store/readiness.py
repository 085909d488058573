"""Readiness declarations and the effective level of every region."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from stockpile.domain import readiness

_OWN = """
SELECT r.id, r.parent_id, d.level
FROM regions r
LEFT JOIN readiness_declarations d
       ON d.region_id = r.id AND d.state = 'effective' AND (d.ends_at IS NULL OR d.ends_at > now())
"""


async def effective_levels(pg: asyncpg.Connection, overrides: dict[int, str] | None = None) -> dict[int, str]:
    """region id → effective level ('peacetime' | 'emergency' | 'wartime') for every region.

    ``overrides`` replaces the declared own level of some regions (a drill's what-if)."""
    rows = await pg.fetch(_OWN)
    own = {r["id"]: r["level"] for r in rows if r["level"] is not None}
    own.update(overrides or {})
    return readiness.effective_levels({r["id"]: r["parent_id"] for r in rows}, own)


async def level_of_warehouse(pg: asyncpg.Connection, warehouse_id: int) -> str:
    """The effective level where a warehouse stands: the highest declared on its region or an ancestor."""
    levels = await pg.fetchval(
        """WITH RECURSIVE up(id, parent_id) AS (
               SELECT r.id, r.parent_id FROM regions r JOIN warehouses w ON w.region_id = r.id WHERE w.id = $1
               UNION SELECT r.id, r.parent_id FROM regions r JOIN up ON r.id = up.parent_id)
           SELECT array_agg(d.level) FROM up JOIN readiness_declarations d
               ON d.region_id = up.id AND d.state = 'effective' AND (d.ends_at IS NULL OR d.ends_at > now())""",
        warehouse_id)
    return readiness.highest(levels or ())


_DECLARATION = """
SELECT d.id, d.level, d.reason, d.state, d.declared_at, d.confirmed_at, d.effective_at, d.ends_at, d.ended_at,
       d.declared_by, d.region_id, g.code AS region, p.name AS declared_by_name, c.name AS confirmed_by_name
FROM readiness_declarations d
JOIN regions g ON g.id = d.region_id
JOIN principals p ON p.id = d.declared_by
LEFT JOIN principals c ON c.id = d.confirmed_by
"""


async def declaration(pg: asyncpg.Connection, declaration_id: str, *, for_update: bool = False) -> asyncpg.Record | None:
    return await pg.fetchrow(_DECLARATION + " WHERE d.id = $1" + (" FOR UPDATE OF d" if for_update else ""),
                             declaration_id)


async def declarations(pg: asyncpg.Connection, *, region_id: int | None, state: str | None,
                       before: tuple[datetime, str] | None, limit: int) -> list[asyncpg.Record]:
    return await pg.fetch(
        _DECLARATION + """ WHERE ($1::bigint IS NULL OR d.region_id = $1) AND ($2::text IS NULL OR d.state = $2)
          AND ($3::timestamptz IS NULL OR (d.declared_at, d.id) < ($3, $4::uuid))
        ORDER BY d.declared_at DESC, d.id DESC LIMIT $5""",
        region_id, state, before[0] if before else None, before[1] if before else None, limit)


async def declare(pg: asyncpg.Connection, *, region_id: int, level: str, reason: str, principal_id: int,
                  pending: bool, ends_at: datetime | None) -> str:
    """Record a declaration: pending a second commander, or effective at once (superseding the region's last)."""
    await pg.execute("SELECT pg_advisory_xact_lock(hashtext('readiness'), $1::int)", region_id)
    if not pending:
        await _supersede(pg, region_id)
    return await pg.fetchval(
        """INSERT INTO readiness_declarations (region_id, level, reason, state, declared_by, ends_at, effective_at)
           VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $4 = 'effective' THEN now() END) RETURNING id""",
        region_id, level, reason, "pending_confirmation" if pending else "effective", principal_id, ends_at)


async def _supersede(pg: asyncpg.Connection, region_id: int) -> None:
    await pg.execute("""UPDATE readiness_declarations SET state = 'superseded', ended_at = now()
                        WHERE region_id = $1 AND state = 'effective'""", region_id)


async def confirm(pg: asyncpg.Connection, declaration_id: str, region_id: int, principal_id: int) -> None:
    """The second commander's confirmation makes a pending declaration effective."""
    await pg.execute("SELECT pg_advisory_xact_lock(hashtext('readiness'), $1::int)", region_id)
    await _supersede(pg, region_id)
    await pg.execute("""UPDATE readiness_declarations
                        SET state = 'effective', effective_at = now(), confirmed_by = $2, confirmed_at = now()
                        WHERE id = $1""", declaration_id, principal_id)


async def withdraw(pg: asyncpg.Connection, declaration_id: str) -> None:
    await pg.execute("UPDATE readiness_declarations SET state = 'withdrawn', ended_at = now() WHERE id = $1",
                     declaration_id)


async def regions(pg: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every region with its own effective declaration (if any) and its pending ones."""
    return await pg.fetch("""
        SELECT r.id, r.code, r.name, r.parent_id, d.id AS declaration_id, d.level AS own_level, d.effective_at,
               (SELECT count(*) FROM readiness_declarations p WHERE p.region_id = r.id
                 AND p.state = 'pending_confirmation') AS pending
        FROM regions r
        LEFT JOIN readiness_declarations d
               ON d.region_id = r.id AND d.state = 'effective' AND (d.ends_at IS NULL OR d.ends_at > now())
        ORDER BY r.code""")

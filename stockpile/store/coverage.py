"""Reserve targets and their coverage, computed set-wise: one statement for every target."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg

TARGET = """
SELECT t.id, t.code, sw.code AS warehouse, sr.code AS region, m.code AS material, t.category, t.substitution_group,
       o.code AS owner, t.sector, t.quantity, t.warning_ratio, t.critical_ratio, t.floor_ratio, t.horizon_days,
       t.population, t.scope_warehouse_id, t.scope_region_id, coalesce(sw.region_id, t.scope_region_id) AS home_region_id,
       o.sector AS owner_sector, m.daily_consumption_per_person, m.unit,
       coalesce(t.category, m.category,
                (SELECT min(g.category) FROM materials g WHERE g.substitution_group = t.substitution_group)) AS target_category
  FROM reserve_targets t
  LEFT JOIN warehouses sw ON sw.id = t.scope_warehouse_id
  LEFT JOIN regions sr ON sr.id = t.scope_region_id
  LEFT JOIN materials m ON m.id = t.material_id
  LEFT JOIN parties o ON o.id = t.owner_id"""

# A target is visible when its scope is the reader's, and — for a reader not cleared for military
# stock — when it is not military-owned and, counting every owner, not narrowed to one warehouse
# (that would show a military quantity at a place: such readers see it aggregated to a region or not at all).
VISIBLE = """
    ({warehouses}::bigint[] IS NULL
       OR t.scope_warehouse_id = ANY({warehouses}) OR t.scope_region_id = ANY({regions}))
    AND ({cleared} OR (coalesce(o.sector, t.sector, '') <> 'military'
                       AND NOT (t.owner_id IS NULL AND t.sector IS NULL AND t.scope_warehouse_id IS NOT NULL)))"""


async def upsert_target(pg: asyncpg.Connection, code: str, values: dict[str, Any]) -> bool:
    columns = ["code", *values]
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in values)
    return await pg.fetchval(
        f"""INSERT INTO reserve_targets ({", ".join(columns)}) VALUES ({placeholders})
            ON CONFLICT (code) DO UPDATE SET {updates}, updated_at = now() RETURNING xmax = 0""",
        code, *values.values(),
    )


async def target(pg: asyncpg.Connection, code: str, *, warehouse_ids: list[int] | None = None,
                 region_ids: list[int] | None = None, cleared: bool = True) -> asyncpg.Record | None:
    return await pg.fetchrow(
        f"{TARGET} WHERE t.code = $1 AND {VISIBLE.format(warehouses='$2', regions='$3', cleared='$4')}",
        code, warehouse_ids, region_ids, cleared,
    )


async def targets(pg: asyncpg.Connection, *, after: str | None, limit: int, warehouse_ids: list[int] | None = None,
                  region_ids: list[int] | None = None, cleared: bool = True) -> list[asyncpg.Record]:
    return await pg.fetch(
        f"""{TARGET} WHERE ($1::text IS NULL OR t.code > $1)
              AND {VISIBLE.format(warehouses='$3', regions='$4', cleared='$5')}
            ORDER BY t.code LIMIT $2""",
        after, limit, warehouse_ids, region_ids, cleared,
    )


async def coverage(
    pg: asyncpg.Connection, *, today: date, region: str | None, category: str | None,
    warehouse_ids: list[int] | None = None, region_ids: list[int] | None = None, cleared: bool = True,
) -> list[asyncpg.Record]:
    """Every visible target (in ``region``'s subtree, of ``category``) with its usable quantity.

    Usable stock is aggregated once per (horizon, warehouse, material, owner) — and per region for
    region-wide targets — and targets are joined to those aggregates through the materials they
    select and a region closure, so the cost is one pass over the stock plus small joins, however
    many targets there are.
    """
    return await pg.fetch(
        f"""WITH RECURSIVE closure(ancestor, descendant) AS (
                SELECT id, id FROM regions
                UNION ALL SELECT c.ancestor, r.id FROM closure c JOIN regions r ON r.parent_id = c.descendant),
            chosen AS MATERIALIZED (
                SELECT * FROM ({TARGET}
                        WHERE {VISIBLE.format(warehouses='$4', regions='$5', cleared='$6')}) t
                 WHERE ($2::text IS NULL OR t.home_region_id IN
                           (SELECT cl.descendant FROM closure cl JOIN regions rr ON rr.id = cl.ancestor WHERE rr.code = $2))
                   AND ($3::text IS NULL OR t.target_category = $3)),
            selected AS MATERIALIZED (  -- each target's materials
                SELECT t.id AS target_id, t.scope_warehouse_id, t.scope_region_id, t.horizon_days, t.owner_id,
                       t.sector, m.id AS material_id, m.decimals
                  FROM chosen c JOIN reserve_targets t ON t.id = c.id
                  JOIN materials m ON m.id = t.material_id OR m.category = t.category
                                   OR m.substitution_group = t.substitution_group),
            horizons AS (SELECT DISTINCT horizon_days FROM selected),
            by_warehouse AS MATERIALIZED (
                SELECT h.horizon_days, l.warehouse_id, w.region_id, l.material_id, a.owner_id, o.sector,
                       sum(a.balance - a.reserved) AS units
                  FROM horizons h
                  JOIN lots l ON l.status = 'available' AND (l.expires_on IS NULL OR l.expires_on > $1::date + h.horizon_days)
                  JOIN accounts a ON a.lot_id = l.id AND a.type = 'stock' AND a.balance > a.reserved
                  JOIN warehouses w ON w.id = l.warehouse_id
                  JOIN parties o ON o.id = a.owner_id
                 GROUP BY 1, 2, 3, 4, 5, 6),
            by_region AS MATERIALIZED (
                SELECT horizon_days, region_id, material_id, owner_id, sector, sum(units) AS units
                  FROM by_warehouse GROUP BY 1, 2, 3, 4, 5),
            -- Targets that name no owner need only the sector: far fewer rows to join.
            by_warehouse_sector AS MATERIALIZED (
                SELECT horizon_days, warehouse_id, material_id, sector, sum(units) AS units
                  FROM by_warehouse GROUP BY 1, 2, 3, 4),
            by_region_sector AS MATERIALIZED (
                SELECT horizon_days, region_id, material_id, sector, sum(units) AS units
                  FROM by_region GROUP BY 1, 2, 3, 4),
            region_keys AS MATERIALIZED (  -- a region-wide target, expanded to every region under it
                SELECT s.target_id, s.decimals, s.owner_id, s.sector, s.material_id, s.horizon_days,
                       cl.descendant AS region_id
                  FROM selected s JOIN closure cl ON cl.ancestor = s.scope_region_id),
            matched(target_id, decimals, units) AS (
                SELECT s.target_id, s.decimals, b.units FROM selected s JOIN by_warehouse b
                    ON b.warehouse_id = s.scope_warehouse_id AND b.material_id = s.material_id
                   AND b.horizon_days = s.horizon_days AND b.owner_id = s.owner_id
                UNION ALL
                SELECT s.target_id, s.decimals, b.units FROM selected s JOIN by_warehouse_sector b
                    ON b.warehouse_id = s.scope_warehouse_id AND b.material_id = s.material_id
                   AND b.horizon_days = s.horizon_days
                 WHERE s.owner_id IS NULL AND (s.sector IS NULL OR s.sector = b.sector)
                UNION ALL
                SELECT t.target_id, t.decimals, b.units FROM region_keys t JOIN by_region b
                    ON b.region_id = t.region_id AND b.material_id = t.material_id
                   AND b.horizon_days = t.horizon_days AND b.owner_id = t.owner_id
                UNION ALL
                SELECT t.target_id, t.decimals, b.units FROM region_keys t JOIN by_region_sector b
                    ON b.region_id = t.region_id AND b.material_id = t.material_id AND b.horizon_days = t.horizon_days
                 WHERE t.owner_id IS NULL AND (t.sector IS NULL OR t.sector = b.sector)),
            usable AS (
                SELECT target_id, sum(units::numeric / (10::numeric ^ decimals)) AS usable
                  FROM matched GROUP BY target_id)
            SELECT c.*, coalesce(u.usable, 0) AS usable
              FROM chosen c LEFT JOIN usable u ON u.target_id = c.id
             ORDER BY c.code""",
        today, region, category, warehouse_ids, region_ids, cleared,
    )

"""Capacities (upsert by code, with their survey history) and the potential statement, set-wise."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg

from stockpile.store import masterdata
from stockpile.store.visibility import CAPACITIES, CAPACITY_MILITARY, POSITIONS, TARGETS

CAPACITY = f"""
SELECT k.id, k.code, kp.code AS party, kp.sector AS party_sector, m.code AS material, m.unit, m.decimals, m.category,
       k.daily_quantity, k.lead_days, r.code AS region, w.code AS warehouse, k.held_for, k.surveyed_on,
       k.survey_interval_days, k.note, k.region_id, k.warehouse_id, k.material_id, k.party_id,
       k.created_at, k.updated_at, {CAPACITY_MILITARY} AS military
  FROM capacities k
  JOIN parties kp ON kp.id = k.party_id
  JOIN materials m ON m.id = k.material_id
  JOIN regions r ON r.id = k.region_id
  LEFT JOIN warehouses w ON w.id = k.warehouse_id"""

_CLOSURE = """WITH RECURSIVE closure(ancestor, descendant) AS (
    SELECT id, id FROM regions
    UNION ALL SELECT c.ancestor, r.id FROM closure c JOIN regions r ON r.parent_id = c.descendant)"""


async def capacity(pg: asyncpg.Connection, code: str, *, warehouse_ids: list[int] | None = None,
                   region_ids: list[int] | None = None, cleared: bool = True,
                   for_update: bool = False) -> asyncpg.Record | None:
    """One capacity as the reader (by default everything) may see it; ``for_update`` locks it (a
    survey judges the capacity as it is, and nobody changes it meanwhile)."""
    lock = " FOR UPDATE OF k" if for_update else ""
    return await pg.fetchrow(
        f"{CAPACITY} WHERE k.code = $1 AND {CAPACITIES.format(warehouses='$2', regions='$3', cleared='$4')}{lock}",
        code, warehouse_ids, region_ids, cleared)


async def capacities(pg: asyncpg.Connection, *, region: str | None, material: str | None, after: str | None,
                     limit: int, warehouse_ids: list[int] | None = None, region_ids: list[int] | None = None,
                     cleared: bool = True) -> list[asyncpg.Record]:
    """The capacities the reader may see, by code: delivering to ``region`` or a region under it, of ``material``."""
    return await pg.fetch(
        f"""{_CLOSURE} {CAPACITY}
             WHERE ($1::text IS NULL OR k.region_id IN (
                       SELECT cl.descendant FROM closure cl JOIN regions rr ON rr.id = cl.ancestor WHERE rr.code = $1))
               AND ($2::text IS NULL OR m.code = $2) AND ($3::text IS NULL OR k.code > $3)
               AND {CAPACITIES.format(warehouses='$5', regions='$6', cleared='$7')}
             ORDER BY k.code LIMIT $4""",
        region, material, after, limit, warehouse_ids, region_ids, cleared)


async def upsert(pg: asyncpg.Connection, code: str, values: dict[str, Any]) -> bool:
    """Insert or replace the capacity with this code; True when it was created."""
    return await masterdata.upsert(pg, "capacities", code, values)


async def record_survey(pg: asyncpg.Connection, capacity_id: int, *, surveyed_on: date, daily_quantity: int,
                        lead_days: int, note: str, principal_id: int | None) -> None:
    """The survey of ``surveyed_on`` in the capacity's history: a new date is a new survey; the same
    date again restates that survey."""
    await pg.execute(
        """INSERT INTO capacity_surveys (capacity_id, surveyed_on, daily_quantity, lead_days, note, principal_id)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (capacity_id, surveyed_on) DO UPDATE
              SET daily_quantity = EXCLUDED.daily_quantity, lead_days = EXCLUDED.lead_days, note = EXCLUDED.note,
                  principal_id = EXCLUDED.principal_id, recorded_at = now()""",
        capacity_id, surveyed_on, daily_quantity, lead_days, note, principal_id)


async def surveys(pg: asyncpg.Connection, capacity_id: int) -> list[asyncpg.Record]:
    """A capacity's surveys, newest first."""
    return await pg.fetch(
        """SELECT s.surveyed_on, s.daily_quantity, s.lead_days, s.note, s.recorded_at, p.name AS recorded_by
             FROM capacity_surveys s LEFT JOIN principals p ON p.id = s.principal_id
            WHERE s.capacity_id = $1 ORDER BY s.surveyed_on DESC""", capacity_id)


# The potential: per region (every region with its sub-regions) × material, the usable stock (available
# lots, not expired, less what is reserved), the capacity per day grouped by lead day, and the
# population the region's reserve targets serve. One pass over the stock, aggregated per (warehouse
# region, material) before the roll-up, like the coverage statement. $1 today, $2 region code,
# $3 category, $4 warehouse ids, $5 region ids, $6 cleared.
POTENTIAL = f"""{_CLOSURE},
    shown AS MATERIALIZED (  -- the regions answered: under $2, in the reader's regions
        SELECT r.id, r.code FROM regions r
         WHERE ($2::text IS NULL OR r.id IN (SELECT cl.descendant FROM closure cl JOIN regions rr ON rr.id = cl.ancestor
                                               WHERE rr.code = $2))
           AND ($4::bigint[] IS NULL OR r.id = ANY($5::bigint[]))),
    kinds AS MATERIALIZED (SELECT id, category FROM materials WHERE $3::text IS NULL OR category = $3),
    stock AS MATERIALIZED (
        SELECT w.region_id, l.material_id, sum(a.balance - a.reserved) AS units
          FROM lots l
          JOIN accounts a ON a.lot_id = l.id AND a.type = 'stock' AND a.balance > a.reserved
          JOIN parties o ON o.id = a.owner_id
          JOIN warehouses w ON w.id = l.warehouse_id
         WHERE l.status = 'available' AND (l.expires_on IS NULL OR l.expires_on > $1::date)
           AND l.material_id IN (SELECT id FROM kinds)
           AND {POSITIONS.format(warehouses='$4', cleared='$6')}
         GROUP BY 1, 2),
    capacity AS MATERIALIZED (
        SELECT k.region_id, k.material_id, k.lead_days, sum(k.daily_quantity) AS daily
          FROM capacities k JOIN parties kp ON kp.id = k.party_id
         WHERE k.material_id IN (SELECT id FROM kinds)
           AND {CAPACITIES.format(warehouses='$4', regions='$5', cleared='$6')}
         GROUP BY 1, 2, 3),
    stock_up AS (
        SELECT cl.ancestor AS region_id, s.material_id, sum(s.units) AS units
          FROM stock s JOIN closure cl ON cl.descendant = s.region_id
         WHERE cl.ancestor IN (SELECT id FROM shown) GROUP BY 1, 2),
    capacity_up AS (
        SELECT region_id, material_id, sum(daily) AS daily, array_agg(lead_days ORDER BY lead_days) AS leads,
               array_agg(daily ORDER BY lead_days) AS dailies
          FROM (SELECT cl.ancestor AS region_id, c.material_id, c.lead_days, sum(c.daily) AS daily
                  FROM capacity c JOIN closure cl ON cl.descendant = c.region_id
                 WHERE cl.ancestor IN (SELECT id FROM shown) GROUP BY 1, 2, 3) per_lead
         GROUP BY 1, 2),
    served AS (  -- the population a region's reserve targets serve, per material they count
        SELECT t.scope_region_id AS region_id, m.id AS material_id, max(t.population) AS population
          FROM reserve_targets t LEFT JOIN parties o ON o.id = t.owner_id
          JOIN materials m ON m.id = t.material_id OR m.category = t.category
                           OR m.substitution_group = t.substitution_group
         WHERE t.population IS NOT NULL AND t.scope_region_id IN (SELECT id FROM shown)
           AND {TARGETS.format(warehouses='$4', regions='$5', cleared='$6')}
         GROUP BY 1, 2)
SELECT g.code AS region, m.code AS material, m.category, m.unit, m.decimals, m.daily_consumption_per_person,
       coalesce(s.units, 0)::bigint AS units, coalesce(c.daily, 0)::bigint AS daily,
       coalesce(c.leads, '{{}}') AS leads, coalesce(c.dailies, '{{}}')::bigint[] AS dailies, p.population
  FROM stock_up s FULL JOIN capacity_up c ON c.region_id = s.region_id AND c.material_id = s.material_id
  JOIN shown g ON g.id = coalesce(s.region_id, c.region_id)
  JOIN materials m ON m.id = coalesce(s.material_id, c.material_id)
  LEFT JOIN served p ON p.region_id = g.id AND p.material_id = m.id
 ORDER BY g.code, m.code"""


async def potential(pg: asyncpg.Connection, *, today: date, region: str | None, category: str | None,
                    warehouse_ids: list[int] | None = None, region_ids: list[int] | None = None,
                    cleared: bool = True) -> list[asyncpg.Record]:
    """Per region (in ``region``'s subtree, in the reader's regions) × material (of ``category``):
    usable stock and capacity per day (smallest units; ``leads``/``dailies`` the capacity per lead
    day), and the population served. A reader not ``cleared`` gets no military stock and no
    military capacity counted, so no military position or capacity can be recovered from a row."""
    return await pg.fetch(POTENTIAL, today, region, category, warehouse_ids, region_ids, cleared)


async def want_overdue_surveys(pg: asyncpg.Connection, today: date) -> None:
    """Stage ``survey_overdue`` for every capacity past ``surveyed_on + survey_interval_days``."""
    await pg.execute(
        f"""INSERT INTO alert_wanted
            SELECT 'survey_overdue', 'capacity:' || k.code, 'warning',
                   format('capacity %s (%s of %s) was last surveyed on %s; a survey was due by %s',
                          k.code, m.code, kp.code, k.surveyed_on, k.surveyed_on + k.survey_interval_days),
                   jsonb_build_object('capacity', k.code, 'surveyed_on', k.surveyed_on,
                                      'due_on', k.surveyed_on + k.survey_interval_days),
                   k.warehouse_id, k.region_id, {CAPACITY_MILITARY}
              FROM capacities k JOIN parties kp ON kp.id = k.party_id JOIN materials m ON m.id = k.material_id
             WHERE k.surveyed_on + k.survey_interval_days < $1::date""",
        today)


async def outputs_of_targets(pg: asyncpg.Connection, target_ids: list[int], *, cleared: bool = True,
                             ) -> list[asyncpg.Record]:
    """The capacity that delivers into each target's scope (its warehouse, or its region and every
    region under it) of the materials it counts, per lead day (``daily`` in material units, exact);
    unless ``cleared``, no military capacity."""
    return await pg.fetch(
        f"""{_CLOSURE}
            SELECT t.id AS target_id, k.lead_days, sum(k.daily_quantity / 10::numeric ^ m.decimals) AS daily
              FROM reserve_targets t
              JOIN materials m ON m.id = t.material_id OR m.category = t.category
                               OR m.substitution_group = t.substitution_group
              JOIN capacities k ON k.material_id = m.id
              JOIN parties kp ON kp.id = k.party_id
             WHERE t.id = ANY($1::bigint[]) AND ($2 OR NOT {CAPACITY_MILITARY})
               AND (k.warehouse_id = t.scope_warehouse_id
                    OR k.region_id IN (SELECT descendant FROM closure WHERE ancestor = t.scope_region_id))
             GROUP BY 1, 2 ORDER BY 1, 2""",
        target_ids, cleared)

"""Reserve targets and their coverage, computed set-wise: one statement for every target."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg

from stockpile.domain.coverage import horizon_cuts
from stockpile.store import masterdata
from stockpile.store.visibility import COUNTED_STOCK, TARGETS

TARGET = """
SELECT t.id, t.code, sw.code AS warehouse, sr.code AS region, m.code AS material, t.category, t.substitution_group,
       o.code AS owner, t.sector, t.quantity, t.warning_ratio, t.critical_ratio, t.floor_ratio, t.horizon_days,
       t.population, t.scope_warehouse_id, t.scope_region_id, t.material_id, t.owner_id, coalesce(sw.region_id, t.scope_region_id) AS home_region_id,
       o.sector AS owner_sector, m.daily_consumption_per_person, m.unit,
       coalesce(t.category, m.category,
                (SELECT min(g.category) FROM materials g WHERE g.substitution_group = t.substitution_group)) AS target_category
  FROM reserve_targets t
  LEFT JOIN warehouses sw ON sw.id = t.scope_warehouse_id
  LEFT JOIN regions sr ON sr.id = t.scope_region_id
  LEFT JOIN materials m ON m.id = t.material_id
  LEFT JOIN parties o ON o.id = t.owner_id"""

async def upsert_target(pg: asyncpg.Connection, code: str, values: dict[str, Any]) -> bool:
    return await masterdata.upsert(pg, "reserve_targets", code, values)


async def target(pg: asyncpg.Connection, code: str, *, warehouse_ids: list[int] | None = None,
                 region_ids: list[int] | None = None, cleared: bool = True, for_update: bool = False,
                 ) -> asyncpg.Record | None:
    """One target as the reader may see it; ``for_update`` locks its row (a write judges the target
    as it is, and nobody changes it meanwhile)."""
    lock = " FOR UPDATE OF t" if for_update else ""
    return await pg.fetchrow(
        f"{TARGET} WHERE t.code = $1 AND {TARGETS.format(warehouses='$2', regions='$3', cleared='$4')}{lock}",
        code, warehouse_ids, region_ids, cleared,
    )


async def targets(pg: asyncpg.Connection, *, after: str | None, limit: int, warehouse_ids: list[int] | None = None,
                  region_ids: list[int] | None = None, cleared: bool = True) -> list[asyncpg.Record]:
    return await pg.fetch(
        f"""{TARGET} WHERE ($1::text IS NULL OR t.code > $1)
              AND {TARGETS.format(warehouses='$3', regions='$4', cleared='$5')}
            ORDER BY t.code LIMIT $2""",
        after, limit, warehouse_ids, region_ids, cleared,
    )


async def every_target(pg: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every target (the columns of ``TARGET``) by code: the rows ``coverage`` gives of every target,
    without their usable quantity."""
    return await pg.fetch(f"{TARGET} ORDER BY t.code")


async def horizon_cuts_and_named_owners(pg: asyncpg.Connection) -> tuple[list[int], list[int]]:
    """The shape of every target, as the coverage statement's parameters: the horizon cuts (see
    ``stockpile.domain.coverage.horizon_cuts``) and the owners some target names."""
    row = await pg.fetchrow(
        """SELECT coalesce(array_agg(DISTINCT horizon_days), '{}') AS horizons,
                  coalesce(array_agg(DISTINCT owner_id) FILTER (WHERE owner_id IS NOT NULL), '{}') AS owners
             FROM reserve_targets""")
    return horizon_cuts(row["horizons"]), sorted(row["owners"])


# The one pass over the stock (of the warehouses ``{within}``). ``lasts`` = how many horizon cuts the
# stock outlives; an owner is kept apart only when some target names it; lots expiring within the
# alert window (``{expiring}``) stay apart, one group each, for the expiry alerts.
STOCK_PASS = """
    SELECT l.warehouse_id, l.material_id, o.sector,
           CASE WHEN a.owner_id = ANY ({owners}) THEN a.owner_id END AS owner_id,
           CASE WHEN l.expires_on IS NULL THEN cardinality({cuts})
                ELSE width_bucket(l.expires_on - {today}, {cuts}) END AS lasts,
           CASE WHEN {expiring} THEN l.id END AS lot_id,
           min(l.code) FILTER (WHERE {expiring}) AS lot_code,
           min(l.expires_on) FILTER (WHERE {expiring}) AS expires_on,
           sum(a.balance - a.reserved) FILTER (WHERE l.status = 'available') AS units,
           sum(a.balance) AS on_hand
      FROM lots l
      JOIN accounts a ON a.lot_id = l.id AND a.type = 'stock' AND a.balance > 0
      JOIN parties o ON o.id = a.owner_id
     WHERE {within}
       AND ((l.status = 'available' AND a.balance > a.reserved
             AND (l.expires_on IS NULL OR l.expires_on >= {today} + ({cuts})[1]))
            OR {expiring})
     GROUP BY 1, 2, 3, 4, 5, 6"""


# Every region with each region under it, itself included (a recursive CTE).
CLOSURE = """closure(ancestor, descendant) AS (
                SELECT id, id FROM regions
                UNION ALL SELECT c.ancestor, r.id FROM closure c JOIN regions r ON r.parent_id = c.descendant)"""

# Each target of ``chosen`` with each material it counts, and the horizon cut it needs (of ``{cuts}``).
SELECTED = """selected AS MATERIALIZED (  -- each target's materials, and the cut its horizon needs
                SELECT t.id, t.scope_warehouse_id, t.scope_region_id, t.owner_id, t.sector, m.id AS material_id,
                       m.decimals, array_position({cuts}, t.horizon_days + 1) AS needs
                  FROM chosen t JOIN materials m ON m.id = t.material_id
                UNION ALL
                SELECT t.id, t.scope_warehouse_id, t.scope_region_id, t.owner_id, t.sector, m.id, m.decimals,
                       array_position({cuts}, t.horizon_days + 1)
                  FROM chosen t JOIN materials m ON m.category = t.category
                UNION ALL
                SELECT t.id, t.scope_warehouse_id, t.scope_region_id, t.owner_id, t.sector, m.id, m.decimals,
                       array_position({cuts}, t.horizon_days + 1)
                  FROM chosen t JOIN materials m ON m.substitution_group = t.substitution_group)"""


def _coverage_ctes(visible: str, chosen_where: str, today: str, cuts: str, owners: str, expiring: str,
                   within: str = "true") -> str:
    """The coverage CTEs, ending in ``usable`` (target id → usable quantity) and ``stock`` (the pass)."""
    return f"""WITH RECURSIVE {CLOSURE},
            chosen AS MATERIALIZED (SELECT * FROM ({TARGET} WHERE {visible}) t WHERE {chosen_where}),
            stock AS MATERIALIZED ({STOCK_PASS.format(today=today, cuts=cuts, owners=owners, expiring=expiring,
                                                      within=within)}),
            by_region AS MATERIALIZED (  -- rolled up to every region that scopes a target, sub-regions included
                SELECT cl.ancestor AS region_id, f.material_id, f.sector, f.owner_id, f.lasts, sum(f.units) AS units
                  FROM (SELECT w.region_id, s.material_id, s.sector, s.owner_id, s.lasts, sum(s.units) AS units
                          FROM stock s JOIN warehouses w ON w.id = s.warehouse_id
                         WHERE s.lasts > 0 AND s.units > 0 GROUP BY 1, 2, 3, 4, 5) f
                  JOIN closure cl ON cl.descendant = f.region_id
                 WHERE cl.ancestor IN (SELECT scope_region_id FROM chosen)
                 GROUP BY 1, 2, 3, 4, 5),
            {SELECTED.format(cuts=cuts)},
            matched AS (
                SELECT t.id, t.decimals, s.units FROM selected t JOIN stock s
                    ON s.warehouse_id = t.scope_warehouse_id AND s.material_id = t.material_id
                 WHERE s.lasts >= t.needs AND s.units > 0 AND (t.owner_id IS NULL OR s.owner_id = t.owner_id)
                   AND (t.sector IS NULL OR s.sector = t.sector)
                UNION ALL
                SELECT t.id, t.decimals, s.units FROM selected t JOIN by_region s
                    ON s.region_id = t.scope_region_id AND s.material_id = t.material_id
                 WHERE s.lasts >= t.needs AND (t.owner_id IS NULL OR s.owner_id = t.owner_id)
                   AND (t.sector IS NULL OR s.sector = t.sector)),
            usable AS (  -- exact: integer sums per unit precision, divided once
                SELECT id, sum(units / 10::numeric ^ decimals) AS usable
                  FROM (SELECT id, decimals, sum(units) AS units FROM matched GROUP BY 1, 2) per_precision
                 GROUP BY id)"""


# Reads: $1 today, $2 region code, $3 category, $4 warehouse ids, $5 region ids, $6 cleared,
# $7 horizon cuts, $8 named owners.
COVERAGE = _coverage_ctes(
    TARGETS.format(warehouses='$4', regions='$5', cleared='$6'),
    """($2::text IS NULL OR t.home_region_id IN
               (SELECT cl.descendant FROM closure cl JOIN regions rr ON rr.id = cl.ancestor WHERE rr.code = $2))
        AND ($3::text IS NULL OR t.target_category = $3)""",
    today="$1::date", cuts="$7::int[]", owners="$8::bigint[]", expiring="false",
    # a region's targets count only stock under it: pass over that part of the stock alone
    within="""($2::text IS NULL OR l.warehouse_id IN (
                  SELECT w.id FROM warehouses w JOIN closure cl ON cl.descendant = w.region_id
                    JOIN regions rr ON rr.id = cl.ancestor WHERE rr.code = $2))
              AND """ + COUNTED_STOCK.format(cleared="$6"),
) + """
            SELECT c.*, coalesce(u.usable, 0) AS usable
              FROM chosen c LEFT JOIN usable u ON u.id = c.id
             ORDER BY c.code"""

# Some targets only (a floor check): $1 today, $2 target ids, $3 horizon cuts, $4 named owners, and
# the reach of those targets ($5 warehouse ids, $6 material ids, see REACH): the pass reads only the
# stock they can count, through the lots' (warehouse, material) index, so an approval drawing on a
# few positions does not take stock of the whole nation.
COVERAGE_OF_TARGETS = _coverage_ctes(
    "true", "t.id = ANY($2::bigint[])", today="$1::date", cuts="$3::int[]", owners="$4::bigint[]", expiring="false",
    within="l.warehouse_id = ANY($5::bigint[]) AND l.material_id = ANY($6::bigint[]) AND "
           + COUNTED_STOCK.format(cleared="$7"),
) + """
            SELECT c.*, coalesce(u.usable, 0) AS usable
              FROM chosen c LEFT JOIN usable u ON u.id = c.id
             ORDER BY c.code"""

# The warehouses and materials whose stock the targets $1 can count: their own warehouse, or every
# warehouse under their region; their material, category or substitution group.
REACH = """
    WITH RECURSIVE chosen AS (SELECT * FROM reserve_targets WHERE id = ANY($1::bigint[])),
         under(region_id) AS (
             SELECT scope_region_id FROM chosen WHERE scope_region_id IS NOT NULL
             UNION SELECT r.id FROM regions r JOIN under u ON r.parent_id = u.region_id)
    SELECT ARRAY(SELECT scope_warehouse_id FROM chosen WHERE scope_warehouse_id IS NOT NULL
                 UNION SELECT w.id FROM warehouses w JOIN under u ON w.region_id = u.region_id) AS warehouse_ids,
           ARRAY(SELECT m.id FROM chosen t JOIN materials m
                     ON m.id = t.material_id OR m.category = t.category OR m.substitution_group = t.substitution_group
                 GROUP BY m.id) AS material_ids"""

# An alert evaluation takes stock once, nationally: $1 today, $2 horizon cuts, $3 named owners,
# $4 alert window in days. The result holds a row per target (its usable quantity) and a row per
# lot holding stock that expires within the window. A parallel CREATE TABLE AS, a small result.
TAKE_STOCK = "CREATE TEMPORARY TABLE taken_stock ON COMMIT DROP AS " + _coverage_ctes(
    "true", "true", today="$1::date", cuts="$2::int[]", owners="$3::bigint[]", expiring="l.expires_on <= $1::date + $4::int",
) + """
            SELECT id AS target_id, usable, NULL::uuid AS lot_id, NULL::text AS lot_code, NULL::date AS expires_on,
                   NULL::bigint AS warehouse_id, NULL::bigint AS material_id, NULL::numeric AS on_hand,
                   NULL::boolean AS military
              FROM usable
             UNION ALL
            SELECT NULL, NULL, lot_id, min(lot_code), min(expires_on), min(warehouse_id), min(material_id),
                   sum(on_hand), bool_or(sector = 'military')
              FROM stock WHERE lot_id IS NOT NULL GROUP BY lot_id"""

COVERAGE_OF_TAKEN_STOCK = f"""
    SELECT t.*, coalesce(k.usable, 0) AS usable
      FROM ({TARGET}) t LEFT JOIN taken_stock k ON k.target_id = t.id
     ORDER BY t.code"""


async def custom_plans(pg: asyncpg.Connection) -> None:
    """Plan the coverage statement for its parameters every time, for the rest of the transaction.

    After five executions on one pooled connection PostgreSQL may switch a prepared statement to a
    generic plan; for this statement (whose best join order depends on the horizon cuts and named
    owners) that plan is up to 20 times slower (0.2 s → 3.8 s on 50,000 lots)."""
    await pg.execute("SET LOCAL plan_cache_mode = force_custom_plan")


async def take_stock(pg: asyncpg.Connection, *, today: date, expiring_within_days: int) -> None:
    """One pass over the stock, for an alert evaluation, into ``taken_stock`` (gone at commit): the
    usable quantity of every target, and each lot holding stock that expires within
    ``expiring_within_days`` (see ``stockpile.store.alerts.want_expiring_lots``)."""
    cuts, named_owners = await horizon_cuts_and_named_owners(pg)
    # The planner cannot estimate the groups of expression keys and sorts a million rows; the
    # aggregate is one hash table per worker, a third of the time.
    await custom_plans(pg)
    await pg.execute("SET LOCAL enable_sort = off")
    await pg.execute(TAKE_STOCK, today, cuts, named_owners, expiring_within_days)
    await pg.execute("RESET enable_sort")


async def coverage(
    pg: asyncpg.Connection, *, today: date, region: str | None, category: str | None,
    warehouse_ids: list[int] | None = None, region_ids: list[int] | None = None, cleared: bool = True,
) -> list[asyncpg.Record]:
    """Every visible target (in ``region``'s subtree, of ``category``) with its usable quantity.

    One pass over the stock, whatever the number of targets: usable stock (available lots, less
    what is reserved) is summed per (warehouse, material, owner sector, named owner, horizon cuts
    it outlives) — a parallel aggregate no wider than the targets need — then rolled up to the
    regions that scope a target, and each target picks the sums of its materials that outlive its
    horizon. See ``stockpile.domain.coverage``. A reader not ``cleared`` for military stock gets
    coverage of the stock it may see: no military stock is counted (floors are checked on all of it).
    """
    cuts, named_owners = await horizon_cuts_and_named_owners(pg)
    if not cuts:
        return []
    await custom_plans(pg)
    return await pg.fetch(COVERAGE, today, region, category, warehouse_ids, region_ids, cleared, cuts, named_owners)


async def reach(pg: asyncpg.Connection, target_ids: list[int]) -> tuple[list[int], list[int]]:
    """(warehouse ids, material ids) whose stock the targets can count."""
    row = await pg.fetchrow(REACH, sorted(target_ids))
    return row["warehouse_ids"], row["material_ids"]


async def coverage_of_targets(pg: asyncpg.Connection, *, today: date, target_ids: list[int],
                              within: tuple[list[int], list[int]], cleared: bool = True) -> list[asyncpg.Record]:
    """The given targets with their usable quantity, as ``coverage`` counts it, from a pass over only
    the stock they can count (``within``: their ``reach``); unless ``cleared``, no military stock."""
    cuts, named_owners = await horizon_cuts_and_named_owners(pg)
    if not cuts or not target_ids:
        return []
    await custom_plans(pg)
    return await pg.fetch(COVERAGE_OF_TARGETS, today, sorted(target_ids), cuts, named_owners, *within, cleared)


async def taken_coverage(pg: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every target with its usable quantity, from the stock ``take_stock`` took in this transaction."""
    return await pg.fetch(COVERAGE_OF_TAKEN_STOCK)

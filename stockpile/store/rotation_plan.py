"""The rotation planner's SQL: due positions (prefiltered in the database), what the open orders
hold against each target, policies, the shape of every target, the insertion of new orders and the
overdue ones.

The planner's rules live in ``stockpile.domain.rotation``; these statements only narrow what it
reads. Due positions are found per material through ``accounts_material_expiry``: a material's policy
can call a lot due at the latest ``due_until`` = today + the larger of its trigger days and its
share of the shelf life, so only lots expiring by then are read (the planner checks each again).
"""

from __future__ import annotations

from datetime import date

import asyncpg

from stockpile.store.allocation import lock_all_floors
from stockpile.store.coverage import CLOSURE, SELECTED, custom_plans, horizon_cuts_and_named_owners

PLANNING_LOCK = 0x5710C9A3

# Each material's policy (its own, else its category's) and the last expiry it calls due today ($1).
POLICY_OF_MATERIAL = """
    SELECT m.id AS material_id, p.id AS policy_id,
           $1::date + greatest(coalesce(p.trigger_days_before_expiry, 0),
                               coalesce(floor(p.trigger_fraction_remaining * m.shelf_life_days)::int, 0)) AS due_until
      FROM materials m
      JOIN LATERAL (SELECT * FROM rotation_policies p
                     WHERE p.material_id = m.id OR (p.material_id IS NULL AND p.category = m.category)
                     ORDER BY p.material_id IS NULL LIMIT 1) p ON true"""

# ``ordered``: what the position's open order still has to take out (NULL: it has none). A position
# whose open order takes all it has to spare is left out: the planner would pass it by. The
# candidates are a range of ``accounts_material_expiry`` per material (the lateral subquery keeps the
# planner from scanning every account), their open orders joined once.
DUE_POSITIONS = f"""
WITH policy AS MATERIALIZED ({POLICY_OF_MATERIAL}),
     candidate AS MATERIALIZED (
         SELECT a.lot_id, a.owner_id, a.balance, a.reserved
           FROM policy p
           CROSS JOIN LATERAL (SELECT * FROM accounts a
                                WHERE a.material_id = p.material_id AND a.type = 'stock'
                                  AND a.expires_on <= p.due_until OFFSET 0) a
          WHERE a.balance > a.reserved),
     due AS MATERIALIZED (
         SELECT c.*, CASE WHEN ro.id IS NOT NULL THEN greatest(ro.quantity - ro.out_quantity, 0) END AS ordered
           FROM candidate c
           LEFT JOIN rotation_orders ro ON ro.lot_id = c.lot_id AND ro.owner_id = c.owner_id
                                       AND ro.state IN ('planned', 'in_progress')
          WHERE ro.id IS NULL OR c.balance - c.reserved > greatest(ro.quantity - ro.out_quantity, 0))
SELECT d.lot_id::text AS lot_id, l.code AS lot_code, d.owner_id, o.code AS owner, o.sector, w.code AS warehouse,
       w.region_id, r.code AS region, m.code AS material, m.category, m.decimals, m.shelf_life_days, l.expires_on,
       l.status, d.balance, d.reserved, d.ordered
  FROM due d
  JOIN lots l ON l.id = d.lot_id
  JOIN materials m ON m.id = l.material_id
  JOIN warehouses w ON w.id = l.warehouse_id
  JOIN regions r ON r.id = w.region_id
  JOIN parties o ON o.id = d.owner_id
 WHERE l.status = 'available'"""

# What the open orders hold against each target, set-wise (the rule order by order is
# ``stockpile.domain.rotation.open_orders_of``): per target and unit precision, in smallest units,
# ``out`` — not yet replaced, of every position the target counts; ``to_go`` — still to take out of
# stock the target counts as usable (NULL when none is). The open orders are summed per (warehouse,
# material, owner's sector, named owner, horizon cuts the lot outlives — none unless available), then
# matched to the targets as coverage matches stock; an order carries its lot's warehouse, material,
# status and expiry (migration 0020), so no lot is read. $1 today, $2 horizon cuts, $3 named owners.
OPEN_ORDER_SUMS = f"""
WITH RECURSIVE {CLOSURE},
     chosen AS MATERIALIZED (SELECT * FROM reserve_targets),
     {SELECTED.format(cuts="$2::int[]")},
     open AS MATERIALIZED (
         SELECT o.warehouse_id, w.region_id, o.material_id, ow.sector,
                CASE WHEN o.owner_id = ANY ($3::bigint[]) THEN o.owner_id END AS owner_id,
                CASE WHEN o.lot_status <> 'available' THEN 0
                     WHEN o.lot_expires_on IS NULL THEN cardinality($2::int[])
                     ELSE width_bucket(o.lot_expires_on - $1::date, $2::int[]) END AS lasts,
                sum(greatest(o.quantity - o.in_quantity, 0)) AS out,
                sum(greatest(o.quantity - o.out_quantity, 0)) AS to_go
           FROM rotation_orders o
           JOIN warehouses w ON w.id = o.warehouse_id
           JOIN parties ow ON ow.id = o.owner_id
          WHERE o.state IN ('planned', 'in_progress')
          GROUP BY 1, 2, 3, 4, 5, 6),
     by_region AS MATERIALIZED (  -- rolled up to every region that scopes a target, sub-regions included
         SELECT cl.ancestor AS region_id, s.material_id, s.sector, s.owner_id, s.lasts, sum(s.out) AS out,
                sum(s.to_go) AS to_go
           FROM open s JOIN closure cl ON cl.descendant = s.region_id
          WHERE cl.ancestor IN (SELECT scope_region_id FROM chosen)
          GROUP BY 1, 2, 3, 4, 5),
     matched AS (
         SELECT t.id, t.decimals, s.lasts >= t.needs AS counted, s.out, s.to_go
           FROM (SELECT * FROM selected WHERE scope_warehouse_id IS NOT NULL) t  -- a warehouse's targets
           JOIN open s ON s.warehouse_id = t.scope_warehouse_id AND s.material_id = t.material_id
          WHERE (t.owner_id IS NULL OR s.owner_id = t.owner_id) AND (t.sector IS NULL OR s.sector = t.sector)
         UNION ALL
         SELECT t.id, t.decimals, s.lasts >= t.needs, s.out, s.to_go
           FROM (SELECT * FROM selected WHERE scope_region_id IS NOT NULL) t  -- a region's targets
           JOIN by_region s ON s.region_id = t.scope_region_id AND s.material_id = t.material_id
          WHERE (t.owner_id IS NULL OR s.owner_id = t.owner_id) AND (t.sector IS NULL OR s.sector = t.sector))
SELECT t.code, m.decimals, sum(m.out) AS out, sum(m.to_go) FILTER (WHERE m.counted) AS to_go
  FROM matched m JOIN reserve_targets t ON t.id = m.id
 GROUP BY 1, 2"""


async def begin_planning(pg: asyncpg.Connection) -> None:
    """One planning run at a time (a manual `job run` may overlap the scheduled one). Its
    statements are planned for their parameters every time: after five runs on a pooled connection
    PostgreSQL would otherwise try a generic plan, and the coverage statement's generic plan is
    many times slower (measured: 0.2 s → 3.8 s on 50,000 lots)."""
    await pg.execute("SELECT pg_advisory_xact_lock($1)", PLANNING_LOCK)
    await lock_all_floors(pg)  # no allocation approval draws on a floor while rotation weighs them all
    await pg.execute("SET LOCAL plan_cache_mode = force_custom_plan")


async def begin_reading_beside(pg: asyncpg.Connection) -> None:
    """A transaction that reads what a run needs beside the coverage its own connection takes: its
    statements are planned for their parameters, as ``begin_planning``'s, and each runs in one
    process, leaving the cores to the coverage's parallel workers."""
    await custom_plans(pg)
    await pg.execute("SET LOCAL max_parallel_workers_per_gather = 0")


async def due_positions(pg: asyncpg.Connection, today: date) -> list[asyncpg.Record]:
    """Positions (lot × owner) of available lots with stock to spare beyond their open order, if
    any, that their policy may call due today, expired ones included."""
    return await pg.fetch(DUE_POSITIONS, today)


async def open_order_sums(pg: asyncpg.Connection, today: date) -> list[asyncpg.Record]:
    """What the open orders hold against each target (``OPEN_ORDER_SUMS``): rows of target code,
    unit precision, ``out`` and ``to_go`` in smallest units."""
    cuts, named_owners = await horizon_cuts_and_named_owners(pg)
    if not cuts:
        return []
    return await pg.fetch(OPEN_ORDER_SUMS, today, cuts, named_owners)


async def policies(pg: asyncpg.Connection) -> list[asyncpg.Record]:
    return await pg.fetch(
        """SELECT p.id, p.code, m.code AS material, p.category, p.trigger_days_before_expiry,
                  p.trigger_fraction_remaining, p.max_out_share, p.max_gap_days, p.outlet, p.lead_days
             FROM rotation_policies p LEFT JOIN materials m ON m.id = p.material_id""")


async def materials(pg: asyncpg.Connection) -> list[asyncpg.Record]:
    """Every material's code, category and substitution group: what a target's selector means."""
    return await pg.fetch("SELECT code, category, substitution_group FROM materials")


async def regions(pg: asyncpg.Connection) -> list[asyncpg.Record]:
    return await pg.fetch("SELECT id, code, parent_id FROM regions")


async def insert_orders(pg: asyncpg.Connection, orders: list[tuple]) -> int:
    """Insert new orders — (lot id, owner id, policy id, quantity, out by, in by, outlet,
    explanation, public explanation) — in one statement. A position that has an open order already keeps it
    (``rotation_orders_open``); returns how many were inserted."""
    if not orders:
        return 0
    columns = list(zip(*orders))
    status = await pg.execute(
        """INSERT INTO rotation_orders (lot_id, owner_id, policy_id, quantity, out_by, in_by, outlet, explanation,
                                       public_explanation)
           SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[], $5::date[], $6::date[],
                                $7::text[], $8::text[], $9::text[])
           ON CONFLICT (lot_id, owner_id) WHERE state IN ('planned', 'in_progress') DO NOTHING""",
        *columns)
    inserted = int(status.rsplit(" ", 1)[1])
    if inserted >= ANALYZE_AFTER:
        # A first planning run opens tens of thousands of orders at once: the statements that read
        # open orders next (an approval's floor check, say) are planned from statistics that know them.
        await pg.execute("ANALYZE rotation_orders")
    return inserted


ANALYZE_AFTER = 1000  # orders inserted in one run


# The rule of ``stockpile.domain.rotation_orders.is_overdue``: old stock not all out by out-by, or
# fresh stock not all in by in-by ($1 today).
OVERDUE = """
SELECT o.id::text AS id, l.code AS lot_code, m.code AS material, m.decimals, m.unit, w.id AS warehouse_id,
       w.code AS warehouse, w.region_id, ow.code AS owner, ow.sector = 'military' AS military,
       o.quantity, o.out_quantity, o.in_quantity, o.out_by, o.in_by,
       o.in_quantity < o.quantity AND o.in_by < $1::date AS replacement_late
  FROM rotation_orders o
  JOIN lots l ON l.id = o.lot_id
  JOIN materials m ON m.id = l.material_id
  JOIN warehouses w ON w.id = l.warehouse_id
  JOIN parties ow ON ow.id = o.owner_id
 WHERE o.state IN ('planned', 'in_progress')
   AND ((o.out_quantity < o.quantity AND o.out_by < $1::date) OR (o.in_quantity < o.quantity AND o.in_by < $1::date))"""


async def overdue_orders(pg: asyncpg.Connection, today: date) -> list[asyncpg.Record]:
    return await pg.fetch(OVERDUE, today)


async def rotation_gauges(pg: asyncpg.Connection, today: date) -> tuple[list[asyncpg.Record], list[asyncpg.Record]]:
    """For the metric snapshot: orders by state, and what overdue orders have not yet replaced
    (``quantity − in_quantity``) by category, unit and whether the owner is military."""
    states = await pg.fetch("SELECT state, count(*) AS n FROM rotation_orders GROUP BY state")
    overdue = await pg.fetch(
        f"""SELECT m.category, m.unit, o.military,
                   sum((o.quantity - o.in_quantity)::numeric / 10::numeric ^ m.decimals) AS quantity
              FROM ({OVERDUE}) o JOIN materials m ON m.code = o.material
             GROUP BY 1, 2, 3""", today)
    return states, overdue

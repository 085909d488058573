"""Tasking: the capacities a plan may task, a plan's tasking lines, and the tasking orders its approval
makes, tracked until the receipts linked to them cover their quantity."""

from __future__ import annotations

from datetime import date, datetime

import asyncpg

from stockpile.store.visibility import CAPACITY_MILITARY, TASKINGS

TASKING = f"""
SELECT tk.id::text AS id, tk.plan_id::text AS plan_id, tk.request_id::text AS request_id, tk.capacity_id,
       k.code AS capacity, kp.code AS party, m.code AS material, m.unit, m.decimals, d.code AS destination,
       tk.destination_id, tk.material_id, tk.quantity, tk.received, tk.start_on, tk.ready_on, tk.due_on, tk.state, tk.ordered_at,
       tk.completed_at, k.lead_days, k.region_id, {CAPACITY_MILITARY} AS military
  FROM taskings tk
  JOIN capacities k ON k.id = tk.capacity_id
  JOIN parties kp ON kp.id = k.party_id
  JOIN materials m ON m.id = tk.material_id
  JOIN warehouses d ON d.id = tk.destination_id"""


async def capacities_for(pg: asyncpg.Connection, material_ids: list[int], groups: list[str], *,
                         lost_warehouse_ids: list[int] = (), cleared: bool = True) -> list[asyncpg.Record]:
    """The capacities a plan may task for the materials or substitution groups asked for, each with
    the region it delivers to and every region under it (``region_ids``); none delivering to a lost
    warehouse and, unless ``cleared``, no military capacity."""
    return await pg.fetch(
        f"""WITH RECURSIVE asked AS MATERIALIZED (
                SELECT k.* FROM capacities k JOIN materials m ON m.id = k.material_id
                 WHERE (k.material_id = ANY($1::bigint[]) OR m.substitution_group = ANY($2::text[]))
                   AND (k.warehouse_id IS NULL OR NOT k.warehouse_id = ANY($3::bigint[]))),
            down(capacity_id, region_id) AS (
                SELECT id, region_id FROM asked
                UNION SELECT d.capacity_id, r.id FROM down d JOIN regions r ON r.parent_id = d.region_id)
            SELECT k.id, k.code, kp.code AS party, k.material_id, m.code AS material, m.decimals, m.substitution_group,
                   k.daily_quantity, k.lead_days, {CAPACITY_MILITARY} AS military,
                   (SELECT array_agg(d.region_id) FROM down d WHERE d.capacity_id = k.id) AS region_ids
              FROM asked k JOIN parties kp ON kp.id = k.party_id JOIN materials m ON m.id = k.material_id
             WHERE $4 OR NOT {CAPACITY_MILITARY}
             ORDER BY k.id""",
        material_ids, groups, list(lost_warehouse_ids), cleared)


async def insert_proposed(pg: asyncpg.Connection, plan_id: str, rows: list[tuple]) -> None:
    """A plan's tasking lines: (request id, capacity id, destination id, material id, quantity,
    start_on, ready_on, due_on) each."""
    await pg.executemany(
        """INSERT INTO taskings (plan_id, request_id, capacity_id, destination_id, material_id, quantity,
                                 start_on, ready_on, due_on)
           VALUES ($1::uuid, $2::uuid, $3, $4, $5, $6, $7, $8, $9)""", [(plan_id, *row) for row in rows])


async def of_plans(pg: asyncpg.Connection, plan_ids: list[str]) -> dict[str, list[asyncpg.Record]]:
    """The tasking lines of each plan, by plan id (a plan without any is left out)."""
    grouped: dict[str, list[asyncpg.Record]] = {}
    for row in await pg.fetch(f"{TASKING} WHERE tk.plan_id = ANY($1::uuid[]) ORDER BY tk.plan_id, tk.due_on, k.code",
                              plan_ids):
        grouped.setdefault(row["plan_id"], []).append(row)
    return grouped


async def order(pg: asyncpg.Connection, plan_id: str, now: datetime) -> None:
    """An approved plan's tasking lines become tasking orders, open until their receipts arrive."""
    await pg.execute("UPDATE taskings SET state = 'open', ordered_at = $2 WHERE plan_id = $1::uuid AND state = 'proposed'",
                     plan_id, now)


async def cancel(pg: asyncpg.Connection, plan_id: str) -> None:
    """A cancelled or lapsed plan's taskings (proposed or still open) are cancelled."""
    await pg.execute("UPDATE taskings SET state = 'cancelled' WHERE plan_id = $1::uuid AND state IN ('proposed', 'open')",
                     plan_id)


async def listing(pg: asyncpg.Connection, *, state: str | None, capacity: str | None, after: str | None, limit: int,
                  warehouse_ids: list[int] | None = None, region_ids: list[int] | None = None,
                  cleared: bool = True) -> list[asyncpg.Record]:
    """Tasking orders (not a proposed plan's lines) the reader may see, by id."""
    return await pg.fetch(
        f"""{TASKING} WHERE tk.state <> 'proposed' AND ($1::text IS NULL OR tk.state = $1)
              AND ($2::text IS NULL OR k.code = $2) AND ($3::uuid IS NULL OR tk.id > $3::uuid)
              AND {TASKINGS.format(warehouses='$5', regions='$6', cleared='$7')}
            ORDER BY tk.id LIMIT $4""",
        state, capacity, after, limit, warehouse_ids, region_ids, cleared)


async def one(pg: asyncpg.Connection, tasking_id: str, *, warehouse_ids: list[int] | None = None,
              region_ids: list[int] | None = None, cleared: bool = True,
              for_update: bool = False) -> asyncpg.Record | None:
    """One tasking order as the reader may see it; ``for_update`` locks it."""
    return await pg.fetchrow(
        f"""{TASKING} WHERE tk.id = $1::uuid AND tk.state <> 'proposed'
              AND {TASKINGS.format(warehouses='$2', regions='$3', cleared='$4')}"""
        + (" FOR UPDATE OF tk" if for_update else ""),
        tasking_id, warehouse_ids, region_ids, cleared)


async def receipt(pg: asyncpg.Connection, movement_id: str) -> asyncpg.Record | None:
    """A receipt movement as a tasking order counts it: its warehouse, material and quantity, and the
    order it already counts toward (if any), and whether it posted to a military owner; None when no
    receipt (not reversed) has that id."""
    return await pg.fetchrow(
        """SELECT l.warehouse_id, l.material_id, sum(p.delta) AS quantity, bool_or(o.sector = 'military') AS military,
                  (SELECT tr.tasking_id::text FROM tasking_receipts tr WHERE tr.movement_id = mv.id) AS linked_to
             FROM movements mv
             JOIN postings p ON p.movement_id = mv.id AND p.account_id IS NOT NULL
             JOIN accounts a ON a.id = p.account_id
             JOIN lots l ON l.id = a.lot_id
             JOIN parties o ON o.id = a.owner_id
            WHERE mv.id = $1::uuid AND mv.kind = 'receipt'
              AND NOT EXISTS (SELECT 1 FROM movements rv WHERE rv.reverses_id = mv.id)
            GROUP BY mv.id, l.warehouse_id, l.material_id""",
        movement_id)


async def link_receipt(pg: asyncpg.Connection, tasking_id: str, movement_id: str, quantity: int,
                       principal_id: int, now: datetime) -> bool:
    """Count a receipt toward a tasking order (the order's row locked by the caller); the order
    completes once its receipts cover it. False, and nothing written, when the receipt already counts
    toward an order (another may have linked it meanwhile: the unique movement decides)."""
    linked = await pg.fetchval(
        """INSERT INTO tasking_receipts (tasking_id, movement_id, quantity, principal_id)
           VALUES ($1::uuid, $2::uuid, $3, $4) ON CONFLICT (movement_id) DO NOTHING RETURNING true""",
        tasking_id, movement_id, quantity, principal_id)
    if not linked:
        return False
    await pg.execute(
        """UPDATE taskings SET received = received + $2,
                  state = CASE WHEN received + $2 >= quantity THEN 'completed' ELSE state END,
                  completed_at = CASE WHEN received + $2 >= quantity THEN $3::timestamptz END
            WHERE id = $1::uuid""", tasking_id, quantity, now)
    return True


async def want_overdue_taskings(pg: asyncpg.Connection, today: date) -> None:
    """Stage ``tasking_overdue`` for every tasking order still open past its due date."""
    await pg.execute(
        f"""INSERT INTO alert_wanted
            SELECT 'tasking_overdue', 'tasking:' || tk.id, 'critical',
                   format('tasking of %s for %s at %s was due on %s; %s of %s %s received',
                          k.code, m.code, d.code, tk.due_on,
                          round(tk.received / 10::numeric ^ m.decimals, m.decimals),
                          round(tk.quantity / 10::numeric ^ m.decimals, m.decimals), m.unit),
                   jsonb_build_object('tasking_id', tk.id, 'capacity', k.code, 'due_on', tk.due_on),
                   tk.destination_id, k.region_id, {CAPACITY_MILITARY}
              FROM taskings tk JOIN capacities k ON k.id = tk.capacity_id JOIN parties kp ON kp.id = k.party_id
              JOIN materials m ON m.id = tk.material_id JOIN warehouses d ON d.id = tk.destination_id
             WHERE tk.state = 'open' AND tk.due_on < $1::date""",
        today)

"""Rotation's SQL: policies by code, rotation orders (read, locked, advanced, cancelled), and the
shelf-life extensions of lots."""

from __future__ import annotations

from datetime import date
from typing import Any

import asyncpg

from stockpile.store import masterdata
from stockpile.store.db import Statement, as_uuid
from stockpile.store.ledger import HOLDER_SECTORS
from stockpile.store.visibility import MILITARY_ONLY_LOT, ROTATION_ORDERS

POLICY = """
SELECT p.id, p.code, m.code AS material, p.category, p.trigger_days_before_expiry, p.trigger_fraction_remaining,
       p.max_out_share, p.max_gap_days, p.outlet, p.lead_days, p.max_extension_days, p.updated_at
  FROM rotation_policies p LEFT JOIN materials m ON m.id = p.material_id"""



async def upsert_policy(pg: asyncpg.Connection, code: str, values: dict[str, Any]) -> bool:
    """Insert or replace the policy with this code; returns True when it was created."""
    return await masterdata.upsert(pg, "rotation_policies", code, values)


async def policy(pg: asyncpg.Connection, code: str) -> asyncpg.Record | None:
    return await pg.fetchrow(f"{POLICY} WHERE p.code = $1", code)


async def policies(pg: asyncpg.Connection, *, after: str | None, limit: int) -> list[asyncpg.Record]:
    return await pg.fetch(f"{POLICY} WHERE ($1::text IS NULL OR p.code > $1) ORDER BY p.code LIMIT $2", after, limit)


ORDER = """
SELECT o.id::text AS id, o.lot_id::text AS lot_id, l.code AS lot_code, ow.code AS owner, ow.sector AS owner_sector,
       o.owner_id, w.id AS warehouse_id, w.code AS warehouse, m.code AS material, m.decimals, m.unit, l.material_id,
       p.code AS policy, o.quantity, o.out_quantity, o.in_quantity, o.out_by, o.in_by, o.outlet, o.state,
       o.explanation, o.public_explanation, o.cancel_reason, o.created_at, o.updated_at
  FROM rotation_orders o
  JOIN lots l ON l.id = o.lot_id
  JOIN warehouses w ON w.id = l.warehouse_id
  JOIN materials m ON m.id = l.material_id
  JOIN parties ow ON ow.id = o.owner_id
  JOIN rotation_policies p ON p.id = o.policy_id"""

def orders(
    *, state: str | None, warehouse: str | None, material: str | None, due_before: date | None,
    after: tuple[date, str] | None, limit: int | None, warehouse_ids: list[int] | None = None, cleared: bool = True,
) -> Statement:
    """Orders by out-by date (then id), filtered; ``due_before`` keeps open orders whose next
    deadline (out-by while old stock is still to leave, else in-by) is before that date; ``limit``
    None: every one."""
    after_by, after_id = after if after else (None, None)
    return Statement(
        f"""{ORDER}
         WHERE ($1::text IS NULL OR o.state = $1)
           AND ($2::text IS NULL OR w.code = $2)
           AND ($3::text IS NULL OR m.code = $3)
           AND ($4::date IS NULL OR (o.state IN ('planned', 'in_progress')
                AND CASE WHEN o.out_quantity < o.quantity THEN o.out_by ELSE o.in_by END < $4))
           AND ($5::date IS NULL OR (o.out_by, o.id) > ($5, $6::uuid))
           AND {ROTATION_ORDERS.format(warehouses="$8", cleared="$9")}
         ORDER BY o.out_by, o.id
         LIMIT $7""",
        (state, warehouse, material, due_before, after_by, after_id, limit, warehouse_ids, cleared),
    )


async def order(pg: asyncpg.Connection, order_id: str, *, warehouse_ids: list[int] | None = None,
                cleared: bool = True, for_update: bool = False) -> asyncpg.Record | None:
    """One order as the reader may see it; ``for_update`` locks the order row (not the joined ones)."""
    order_id = as_uuid(order_id)
    if order_id is None:
        return None
    lock = " FOR UPDATE OF o" if for_update else ""
    return await pg.fetchrow(
        f"{ORDER} WHERE o.id = $1::uuid AND {ROTATION_ORDERS.format(warehouses='$2', cleared='$3')}{lock}",
        order_id, warehouse_ids, cleared,
    )


async def lock_order(pg: asyncpg.Connection, order_id: str) -> asyncpg.Record | None:
    """The order row, locked: two movements working one order queue here, so they cannot overshoot."""
    order_id = as_uuid(order_id)
    if order_id is None:
        return None
    return await pg.fetchrow(
        """SELECT o.id::text AS id, o.lot_id::text AS lot_id, o.owner_id, ow.sector AS owner_sector, l.material_id,
                  l.warehouse_id, o.quantity, o.out_quantity, o.in_quantity, o.state
             FROM rotation_orders o JOIN lots l ON l.id = o.lot_id JOIN parties ow ON ow.id = o.owner_id
            WHERE o.id = $1::uuid FOR UPDATE OF o""",
        order_id,
    )


async def lock_order_of_movement(pg: asyncpg.Connection, movement_id: str) -> asyncpg.Record | None:
    """The rotation order a movement worked, locked; None when it worked none."""
    return await pg.fetchrow(
        """SELECT o.id::text AS id, o.lot_id::text AS lot_id, o.owner_id, o.quantity, o.out_quantity, o.in_quantity,
                  o.state,
                  EXISTS (SELECT 1 FROM rotation_orders x
                           WHERE x.lot_id = o.lot_id AND x.owner_id = o.owner_id AND x.id <> o.id
                             AND x.state IN ('planned', 'in_progress')) AS superseded
             FROM movements mv JOIN rotation_orders o ON o.id = mv.rotation_order_id
            WHERE mv.id = $1::uuid FOR UPDATE OF o""",
        movement_id,
    )


async def set_progress(pg: asyncpg.Connection, order_id: str, out_quantity: int, in_quantity: int, state: str) -> None:
    await pg.execute(
        """UPDATE rotation_orders SET out_quantity = $2, in_quantity = $3, state = $4, updated_at = now()
            WHERE id = $1::uuid""",
        order_id, out_quantity, in_quantity, state,
    )


async def cancel(pg: asyncpg.Connection, order_id: str, reason: str) -> None:
    await pg.execute(
        "UPDATE rotation_orders SET state = 'cancelled', cancel_reason = $2, updated_at = now() WHERE id = $1::uuid",
        order_id, reason,
    )


async def lot_for_extension(pg: asyncpg.Connection, lot_id: str) -> asyncpg.Record | None:
    """A lot, locked, with what re-dating it needs: its material's shelf life and the cap of the
    policy that applies to it (the material's policy, else its category's)."""
    lot_id = as_uuid(lot_id)
    if lot_id is None:
        return None
    return await pg.fetchrow(
        f"""SELECT l.id::text AS id, l.code, l.expires_on, l.status, l.warehouse_id, w.code AS warehouse, w.region_id,
                  m.code AS material, m.shelf_life_days, applicable.code AS policy, applicable.max_extension_days,
                  {HOLDER_SECTORS} AS holder_sectors, {MILITARY_ONLY_LOT} AS military_only
             FROM lots l
             JOIN warehouses w ON w.id = l.warehouse_id
             JOIN materials m ON m.id = l.material_id
             LEFT JOIN LATERAL (
                  SELECT p.code, p.max_extension_days FROM rotation_policies p
                   WHERE p.material_id = m.id OR p.category = m.category
                   ORDER BY p.material_id IS NULL, p.code LIMIT 1) applicable ON true
            WHERE l.id = $1::uuid
              FOR UPDATE OF l""",
        lot_id,
    )


EXTENSION = """
SELECT e.id, e.lot_id::text AS lot_id, e.previous_expires_on, e.new_expires_on, e.test_reference, e.result,
       pr.name AS recorded_by, e.recorded_at
  FROM shelf_life_extensions e LEFT JOIN principals pr ON pr.id = e.principal_id"""


async def record_extension(pg: asyncpg.Connection, lot_id: str, previous: date | None, new: date | None,
                           test_reference: str, result: str, principal_id: int) -> asyncpg.Record:
    extension_id = await pg.fetchval(
        """INSERT INTO shelf_life_extensions (lot_id, previous_expires_on, new_expires_on, test_reference, result,
                                              principal_id)
           VALUES ($1::uuid, $2, $3, $4, $5, $6) RETURNING id""",
        lot_id, previous, new, test_reference, result, principal_id,
    )
    return await pg.fetchrow(f"{EXTENSION} WHERE e.id = $1", extension_id)


async def extensions(pg: asyncpg.Connection, lot_id: str) -> list[asyncpg.Record]:
    """Every shelf-life test of a lot, oldest first."""
    lot_id = as_uuid(lot_id)
    if lot_id is None:
        return []
    return await pg.fetch(f"{EXTENSION} WHERE e.lot_id = $1::uuid ORDER BY e.id", lot_id)

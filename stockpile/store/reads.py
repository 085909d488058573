"""Read models: stock positions, lots, the ledger. Filters are pushed into SQL; pages are keyset."""

from __future__ import annotations

from datetime import date, datetime

import asyncpg

from stockpile.store.db import Statement, as_uuid
from stockpile.store.visibility import COUNTED_STOCK, LOTS, MILITARY_ONLY_LOT, MOVEMENTS, POSITIONS

REGION_TREE = """
    WITH RECURSIVE scope(id) AS (
        SELECT id FROM regions WHERE code = $1
        UNION SELECT r.id FROM regions r JOIN scope ON r.parent_id = scope.id)"""



def stock(
    *, warehouse: str | None, material: str | None, owner: str | None, region: str | None,
    category: str | None, expiring_before: date | None, status: str | None, after: int | None, limit: int | None,
    warehouse_ids: list[int] | None = None, cleared: bool = True,
) -> Statement:
    """Positions holding stock (or reservations), oldest account first, limited to the caller's
    warehouses (``warehouse_ids``, None = all) and, unless ``cleared``, to non-military owners;
    ``limit`` None: every one."""
    return Statement(
        f"""{REGION_TREE}
        SELECT a.id AS account_id, a.lot_id::text AS lot_id, l.code AS lot_code, w.code AS warehouse, r.code AS region,
               m.code AS material, m.category, m.decimals, m.unit, o.code AS owner, o.sector AS owner_sector,
               a.balance, a.reserved, l.expires_on, l.status
          FROM accounts a
          JOIN lots l ON l.id = a.lot_id
          JOIN warehouses w ON w.id = l.warehouse_id
          JOIN regions r ON r.id = w.region_id
          JOIN materials m ON m.id = a.material_id
          JOIN parties o ON o.id = a.owner_id
         WHERE a.type = 'stock' AND (a.balance > 0 OR a.reserved > 0)
           AND ($1::text IS NULL OR w.region_id IN (SELECT id FROM scope))
           AND ($2::text IS NULL OR w.code = $2)
           AND ($3::text IS NULL OR m.code = $3)
           AND ($4::text IS NULL OR o.code = $4)
           AND ($5::text IS NULL OR m.category = $5)
           AND ($6::date IS NULL OR l.expires_on < $6)
           AND ($7::text IS NULL OR l.status = $7)
           AND ($8::bigint IS NULL OR a.id > $8)
           AND {POSITIONS.format(warehouses="$10", cleared="$11")}
         ORDER BY a.id
         LIMIT $9""",
        (region, warehouse, material, owner, category, expiring_before, status, after, limit, warehouse_ids, cleared),
    )


def lots(
    *, warehouse: str | None, material: str | None, status: str | None, expiring_before: date | None,
    after: str | None, limit: int | None, warehouse_ids: list[int] | None = None, cleared: bool = True,
) -> Statement:
    """Lots by id — emptied ones too — each with its balance, the sum of the positions the caller
    may see (as ``lot`` shows it); only lots in the caller's warehouses and, unless ``cleared``, none
    that only a military party holds. ``limit`` None: every one."""
    return Statement(
        f"""SELECT l.id::text AS id, l.code, w.code AS warehouse, m.code AS material, m.decimals, m.unit,
                   l.manufactured_on, l.expires_on, l.status, l.origin_lot_id::text AS origin_lot_id,
                   (SELECT coalesce(sum(a.balance), 0) FROM accounts a JOIN parties o ON o.id = a.owner_id
                     WHERE a.lot_id = l.id AND a.type = 'stock'
                       AND {COUNTED_STOCK.format(cleared="$8")})::bigint AS balance
              FROM lots l JOIN warehouses w ON w.id = l.warehouse_id JOIN materials m ON m.id = l.material_id
             WHERE ($1::text IS NULL OR w.code = $1)
               AND ($2::text IS NULL OR m.code = $2)
               AND ($3::text IS NULL OR l.status = $3)
               AND ($4::date IS NULL OR l.expires_on < $4)
               AND ($5::uuid IS NULL OR l.id > $5)
               AND {LOTS.format(warehouses="$7", cleared="$8")}
             ORDER BY l.id
             LIMIT $6""",
        (warehouse, material, status, expiring_before, after, limit, warehouse_ids, cleared),
    )


async def lot(pg: asyncpg.Connection, lot_id: str, *, warehouse_ids: list[int] | None = None, cleared: bool = True,
              ) -> tuple[asyncpg.Record | None, list[asyncpg.Record], list[asyncpg.Record]]:
    """A lot with the owners' positions the caller may see (those holding stock or reservations, as
    in ``stock``; no military position unless ``cleared``), and its history. A lot outside the
    caller's warehouses is not found; whether an uncleared caller may know of it at all is the head's
    ``military_only`` (``stockpile.domain.access.lot_disclosed`` decides)."""
    lot_id = as_uuid(lot_id)
    if lot_id is None:
        return None, [], []
    head = await pg.fetchrow(
        f"""SELECT l.id::text AS id, l.code, w.code AS warehouse, m.code AS material, m.decimals, m.unit,
                  l.manufactured_on, l.expires_on, l.status, l.origin_lot_id::text AS origin_lot_id, l.created_at,
                  {MILITARY_ONLY_LOT} AS military_only
             FROM lots l JOIN warehouses w ON w.id = l.warehouse_id JOIN materials m ON m.id = l.material_id
            WHERE l.id = $1::uuid AND ($2::bigint[] IS NULL OR w.id = ANY($2))""",
        lot_id, warehouse_ids,
    )
    if head is None:
        return None, [], []
    positions = await pg.fetch(
        """SELECT o.code AS owner, o.sector, a.balance, a.reserved FROM accounts a JOIN parties o ON o.id = a.owner_id
            WHERE a.lot_id = $1::uuid AND a.type = 'stock' ORDER BY o.code""",
        lot_id,
    )
    # An empty position is no share of the lot (and a refused request may have opened one).
    positions = [p for p in positions if (p["balance"] or p["reserved"]) and (cleared or p["sector"] != "military")]
    events = await pg.fetch(
        """SELECT e.kind, e.from_value, e.to_value, e.reason, p.name AS actor, e.at
             FROM lot_events e LEFT JOIN principals p ON p.id = e.principal_id
            WHERE e.lot_id = $1::uuid ORDER BY e.id""",
        lot_id,
    )
    return head, positions, events


MOVEMENT_SELECT = """
    SELECT mv.seq, mv.id::text AS id, mv.kind, mv.occurred_at, mv.recorded_at, mv.reason, mv.note,
           mv.reverses_id::text AS reverses, mv.transfer_id::text AS transfer_id, pr.name AS recorded_by,
           mv.rotation_order_id::text AS rotation_order_id,
           (SELECT coalesce(json_agg(json_build_object(
                    'type', coalesce(p.external, a.type), 'lot_id', a.lot_id, 'owner', o.code,
                    'transfer_id', a.transfer_id, 'material', m.code, 'decimals', m.decimals, 'delta', p.delta)
                    ORDER BY p.id), '[]')
              FROM postings p
              JOIN materials m ON m.id = p.material_id
              LEFT JOIN accounts a ON a.id = p.account_id
              LEFT JOIN parties o ON o.id = a.owner_id
             WHERE p.movement_id = mv.id) AS postings
      FROM movements mv LEFT JOIN principals pr ON pr.id = mv.principal_id"""


def movements(
    *, warehouse: str | None, material: str | None, owner: str | None, kind: str | None,
    since: datetime | None, until: datetime | None, before_seq: int | None, limit: int | None,
    warehouse_ids: list[int] | None = None, cleared: bool = True,
) -> Statement:
    """The ledger, newest first; a movement matches a filter when any of its postings does. Only
    movements touching the caller's warehouses, and (unless ``cleared``) no military position;
    ``limit`` None: every one."""
    return Statement(
        f"""{MOVEMENT_SELECT}
         WHERE ($1::text IS NULL OR mv.kind = $1)
           AND ($2::timestamptz IS NULL OR mv.occurred_at >= $2)
           AND ($3::timestamptz IS NULL OR mv.occurred_at < $3)
           AND ($4::bigint IS NULL OR mv.seq < $4)
           AND ($5::text IS NULL AND $6::text IS NULL AND $7::text IS NULL OR EXISTS (
                SELECT 1 FROM postings p
                  JOIN materials m ON m.id = p.material_id
                  LEFT JOIN accounts a ON a.id = p.account_id
                  LEFT JOIN lots l ON l.id = a.lot_id
                  LEFT JOIN warehouses w ON w.id = l.warehouse_id
                  LEFT JOIN parties o ON o.id = a.owner_id
                 WHERE p.movement_id = mv.id
                   AND ($5::text IS NULL OR w.code = $5)
                   AND ($6::text IS NULL OR m.code = $6)
                   AND ($7::text IS NULL OR o.code = $7)))
           AND {MOVEMENTS.format(warehouses="$9", cleared="$10")}
         ORDER BY mv.seq DESC
         LIMIT $8""",
        (kind, since, until, before_seq, warehouse, material, owner, limit, warehouse_ids, cleared),
    )


async def movement(pg: asyncpg.Connection, movement_id: str, *, warehouse_ids: list[int] | None = None,
                   cleared: bool = True) -> asyncpg.Record | None:
    movement_id = as_uuid(movement_id)
    if movement_id is None:
        return None
    return await pg.fetchrow(
        f"{MOVEMENT_SELECT} WHERE mv.id = $1::uuid AND {MOVEMENTS.format(warehouses='$2', cleared='$3')}",
        movement_id, warehouse_ids, cleared,
    )


async def reserve_counts(pg: asyncpg.Connection, today: date) -> dict[str, int]:
    """How much the database holds, by kind (master data, lots, positions, expired and expiring lots
    as of ``today``, movements, transfers): what the demo loader reports and audits once loaded."""
    row = await pg.fetchrow(
        """SELECT (SELECT count(*) FROM regions) AS regions,
                  (SELECT count(*) FROM warehouses) AS warehouses,
                  (SELECT count(*) FROM warehouses WHERE status = 'suspended') AS suspended_warehouses,
                  (SELECT count(*) FROM materials) AS materials,
                  (SELECT count(*) FROM parties) AS parties,
                  (SELECT count(*) FROM lots) AS lots,
                  (SELECT count(*) FROM accounts WHERE type = 'stock' AND balance > 0) AS positions,
                  (SELECT count(DISTINCT a.lot_id) FROM accounts a JOIN lots l ON l.id = a.lot_id
                    WHERE a.type = 'stock' AND a.balance > 0 AND l.expires_on <= $1) AS expired_lots,
                  (SELECT count(DISTINCT a.lot_id) FROM accounts a JOIN lots l ON l.id = a.lot_id
                    WHERE a.type = 'stock' AND a.balance > 0 AND l.expires_on > $1 AND l.expires_on <= $1 + 30)
                       AS expiring_30,
                  (SELECT count(*) FROM movements) AS movements,
                  (SELECT count(*) FROM transfers) AS transfers,
                  (SELECT count(*) FROM transfers WHERE state = 'in_transit') AS in_transit""",
        today,
    )
    return dict(row)

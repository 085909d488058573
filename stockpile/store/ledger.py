"""The ledger's SQL: lots, accounts, locked positions, movements and their postings.

Locks on accounts are always taken by one ``SELECT … ORDER BY a.id FOR UPDATE`` per movement, so
two movements touching the same accounts queue instead of deadlocking. Balances are never written
here: inserting postings moves them (trigger ``postings_apply``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime

import asyncpg

from stockpile.domain.ledger import Position, Posting
from stockpile.store import audit

POSITION_COLUMNS = """
    a.id AS account_id, a.lot_id::text AS lot_id, l.code AS lot_code, a.owner_id, o.code AS owner_code,
    a.material_id, m.code AS material_code, m.decimals, a.balance, a.reserved, l.status, l.expires_on"""
POSITION_FROM = """
      FROM accounts a
      JOIN lots l ON l.id = a.lot_id
      JOIN parties o ON o.id = a.owner_id
      JOIN materials m ON m.id = a.material_id"""


def to_position(row: asyncpg.Record) -> Position:
    return Position(
        account_id=row["account_id"], lot_id=row["lot_id"], lot_code=row["lot_code"],
        owner_id=row["owner_id"], owner_code=row["owner_code"], material_id=row["material_id"],
        decimals=row["decimals"], balance=row["balance"], reserved=row["reserved"],
        status=row["status"], expires_on=row["expires_on"],
    )


async def lock_accounts(pg: asyncpg.Connection, account_ids: Sequence[int]) -> dict[int, Position]:
    """Lock the given accounts (in id order) and read them with their lots' facts."""
    rows = await pg.fetch(
        f"SELECT {POSITION_COLUMNS} {POSITION_FROM} WHERE a.id = ANY($1::bigint[]) ORDER BY a.id FOR UPDATE OF a",
        list(account_ids),
    )
    return {row["account_id"]: to_position(row) for row in rows}


async def lock_owner_positions(pg: asyncpg.Connection, warehouse_id: int, material_id: int, owner_id: int) -> list[Position]:
    """Lock every stock position of one owner for one material at one warehouse (for picking)."""
    rows = await pg.fetch(
        f"""SELECT {POSITION_COLUMNS} {POSITION_FROM}
             WHERE a.type = 'stock' AND a.owner_id = $3 AND a.material_id = $2 AND l.warehouse_id = $1
             ORDER BY a.id FOR UPDATE OF a""",
        warehouse_id, material_id, owner_id,
    )
    return [to_position(row) for row in rows]


async def lot_facts(pg: asyncpg.Connection, lot_id: str) -> asyncpg.Record | None:
    """A lot with its warehouse, material and unit precision; None if the id is unknown."""
    try:
        uuid.UUID(lot_id)
    except (ValueError, TypeError, AttributeError):
        return None
    return await pg.fetchrow(
        """SELECT l.id::text AS id, l.code, l.warehouse_id, w.code AS warehouse, l.material_id, m.code AS material,
                  m.decimals, l.manufactured_on, l.expires_on, l.status, l.origin_lot_id::text AS origin_lot_id
             FROM lots l JOIN warehouses w ON w.id = l.warehouse_id JOIN materials m ON m.id = l.material_id
            WHERE l.id = $1::uuid""",
        lot_id,
    )


async def upsert_lot(
    pg: asyncpg.Connection, *, warehouse_id: int, material_id: int, code: str,
    manufactured_on: date | None, expires_on: date | None, origin_lot_id: str | None = None,
) -> asyncpg.Record:
    """The lot with this code at this warehouse, created if new. Returns id, expires_on, status."""
    row = await pg.fetchrow(
        """INSERT INTO lots (warehouse_id, material_id, code, manufactured_on, expires_on, origin_lot_id)
           VALUES ($1, $2, $3, $4, $5, $6::uuid)
           ON CONFLICT (warehouse_id, material_id, code) DO NOTHING
           RETURNING id::text AS id, expires_on, manufactured_on, status""",
        warehouse_id, material_id, code, manufactured_on, expires_on, origin_lot_id,
    )
    if row is None:
        row = await pg.fetchrow(
            """SELECT id::text AS id, expires_on, manufactured_on, status FROM lots
                WHERE warehouse_id = $1 AND material_id = $2 AND code = $3""",
            warehouse_id, material_id, code,
        )
    return row


async def open_stock_accounts(pg: asyncpg.Connection, specs: Sequence[tuple[str, int, int]]) -> dict[tuple[str, int], int]:
    """Ensure a stock account exists for each (lot_id, owner_id, material_id); returns their ids."""
    lot_ids = [s[0] for s in specs]
    owner_ids = [s[1] for s in specs]
    material_ids = [s[2] for s in specs]
    await pg.execute(
        """INSERT INTO accounts (type, lot_id, owner_id, material_id)
           SELECT 'stock', s.lot_id, s.owner_id, s.material_id
             FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) AS s(lot_id, owner_id, material_id)
           ON CONFLICT (lot_id, owner_id) WHERE type = 'stock' DO NOTHING""",
        lot_ids, owner_ids, material_ids,
    )
    rows = await pg.fetch(
        """SELECT a.id, a.lot_id::text AS lot_id, a.owner_id FROM accounts a
             JOIN unnest($1::uuid[], $2::bigint[]) AS s(lot_id, owner_id)
               ON a.lot_id = s.lot_id AND a.owner_id = s.owner_id AND a.type = 'stock'""",
        lot_ids, owner_ids,
    )
    return {(r["lot_id"], r["owner_id"]): r["id"] for r in rows}


async def find_stock_account(pg: asyncpg.Connection, lot_id: str, owner_id: int) -> int | None:
    return await pg.fetchval(
        "SELECT id FROM accounts WHERE type = 'stock' AND lot_id = $1::uuid AND owner_id = $2", lot_id, owner_id
    )


async def open_transit_accounts(
    pg: asyncpg.Connection, transfer_id: str, specs: Sequence[tuple[str, int, int]]
) -> list[int]:
    """One transit account per (source lot, owner, material) line of a new transfer, in line order."""
    rows = await pg.fetch(
        """INSERT INTO accounts (type, transfer_id, lot_id, owner_id, material_id)
           SELECT 'transit', $1::uuid, s.lot_id, s.owner_id, s.material_id
             FROM unnest($2::uuid[], $3::bigint[], $4::bigint[]) WITH ORDINALITY AS s(lot_id, owner_id, material_id, n)
            ORDER BY s.n
           ON CONFLICT (transfer_id, lot_id, owner_id) WHERE type = 'transit' DO NOTHING
           RETURNING id, lot_id::text AS lot_id, owner_id""",
        transfer_id, [s[0] for s in specs], [s[1] for s in specs], [s[2] for s in specs],
    )
    by_key = {(r["lot_id"], r["owner_id"]): r["id"] for r in rows}
    return [by_key[(s[0], s[1])] for s in specs]


async def insert_movement(
    pg: asyncpg.Connection, *, movement_id: str, kind: str, occurred_at: datetime, recorded_at: datetime,
    principal_id: int | None, postings: Sequence[Posting], reason: str | None = None, note: str | None = None,
    reverses_id: str | None = None, transfer_id: str | None = None,
    idempotency: tuple[int, str, int, bytes] | None = None, audit_event: list | None = None,
) -> None:
    """Append one movement and its postings in one round trip (balances follow by trigger).

    ``idempotency`` (principal id, key, status, response) and ``audit_event`` (``audit.event_values``)
    ride in the same statement, so a request's whole write is one round trip.
    """
    params: list = [
        movement_id, kind, occurred_at, recorded_at, principal_id, reason, note, reverses_id, transfer_id,
        [p.account_id for p in postings], [p.external for p in postings],
        [p.material_id for p in postings], [p.delta for p in postings],
    ]
    extra = ""
    if idempotency is not None:
        n = len(params)
        extra += (f""", keyed AS (UPDATE idempotency_keys SET status_code = ${n + 3}, response = ${n + 4}
                                  WHERE principal_id = ${n + 1} AND key = ${n + 2})""")
        params += list(idempotency)
    if audit_event is not None:
        extra += f", audited AS ({audit.insert_sql(len(params) + 1)})"
        params += audit_event
    await pg.execute(
        f"""WITH movement AS (
               INSERT INTO movements (id, kind, occurred_at, recorded_at, principal_id, reason, note, reverses_id, transfer_id)
               VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8::uuid, $9::uuid)){extra}
           INSERT INTO postings (movement_id, account_id, external, material_id, delta)
           SELECT $1::uuid, p.account_id, p.external, p.material_id, p.delta
             FROM unnest($10::bigint[], $11::text[], $12::bigint[], $13::bigint[]) AS p(account_id, external, material_id, delta)""",
        *params,
    )


async def movement_for_reversal(pg: asyncpg.Connection, movement_id: str) -> tuple[asyncpg.Record | None, list[Posting]]:
    try:
        uuid.UUID(movement_id)
    except (ValueError, TypeError, AttributeError):
        return None, []
    head = await pg.fetchrow(
        """SELECT id::text AS id, kind, (SELECT id::text FROM movements r WHERE r.reverses_id = m.id) AS reversed_by
             FROM movements m WHERE id = $1::uuid""",
        movement_id,
    )
    if head is None:
        return None, []
    rows = await pg.fetch(
        "SELECT account_id, external, material_id, delta FROM postings WHERE movement_id = $1::uuid ORDER BY id",
        movement_id,
    )
    return head, [Posting(r["material_id"], r["delta"], account_id=r["account_id"], external=r["external"]) for r in rows]


async def places_of_accounts(pg: asyncpg.Connection, account_ids: Sequence[int]) -> list[asyncpg.Record]:
    """Where each account's stock is and who owns it (for scope and need-to-know checks)."""
    return await pg.fetch(
        """SELECT DISTINCT l.warehouse_id, w.code AS warehouse, a.owner_id, o.code AS owner, o.sector
             FROM accounts a JOIN lots l ON l.id = a.lot_id JOIN warehouses w ON w.id = l.warehouse_id
             JOIN parties o ON o.id = a.owner_id
            WHERE a.id = ANY($1::bigint[])""",
        list(account_ids),
    )


async def owner_sectors(pg: asyncpg.Connection, lot_id: str) -> set[str]:
    """The sectors of the parties holding stock in a lot."""
    rows = await pg.fetch(
        """SELECT DISTINCT o.sector FROM accounts a JOIN parties o ON o.id = a.owner_id
            WHERE a.lot_id = $1::uuid AND a.type = 'stock' AND (a.balance > 0 OR a.reserved > 0)""",
        lot_id,
    )
    return {r["sector"] for r in rows}


async def lock_lot_position(pg: asyncpg.Connection, lot_id: str, owner_code: str) -> asyncpg.Record | None:
    """In one round trip: a lot's facts, the owner, and that owner's position in the lot, locked.

    None when the lot or owner is unknown or the owner holds no position there (the caller finds
    out which on that slower path).
    """
    try:
        uuid.UUID(lot_id)
    except (ValueError, TypeError, AttributeError):
        return None
    return await pg.fetchrow(
        f"""SELECT {POSITION_COLUMNS}, l.warehouse_id, w.code AS warehouse, o.sector
              {POSITION_FROM}
              JOIN warehouses w ON w.id = l.warehouse_id
             WHERE a.lot_id = $1::uuid AND a.type = 'stock' AND o.code = $2
             FOR UPDATE OF a""",
        lot_id, owner_code,
    )


async def lock_receipt_position(
    pg: asyncpg.Connection, *, warehouse_id: int, material_id: int, owner_id: int, code: str,
    manufactured_on: date | None, expires_on: date | None,
) -> asyncpg.Record:
    """In one round trip: the lot with this code at the warehouse (created if new), the owner's
    position in it (opened if new), locked. Returns the position and the lot's stored expiry."""
    return await pg.fetchrow(
        f"""WITH lot AS (
                INSERT INTO lots (warehouse_id, material_id, code, manufactured_on, expires_on)
                VALUES ($1, $2, $4, $5, $6)
                ON CONFLICT (warehouse_id, material_id, code) DO UPDATE SET code = EXCLUDED.code
                RETURNING id, code, status, expires_on),
            account AS (
                INSERT INTO accounts (type, lot_id, owner_id, material_id)
                SELECT 'stock', lot.id, $3, $2 FROM lot
                ON CONFLICT (lot_id, owner_id) WHERE type = 'stock' DO UPDATE SET reserved = accounts.reserved
                RETURNING id, lot_id, owner_id, material_id, balance, reserved)
            SELECT a.id AS account_id, a.lot_id::text AS lot_id, lot.code AS lot_code, a.owner_id,
                   (SELECT code FROM parties WHERE id = $3) AS owner_code, a.material_id,
                   (SELECT decimals FROM materials WHERE id = $2) AS decimals, a.balance, a.reserved,
                   lot.status, lot.expires_on
              FROM account a, lot""",
        warehouse_id, material_id, owner_id, code, manufactured_on, expires_on,
    )

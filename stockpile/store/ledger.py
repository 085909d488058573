"""The ledger's SQL: lots, accounts, locked positions, movements and their postings.

Locks on accounts are always taken by one ``SELECT … ORDER BY a.id FOR UPDATE`` per movement, so
two movements touching the same accounts queue instead of deadlocking. Balances are never written
here: inserting postings moves them (trigger ``postings_apply``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date

import asyncpg

from stockpile.domain.ledger import Position, Posting
from stockpile.domain.refs import MaterialRef, PartyRef, WarehouseRef
from stockpile.store import audit
from stockpile.store.db import as_uuid
from stockpile.store.visibility import MILITARY_ONLY_LOT

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


# The sectors of the parties holding stock (or reservations) in lot ``l`` — need-to-know of the lot.
HOLDER_SECTORS = """ARRAY(SELECT DISTINCT o.sector FROM accounts a JOIN parties o ON o.id = a.owner_id
                          WHERE a.lot_id = l.id AND a.type = 'stock' AND (a.balance > 0 OR a.reserved > 0))"""


async def lot_facts(pg: asyncpg.Connection, lot_id: str) -> asyncpg.Record | None:
    """A lot with its warehouse, material, unit precision, ``holder_sectors`` and ``military_only``
    (need-to-know: ``stockpile.store.visibility.MILITARY_ONLY_LOT``); None if the id is unknown."""
    try:
        uuid.UUID(lot_id)
    except (ValueError, TypeError, AttributeError):
        return None
    return await pg.fetchrow(
        f"""SELECT l.id::text AS id, l.code, l.warehouse_id, w.code AS warehouse, l.material_id, m.code AS material,
                  m.decimals, l.manufactured_on, l.expires_on, l.status, l.origin_lot_id::text AS origin_lot_id,
                  {HOLDER_SECTORS} AS holder_sectors, {MILITARY_ONLY_LOT} AS military_only
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


async def insert_movements(pg: asyncpg.Connection, pending: Sequence) -> None:
    """Append movements with their postings in one statement (balances follow by trigger), and
    with them each request's idempotency record and audit event, when it has one.

    ``pending`` items have ``posted`` (id, kind, occurred_at, recorded_at, reason, note, reverses,
    transfer_id, postings, and optionally rotation_order_id) or None, ``principal_id``, ``idempotency``
    (principal id, key, status, response) or None, and ``audit_event`` (``audit.event_values``) or None.
    """
    movements = [p.posted for p in pending if p.posted is not None]
    principals = [p.principal_id for p in pending if p.posted is not None]
    postings = [(m.id, x) for m in movements for x in m.postings]
    keyed = [p.idempotency for p in pending if p.idempotency is not None]
    events = [p.audit_event for p in pending if p.audit_event is not None]
    columns = list(zip(*events)) if events else [[] for _ in range(11)]
    await pg.execute(
        f"""WITH movement AS (
               INSERT INTO movements (id, kind, occurred_at, recorded_at, principal_id, reason, note, reverses_id, transfer_id,
                                      rotation_order_id)
               SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::bigint[],
                                    $6::text[], $7::text[], $8::uuid[], $9::uuid[], $30::uuid[])),
           keyed AS (
               UPDATE idempotency_keys k SET status_code = u.status, response = u.body
                 FROM unnest($15::bigint[], $16::text[], $17::smallint[], $18::bytea[]) AS u(principal_id, key, status, body)
                WHERE k.principal_id = u.principal_id AND k.key = u.key),
           audited AS (
               INSERT INTO audit_events ({audit.CONTENT_COLUMNS}, content_hash)
               SELECT at, actor, string_to_array(roles, ','), action, target, outcome, status, client, request_id,
                      details::jsonb, content_hash
                 FROM unnest($19::timestamptz[], $20::text[], $21::text[], $22::text[], $23::text[], $24::text[],
                             $25::smallint[], $26::text[], $27::text[], $28::text[], $29::bytea[])
                      AS e(at, actor, roles, action, target, outcome, status, client, request_id, details, content_hash))
           INSERT INTO postings (movement_id, account_id, external, material_id, delta)
           SELECT * FROM unnest($10::uuid[], $11::bigint[], $12::text[], $13::bigint[], $14::bigint[])""",
        [m.id for m in movements], [m.kind for m in movements], [m.occurred_at for m in movements],
        [m.recorded_at for m in movements], principals, [m.reason for m in movements],
        [m.note for m in movements], [m.reverses for m in movements], [m.transfer_id for m in movements],
        [mid for mid, _ in postings], [x.account_id for _, x in postings], [x.external for _, x in postings],
        [x.material_id for _, x in postings], [x.delta for _, x in postings],
        [k[0] for k in keyed], [k[1] for k in keyed], [k[2] for k in keyed], [k[3] for k in keyed],
        list(columns[0]), list(columns[1]), [",".join(r) for r in columns[2]], *[list(col) for col in columns[3:]],
        [getattr(m, "rotation_order_id", None) for m in movements],
    )


async def resolve_codes(pg: asyncpg.Connection, *, warehouses: list[str], materials: list[str],
                        parties: list[str]) -> dict[tuple[str, str], WarehouseRef | MaterialRef | PartyRef]:
    """The known codes, keyed by (kind, code): ``("warehouse", code)`` → ``WarehouseRef``,
    ``("material", code)`` → ``MaterialRef``, ``("party", code)`` → ``PartyRef``."""
    rows = await pg.fetch(
        """SELECT 'warehouse' AS kind, code, id, NULL::smallint AS decimals, NULL::int AS shelf, NULL AS sector
             FROM warehouses WHERE code = ANY($1::text[])
           UNION ALL
           SELECT 'material', code, id, decimals, shelf_life_days, NULL FROM materials WHERE code = ANY($2::text[])
           UNION ALL
           SELECT 'party', code, id, NULL, NULL, sector FROM parties WHERE code = ANY($3::text[])""",
        warehouses, materials, parties,
    )
    found: dict[tuple[str, str], WarehouseRef | MaterialRef | PartyRef] = {}
    for r in rows:
        if r["kind"] == "warehouse":
            found[("warehouse", r["code"])] = WarehouseRef(r["id"], r["code"])
        elif r["kind"] == "material":
            found[("material", r["code"])] = MaterialRef(r["id"], r["code"], r["decimals"], r["shelf"])
        else:
            found[("party", r["code"])] = PartyRef(r["id"], r["code"], r["sector"])
    return found


async def open_receipt_positions(pg: asyncpg.Connection, receipts: Sequence[tuple]) -> None:
    """Create the lots (warehouse, material, code, …) and positions (… owner) that receipts need."""
    lots = sorted({(r[0], r[1], r[2]): (r[4], r[5]) for r in receipts}.items())
    await pg.execute(
        """INSERT INTO lots (warehouse_id, material_id, code, manufactured_on, expires_on)
           SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::date[], $5::date[])
           ON CONFLICT (warehouse_id, material_id, code) DO NOTHING""",
        [k[0] for k, _ in lots], [k[1] for k, _ in lots], [k[2] for k, _ in lots],
        [v[0] for _, v in lots], [v[1] for _, v in lots],
    )
    await pg.execute(
        """INSERT INTO accounts (type, lot_id, owner_id, material_id)
           SELECT 'stock', l.id, u.owner_id, l.material_id
             FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bigint[]) AS u(warehouse_id, material_id, code, owner_id)
             JOIN lots l ON l.warehouse_id = u.warehouse_id AND l.material_id = u.material_id AND l.code = u.code
           ON CONFLICT (lot_id, owner_id) WHERE type = 'stock' DO NOTHING""",
        [r[0] for r in receipts], [r[1] for r in receipts], [r[2] for r in receipts], [r[3] for r in receipts],
    )


async def lock_positions_bulk(
    pg: asyncpg.Connection, by_lot: Sequence[tuple[str, int]], by_receipt: Sequence[tuple[int, int, str, int]],
    by_owner: Sequence[tuple[int, int, int]], by_movement: Sequence[str] = (),
) -> list[asyncpg.Record]:
    """Lock, in one ordered statement, positions named by (lot id, owner id), by (warehouse,
    material, lot code, owner id), every position of (warehouse, material, owner) and every
    position the given movements posted to (what their reversals touch)."""
    lot_ids = [x[0] for x in by_lot if _is_uuid(x[0])]
    lot_owners = [x[1] for x in by_lot if _is_uuid(x[0])]
    return await pg.fetch(
        f"""SELECT {POSITION_COLUMNS}, l.warehouse_id, w.code AS warehouse, o.sector
              {POSITION_FROM}
              JOIN warehouses w ON w.id = l.warehouse_id
             WHERE a.id IN (
                   -- Each named position is looked up on its own (LATERAL … OFFSET 0 keeps the lookup
                   -- per row): a plan that joins whole tables, as a young database's missing
                   -- statistics can suggest, would scan every lot per position.
                   SELECT x.id FROM unnest($1::uuid[], $2::bigint[]) AS u(lot_id, owner_id)
                    CROSS JOIN LATERAL (
                          SELECT a.id FROM accounts a
                           WHERE a.type = 'stock' AND a.lot_id = u.lot_id AND a.owner_id = u.owner_id OFFSET 0) x
                   UNION
                   SELECT x.id FROM unnest($3::bigint[], $4::bigint[], $5::text[], $6::bigint[]) AS u(w, m, code, owner_id)
                    CROSS JOIN LATERAL (
                          SELECT a.id FROM lots l JOIN accounts a ON a.type = 'stock' AND a.lot_id = l.id
                           WHERE l.warehouse_id = u.w AND l.material_id = u.m AND l.code = u.code
                             AND a.owner_id = u.owner_id OFFSET 0) x
                   UNION
                   SELECT a.id FROM unnest($7::bigint[], $8::bigint[], $9::bigint[]) AS u(w, m, owner_id)
                     JOIN lots l ON l.warehouse_id = u.w AND l.material_id = u.m
                     JOIN accounts a ON a.type = 'stock' AND a.lot_id = l.id AND a.owner_id = u.owner_id
                   UNION
                   SELECT a.id FROM postings p JOIN accounts a ON a.id = p.account_id AND a.type = 'stock'
                    WHERE p.movement_id = ANY($10::uuid[]))
             ORDER BY a.id FOR UPDATE OF a""",
        lot_ids, lot_owners, [x[0] for x in by_receipt], [x[1] for x in by_receipt], [x[2] for x in by_receipt],
        [x[3] for x in by_receipt], [x[0] for x in by_owner], [x[1] for x in by_owner], [x[2] for x in by_owner],
        [m for m in by_movement if _is_uuid(m)],
    )


def _is_uuid(value: str) -> bool:
    return as_uuid(value) is not None


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


async def military_only(pg: asyncpg.Connection, lot_id: str) -> bool:
    """Whether the lot is one a reader without clearance may not know of (``MILITARY_ONLY_LOT``)."""
    return bool(await pg.fetchval(f"SELECT {MILITARY_ONLY_LOT} FROM lots l WHERE l.id = $1::uuid", lot_id))


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
        """WITH lot AS (
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

"""Transfers' SQL."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from stockpile.domain.refs import PartyRef
from stockpile.store.db import Statement
from stockpile.store.visibility import TRANSFERS

# A transfer's head as every read presents it (``t`` the transfer).
HEAD_SELECT = """
    SELECT t.id::text AS id, fw.code AS from_warehouse, tw.code AS to_warehouse, t.state, t.expected_at,
           t.dispatched_at, t.received_at
      FROM transfers t
      JOIN warehouses fw ON fw.id = t.from_warehouse_id JOIN warehouses tw ON tw.id = t.to_warehouse_id"""

# A transfer's lines (``t`` the line), with what both the presentation and a receipt need.
LINE_SELECT = """
    SELECT t.transfer_id::text AS transfer_id, t.line_no, t.source_lot_id::text AS source_lot_id,
           l.code AS lot_code, l.manufactured_on, l.expires_on, t.owner_id, o.code AS owner,
           o.sector AS owner_sector, l.material_id, m.code AS material, m.decimals, t.quantity, t.received,
           t.transit_account_id, t.destination_lot_id::text AS destination_lot_id
      FROM transfer_lines t JOIN lots l ON l.id = t.source_lot_id JOIN parties o ON o.id = t.owner_id
      JOIN materials m ON m.id = l.material_id"""


def _uuids(values: Sequence[str]) -> list[str]:
    out = []
    for v in values:
        try:
            out.append(str(uuid.UUID(v)))
        except (ValueError, TypeError, AttributeError):
            continue
    return out


async def parties(pg: asyncpg.Connection, codes: list[str]) -> dict[str, PartyRef]:
    """Each known party code's reference."""
    rows = await pg.fetch("SELECT code, id, sector FROM parties WHERE code = ANY($1::text[])", codes)
    return {r["code"]: PartyRef(r["id"], r["code"], r["sector"]) for r in rows}


async def lots_by_id(pg: asyncpg.Connection, lot_ids: list[str]) -> dict[str, asyncpg.Record]:
    rows = await pg.fetch(
        """SELECT l.id::text AS id, l.code, l.warehouse_id, l.material_id, m.code AS material, m.decimals
             FROM lots l JOIN materials m ON m.id = l.material_id WHERE l.id = ANY($1::uuid[])""",
        _uuids(lot_ids),
    )
    return {r["id"]: r for r in rows}


async def stock_account_ids(pg: asyncpg.Connection, specs: Sequence[tuple[str, int, int]]) -> list[int | None]:
    rows = await pg.fetch(
        """SELECT s.n, a.id FROM unnest($1::uuid[], $2::bigint[]) WITH ORDINALITY AS s(lot_id, owner_id, n)
             LEFT JOIN accounts a ON a.type = 'stock' AND a.lot_id = s.lot_id AND a.owner_id = s.owner_id
            ORDER BY s.n""",
        [s[0] for s in specs], [s[1] for s in specs],
    )
    return [r["id"] for r in rows]


async def insert_transfer(pg, transfer_id: str, from_id: int, to_id: int, expected_at: datetime | None,
                          now: datetime, principal_id: int) -> None:
    await pg.execute(
        """INSERT INTO transfers (id, from_warehouse_id, to_warehouse_id, expected_at, dispatched_at, principal_id)
           VALUES ($1::uuid, $2, $3, $4, $5, $6)""",
        transfer_id, from_id, to_id, expected_at, now, principal_id,
    )


async def insert_lines(pg, transfer_id: str, specs, quantities: list[int], transit_ids: list[int]) -> None:
    await pg.execute(
        """INSERT INTO transfer_lines (transfer_id, line_no, source_lot_id, owner_id, quantity, transit_account_id)
           SELECT $1::uuid, s.n, s.lot_id, s.owner_id, s.quantity, s.transit
             FROM unnest($2::uuid[], $3::bigint[], $4::bigint[], $5::bigint[]) WITH ORDINALITY
                  AS s(lot_id, owner_id, quantity, transit, n)""",
        transfer_id, [s[0] for s in specs], [s[1] for s in specs], quantities, transit_ids,
    )


async def lock_transfer(pg, transfer_id: str) -> asyncpg.Record | None:
    if not _uuids([transfer_id]):
        return None
    return await pg.fetchrow(
        """SELECT t.id::text AS id, t.state, t.to_warehouse_id, w.code AS to_warehouse, t.received_at
             FROM transfers t JOIN warehouses w ON w.id = t.to_warehouse_id WHERE t.id = $1::uuid FOR UPDATE OF t""",
        transfer_id,
    )


async def lines(pg, transfer_id: str) -> list[asyncpg.Record]:
    """A transfer's lines in line order, with what a receipt needs (owners, materials, source lots'
    dates, transit accounts)."""
    return await pg.fetch(f"{LINE_SELECT} WHERE t.transfer_id = $1::uuid ORDER BY t.line_no", transfer_id)


async def lines_of(pg, transfer_ids: list[str]) -> dict[str, list[asyncpg.Record]]:
    """The lines of many transfers in one statement (a page of the list need not ask per transfer),
    keyed by transfer id, each transfer's lines in line order; a transfer without lines is absent."""
    rows = await pg.fetch(
        f"{LINE_SELECT} WHERE t.transfer_id = ANY($1::uuid[]) ORDER BY t.transfer_id, t.line_no",
        _uuids(transfer_ids),
    )
    out: dict[str, list[asyncpg.Record]] = {}
    for row in rows:
        out.setdefault(row["transfer_id"], []).append(row)
    return out


async def mark_received(pg, transfer_id: str, destination_lot_ids: list[str], received: list[int], now: datetime) -> None:
    await pg.execute(
        """UPDATE transfer_lines t SET received = s.received, destination_lot_id = s.lot_id
             FROM unnest($2::uuid[], $3::bigint[]) WITH ORDINALITY AS s(lot_id, received, n)
            WHERE t.transfer_id = $1::uuid AND t.line_no = s.n""",
        transfer_id, destination_lot_ids, received,
    )
    await pg.execute("UPDATE transfers SET state = 'received', received_at = $2 WHERE id = $1::uuid", transfer_id, now)


async def get(pg, transfer_id: str, *, warehouse_ids: list[int] | None = None,
              cleared: bool = True) -> asyncpg.Record | None:
    """A transfer's head, if the reader may see it (``visibility.TRANSFERS``; the defaults see every
    transfer): one that may not be seen reads as a missing one."""
    if not _uuids([transfer_id]):
        return None
    return await pg.fetchrow(
        f"{HEAD_SELECT} WHERE t.id = $1::uuid AND {TRANSFERS.format(warehouses='$2', cleared='$3')}",
        transfer_id, warehouse_ids, cleared,
    )


def heads(*, state: str | None, warehouse: str | None, after: tuple[datetime, uuid.UUID] | None, limit: int | None,
          warehouse_ids: list[int] | None = None, cleared: bool = True) -> Statement:
    """Transfer heads the reader may see, newest first; their keyset (dispatched_at, id) is the next
    page's cursor, and ``lines_of`` adds their lines; ``limit`` None: every one."""
    after_at, after_id = after if after else (None, None)
    return Statement(
        f"""{HEAD_SELECT}
            WHERE ($1::text IS NULL OR t.state = $1) AND ($2::text IS NULL OR $2 IN (fw.code, tw.code))
              AND ($3::timestamptz IS NULL OR (t.dispatched_at, t.id) < ($3, $4::uuid))
              AND {TRANSFERS.format(warehouses="$6", cleared="$7")}
            ORDER BY t.dispatched_at DESC, t.id DESC LIMIT $5""",
        (state, warehouse, after_at, after_id, limit, warehouse_ids, cleared),
    )

"""Obligations: stock that crossed owners under a rule, and what has been settled of it."""

from __future__ import annotations

import asyncpg

from stockpile.store.db import as_uuid

_SELECT = """
SELECT o.id, o.kind, o.rule_code, o.rule_version, o.movement_id, o.lot_id, o.quantity, o.settled_quantity,
       o.created_at, o.settled_at, o.material_id, o.creditor_id, o.debtor_id,
       m.code AS material, m.decimals, c.code AS creditor, c.sector AS creditor_sector,
       d.code AS debtor, d.sector AS debtor_sector
FROM obligations o
JOIN materials m ON m.id = o.material_id
JOIN parties c ON c.id = o.creditor_id
JOIN parties d ON d.id = o.debtor_id
"""


async def record(pg: asyncpg.Connection, *, kind: str, rule_code: str, rule_version: int, movement_id: str,
                 lot_id: str, material_id: int, creditor_id: int, debtor_id: int, quantity: int) -> str:
    return await pg.fetchval(
        """INSERT INTO obligations (kind, rule_code, rule_version, movement_id, lot_id, material_id, creditor_id,
                                    debtor_id, quantity)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id""",
        kind, rule_code, rule_version, movement_id, lot_id, material_id, creditor_id, debtor_id, quantity)


async def get(pg: asyncpg.Connection, obligation_id: str, *, for_update: bool = False) -> asyncpg.Record | None:
    return await pg.fetchrow(_SELECT + " WHERE o.id = $1" + (" FOR UPDATE OF o" if for_update else ""), obligation_id)


async def listing(pg: asyncpg.Connection, *, state: str | None, party_id: int | None, cleared: bool,
                  after: str | None, limit: int) -> list[asyncpg.Record]:
    return await pg.fetch(
        _SELECT + """ WHERE ($1::text IS NULL OR ($1 = 'open') = (o.settled_quantity < o.quantity))
          AND ($2::bigint IS NULL OR $2 IN (o.creditor_id, o.debtor_id))
          AND ($3 OR (c.sector <> 'military' AND d.sector <> 'military'))
          AND ($4::uuid IS NULL OR o.id > $4)
        ORDER BY o.id LIMIT $5""", state, party_id, cleared, after, limit)


async def settlements(pg: asyncpg.Connection, obligation_id: str) -> list[asyncpg.Record]:
    return await pg.fetch(
        """SELECT s.id, s.movement_id, s.quantity, s.note, s.recorded_at, p.name AS recorded_by
           FROM obligation_settlements s LEFT JOIN principals p ON p.id = s.principal_id
           WHERE s.obligation_id = $1 ORDER BY s.id""", obligation_id)


async def repayment(pg: asyncpg.Connection, movement_id: str, material_id: int, creditor_id: int) -> int | None:
    """How much of ``material`` the movement credited to the creditor's stock (a loan repaid in kind),
    or None when the movement does not exist."""
    if as_uuid(movement_id) is None:
        return None
    row = await pg.fetchrow(
        """SELECT EXISTS (SELECT 1 FROM movements WHERE id = $1) AS found,
                  coalesce(sum(p.delta) FILTER (WHERE p.delta > 0), 0) AS credited
           FROM postings p JOIN accounts a ON a.id = p.account_id
           WHERE p.movement_id = $1 AND a.type = 'stock' AND a.owner_id = $3 AND p.material_id = $2""",
        movement_id, material_id, creditor_id)
    return int(row["credited"]) if row["found"] else None


async def settle(pg: asyncpg.Connection, obligation_id: str, *, quantity: int, movement_id: str | None, note: str,
                 principal_id: int) -> None:
    await pg.execute(
        """INSERT INTO obligation_settlements (obligation_id, movement_id, quantity, note, principal_id)
           VALUES ($1, $2, $3, $4, $5)""", obligation_id, movement_id, quantity, note, principal_id)
    await pg.execute(
        """UPDATE obligations SET settled_quantity = settled_quantity + $2,
                  settled_at = CASE WHEN settled_quantity + $2 = quantity THEN now() END
           WHERE id = $1""", obligation_id, quantity)

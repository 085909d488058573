"""Obligations: stock that crossed owners under a rule, and what has been settled of it."""

from __future__ import annotations

import asyncpg

from stockpile.store.db import as_uuid
from stockpile.store.visibility import MOVEMENTS, OBLIGATIONS

_SELECT = """
SELECT o.id, o.kind, m.substitution_group, o.rule_code, o.rule_version, o.movement_id, o.lot_id, o.quantity, o.settled_quantity,
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


async def get(pg: asyncpg.Connection, obligation_id: str, *, for_update: bool = False,
              warehouse_ids: list[int] | None = None, cleared: bool = True) -> asyncpg.Record | None:
    """One obligation as the reader (``warehouse_ids``, ``cleared``; by default everything) may see it."""
    return await pg.fetchrow(
        _SELECT + f" WHERE o.id = $1 AND {OBLIGATIONS.format(warehouses='$2', cleared='$3')}"
        + (" FOR UPDATE OF o" if for_update else ""), obligation_id, warehouse_ids, cleared)


async def listing(pg: asyncpg.Connection, *, state: str | None, party_id: int | None, cleared: bool,
                  after: str | None, limit: int, warehouse_ids: list[int] | None = None) -> list[asyncpg.Record]:
    return await pg.fetch(
        _SELECT + f""" WHERE ($1::text IS NULL OR ($1 = 'open') = (o.settled_quantity < o.quantity))
          AND ($2::bigint IS NULL OR $2 IN (o.creditor_id, o.debtor_id))
          AND ($4::uuid IS NULL OR o.id > $4)
          AND {OBLIGATIONS.format(warehouses='$6', cleared='$3')}
        ORDER BY o.id LIMIT $5""", state, party_id, cleared, after, limit, warehouse_ids)


async def settlements(pg: asyncpg.Connection, obligation_id: str) -> list[asyncpg.Record]:
    return await pg.fetch(
        """SELECT s.id, s.movement_id, s.quantity, s.note, s.recorded_at, p.name AS recorded_by
           FROM obligation_settlements s LEFT JOIN principals p ON p.id = s.principal_id
           WHERE s.obligation_id = $1 ORDER BY s.id""", obligation_id)


async def repayment(pg: asyncpg.Connection, movement_id: str, obligation: asyncpg.Record, *,
                    warehouse_ids: list[int] | None = None, cleared: bool = True) -> asyncpg.Record | None:
    """What the repayment rule (stockpile.domain.obligations) needs of a movement offered to settle
    ``obligation``: its kind, whether it was recorded after the obligation, what it credited the
    creditor's positions net in the loan's material or its substitution group, whether it was
    reversed or is cited already. None when there is no such movement the reader may see.

    Takes a transaction-level lock on the movement's citation first, so two settlements citing it at
    once queue and the second sees the first."""
    if as_uuid(movement_id) is None:
        return None
    await pg.execute("SELECT pg_advisory_xact_lock(hashtext('obligation_settlement'), hashtext($1))", movement_id)
    return await pg.fetchrow(
        f"""SELECT mv.kind, mv.recorded_at > $2 AS recorded_after_obligation,
                   coalesce((SELECT sum(p.delta) FROM postings p JOIN accounts a ON a.id = p.account_id
                              JOIN materials m ON m.id = p.material_id
                             WHERE p.movement_id = mv.id AND a.owner_id = $3
                               AND (p.material_id = $4 OR m.substitution_group = $5)), 0)::bigint AS credited,
                   EXISTS (SELECT 1 FROM movements rv WHERE rv.reverses_id = mv.id) AS reversed,
                   EXISTS (SELECT 1 FROM obligation_settlements s WHERE s.movement_id = mv.id) AS cited
              FROM movements mv
             WHERE mv.id = $1::uuid AND {MOVEMENTS.format(warehouses='$6', cleared='$7')}""",
        movement_id, obligation["created_at"], obligation["creditor_id"], obligation["material_id"],
        obligation["substitution_group"], warehouse_ids, cleared)


async def settle(pg: asyncpg.Connection, obligation_id: str, *, quantity: int, movement_id: str | None, note: str,
                 principal_id: int) -> None:
    await pg.execute(
        """INSERT INTO obligation_settlements (obligation_id, movement_id, quantity, note, principal_id)
           VALUES ($1, $2, $3, $4, $5)""", obligation_id, movement_id, quantity, note, principal_id)
    await pg.execute(
        """UPDATE obligations SET settled_quantity = settled_quantity + $2,
                  settled_at = CASE WHEN settled_quantity + $2 = quantity THEN now() END
           WHERE id = $1""", obligation_id, quantity)

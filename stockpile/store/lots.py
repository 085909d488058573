"""Writes to lots: a status change, kept in the lot's history (``lot_events``). A lot's expiry is
re-dated by a shelf-life extension (``stockpile.store.rotation.redate_lot``); its stock is read in
``stockpile.store.reads``."""

from __future__ import annotations

import asyncpg

from stockpile.store.db import as_uuid


async def set_status(pg: asyncpg.Connection, lot_id: str, status: str, reason: str | None,
                     principal_id: int) -> str | None:
    """Change a lot's status, keeping the change in its history; returns the previous status (None
    when there is no such lot)."""
    lot_id = as_uuid(lot_id)
    if lot_id is None:
        return None
    previous = await pg.fetchval("SELECT status FROM lots WHERE id = $1::uuid FOR UPDATE", lot_id)
    if previous is None:
        return None
    if previous != status:
        await pg.execute("UPDATE lots SET status = $2 WHERE id = $1::uuid", lot_id, status)
        await pg.execute(
            """INSERT INTO lot_events (lot_id, kind, from_value, to_value, reason, principal_id)
               VALUES ($1::uuid, 'status', $2, $3, $4, $5)""",
            lot_id, previous, status, reason, principal_id,
        )
    return previous

"""Writes to lots, each kept in the lot's history (``lot_events``): a status change, and a new
expiry (a shelf-life extension). A lot's stock is read in ``stockpile.store.reads``."""

from __future__ import annotations

from datetime import date

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
        await _record(pg, lot_id, "status", previous, status, reason, principal_id)
    return previous


async def redate(pg: asyncpg.Connection, lot_id: str, previous: date, new: date, reason: str,
                 principal_id: int) -> None:
    """Give the lot its new expiry, keeping the change in the lot's history."""
    await pg.execute("UPDATE lots SET expires_on = $2 WHERE id = $1::uuid", lot_id, new)
    await _record(pg, lot_id, "shelf_life", previous.isoformat(), new.isoformat(), reason, principal_id)


async def _record(pg: asyncpg.Connection, lot_id: str, kind: str, before: str, after: str, reason: str | None,
                  principal_id: int) -> None:
    await pg.execute(
        """INSERT INTO lot_events (lot_id, kind, from_value, to_value, reason, principal_id)
           VALUES ($1::uuid, $2, $3, $4, $5, $6)""",
        lot_id, kind, before, after, reason, principal_id,
    )

"""The notification outbox: messages written with the change they announce, delivered later."""

from __future__ import annotations

from datetime import timedelta

import asyncpg


async def due(pg: asyncpg.Connection, limit: int) -> list[asyncpg.Record]:
    """Undelivered messages whose time has come, locked for this delivery (others skip them)."""
    return await pg.fetch(
        """SELECT id::text AS id, topic, payload::text AS payload, attempts, created_at FROM outbox
            WHERE delivered_at IS NULL AND next_attempt_at <= now()
            ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED""",
        limit,
    )


async def delivered(pg: asyncpg.Connection, message_id: str) -> None:
    await pg.execute("UPDATE outbox SET delivered_at = now(), attempts = attempts + 1, last_error = NULL "
                     "WHERE id = $1::uuid", message_id)


async def failed(pg: asyncpg.Connection, message_id: str, error: str, retry_in: timedelta) -> None:
    await pg.execute(
        """UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_attempt_at = now() + $3
            WHERE id = $1::uuid""",
        message_id, error[:500], retry_in,
    )

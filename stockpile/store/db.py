"""The unit of work: one transaction per entry point (request, job run, CLI command).

``Database.transaction()`` opens a transaction and hands out a ``Tx``; leaving the block commits,
an exception rolls back. Code below the entry point never commits. Connections come from an
asyncpg pool (the hot path is hand-written SQL; SQLAlchemy builds the schema through Alembic).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from stockpile.metrics import DB_CONNECTIONS_IN_USE, DB_CONNECTIONS_MAX
from stockpile.store.engine import asyncpg_dsn


def as_uuid(value: object) -> str | None:
    """The canonical text of a uuid, or None when ``value`` is not one (an id from a path, a body or a
    cursor is checked before it reaches a ``::uuid`` cast, so a malformed one is "not found", not a 500)."""
    try:
        return str(uuid.UUID(value))  # type: ignore[arg-type]
    except (ValueError, TypeError, AttributeError):
        return None


# Rows a server-side cursor fetches per round trip when a read is streamed (an export).
STREAM_BATCH = 2000


@dataclass(frozen=True)
class Statement:
    """One read's SQL and its parameters, built once and run either way: ``fetch`` for a page,
    ``stream`` for every row through a server-side cursor, ``batch`` rows per round trip, so memory
    stays flat however many rows match (it must run inside a transaction)."""

    sql: str
    args: tuple[Any, ...]

    async def fetch(self, pg: asyncpg.Connection) -> list[asyncpg.Record]:
        return await pg.fetch(self.sql, *self.args)

    async def stream(self, pg: asyncpg.Connection, batch: int = STREAM_BATCH) -> AsyncIterator[asyncpg.Record]:
        async for row in pg.cursor(self.sql, *self.args, prefetch=batch):
            yield row


@dataclass
class Tx:
    """An open transaction on one connection."""

    pg: asyncpg.Connection


async def _keep_session(conn: asyncpg.Connection) -> None:
    """A connection goes back to the pool as it is, once asyncpg has rolled back any transaction left
    open: this service changes no session state (settings are ``SET LOCAL``, advisory locks are
    transaction locks, cursors live in their transaction, nothing listens), so the default reset —
    one more statement after every transaction — would undo nothing."""


class Database:
    def __init__(self, url: str, *, pool_size: int = 20) -> None:
        self.url = url
        self.pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    dsn, kwargs = asyncpg_dsn(self.url)
                    self._pool = await asyncpg.create_pool(
                        dsn, min_size=1, max_size=self.pool_size, statement_cache_size=1024,
                        max_inactive_connection_lifetime=300, timeout=10,
                        server_settings={"application_name": "stockpile", "jit": "off"}, reset=_keep_session,
                        **kwargs,
                    )
                    DB_CONNECTIONS_MAX.inc(self.pool_size)
        return self._pool

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        pool = await self.pool()
        async with pool.acquire() as conn:
            DB_CONNECTIONS_IN_USE.inc()  # the pool's saturation, as the alert StockpileDatabasePoolSaturated reads it
            try:
                async with conn.transaction():
                    yield Tx(conn)
            finally:
                DB_CONNECTIONS_IN_USE.dec()

    async def dispose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
            DB_CONNECTIONS_MAX.dec(self.pool_size)


async def repeatable_read(pg: asyncpg.Connection, *, read_only: bool = False) -> None:
    """Make the transaction just opened on ``pg`` read one snapshot for all its statements (a check
    or a report that reads several tables must see them agree); must come before its first query."""
    await pg.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY" if read_only
                     else "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")


async def advisory_xact_lock(pg: asyncpg.Connection, key: int) -> None:
    """Wait for and hold, until the transaction ends, the advisory lock ``key`` (one loader at a time)."""
    await pg.execute("SELECT pg_advisory_xact_lock($1)", key)


async def schema_revision(pg: asyncpg.Connection) -> str | None:
    """The Alembic revision the database's schema is at (None if none is recorded)."""
    return await pg.fetchval("SELECT version_num FROM alembic_version")

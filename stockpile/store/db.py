"""The unit of work: one transaction per entry point (request, job run, CLI command).

``Database.transaction()`` opens a transaction and hands out a ``Tx``; leaving the block commits,
an exception rolls back. Code below the entry point never commits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from stockpile.store.engine import make_engine


@dataclass
class Tx:
    """An open transaction: the SQLAlchemy connection and its asyncpg driver connection."""

    conn: AsyncConnection
    pg: asyncpg.Connection


class Database:
    def __init__(self, url: str, *, pool_size: int = 20) -> None:
        self.url = url
        self.engine: AsyncEngine = make_engine(url, pool_size=pool_size)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self.engine.begin() as conn:
            raw = await conn.get_raw_connection()
            yield Tx(conn, raw.driver_connection)

    async def dispose(self) -> None:
        await self.engine.dispose()

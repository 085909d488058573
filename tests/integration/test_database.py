"""The unit of work's connections: one goes back to the pool without a reset statement, so what a
transaction leaves behind — an error, a cancellation — must not reach the next one."""

from __future__ import annotations

import asyncio

import pytest

from stockpile.store.db import Database


async def test_a_connection_comes_back_clean_after_an_error_and_a_cancellation(database_url):
    db = Database(database_url, pool_size=1)  # one connection: every transaction below reuses it
    try:
        async with db.transaction() as tx:
            await tx.pg.execute("CREATE TEMP TABLE scratch (n int) ON COMMIT DROP")
            first_backend = await tx.pg.fetchval("SELECT pg_backend_pid()")

        with pytest.raises(RuntimeError):
            async with db.transaction() as tx:
                await tx.pg.execute("CREATE TABLE left_behind (n int)")
                raise RuntimeError("the handler failed")

        async def stuck() -> None:
            async with db.transaction() as tx:
                await tx.pg.execute("CREATE TABLE also_left_behind (n int)")
                await tx.pg.execute("SELECT pg_sleep(30)")

        task = asyncio.create_task(stuck())
        await asyncio.sleep(0.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

        async with db.transaction() as tx:
            backend = await tx.pg.fetchval("SELECT pg_backend_pid()")
            nested = await tx.pg.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = pg_backend_pid() "
                                          "AND backend_xid IS NOT NULL")
            left = await tx.pg.fetchval("SELECT count(*) FROM pg_class WHERE relname IN "
                                        "('left_behind', 'also_left_behind', 'scratch')")
            jit = await tx.pg.fetchval("SHOW jit")
        assert backend == first_backend  # the same connection, reused
        assert left == 0  # neither the failed nor the cancelled transaction committed anything
        assert nested == 0  # a fresh transaction, not one still open from before
        assert jit == "off"  # the pool's session settings hold
    finally:
        await db.dispose()

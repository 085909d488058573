"""Alembic environment (async). The URL comes from the caller (``stockpile db upgrade``, tests).

Migrations run under a session-level advisory lock: replicas that start together (each with
``STOCKPILE_MIGRATE_ON_START``) queue on it, and each reads the schema's revision only once it
holds the lock, so the first migrates and the others find nothing left to do.
"""

import asyncio

from alembic import context
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from stockpile.store.engine import MIGRATION_LOCK, async_url


def _run(connection) -> None:
    connection.execute(text("SELECT pg_advisory_lock(hashtext(:key))"), {"key": MIGRATION_LOCK})
    connection.commit()  # the lock is the session's: it outlives this transaction and each migration's
    try:
        context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
    finally:
        connection.rollback()  # a failed migration leaves its transaction aborted: end it to unlock
        connection.execute(text("SELECT pg_advisory_unlock(hashtext(:key))"), {"key": MIGRATION_LOCK})
        connection.commit()


async def _run_async(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
        await connection.commit()
    await engine.dispose()


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = async_url(context.config.get_main_option("sqlalchemy.url"))
    asyncio.run(_run_async(url))


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported: run `stockpile db upgrade`")
run()

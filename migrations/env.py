"""Alembic environment (async). The URL comes from the caller (``stockpile db upgrade``, tests)."""

import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine

from stockpile.store.engine import async_url


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


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

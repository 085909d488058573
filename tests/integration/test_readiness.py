"""/health/ready answers 503 when the database is unreachable or its schema is behind the code."""

from __future__ import annotations

import asyncpg
from litestar.testing import AsyncTestClient

from stockpile.api.app import create_app
from stockpile.store.engine import asyncpg_dsn, head_revision


async def test_ready_is_503_when_the_schema_is_behind(make_database, settings):
    url = make_database()
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        await conn.execute("UPDATE alembic_version SET version_num = '0001'")
    finally:
        await conn.close()
    async with AsyncTestClient(app=create_app(settings, url)) as c:
        r = await c.get("/health/ready")
    assert r.status_code == 503 and r.json()["schema"] == "0001" and r.json()["latest"] == head_revision()
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_ready_is_503_when_the_database_is_unreachable(settings):
    app = create_app(settings, "postgresql://nobody@127.0.0.1:1/nowhere")
    async with AsyncTestClient(app=app) as c:
        ready = await c.get("/health/ready")
        live = await c.get("/health/live")
    assert ready.status_code == 503 and ready.json()["type"] == "not-ready"
    assert live.status_code == 200

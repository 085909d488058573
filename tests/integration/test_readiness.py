"""/health/ready answers 503 when the database is unreachable or its schema is behind the code."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from stockpile.api.app import create_app



async def test_ready_is_503_when_the_database_is_unreachable(settings):
    app = create_app(settings, "postgresql://nobody@127.0.0.1:1/nowhere")
    async with AsyncTestClient(app=app) as c:
        ready = await c.get("/health/ready")
        live = await c.get("/health/live")
    assert ready.status_code == 503 and ready.json()["type"] == "not-ready"
    assert live.status_code == 200

"""Abuse limits: rate per token, body size, list and batch caps — each a clear problem, nothing written."""

from __future__ import annotations

from dataclasses import replace

from litestar.testing import AsyncTestClient

from stockpile.api.app import create_app
from tests.factories import idem


async def test_a_token_over_its_rate_gets_429_with_retry_after(database_url, settings, make_token):
    headers = {"Authorization": f"Bearer {await make_token('auditor')}"}
    app = create_app(replace(settings, rate_limit_per_second=1, rate_limit_burst=3), database_url)
    async with AsyncTestClient(app=app) as c:
        statuses = [(await c.get("/api/v1/regions", headers=headers)).status_code for _ in range(5)]
        limited = await c.get("/api/v1/regions", headers=headers)
        other = {"Authorization": f"Bearer {await make_token('auditor')}"}
        assert (await c.get("/api/v1/regions", headers=other)).status_code == 200
    assert statuses[:3] == [200, 200, 200] and 429 in statuses[3:]
    assert limited.status_code == 429 and limited.json()["type"] == "rate-limited"
    assert int(limited.headers["retry-after"]) >= 1


async def test_an_oversized_body_is_refused_before_anything_is_written(database_url, settings, operator, pg_pool):
    app = create_app(replace(settings, max_body_bytes=1000), database_url)
    before = await pg_pool.fetchval("SELECT count(*) FROM movements")
    async with AsyncTestClient(app=app) as c:
        r = await c.post("/api/v1/movements", headers={**operator, **idem()},
                         json={"kind": "issue", "lot_id": "x", "owner": "y", "quantity": "1", "note": "n" * 5000})
    assert r.status_code == 413 and r.json()["type"] == "payload-too-large"
    assert await pg_pool.fetchval("SELECT count(*) FROM movements") == before


async def test_list_limits_are_capped(client, auditor):
    r = await client.get("/api/v1/stock", params={"limit": 1001}, headers=auditor)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "limit"


async def test_a_batch_over_the_cap_is_refused(database_url, settings, operator):
    app = create_app(replace(settings, max_batch=2), database_url)
    body = {"atomic": True, "movements": [{"kind": "reversal", "movement_id": "00000000-0000-0000-0000-000000000000"}] * 3}
    async with AsyncTestClient(app=app) as c:
        r = await c.post("/api/v1/movements/batch", headers={**operator, **idem()}, json=body)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "movements"

"""Guarantee 8 under real concurrency: many planners approving plans on one protected floor at once,
each from its own HTTP client against a uvicorn process, cannot together draw below the floor; and
a plan is dispatched once however many clients press the button."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta

import asyncpg
import httpx
import pytest

from stockpile.store.engine import asyncpg_dsn
from tests.live import running_server

PLANS = 12


@pytest.fixture(scope="module")
async def live(make_database):
    url = make_database()
    async with running_server(url) as (base, token):
        yield url, base, {"Authorization": f"Bearer {token}"}


async def _world(c: httpx.AsyncClient, uid: str) -> dict:
    w = {"region": f"R{uid}", "north": f"N{uid}", "south": f"S{uid}", "owner": f"O{uid}", "material": f"M{uid}"}
    for path, body in [
        (f"/api/v1/regions/{w['region']}", {"name": "r"}),
        (f"/api/v1/parties/{w['owner']}", {"name": "o", "sector": "civilian"}),
        (f"/api/v1/warehouses/{w['north']}", {"name": "n", "operator": w["owner"], "region": w["region"],
                                             "kind": "civilian", "latitude": 60, "longitude": 25}),
        (f"/api/v1/warehouses/{w['south']}", {"name": "s", "operator": w["owner"], "region": w["region"],
                                             "kind": "civilian", "latitude": 59, "longitude": 25}),
        (f"/api/v1/materials/{w['material']}", {"name": "m", "category": "fuel", "unit": "L", "decimals": 0}),
        (f"/api/v1/reserve-targets/T{uid}", {"scope": {"warehouse": w["north"]}, "material": w["material"],
                                             "owner": w["owner"], "quantity": "1000", "floor_ratio": 0.5,
                                             "warning_ratio": 0.9, "critical_ratio": 0.6, "horizon_days": 30}),
    ]:
        assert (await c.put(path, json=body)).status_code == 201, path
    r = await c.post("/api/v1/movements", headers={"Idempotency-Key": uuid.uuid4().hex}, json={
        "kind": "receipt", "warehouse": w["north"], "material": w["material"], "owner": w["owner"],
        "quantity": "1000", "lot": {"code": "FLOORED", "expires_on": "2031-01-01"}})
    assert r.status_code == 201
    w["lot"] = r.json()["postings"][0]["account"]["lot_id"]
    return w


async def _plan(c: httpx.AsyncClient, w: dict, quantity: str) -> str:
    r = await c.post("/api/v1/allocation-requests", json={
        "requester": w["owner"], "destination": w["south"], "material": w["material"], "quantity": quantity,
        "priority": "priority", "needed_by": (date.today() + timedelta(days=7)).isoformat()})
    assert r.status_code == 201, r.text
    r = await c.post("/api/v1/allocation-plans", json={"request_ids": [r.json()["id"]]})
    assert r.status_code == 201 and r.json()["requests"][0]["planned"] == quantity, r.text
    return r.json()["id"]


async def test_concurrent_approvals_never_draw_a_floor_down_together(live, uid):
    url, base, headers = live
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as c:
        w = await _world(c, uid)
        plans = [await _plan(c, w, "100") for _ in range(PLANS)]  # each alone fits: headroom 1000 − 500 = 500

    async def approve(plan_id: str) -> httpx.Response:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as own:
            return await own.post(f"/api/v1/allocation-plans/{plan_id}/approve")

    answers = await asyncio.gather(*(approve(p) for p in plans))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [200] * 5 + [409] * (PLANS - 5), [a.text for a in answers if a.status_code not in (200, 409)]
    assert {a.json()["type"] for a in answers if a.status_code == 409} == {"floor-protected"}
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        reserved = await conn.fetchval("SELECT sum(reserved) FROM accounts WHERE lot_id = $1::uuid", w["lot"])
        approved = await conn.fetchval("SELECT count(*) FROM allocation_plans WHERE id = ANY($1::uuid[]) "
                                       "AND state = 'approved'", plans)
    finally:
        await conn.close()
    assert (reserved, approved) == (500, 5)


async def test_a_plan_pressed_to_dispatch_by_many_clients_is_dispatched_once(live, uid):
    url, base, headers = live
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as c:
        w = await _world(c, uid)
        plan = await _plan(c, w, "200")
        assert (await c.post(f"/api/v1/allocation-plans/{plan}/approve")).status_code == 200

    async def dispatch() -> httpx.Response:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as own:
            return await own.post(f"/api/v1/allocation-plans/{plan}/dispatch",
                                  headers={"Idempotency-Key": uuid.uuid4().hex})

    answers = await asyncio.gather(*(dispatch() for _ in range(8)))
    assert sorted(a.status_code for a in answers) == [200] + [409] * 7
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        row = await conn.fetchrow("SELECT balance, reserved FROM accounts WHERE lot_id = $1::uuid AND type = 'stock'",
                                  w["lot"])
        transfers = await conn.fetchval("SELECT count(DISTINCT transfer_id) FROM plan_lines WHERE plan_id = $1::uuid", plan)
    finally:
        await conn.close()
    assert (row["balance"], row["reserved"], transfers) == (800, 0, 1)

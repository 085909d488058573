"""Rotation on the demo data: the planner's schedule is sensible and explained, and an operator
works an order through the API until it completes."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from litestar.testing import AsyncTestClient

from stockpile.api.app import create_app
from stockpile.demo import load_demo
from stockpile.jobs.catalog import catalog
from stockpile.jobs.runs import run_slot
from stockpile.store.db import Database

NOW = datetime.now(timezone.utc).replace(microsecond=0)


@pytest.fixture(scope="module")
async def demo(make_database):
    url = make_database()
    return url, await load_demo(url, seed=5, now=NOW)


async def _plan(url: str, settings, slot: int):
    db = Database(url, pool_size=2)
    try:
        return await run_slot(db, catalog(settings)["plan-rotation"], slot=slot)
    finally:
        await db.dispose()


async def _orders(api, headers) -> list[dict]:
    items, cursor = [], None
    while True:
        r = await api.get("/api/v1/rotation-orders", headers=headers,
                          params={"limit": 1000, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return items


async def test_the_planner_makes_an_explained_schedule_and_an_operator_works_an_order(demo, settings):
    url, loaded = demo
    tokens = {name: token for _, name, token in loaded.tokens}
    admin = {"Authorization": f"Bearer {tokens['demo-admin']}"}
    first = await _plan(url, settings, slot=-1)
    assert first.outcome == "ok", first.detail
    again = await _plan(url, settings, slot=-2)
    assert first.detail["created"] > 0 and again.detail["created"] == 0  # idempotent

    async with AsyncTestClient(app=create_app(settings, url)) as api:
        orders = await _orders(api, admin)
        assert len(orders) == first.detail["created"]
        today = date.today()
        for order in orders:
            assert order["state"] == "planned" and order["explanation"] and order["policy"]
            assert date.fromisoformat(order["out_by"]) >= today
            assert date.fromisoformat(order["in_by"]) >= date.fromisoformat(order["out_by"])
        # first-expiring-first: per material and owner, an earlier expiry never goes out later
        lots = {}
        for order in orders:
            lot = (await api.get(f"/api/v1/lots/{order['lot_id']}", headers=admin)).json()
            lots[order["id"]] = lot["expires_on"]
        by_key: dict[tuple, list] = {}
        for order in orders:
            by_key.setdefault((order["material"], order["owner"], order["warehouse"]), []).append(order)
        for group in by_key.values():
            ranked = sorted(group, key=lambda o: lots[o["id"]])
            assert [o["out_by"] for o in ranked] == sorted(o["out_by"] for o in ranked)

        # the demo operator works the largest order at its warehouses: out in two parts, then in
        operator = {"Authorization": f"Bearer {tokens['demo-operator']}"}
        mine = await _orders(api, operator)
        assert mine and {o["warehouse"] for o in mine} <= {"WH-N-04", "WH-S-02"}  # its scope only
        order = max(mine, key=lambda o: Decimal(o["quantity"]))
        quantity = Decimal(order["quantity"])
        half = quantity // 2  # whole units: valid at any precision
        for n, part in enumerate((half, quantity - half)):
            r = await api.post("/api/v1/movements", headers={**operator, "Idempotency-Key": f"out-{order['id']}-{n}"},
                               json={"kind": "rotation_out", "lot_id": order["lot_id"], "owner": order["owner"],
                                     "quantity": str(part), "rotation_order_id": order["id"], "reason": "sold"})
            assert r.status_code == 201, r.text
        r = await api.post("/api/v1/movements", headers={**operator, "Idempotency-Key": f"in-{order['id']}"}, json={
            "kind": "rotation_in", "warehouse": order["warehouse"], "material": order["material"],
            "owner": order["owner"], "quantity": order["quantity"], "rotation_order_id": order["id"],
            "lot": {"code": f"ROT-{order['id'][:8]}", "expires_on": (today + timedelta(days=700)).isoformat()}})
        assert r.status_code == 201, r.text
        done = (await api.get(f"/api/v1/rotation-orders/{order['id']}", headers=operator)).json()
        assert (done["state"], done["out_quantity"], done["in_quantity"]) == ("completed", order["quantity"],
                                                                                order["quantity"])
        other = next(o for o in orders if o["id"] != order["id"])
        cancelled = await api.post(f"/api/v1/rotation-orders/{other['id']}/cancel", headers=admin,
                                   json={"reason": "stock needed for the exercise"})
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"

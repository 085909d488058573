"""A receipt counts toward one tasking order, however many clients link it at once: each from its own
HTTP client against a uvicorn process, one link succeeds, the others are refused, and the output is
counted once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta

import httpx
import pytest

from tests.live import running_server

CLIENTS = 8


@pytest.fixture(scope="module")
async def live(make_database):
    url = make_database()
    async with running_server(url) as (base, token):
        yield base, {"Authorization": f"Bearer {token}"}


async def test_a_receipt_linked_by_many_clients_at_once_counts_toward_one_order(live):
    base, headers = live
    uid = uuid.uuid4().hex[:6].upper()
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as c:
        for path, body in [
            (f"/api/v1/regions/R{uid}", {"name": "r"}),
            (f"/api/v1/parties/O{uid}", {"name": "o", "sector": "civilian"}),
            (f"/api/v1/warehouses/S{uid}", {"name": "s", "operator": f"O{uid}", "region": f"R{uid}",
                                           "kind": "civilian", "latitude": 59, "longitude": 25}),
            (f"/api/v1/materials/F{uid}", {"name": "fuel", "category": "fuel", "unit": "L", "decimals": 0}),
            (f"/api/v1/capacities/K{uid}", {"party": f"O{uid}", "material": f"F{uid}", "daily_quantity": "1000",
                                            "lead_days": 0, "region": f"R{uid}",
                                            "surveyed_on": date.today().isoformat(), "survey_interval_days": 90}),
        ]:
            assert (await c.put(path, json=body)).status_code == 201, path
        for _ in range(2):  # two open orders for the same output at the same depot
            r = await c.post("/api/v1/allocation-requests", json={
                "requester": f"O{uid}", "destination": f"S{uid}", "material": f"F{uid}", "quantity": "300",
                "priority": "flash", "needed_by": (date.today() + timedelta(days=2)).isoformat()})
            assert r.status_code == 201, r.text
            plan = await c.post("/api/v1/allocation-plans", json={"request_ids": [r.json()["id"]]})
            assert (await c.post(f"/api/v1/allocation-plans/{plan.json()['id']}/approve")).status_code == 200
        orders = (await c.get("/api/v1/taskings", params={"capacity": f"K{uid}"})).json()["items"]
        assert len(orders) == 2 and all(o["state"] == "open" for o in orders)
        receipt = await c.post("/api/v1/movements", headers={"Idempotency-Key": uuid.uuid4().hex}, json={
            "kind": "receipt", "warehouse": f"S{uid}", "material": f"F{uid}", "owner": f"O{uid}", "quantity": "300",
            "lot": {"code": "RUN-1"}})
        assert receipt.status_code == 201

    async def link(i: int) -> int:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as own:
            r = await own.post(f"/api/v1/taskings/{orders[i % 2]['id']}/receipts",
                               json={"movement_id": receipt.json()["id"]})
            return r.status_code

    answers = await asyncio.gather(*(link(i) for i in range(CLIENTS)))
    assert sorted(answers) == [200] + [409] * (CLIENTS - 1)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as c:
        after = (await c.get("/api/v1/taskings", params={"capacity": f"K{uid}"})).json()["items"]
    assert sorted((o["state"], o["received"]) for o in after) == [("completed", "300"), ("open", "0")]

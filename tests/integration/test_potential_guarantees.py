"""The guarantees of mobilisation potential hold in PostgreSQL itself: a survey is never deleted, a
receipt counts toward one tasking order, and an order is completed only once its receipts cover it."""

from __future__ import annotations

from datetime import date, timedelta

import asyncpg
import pytest

from tests.factories import make_world, receive


@pytest.fixture
async def order(client, admin, operator, uid) -> tuple[str, str, dict]:
    """(capacity code, an open tasking order's id, a receipt at its destination)."""
    w = await make_world(client, admin, uid)
    r = await client.put(f"/api/v1/capacities/CAP-{uid}", headers=admin, json={
        "party": w.enterprise, "material": w.diesel, "daily_quantity": "100", "lead_days": 0, "region": w.region,
        "surveyed_on": date.today().isoformat(), "survey_interval_days": 30})
    assert r.status_code == 201, r.text
    r = await client.post("/api/v1/allocation-requests", headers=admin, json={
        "requester": w.civil, "destination": w.south, "material": w.diesel, "quantity": "50", "priority": "flash",
        "needed_by": (date.today() + timedelta(days=1)).isoformat()})
    plan = await client.post("/api/v1/allocation-plans", headers=admin, json={"request_ids": [r.json()["id"]]})
    assert (await client.post(f"/api/v1/allocation-plans/{plan.json()['id']}/approve", headers=admin)).status_code == 200
    [tasking] = (await client.get("/api/v1/taskings", headers=admin, params={"capacity": f"CAP-{uid}"})).json()["items"]
    moved = await receive(client, operator, warehouse=w.south, material=w.diesel, owner=w.civil, quantity="20", lot="T")
    return f"CAP-{uid}", tasking["id"], moved


async def test_a_survey_is_never_deleted(pg_pool, order):
    code, _, _ = order
    with pytest.raises(asyncpg.RestrictViolationError, match="never deleted"):
        await pg_pool.execute("DELETE FROM capacity_surveys WHERE capacity_id = (SELECT id FROM capacities WHERE code = $1)",
                              code)


async def test_a_receipt_counts_toward_one_tasking_order(pg_pool, order):
    _, tasking_id, moved = order
    insert = "INSERT INTO tasking_receipts (tasking_id, movement_id, quantity) VALUES ($1::uuid, $2::uuid, 200)"
    await pg_pool.execute(insert, tasking_id, moved["id"])
    with pytest.raises(asyncpg.UniqueViolationError):
        await pg_pool.execute(insert, tasking_id, moved["id"])


async def test_an_order_is_completed_only_once_its_receipts_cover_it(pg_pool, order):
    _, tasking_id, _ = order
    with pytest.raises(asyncpg.CheckViolationError):
        await pg_pool.execute("UPDATE taskings SET state = 'completed', received = quantity - 1 WHERE id = $1::uuid",
                              tasking_id)

"""Mobilisation potential through the alert lifecycle: ``survey_overdue`` raised for a capacity past its
survey interval and resolved by a new survey; ``tasking_overdue`` raised for a tasking order still open
past its due date and resolved once its receipts arrive; neither shown to an uncleared reader when the
capacity is military."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from stockpile.store import allocation as allocation_store
from stockpile.store.db import Database
from tests.factories import make_world, receive
from tests.integration.test_alerts import fresh  # noqa: F401 (a fixture)

TODAY = datetime.now(timezone.utc).date()


def day(n: int) -> str:
    return (TODAY + timedelta(days=n)).isoformat()


async def _of_kind(db: Database, kind: str) -> list[tuple[str, str, str]]:
    async with db.transaction() as tx:
        rows = await tx.pg.fetch("SELECT subject, severity, state FROM alerts WHERE kind = $1 ORDER BY subject", kind)
    return [(r["subject"], r["severity"], r["state"]) for r in rows]


def capacity(w, surveyed_on: str, **extra) -> dict:
    return {"party": w.enterprise, "material": w.diesel, "daily_quantity": "1000", "lead_days": 2,
            "region": w.region, "surveyed_on": surveyed_on, "survey_interval_days": 180, **extra}


async def test_survey_overdue_is_raised_past_the_interval_and_cleared_by_a_survey(fresh, make_token):
    c, db, evaluate, url = fresh
    w = await make_world(c, dict(c.headers), "S")
    assert (await c.put("/api/v1/capacities/CAP-DUE", json=capacity(w, day(-180)))).status_code == 201
    assert (await c.put("/api/v1/capacities/CAP-LATE", json=capacity(w, day(-181)))).status_code == 201
    assert (await c.put("/api/v1/capacities/CAP-MIL", json=capacity(w, day(-300), held_for="military"))).status_code == 201
    await evaluate()
    assert await _of_kind(db, "survey_overdue") == [("capacity:CAP-LATE", "warning", "open"),
                                                    ("capacity:CAP-MIL", "warning", "open")]
    late = (await c.get("/api/v1/capacities/CAP-LATE")).json()
    assert late["survey_overdue"] is True and late["survey_due_on"] == day(-1)

    token = await _uncleared_planner(url, w.region)
    seen = await c.get("/api/v1/alerts", params={"kind": "survey_overdue"}, headers={"Authorization": f"Bearer {token}"})
    assert seen.status_code == 200, seen.text
    assert [a["subject"] for a in seen.json()["items"]] == ["capacity:CAP-LATE"]

    assert (await c.put("/api/v1/capacities/CAP-LATE", json=capacity(w, day(0)))).status_code == 200
    await evaluate()
    assert await _of_kind(db, "survey_overdue") == [("capacity:CAP-LATE", "warning", "resolved"),
                                                    ("capacity:CAP-MIL", "warning", "open")]
    history = (await c.get("/api/v1/capacities/CAP-LATE")).json()["surveys"]
    assert [s["surveyed_on"] for s in history] == [day(0), day(-181)]


async def _uncleared_planner(url: str, region: str) -> str:
    import asyncpg

    from stockpile.store import tokens
    from stockpile.store.engine import asyncpg_dsn

    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        async with conn.transaction():
            principal_id = await tokens.upsert_principal(conn, "uncleared-planner", ["planner"], None)
            assert not await tokens.grant(conn, principal_id, [], [region])
            return await tokens.issue_token(conn, principal_id, "test")
    finally:
        await conn.close()


async def test_tasking_overdue_is_raised_while_an_order_is_late_and_resolved_when_it_is_received(fresh):
    c, db, evaluate, _ = fresh
    w = await make_world(c, dict(c.headers), "T")
    assert (await c.put("/api/v1/capacities/CAP-T", json=capacity(w, day(-1), lead_days=0))).status_code == 201
    r = await c.post("/api/v1/allocation-requests", json={
        "requester": w.civil, "destination": w.south, "material": w.diesel, "quantity": "800",
        "priority": "flash", "needed_by": day(2)})
    assert r.status_code == 201, r.text
    plan = (await c.post("/api/v1/allocation-plans", json={"request_ids": [r.json()["id"]]})).json()
    assert (await c.post(f"/api/v1/allocation-plans/{plan['id']}/approve")).status_code == 200
    [order] = (await c.get("/api/v1/taskings")).json()["items"]

    await evaluate()
    assert await _of_kind(db, "tasking_overdue") == []
    await evaluate(TODAY + timedelta(days=3))  # a day past its due date, nothing received
    assert await _of_kind(db, "tasking_overdue") == [(f"tasking:{order['id']}", "critical", "open")]
    assert await _unfilled(db, TODAY + timedelta(days=3)) == [r.json()["id"]]

    receipt = await receive(c, dict(c.headers), warehouse=w.south, material=w.diesel, owner=w.civil,
                            quantity="800", lot="REFINERY-RUN-1")
    done = await c.post(f"/api/v1/taskings/{order['id']}/receipts", json={"movement_id": receipt["id"]})
    assert done.status_code == 200 and done.json()["state"] == "completed"
    await evaluate(TODAY + timedelta(days=3))
    assert await _of_kind(db, "tasking_overdue") == [(f"tasking:{order['id']}", "critical", "resolved")]
    assert await _unfilled(db, TODAY + timedelta(days=3)) == []  # the tasked output counts as received


async def _unfilled(db: Database, today: date) -> list[str]:
    """The requests ``allocation_unfilled`` would be raised for on ``today``."""
    async with db.transaction() as tx:
        return [row["id"] for row in await allocation_store.unfilled_requests(tx.pg, today)]

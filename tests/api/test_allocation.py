"""Allocation through the API: requests, optimal plans that respect rules and floors, approval with
reservations, dispatch into transit and receipt, obligations, concurrency on a floor, drills."""

import asyncio
import uuid
from dataclasses import replace
from datetime import date, timedelta

import pytest

from tests.factories import declare, idem, list_all, lot_of, make_world, receive

SOON = (date.today() + timedelta(days=10)).isoformat()


@pytest.fixture
async def commanders(make_token):
    return [{"Authorization": f"Bearer {await make_token('commander', clearance='military')}"} for _ in range(2)]


async def request(client, headers, **body) -> dict:
    r = await client.post("/api/v1/allocation-requests", headers=headers, json={"priority": "routine", "needed_by": SOON, **body})
    assert r.status_code == 201, r.text
    return r.json()


async def propose(client, headers, world, **extra) -> dict:
    r = await client.post("/api/v1/allocation-plans", headers=headers, json={"region": world.region, **extra})
    assert r.status_code == 201, r.text
    return r.json()


async def position(client, headers, lot_id: str, owner: str) -> dict:
    r = await client.get(f"/api/v1/lots/{lot_id}", headers=headers)
    return next((o for o in r.json()["owners"] if o["owner"] == owner), {"balance": "0", "reserved": "0"})


async def held(client, headers, lot_id: str, owner: str) -> tuple[str, str]:
    """(balance, reserved) of an owner's position in a lot."""
    found = await position(client, headers, lot_id, owner)
    return found["balance"], found["reserved"]


async def test_a_plan_is_proposed_approved_dispatched_and_received(client, operator, planner, world):
    w = world
    lot = lot_of(await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil,
                               quantity="1000.0", lot="D-1"))
    req = await request(client, planner, requester=w.civil, destination=w.south, material=w.diesel, quantity="300.5",
                        purpose="hospital generators")
    plan = await propose(client, planner, w)
    assert plan["state"] == "proposed"
    assert [(x["lot_id"], x["owner"], x["warehouse"], x["quantity"], x["rule"]) for x in plan["lines"]] == [
        (lot, w.civil, w.north, "300.5", "PEA-OWN-CIV")]
    assert plan["lines"][0]["distance_km"] > 50  # north to south is some 78 km
    assert plan["requests"] == [{"id": req["id"], "priority": "routine", "needed_by": SOON, "requested": "300.5",
                                 "planned": "300.5", "unfilled": "0.0", "reasons": []}]
    assert plan["solver"]["objective"] > 0

    approved = await client.post(f"/api/v1/allocation-plans/{plan['id']}/approve", headers=planner)
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "approved" and approved.json()["reserved_until"]
    assert await held(client, operator, lot, w.civil) == ("1000.0", "300.5")
    issue = await client.post("/api/v1/movements", headers={**operator, **idem()}, json={
        "kind": "issue", "warehouse": w.north, "material": w.diesel, "owner": w.civil, "quantity": "800"})
    assert issue.status_code == 409 and issue.json()["type"] == "insufficient-stock"  # reserved stock is not available

    key = idem()
    dispatched = await client.post(f"/api/v1/allocation-plans/{plan['id']}/dispatch", headers={**planner, **key})
    assert dispatched.status_code == 200, dispatched.text
    body = dispatched.json()
    assert body["state"] == "dispatched" and body["lines"][0]["state"] == "in_transit"
    replay = await client.post(f"/api/v1/allocation-plans/{plan['id']}/dispatch", headers={**planner, **key})
    assert replay.status_code == 200 and replay.headers["Idempotent-Replayed"] == "true"
    assert await held(client, operator, lot, w.civil) == ("699.5", "0.0")

    transfer = body["lines"][0]["transfer_id"]
    received = await client.post(f"/api/v1/transfers/{transfer}/receipt", headers={**operator, **idem()}, json={})
    assert received.status_code == 201, received.text
    after = (await client.get(f"/api/v1/allocation-plans/{plan['id']}", headers=planner)).json()
    assert after["lines"][0]["state"] == "received"
    stock = await list_all(client, operator, "/api/v1/stock", warehouse=w.south, material=w.diesel)
    assert [(s["owner"], s["balance"]) for s in stock] == [(w.civil, "300.5")]


async def test_a_protected_floor_limits_the_plan_and_is_named_as_the_reason(client, admin, operator, planner, world):
    w = world
    await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="800", lot="D-2")
    r = await client.put(f"/api/v1/reserve-targets/T-{w.uid}", headers=admin, json={
        "scope": {"region": w.region}, "material": w.diesel, "sector": "civilian", "quantity": "1000",
        "floor_ratio": 0.5, "warning_ratio": 0.9, "critical_ratio": 0.6, "horizon_days": 30})
    assert r.status_code == 201, r.text
    await request(client, planner, requester=w.civil, destination=w.south, material=w.diesel, quantity="600")
    plan = await propose(client, planner, w)
    assert plan["requests"][0]["planned"] == "300.0"  # 800 usable − 500 protected
    assert plan["requests"][0]["unfilled"] == "300.0" and "floor" in plan["requests"][0]["reasons"]


async def test_higher_priorities_are_served_first_from_scarce_stock(client, operator, planner, world):
    w = world
    await receive(client, operator, warehouse=w.north, material=w.vaccine, owner=w.civil, quantity="100", lot="V-1")
    routine = await request(client, planner, requester=w.civil, destination=w.south, material=w.vaccine, quantity="80")
    flash = await request(client, planner, requester=w.civil, destination=w.south, material=w.vaccine, quantity="80",
                          priority="flash")
    plan = await propose(client, planner, w)
    outcome = {r["id"]: (r["planned"], r["unfilled"]) for r in plan["requests"]}
    assert outcome == {flash["id"]: ("80", "0"), routine["id"]: ("20", "60")}
    assert [r["priority"] for r in plan["requests"]] == ["flash", "routine"]


async def test_wartime_rules_let_the_military_requisition_civilian_fuel_with_an_obligation(
        client, admin, operator, planner, commanders, world):
    w = world
    lot = lot_of(await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil,
                               quantity="500", lot="D-3"))
    req = await request(client, planner, requester=w.military, destination=w.south, material=w.diesel,
                        quantity="200", priority="immediate")
    peace = await propose(client, planner, w)
    assert peace["lines"] == [] and peace["requests"][0]["reasons"] == ["rule"]
    await client.post(f"/api/v1/allocation-plans/{peace['id']}/cancel", headers=planner, json={"reason": "peacetime"})

    await declare(client, commanders, w.region, "wartime")
    war = await propose(client, planner, w)
    assert [(x["rule"], x["obligation"], x["quantity"]) for x in war["lines"]] == [("WAR-MIL-CIV-FUEL", "requisition", "200.0")]
    refused = await client.post(f"/api/v1/allocation-plans/{war['id']}/approve", headers=planner)
    assert refused.status_code == 403  # the rule needs a commander's approval
    approved = await client.post(f"/api/v1/allocation-plans/{war['id']}/approve", headers=commanders[0])
    assert approved.status_code == 200, approved.text
    dispatched = await client.post(f"/api/v1/allocation-plans/{war['id']}/dispatch", headers={**admin, **idem()})
    assert dispatched.status_code == 200, dispatched.text
    obligation_id = dispatched.json()["lines"][0]["obligation_id"]
    ob = (await client.get(f"/api/v1/obligations/{obligation_id}", headers=planner)).json()
    assert (ob["kind"], ob["creditor"], ob["debtor"], ob["quantity"], ob["state"]) == (
        "requisition", w.civil, w.military, "200.0", "open")
    assert (await position(client, operator, lot, w.civil))["balance"] == "300.0"
    settled = await client.post(f"/api/v1/obligations/{obligation_id}/settlements", headers=planner,
                                json={"quantity": "200", "note": "compensation order 12"})
    assert settled.status_code == 200, settled.text
    assert settled.json()["state"] == "settled" and len(settled.json()["settlements"]) == 1
    again = await client.post(f"/api/v1/obligations/{obligation_id}/settlements", headers=planner, json={"quantity": "1"})
    assert again.status_code == 409
    await declare(client, commanders, w.region, "peacetime")
    assert req["id"] in {x["request_id"] for x in dispatched.json()["lines"]}


async def _lot_at_its_floor_target(client, admin, operator, w, lot: str, target: str) -> str:
    """1000.0 L of diesel for the civil owner at the north depot, and a target of exactly that much there
    with half of it protected; the lot's id."""
    lot_id = lot_of(await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil,
                                  quantity="1000", lot=lot))
    r = await client.put(f"/api/v1/reserve-targets/{target}-{w.uid}", headers=admin, json={
        "scope": {"warehouse": w.north}, "material": w.diesel, "owner": w.civil, "quantity": "1000",
        "floor_ratio": 0.5, "warning_ratio": 0.9, "critical_ratio": 0.6, "horizon_days": 30})
    assert r.status_code == 201
    return lot_id


async def test_two_plans_approved_at_once_cannot_together_breach_a_floor(client, admin, operator, planner, world, pg_pool):
    w = world
    lot = await _lot_at_its_floor_target(client, admin, operator, w, "D-4", "TF")
    plans = []
    for _ in range(2):
        req = await request(client, planner, requester=w.civil, destination=w.south, material=w.diesel, quantity="400")
        plans.append(await propose(client, planner, w, request_ids=[req["id"]]))
    assert [p["requests"][0]["planned"] for p in plans] == ["400.0", "400.0"]  # each alone fits under the floor
    answers = await asyncio.gather(*(client.post(f"/api/v1/allocation-plans/{p['id']}/approve", headers=planner)
                                     for p in plans))
    assert sorted(a.status_code for a in answers) == [200, 409]
    refused = next(a for a in answers if a.status_code == 409).json()
    assert refused["type"] == "floor-protected" and refused["failures"][0]["target"] == f"TF-{w.uid}"
    assert (await position(client, operator, lot, w.civil))["reserved"] == "400.0"
    states = sorted([(await client.get(f"/api/v1/allocation-plans/{p['id']}", headers=planner)).json()["state"] for p in plans])
    assert states == ["approved", "proposed"]


async def test_a_line_whose_stock_moved_since_planning_fails_the_approval_and_is_reported(client, operator, planner, world):
    w = world
    lot = lot_of(await receive(client, operator, warehouse=w.north, material=w.vaccine, owner=w.civil,
                               quantity="100", lot="V-2"))
    await request(client, planner, requester=w.civil, destination=w.south, material=w.vaccine, quantity="90")
    plan = await propose(client, planner, w)
    issued = await client.post("/api/v1/movements", headers={**operator, **idem()}, json={
        "kind": "issue", "warehouse": w.north, "material": w.vaccine, "owner": w.civil, "quantity": "50", "lot_id": lot})
    assert issued.status_code == 201
    refused = await client.post(f"/api/v1/allocation-plans/{plan['id']}/approve", headers=planner)
    assert refused.status_code == 409 and refused.json()["type"] == "insufficient-stock"
    assert refused.json()["failures"][0]["lot_id"] == lot
    assert await held(client, operator, lot, w.civil) == ("50", "0")


async def test_cancelling_an_approved_plan_releases_its_reservations(client, operator, planner, world):
    w = world
    lot = lot_of(await receive(client, operator, warehouse=w.north, material=w.vaccine, owner=w.civil,
                               quantity="100", lot="V-3"))
    req = await request(client, planner, requester=w.civil, destination=w.south, material=w.vaccine, quantity="40")
    plan = await propose(client, planner, w)
    assert (await client.post(f"/api/v1/allocation-plans/{plan['id']}/approve", headers=planner)).status_code == 200
    assert (await position(client, operator, lot, w.civil))["reserved"] == "40"
    cancelled = await client.post(f"/api/v1/allocation-plans/{plan['id']}/cancel", headers=planner, json={"reason": "stood down"})
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    assert (await position(client, operator, lot, w.civil))["reserved"] == "0"
    assert (await client.get(f"/api/v1/allocation-requests/{req['id']}", headers=planner)).json()["state"] == "pending"
    late = await client.post(f"/api/v1/allocation-plans/{plan['id']}/dispatch", headers={**planner, **idem()})
    assert late.status_code == 409


async def test_bad_requests_are_422_and_store_nothing(client, planner, world, pg_pool):
    w = world
    before = await pg_pool.fetchval("SELECT count(*) FROM allocation_requests")
    base = {"requester": w.civil, "destination": w.south, "material": w.diesel, "quantity": "10",
            "priority": "routine", "needed_by": SOON}
    for bad in ({**base, "quantity": "1.25"}, {**base, "quantity": "-1"}, {**base, "priority": "asap"},
                {**base, "needed_by": "2001-01-01"}, {**base, "destination": "NOWHERE"},
                {**base, "substitution_group": "X"}, {**base, "requester": "NOBODY"}):
        r = await client.post("/api/v1/allocation-requests", headers=planner, json=bad)
        assert r.status_code == 422 and r.json()["type"] == "validation", (bad, r.text)
    assert await pg_pool.fetchval("SELECT count(*) FROM allocation_requests") == before
    r = await client.post("/api/v1/allocation-plans", headers=planner, json={"request_ids": [str(uuid.uuid4())]})
    assert r.status_code == 404  # a request that does not exist answers as one the caller may not see


async def test_a_plan_past_its_bounds_is_a_clear_problem(database_url, settings, make_token, admin, operator, uid):
    from litestar.testing import AsyncTestClient

    from stockpile.api.app import create_app

    app = create_app(replace(settings, allocation_max_requests=1), database_url)
    async with AsyncTestClient(app=app) as small:
        w = await make_world(small, admin, uid)
        planner = {"Authorization": f"Bearer {await make_token('planner', regions=[w.region])}"}
        await receive(small, operator, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="10", lot="D-5")
        for _ in range(2):
            await request(small, planner, requester=w.civil, destination=w.south, material=w.diesel, quantity="1")
        r = await small.post("/api/v1/allocation-plans", headers=planner, json={"region": w.region})
        assert r.status_code == 422 and r.json()["type"] == "plan-too-large", r.text
        assert "max_requests" in r.json()


async def test_a_drill_reports_what_a_crisis_would_get_and_changes_nothing(client, operator, planner, world, pg_pool):
    w = world
    await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="500", lot="D-6")
    await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.enterprise, quantity="500", lot="D-7")
    tables = ("movements", "postings", "allocation_plans", "allocation_requests", "obligations", "transfers")

    async def state():
        counts = [await pg_pool.fetchval(f"SELECT count(*) FROM {t}") for t in tables]
        return counts, await pg_pool.fetchval("SELECT sum(balance)::text || '/' || sum(reserved)::text FROM accounts")

    before = await state()
    scenario = {"name": "river flood", "readiness": {w.region: "emergency"}, "requests": [
        {"requester": w.civil, "destination": w.south, "material": w.diesel, "quantity": "800",
         "priority": "flash", "needed_by": SOON},
        {"requester": w.civil, "destination": w.south, "material": w.diesel, "quantity": "600",
         "priority": "routine", "needed_by": SOON}]}
    r = await client.post("/api/v1/drills", headers=planner, json=scenario)
    assert r.status_code == 201, r.text
    report = r.json()
    assert report["fill_rate"] == {"flash": 1.0, "routine": 0.3333}  # 1,000 L for 1,400 L asked, flash first
    assert {x["rule"] for x in report["lines"]} == {"EME-OWN-CIV", "EME-CIV-ENT"}
    assert report["unmet"] == [{"material": w.diesel, "region": w.region, "quantity": "400.0"}]
    assert await state() == before  # posts nothing, reserves nothing

    lost = await client.post("/api/v1/drills", headers=planner, json={**scenario, "lost_warehouses": [w.north]})
    assert lost.json()["fill_rate"] == {"flash": 0.0, "routine": 0.0}
    assert set(lost.json()["requests"][0]["reasons"]) == {"no_stock"}
    listed = await list_all(client, planner, "/api/v1/drills")
    assert {report["id"], lost.json()["id"]} <= {d["id"] for d in listed}
    stored = (await client.get(f"/api/v1/drills/{report['id']}", headers=planner)).json()
    assert stored["fill_rate"] == report["fill_rate"] and stored["scenario"]["readiness"] == {w.region: "emergency"}


async def test_a_loan_of_military_stock_is_hidden_from_uncleared_planners_and_repaid_in_kind(
        client, admin, operator, make_token, commanders, world):
    w = world
    uncleared = {"Authorization": f"Bearer {await make_token('planner', regions=[w.region])}"}
    lot = lot_of(await receive(client, operator, warehouse=w.north, material=w.vaccine, owner=w.military,
                               quantity="100", lot="V-MIL"))
    await declare(client, commanders, w.region, "emergency")
    await request(client, uncleared, requester=w.civil, destination=w.south, material=w.vaccine, quantity="30",
                  priority="immediate")
    own = await propose(client, uncleared, w)  # an uncleared planner plans on the stock it may see
    assert own["lines"] == [] and own["requests"][0]["planned"] == "0"
    await client.post(f"/api/v1/allocation-plans/{own['id']}/cancel", headers=uncleared)
    plan = await propose(client, commanders[0], w)
    plan = (await client.get(f"/api/v1/allocation-plans/{plan['id']}", headers=uncleared)).json()
    assert plan["lines"] == [] and plan["lines_withheld"] is True  # withheld, not masked
    assert plan["requests"][0]["planned"] == "30"  # the requester's total stays
    seen = (await client.get(f"/api/v1/allocation-plans/{plan['id']}", headers=admin)).json()["lines"][0]
    assert seen["lot_id"] == lot and seen["owner"] == w.military
    assert (seen["rule"], seen["obligation"], seen["quantity"]) == ("EME-CIV-MIL-MED", "loan", "30")
    assert (await client.post(f"/api/v1/allocation-plans/{plan['id']}/approve", headers=uncleared)).status_code == 403
    assert (await client.post(f"/api/v1/allocation-plans/{plan['id']}/approve", headers=commanders[0])).status_code == 200
    dispatched = await client.post(f"/api/v1/allocation-plans/{plan['id']}/dispatch", headers={**admin, **idem()})
    assert dispatched.status_code == 200, dispatched.text
    obligation = dispatched.json()["lines"][0]["obligation_id"]
    assert await held(client, admin, lot, w.military) == ("70", "0")

    # Repaid in kind: a receipt of fresh vaccine owned by the military settles the loan.
    repaid = await receive(client, operator, warehouse=w.north, material=w.vaccine, owner=w.military,
                           quantity="30", lot="V-MIL-2")
    wrong = await client.post(f"/api/v1/obligations/{obligation}/settlements", headers=operator,
                              json={"quantity": "30"})
    assert wrong.status_code == 422  # a loan names the movement that repaid it
    settled = await client.post(f"/api/v1/obligations/{obligation}/settlements", headers=operator,
                                json={"quantity": "30", "movement_id": repaid["id"], "note": "fresh batch"})
    assert settled.status_code == 200, settled.text
    assert settled.json()["state"] == "settled" and settled.json()["settlements"][0]["movement_id"] == repaid["id"]
    listed = await list_all(client, admin, "/api/v1/obligations", party=w.military)
    assert [(o["id"], o["state"]) for o in listed] == [(obligation, "settled")]
    await declare(client, commanders, w.region, "peacetime")


async def test_lapsed_reservations_are_released_and_late_requests_raise_allocation_unfilled(
        client, operator, planner, world, database_url, settings, pg_pool):
    from stockpile.jobs.catalog import catalog
    from stockpile.jobs.runs import run_slot
    from stockpile.store.db import Database

    w = world
    lot = lot_of(await receive(client, operator, warehouse=w.north, material=w.vaccine, owner=w.civil,
                               quantity="100", lot="V-4"))
    req = await request(client, planner, requester=w.civil, destination=w.south, material=w.vaccine, quantity="60")
    plan = await propose(client, planner, w)
    assert (await client.post(f"/api/v1/allocation-plans/{plan['id']}/approve", headers=planner)).status_code == 200
    # time passes: the reservation lapses and the need date goes by
    await pg_pool.execute("UPDATE allocation_plans SET reserved_until = now() - interval '1 minute' WHERE id = $1", plan["id"])
    await pg_pool.execute("UPDATE allocation_requests SET needed_by = current_date - 1 WHERE id = $1", req["id"])
    db = Database(database_url, pool_size=2)
    try:
        outcome = await run_slot(db, catalog(settings)["expire-reservations"], slot=-1)
        again = await run_slot(db, catalog(settings)["expire-reservations"], slot=-2)
    finally:
        await db.dispose()
    assert outcome.outcome == "ok" and plan["id"] in outcome.detail["expired_plans"]
    assert again.detail["expired_plans"] == []  # idempotent
    assert (await client.get(f"/api/v1/allocation-plans/{plan['id']}", headers=planner)).json()["state"] == "expired"
    assert await held(client, operator, lot, w.civil) == ("100", "0")
    assert (await client.get(f"/api/v1/allocation-requests/{req['id']}", headers=planner)).json()["state"] == "pending"
    alerts = await list_all(client, planner, "/api/v1/alerts", kind="allocation_unfilled", state="open")
    assert [a["subject"] for a in alerts if a["subject"] == f"request:{req['id']}"] == [f"request:{req['id']}"]


async def test_stock_promised_to_open_rotation_orders_is_not_offered_above_the_floor(
        client, admin, operator, planner, world, pg_pool):
    w = world
    lot = await _lot_at_its_floor_target(client, admin, operator, w, "D-ROT", "TR")
    assert (await client.put(f"/api/v1/rotation-policies/ROT-{w.uid}", headers=admin,
                             json={"material": w.diesel, "trigger_days_before_expiry": 90})).status_code == 201
    await pg_pool.execute(
        """INSERT INTO rotation_orders (lot_id, owner_id, policy_id, quantity, out_quantity, out_by, in_by, outlet,
                                        explanation)
           SELECT $1::uuid, o.id, p.id, 3000, 0, current_date + 5, current_date + 30, 'sale', 'due'
             FROM parties o, rotation_policies p WHERE o.code = $2 AND p.code = $3""",
        lot, w.civil, f"ROT-{w.uid}")  # 300.0 L promised to rotation (smallest units: tenths)
    await request(client, planner, requester=w.civil, destination=w.south, material=w.diesel, quantity="400")
    plan = await propose(client, planner, w)
    assert plan["requests"][0]["planned"] == "200.0"  # 1,000 − 300 promised − 500 protected
    assert "floor" in plan["requests"][0]["reasons"]
    assert (await client.post(f"/api/v1/allocation-plans/{plan['id']}/approve", headers=planner)).status_code == 200



async def test_rotation_planning_and_approvals_exclude_each_other_on_the_floors(pg_pool):
    import asyncpg

    from stockpile.store.allocation import lock_all_floors, lock_floors

    async with pg_pool.acquire() as rotation, pg_pool.acquire() as approval:
        async with rotation.transaction():
            await lock_all_floors(rotation)  # plan-rotation holds every floor
            async with approval.transaction():
                await approval.execute("SET LOCAL lock_timeout = '100ms'")
                with pytest.raises(asyncpg.LockNotAvailableError):
                    await lock_floors(approval, [1, 2])
        async with approval.transaction():
            await lock_floors(approval, [1, 2])  # free again once planning committed
            async with rotation.transaction():
                await rotation.execute("SET LOCAL lock_timeout = '100ms'")
                with pytest.raises(asyncpg.LockNotAvailableError):
                    await lock_all_floors(rotation)  # and planning waits for running approvals

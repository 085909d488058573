"""Need-to-know and authority on allocation: requests, plans and their lines, drills, obligations and
their settlements are judged as they are now — out of scope or uncleared is 404 (and nothing
written), in sight but not the caller's to act on is 403 — and no figure an uncleared reader gets
can be turned back into a military position."""

import asyncio
import json
from datetime import date, timedelta

import pytest

from tests.factories import declare, idem, list_all, lot_of, make_world, receive

SOON = (date.today() + timedelta(days=10)).isoformat()
MILITARY_CANARY = "73191"  # a quantity only the military holds; nothing an uncleared reader gets may show it


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def elsewhere(client, admin, uid):
    """A second region with its own depots, so a planner can be out of scope of the first."""
    return await make_world(client, admin, uid + "X")


@pytest.fixture
async def cleared(make_token, world):
    return bearer(await make_token("planner", clearance="military", regions=[world.region]))


@pytest.fixture
async def uncleared(make_token, world):
    return bearer(await make_token("planner", regions=[world.region]))


@pytest.fixture
async def outsider(make_token, elsewhere):
    """A cleared planner of the other region: everything of the first world is out of its scope."""
    return bearer(await make_token("planner", clearance="military", regions=[elsewhere.region]))


@pytest.fixture
async def commanders(make_token):
    return [bearer(await make_token("commander", clearance="military")) for _ in range(2)]


async def file(client, headers, **body) -> dict:
    r = await client.post("/api/v1/allocation-requests", headers=headers,
                          json={"priority": "routine", "needed_by": SOON, **body})
    assert r.status_code == 201, r.text
    return r.json()


async def propose(client, headers, region: str) -> dict:
    r = await client.post("/api/v1/allocation-plans", headers=headers, json={"region": region})
    assert r.status_code == 201, r.text
    return r.json()


async def plan_row(pg_pool, plan_id: str):
    return await pg_pool.fetchrow("SELECT state, approved_at, ended_at FROM allocation_plans WHERE id = $1::uuid", plan_id)


async def reserved_in(pg_pool, warehouse: str) -> int:
    return await pg_pool.fetchval(
        """SELECT coalesce(sum(a.reserved), 0) FROM accounts a JOIN lots l ON l.id = a.lot_id
             JOIN warehouses w ON w.id = l.warehouse_id WHERE w.code = $1""", warehouse)


# Requests ----------------------------------------------------------------------------------------


async def test_a_request_is_seen_where_its_destination_is_and_a_military_requesters_only_with_clearance(
        client, admin, make_token, cleared, uncleared, outsider, world):
    w = world
    civil = await file(client, cleared, requester=w.civil, destination=w.south, material=w.diesel, quantity="10")
    military = await file(client, cleared, requester=w.military, destination=w.south, material=w.diesel, quantity="20")
    north_only = bearer(await make_token("operator", clearance="military", warehouses=[w.north]))

    seen = {r["id"] for r in await list_all(client, uncleared, "/api/v1/allocation-requests")}
    assert civil["id"] in seen and military["id"] not in seen
    assert (await client.get(f"/api/v1/allocation-requests/{military['id']}", headers=uncleared)).status_code == 404
    assert (await client.get(f"/api/v1/allocation-requests/{civil['id']}", headers=uncleared)).status_code == 200
    for reader in (outsider, north_only):  # the destination (south) is not theirs
        assert (await client.get(f"/api/v1/allocation-requests/{civil['id']}", headers=reader)).status_code == 404
        listed = {r["id"] for r in await list_all(client, reader, "/api/v1/allocation-requests")}
        assert not listed & {civil["id"], military["id"]}
    everything = {r["id"] for r in await list_all(client, admin, "/api/v1/allocation-requests")}
    assert {civil["id"], military["id"]} <= everything

    refused = await client.post("/api/v1/allocation-requests", headers=uncleared, json={
        "requester": w.military, "destination": w.south, "material": w.diesel, "quantity": "5",
        "priority": "routine", "needed_by": SOON})
    assert refused.status_code == 403 and refused.json()["type"] == "forbidden"


async def test_a_request_is_cancelled_only_by_who_may_see_it_as_it_is(
        client, cleared, uncleared, outsider, world, pg_pool):
    w = world
    civil = await file(client, cleared, requester=w.civil, destination=w.south, material=w.diesel, quantity="10")
    military = await file(client, cleared, requester=w.military, destination=w.south, material=w.diesel, quantity="20")

    out = await client.post(f"/api/v1/allocation-requests/{civil['id']}/cancel", headers=outsider)
    assert out.status_code == 404 and out.json()["type"] == "not-found"
    hidden = await client.post(f"/api/v1/allocation-requests/{military['id']}/cancel", headers=uncleared)
    assert hidden.status_code == 404 and hidden.json()["detail"] == f"no allocation request {military['id']}"
    states = dict(await pg_pool.fetch("SELECT id::text, state FROM allocation_requests WHERE id = ANY($1::uuid[])",
                                      [civil["id"], military["id"]]))
    assert states == {civil["id"]: "pending", military["id"]: "pending"}  # nothing written

    plans_before = await pg_pool.fetchval("SELECT count(*) FROM allocation_plans")
    for planner, named in ((outsider, civil), (uncleared, military)):  # naming a request it may not see
        r = await client.post("/api/v1/allocation-plans", headers=planner, json={"request_ids": [named["id"]]})
        assert r.status_code == 404 and r.json()["type"] == "not-found", r.text
    assert await pg_pool.fetchval("SELECT count(*) FROM allocation_plans") == plans_before

    mine = await client.post(f"/api/v1/allocation-requests/{civil['id']}/cancel", headers=uncleared)
    assert mine.status_code == 200 and mine.json()["state"] == "cancelled"


# Plans -------------------------------------------------------------------------------------------


async def test_a_plan_is_judged_as_it_is_for_reading_approving_cancelling_and_dispatching(
        client, admin, operator, make_token, cleared, outsider, world, pg_pool):
    w = world
    await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="500", lot="D-1")
    await file(client, cleared, requester=w.civil, destination=w.south, material=w.diesel, quantity="100")
    plan = await propose(client, cleared, w.region)
    path = f"/api/v1/allocation-plans/{plan['id']}"

    # Out of scope: the plan does not exist, and nothing it would decide happens.
    assert (await client.get(path, headers=outsider)).status_code == 404
    assert plan["id"] not in {p["id"] for p in await list_all(client, outsider, "/api/v1/allocation-plans")}
    for action in ("approve", "cancel"):
        r = await client.post(f"{path}/{action}", headers=outsider)
        assert r.status_code == 404 and r.json()["type"] == "not-found", (action, r.text)
    assert (await client.post(f"{path}/dispatch", headers={**outsider, **idem()})).status_code == 404
    assert (await plan_row(pg_pool, plan["id"]))["state"] == "proposed"
    assert await reserved_in(pg_pool, w.north) == 0

    # In sight (its destination is a granted warehouse) but not in the planner's regions: 403.
    south_desk = bearer(await make_token("planner", clearance="military", warehouses=[w.south]))
    assert (await client.get(path, headers=south_desk)).status_code == 200
    for action in ("approve", "cancel"):
        r = await client.post(f"{path}/{action}", headers=south_desk)
        assert r.status_code == 403 and r.json()["type"] == "forbidden", (action, r.text)
    assert (await plan_row(pg_pool, plan["id"]))["state"] == "proposed"

    approved = await client.post(f"{path}/approve", headers=cleared)
    assert approved.status_code == 200, approved.text
    assert await reserved_in(pg_pool, w.north) == 1000  # 100.0 L, one decimal

    # Dispatch needs every source warehouse: the destination's operator sees the plan, may not send it.
    south_operator = bearer(await make_token("operator", clearance="military", warehouses=[w.south]))
    refused = await client.post(f"{path}/dispatch", headers={**south_operator, **idem()})
    assert refused.status_code == 403 and refused.json()["type"] == "forbidden"
    assert (await plan_row(pg_pool, plan["id"]))["state"] == "approved"
    assert await pg_pool.fetchval("SELECT count(*) FROM plan_lines WHERE plan_id = $1::uuid AND transfer_id IS NOT NULL",
                                  plan["id"]) == 0
    # The source depot's operator sees the plan it is to send, and sends it.
    north_operator = bearer(await make_token("operator", clearance="military", warehouses=[w.north]))
    assert (await client.get(path, headers=north_operator)).status_code == 200
    sent = await client.post(f"{path}/dispatch", headers={**north_operator, **idem()})
    assert sent.status_code == 200, sent.text
    assert (await plan_row(pg_pool, plan["id"]))["state"] == "dispatched"


async def test_lines_on_military_stock_are_withheld_from_uncleared_readers_and_their_totals_stay(
        client, admin, operator, commanders, cleared, uncleared, world, pg_pool):
    w = world
    mil_lot = lot_of(await receive(client, operator, warehouse=w.north, material=w.vaccine, owner=w.military,
                                   quantity=MILITARY_CANARY, lot=f"V-MIL-{w.uid}"))
    await receive(client, operator, warehouse=w.north, material=w.vaccine, owner=w.civil, quantity="20", lot="V-CIV")
    await declare(client, commanders, w.region, "emergency")
    try:
        req = await file(client, uncleared, requester=w.civil, destination=w.south, material=w.vaccine,
                         quantity="50", priority="immediate")
        own = await propose(client, uncleared, w.region)  # an uncleared planner plans on the stock it may see
        assert [(x["owner"], x["quantity"]) for x in own["lines"]] == [(w.civil, "20")]
        assert own["lines_withheld"] is False and own["requests"][0]["planned"] == "20"
        await client.post(f"/api/v1/allocation-plans/{own['id']}/cancel", headers=uncleared)
        proposed = await propose(client, cleared, w.region)
        plan = (await client.get(f"/api/v1/allocation-plans/{proposed['id']}", headers=uncleared)).json()
        assert [(x["owner"], x["quantity"]) for x in plan["lines"]] == [(w.civil, "20")]
        assert plan["lines_withheld"] is True
        assert plan["requests"][0]["id"] == req["id"] and plan["requests"][0]["planned"] == "50"
        for leak in (mil_lot, f"V-MIL-{w.uid}", w.military, MILITARY_CANARY, '"30"'):
            assert leak not in json.dumps(plan), leak
        read = await client.get(f"/api/v1/allocation-plans/{plan['id']}", headers=uncleared)
        listed = await client.get("/api/v1/allocation-plans", headers=uncleared, params={"limit": 1000})
        for body in (read.text, listed.text):
            assert mil_lot not in body and f"V-MIL-{w.uid}" not in body and MILITARY_CANARY not in body

        full = (await client.get(f"/api/v1/allocation-plans/{plan['id']}", headers=cleared)).json()
        assert sorted((x["owner"], x["quantity"]) for x in full["lines"]) == sorted([(w.civil, "20"), (w.military, "30")])
        assert full["lines_withheld"] is False

        # Approving reserves military stock: not without clearance, and nothing is reserved.
        refused = await client.post(f"/api/v1/allocation-plans/{plan['id']}/approve", headers=uncleared)
        assert refused.status_code == 403 and MILITARY_CANARY not in refused.text
        assert await reserved_in(pg_pool, w.north) == 0

        # A plan holding a military requester's request is not there at all for an uncleared reader.
        await client.post(f"/api/v1/allocation-plans/{plan['id']}/cancel", headers=cleared)
        await file(client, cleared, requester=w.military, destination=w.south, material=w.vaccine, quantity="5")
        both = await propose(client, cleared, w.region)
        assert (await client.get(f"/api/v1/allocation-plans/{both['id']}", headers=uncleared)).status_code == 404
        assert (await client.post(f"/api/v1/allocation-plans/{both['id']}/cancel", headers=uncleared)).status_code == 404
        assert (await plan_row(pg_pool, both["id"]))["state"] == "proposed"
    finally:
        await declare(client, commanders, w.region, "peacetime")


# Drills ------------------------------------------------------------------------------------------


async def test_a_drill_shows_uncleared_readers_only_what_stock_they_may_know_of_gives(
        client, admin, operator, commanders, cleared, uncleared, outsider, world, pg_pool):
    w = world
    rice = f"RICE-{w.uid}"
    r = await client.put(f"/api/v1/materials/{rice}", headers=admin, json={
        "name": "Rice", "category": "food", "unit": "kg", "decimals": 0, "shelf_life_days": 720,
        "storage_class": "ambient", "daily_consumption_per_person": "1"})
    assert r.status_code == 201, r.text
    mil_lot = lot_of(await receive(client, operator, warehouse=w.north, material=rice, owner=w.military,
                                   quantity=MILITARY_CANARY, lot=f"R-MIL-{w.uid}"))
    await receive(client, operator, warehouse=w.north, material=rice, owner=w.civil, quantity="100", lot="R-CIV")
    targets = {f"T-ALL-{w.uid}": {"scope": {"region": w.region}, "material": rice, "quantity": "200",
                                  "floor_ratio": "0", "warning_ratio": "0", "critical_ratio": "0", "population": 10},
               f"T-MIL-{w.uid}": {"scope": {"region": w.region}, "material": rice, "owner": w.military,
                                  "quantity": "100000", "population": 10}}
    for code, body in targets.items():
        r = await client.put(f"/api/v1/reserve-targets/{code}", headers=admin, json=body)
        assert r.status_code in (200, 201), r.text
    await declare(client, commanders, w.region, "emergency")
    try:
        drills_before = await pg_pool.fetchval("SELECT count(*) FROM drills")
        scenario = {"name": "harvest failure", "requests": [
            {"requester": w.civil, "destination": w.south, "material": rice, "quantity": "30000",
             "priority": "flash", "needed_by": SOON}]}

        # Out of its regions a planner drills nothing, and nothing is stored.
        refused = await client.post("/api/v1/drills", headers=outsider, json=scenario)
        assert refused.status_code == 403 and refused.json()["type"] == "forbidden"
        assert await pg_pool.fetchval("SELECT count(*) FROM drills") == drills_before

        ran = await client.post("/api/v1/drills", headers=uncleared, json=scenario)
        assert ran.status_code == 201, ran.text
        drill = ran.json()
        shown = (await client.get(f"/api/v1/drills/{drill['id']}", headers=uncleared)).json()
        listed = [d for d in await list_all(client, uncleared, "/api/v1/drills") if d["id"] == drill["id"]]
        full = (await client.get(f"/api/v1/drills/{drill['id']}", headers=cleared)).json()

        # As computed: the military stock above its floor fills the request (23,191 of 73,191 above 50,000).
        assert full["requests"][0]["planned"] == "23291" and full["fill_rate"] == {"flash": 0.7764}
        assert f"T-MIL-{w.uid}" in {f["target"] for f in full["floors_bounding"]}
        assert {d["target"]: d["before"] for d in full["days_of_supply"]}[f"T-ALL-{w.uid}"] == 7329.1
        assert any(x["lot_id"] == mil_lot for x in full["lines"])

        # Without clearance: solved on the civilian stock alone, every figure from it.
        for body in (drill, shown):
            assert body["requests"][0]["planned"] == "100" and body["fill_rate"] == {"flash": 0.0033}
            assert [(x["owner"], x["quantity"]) for x in body["lines"]] == [(w.civil, "100")]
            assert body["unmet"] == [{"material": rice, "region": w.region, "quantity": "29900"}]
            assert f"T-MIL-{w.uid}" not in {f["target"] for f in body["floors_bounding"]}
            assert [d for d in body["days_of_supply"] if d["target"].endswith(w.uid)] == [
                {"target": f"T-ALL-{w.uid}", "before": 10.0, "after": 0.0, "with_capacity": 0.0, "sustained": False}]
        assert listed[0]["fill_rate"] == {"flash": 0.0033}
        for text in (ran.text, json.dumps(shown), json.dumps(listed)):
            for leak in (MILITARY_CANARY, "23191", "23291", "7329", mil_lot, f"R-MIL-{w.uid}", w.military):
                assert leak not in text, leak

        # A reader holding none of its destinations does not see the drill.
        assert (await client.get(f"/api/v1/drills/{drill['id']}", headers=outsider)).status_code == 404
        assert drill["id"] not in {d["id"] for d in await list_all(client, outsider, "/api/v1/drills")}
    finally:
        await declare(client, commanders, w.region, "peacetime")


# Obligations -------------------------------------------------------------------------------------


async def _dispatched_obligation(client, admin, commanders, planner, w, material: str) -> str:
    """Plan, approve (a commander) and dispatch (an admin) the region's pending requests; the first
    line's obligation."""
    plan = await propose(client, planner, w.region)
    approved = await client.post(f"/api/v1/allocation-plans/{plan['id']}/approve", headers=commanders[0])
    assert approved.status_code == 200, approved.text
    dispatched = await client.post(f"/api/v1/allocation-plans/{plan['id']}/dispatch", headers={**admin, **idem()})
    assert dispatched.status_code == 200, dispatched.text
    return dispatched.json()["lines"][0]["obligation_id"]


async def test_obligations_are_seen_only_by_whom_they_concern(
        client, admin, operator, make_token, commanders, cleared, uncleared, outsider, world, pg_pool):
    w = world
    await receive(client, operator, warehouse=w.north, material=w.vaccine, owner=w.military, quantity="100", lot="V-M")
    await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.enterprise, quantity="100", lot="D-E")
    await declare(client, commanders, w.region, "emergency")
    try:
        await file(client, cleared, requester=w.civil, destination=w.south, material=w.vaccine, quantity="30")
        loan = await _dispatched_obligation(client, admin, commanders, cleared, w, w.vaccine)
        await file(client, cleared, requester=w.civil, destination=w.south, material=w.diesel, quantity="40")
        requisition = await _dispatched_obligation(client, admin, commanders, cleared, w, w.diesel)
    finally:
        await declare(client, commanders, w.region, "peacetime")
    south_operator = bearer(await make_token("operator", warehouses=[w.south]))
    north_operator = bearer(await make_token("operator", warehouses=[w.north]))

    # A loan of military stock: not there for uncleared readers, whatever they try.
    for reader in (uncleared, south_operator):
        assert (await client.get(f"/api/v1/obligations/{loan}", headers=reader)).status_code == 404
        assert loan not in {o["id"] for o in await list_all(client, reader, "/api/v1/obligations")}
    settle = await client.post(f"/api/v1/obligations/{loan}/settlements", headers=uncleared,
                               json={"quantity": "30", "note": "paid"})
    assert settle.status_code == 404
    # A civilian requisition: seen where its lot is (north) or where it was drawn for (south), not elsewhere.
    for reader in (uncleared, south_operator, north_operator):
        assert (await client.get(f"/api/v1/obligations/{requisition}", headers=reader)).status_code == 200
        assert requisition in {o["id"] for o in await list_all(client, reader, "/api/v1/obligations")}
    assert (await client.get(f"/api/v1/obligations/{requisition}", headers=outsider)).status_code == 404
    assert requisition not in {o["id"] for o in await list_all(client, outsider, "/api/v1/obligations")}
    out = await client.post(f"/api/v1/obligations/{requisition}/settlements", headers=outsider,
                            json={"quantity": "40", "note": "compensated"})
    assert out.status_code == 404
    assert await pg_pool.fetchval("SELECT count(*) FROM obligation_settlements WHERE obligation_id = ANY($1::uuid[])",
                                  [loan, requisition]) == 0
    paid = await client.post(f"/api/v1/obligations/{requisition}/settlements", headers=uncleared,
                             json={"quantity": "40", "note": "compensated"})
    assert paid.status_code == 200 and paid.json()["state"] == "settled"


async def _vaccine_loan(client, admin, commanders, cleared, w) -> str:
    """In an emergency, the civil bureau's request for 30 doses is served from military vaccine as
    a loan; the loan's obligation (the region is back at peace after)."""
    await declare(client, commanders, w.region, "emergency")
    try:
        await file(client, cleared, requester=w.civil, destination=w.south, material=w.vaccine, quantity="30")
        return await _dispatched_obligation(client, admin, commanders, cleared, w, w.vaccine)
    finally:
        await declare(client, commanders, w.region, "peacetime")


async def test_a_loan_is_settled_only_by_a_movement_that_repaid_it(
        client, admin, operator, make_token, commanders, cleared, world, pg_pool):
    w = world
    early = await receive(client, operator, warehouse=w.north, material=w.vaccine, owner=w.military,
                          quantity="100", lot="V-M")
    loan = await _vaccine_loan(client, admin, commanders, cleared, w)
    path = f"/api/v1/obligations/{loan}/settlements"

    async def offer(headers, movement_id: str, quantity: str = "30"):
        return await client.post(path, headers=headers, json={"quantity": quantity, "movement_id": movement_id})

    diesel = await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.military,
                           quantity="30", lot="D-M")
    to_civil = await receive(client, operator, warehouse=w.north, material=w.vaccine, owner=w.civil,
                             quantity="30", lot="V-C")
    short = await receive(client, operator, warehouse=w.north, material=w.vaccine, owner=w.military,
                          quantity="10", lot="V-M2")
    reversed_ = await receive(client, operator, warehouse=w.north, material=w.vaccine, owner=w.military,
                              quantity="30", lot="V-M3")
    reversal = await client.post("/api/v1/movements", headers={**operator, **idem()},
                                 json={"kind": "reversal", "movement_id": reversed_["id"]})
    assert reversal.status_code == 201, reversal.text
    issue = await client.post("/api/v1/movements", headers={**operator, **idem()}, json={
        "kind": "issue", "warehouse": w.north, "material": w.vaccine, "owner": w.military, "quantity": "1"})
    assert issue.status_code == 201, issue.text

    for movement, why in ((early, "before the loan"), (diesel, "none of the loan's material"),
                          (to_civil, "none of the loan's material"), (short, "credited the creditor with 10"),
                          (reversed_, "reversed"), (issue.json(), "repays no loan")):
        r = await offer(operator, movement["id"])
        assert r.status_code == 422 and why in r.text, (why, r.text)

    repaid = await receive(client, operator, warehouse=w.north, material=w.vaccine, owner=w.military,
                           quantity="30", lot="V-M4")
    south_operator = bearer(await make_token("operator", clearance="military", warehouses=[w.south]))
    unseen = await offer(south_operator, repaid["id"])  # the loan was drawn for south; the receipt is at north
    assert unseen.status_code == 422 and f"no movement {repaid['id']}" in unseen.text
    assert await pg_pool.fetchval("SELECT count(*) FROM obligation_settlements WHERE obligation_id = $1::uuid", loan) == 0

    part = await offer(operator, repaid["id"], "20")
    assert part.status_code == 200 and part.json()["outstanding"] == "10"
    again = await offer(operator, repaid["id"], "10")
    assert again.status_code == 409 and again.json()["type"] == "conflict"
    row = await pg_pool.fetchrow("SELECT settled_quantity, settled_at FROM obligations WHERE id = $1::uuid", loan)
    assert (row["settled_quantity"], row["settled_at"]) == (20, None)


async def test_one_repayment_cited_by_two_settlements_at_once_settles_once(
        client, admin, operator, commanders, cleared, world, pg_pool):
    w = world
    await receive(client, operator, warehouse=w.north, material=w.vaccine, owner=w.military, quantity="100", lot="V-M")
    loan = await _vaccine_loan(client, admin, commanders, cleared, w)
    repaid = await receive(client, operator, warehouse=w.north, material=w.vaccine, owner=w.military,
                           quantity="30", lot="V-M2")

    async def settle():
        return await client.post(f"/api/v1/obligations/{loan}/settlements", headers=operator,
                                 json={"quantity": "15", "movement_id": repaid["id"]})

    answers = await asyncio.gather(settle(), settle())
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
    assert await pg_pool.fetchval("SELECT settled_quantity FROM obligations WHERE id = $1::uuid", loan) == 15
    assert await pg_pool.fetchval("SELECT count(*) FROM obligation_settlements WHERE obligation_id = $1::uuid", loan) == 1

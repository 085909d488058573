"""Capacity in drills and plans: a drill where capacity turns an unmet flash request into a met one only
when its lead time fits the need date; a plan's tasking lines, the tasking orders its approval makes,
tracked to completion by the receipts of their output; a military capacity's tasking withheld."""

from __future__ import annotations

from datetime import date, timedelta

from tests.factories import idem, list_all, receive

TODAY = date.today()


def day(n: int) -> str:
    return (TODAY + timedelta(days=n)).isoformat()


async def refinery(client, headers, world, code: str, *, lead_days: int, daily: str = "300", **extra) -> None:
    r = await client.put(f"/api/v1/capacities/{code}", headers=headers, json={
        "party": world.enterprise, "material": world.diesel, "daily_quantity": daily, "lead_days": lead_days,
        "region": world.region, "surveyed_on": day(-5), "survey_interval_days": 365, **extra})
    assert r.status_code == 201, r.text


def flash(world, quantity: str, needed_in_days: int) -> dict:
    return {"requester": world.civil, "destination": world.south, "material": world.diesel, "quantity": quantity,
            "priority": "flash", "needed_by": day(needed_in_days)}


async def test_capacity_turns_an_unmet_flash_request_into_a_met_one_only_when_its_lead_time_fits(
        client, operator, planner, world, uid):
    w = world
    await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="500", lot="D-1")
    await refinery(client, planner, w, f"CAP-{uid}", lead_days=3)  # 300 L a day from day 3
    late = await client.post("/api/v1/drills", headers=planner, json={"name": "too soon", "requests": [flash(w, "1100", 2)]})
    assert late.status_code == 201, late.text
    report = late.json()
    assert report["fill_rate"] == {"flash": 0.4545} and report["fill_rate_with_capacity"] == {"flash": 0.4545}
    assert report["taskings"] == [] and report["requests"][0]["unfilled_with_capacity"] == "600.0"

    fits = await client.post("/api/v1/drills", headers=planner, json={"name": "in time", "requests": [flash(w, "1100", 4)]})
    report = fits.json()
    # stock gives 500 L; days 3 and 4 give 600 L: met
    assert report["fill_rate"] == {"flash": 0.4545} and report["fill_rate_with_capacity"] == {"flash": 1.0}
    assert [(t["capacity"], t["quantity"], t["start_on"], t["ready_on"], t["due_on"]) for t in report["taskings"]] == [
        (f"CAP-{uid}", "600.0", day(0), day(3), day(4))]
    assert report["requests"][0]["tasked"] == "600.0" and report["requests"][0]["unfilled_with_capacity"] == "0.0"
    stored = (await client.get(f"/api/v1/drills/{report['id']}", headers=planner)).json()
    assert stored["taskings"] == report["taskings"]


async def test_drill_days_of_supply_count_capacity_into_the_targets_scope(client, admin, operator, planner, world, uid):
    w = world
    await client.put(f"/api/v1/materials/{w.diesel}", headers=admin, json={
        "name": "Diesel", "category": "fuel", "unit": "L", "decimals": 1, "shelf_life_days": 730,
        "storage_class": "bulk_liquid", "daily_consumption_per_person": "1"})
    await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="1000", lot="D-1")
    r = await client.put(f"/api/v1/reserve-targets/T-{uid}", headers=admin, json={
        "scope": {"region": w.region}, "material": w.diesel, "sector": "civilian", "quantity": "1000",
        "population": 100, "floor_ratio": "0"})
    assert r.status_code == 201, r.text
    await refinery(client, planner, w, f"CAP-{uid}", lead_days=2, daily="50")
    drill = await client.post("/api/v1/drills", headers=planner, json={"requests": [flash(w, "400", 5)]})
    [days] = [d for d in drill.json()["days_of_supply"] if d["target"] == f"T-{uid}"]
    # 1,000 L for 100 people at 1 L: 10 days; after 400 L drawn, 6; with 50 L a day from day 2:
    # 400 L left, −50 a day: 8 more, 10 in all
    assert (days["before"], days["after"], days["with_capacity"], days["sustained"]) == (10.0, 6.0, 10.0, False)


async def test_a_plans_tasking_becomes_an_order_tracked_until_its_receipts_arrive(client, operator, planner, world, uid):
    w = world
    await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="500", lot="D-1")
    await refinery(client, planner, w, f"CAP-{uid}", lead_days=1)
    r = await client.post("/api/v1/allocation-requests", headers=planner, json=flash(w, "1000", 3))
    assert r.status_code == 201, r.text
    request_id = r.json()["id"]
    plan = (await client.post("/api/v1/allocation-plans", headers=planner, json={"region": w.region})).json()
    assert plan["requests"][0]["planned"] == "500.0"  # stock first
    [stock] = [line for line in plan["lines"] if line["kind"] == "stock"]
    [tasking] = [line for line in plan["lines"] if line["kind"] == "tasking"]
    assert stock["quantity"] == "500.0"
    assert (tasking["request_id"], tasking["capacity"], tasking["quantity"], tasking["state"], tasking["tasking_id"]) == (
        request_id, f"CAP-{uid}", "500.0", "proposed", None)
    # two days of output (days 2 and 3) need the first on day 2: tasked by day 1
    assert (tasking["start_on"], tasking["ready_on"], tasking["due_on"]) == (day(1), day(2), day(3))
    assert await list_all(client, planner, "/api/v1/taskings", capacity=f"CAP-{uid}") == []  # not ordered yet

    approved = await client.post(f"/api/v1/allocation-plans/{plan['id']}/approve", headers=planner)
    assert approved.status_code == 200, approved.text
    [order] = await list_all(client, planner, "/api/v1/taskings", capacity=f"CAP-{uid}")
    assert (order["state"], order["quantity"], order["received"], order["overdue"], order["destination"]) == (
        "open", "500.0", "0.0", False, w.south)

    wrong_place = await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil,
                                quantity="200", lot="OUT-0")
    refused = await client.post(f"/api/v1/taskings/{order['id']}/receipts", headers=operator,
                                json={"movement_id": wrong_place["id"]})
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "movement_id"
    first = await receive(client, operator, warehouse=w.south, material=w.diesel, owner=w.civil, quantity="300",
                          lot="OUT-1")
    r = await client.post(f"/api/v1/taskings/{order['id']}/receipts", headers=operator, json={"movement_id": first["id"]})
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["received"]) == ("open", "300.0")
    again = await client.post(f"/api/v1/taskings/{order['id']}/receipts", headers=operator,
                              json={"movement_id": first["id"]})
    assert again.status_code == 409  # a receipt counts once
    second = await receive(client, operator, warehouse=w.south, material=w.diesel, owner=w.civil, quantity="250",
                           lot="OUT-2")
    done = await client.post(f"/api/v1/taskings/{order['id']}/receipts", headers=operator,
                             json={"movement_id": second["id"]})
    assert (done.json()["state"], done.json()["received"]) == ("completed", "550.0")
    assert done.json()["completed_at"] is not None
    assert [o["state"] for o in await list_all(client, planner, "/api/v1/taskings", state="open",
                                                capacity=f"CAP-{uid}")] == []
    closed = await client.post(f"/api/v1/taskings/{order['id']}/receipts", headers=operator,
                               json={"movement_id": wrong_place["id"]})
    assert closed.status_code == 409
    shown = (await client.get(f"/api/v1/allocation-plans/{plan['id']}", headers=planner)).json()
    assert [line["tasking_id"] for line in shown["lines"] if line["kind"] == "tasking"] == [order["id"]]


async def test_a_plan_tasks_capacity_for_the_flash_request_to_leave_stock_to_one_capacity_cannot_reach_in_time(
        client, operator, planner, world, uid):
    w = world
    await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="500", lot="D-1")
    await refinery(client, planner, w, f"CAP-{uid}", lead_days=3)  # 300 L a day from day 3
    r = await client.post("/api/v1/allocation-requests", headers=planner, json=flash(w, "500", 4))
    flash_id = r.json()["id"]
    r = await client.post("/api/v1/allocation-requests", headers=planner,
                          json={**flash(w, "500", 1), "priority": "immediate"})
    immediate_id = r.json()["id"]
    plan = (await client.post("/api/v1/allocation-plans", headers=planner, json={"region": w.region})).json()
    # stock first would serve the flash request and leave the immediate one, due before the refinery's
    # lead, with nothing: the flash request is tasked on the refinery (days 3 and 4), the stock kept
    assert [(line["kind"], line["request_id"], line["quantity"]) for line in plan["lines"]] == [
        ("stock", immediate_id, "500.0"), ("tasking", flash_id, "500.0")]
    planned = {r["id"]: (r["planned"], r["unfilled"]) for r in plan["requests"]}
    assert planned == {flash_id: ("0.0", "500.0"), immediate_id: ("500.0", "0.0")}
    drill = await client.post("/api/v1/drills", headers=planner, json={"include_pending": False, "requests": [
        flash(w, "500", 4), {**flash(w, "500", 1), "priority": "immediate"}]})
    assert drill.json()["fill_rate_with_capacity"] == {"flash": 1.0, "immediate": 1.0}


async def test_cancelling_an_approved_plan_cancels_its_tasking_orders(client, operator, planner, world, uid):
    w = world
    await refinery(client, planner, w, f"CAP-{uid}", lead_days=0)
    assert (await client.post("/api/v1/allocation-requests", headers=planner, json=flash(w, "100", 2))).status_code == 201
    plan = (await client.post("/api/v1/allocation-plans", headers=planner, json={"region": w.region})).json()
    assert [line["kind"] for line in plan["lines"]] == ["tasking"]
    approved = await client.post(f"/api/v1/allocation-plans/{plan['id']}/approve", headers=planner)
    assert approved.json()["reserved_until"] is None  # it reserves nothing, so nothing lapses
    r = await client.post(f"/api/v1/allocation-plans/{plan['id']}/cancel", headers=planner, json={"reason": "stood down"})
    assert r.status_code == 200, r.text
    [order] = await list_all(client, planner, "/api/v1/taskings", capacity=f"CAP-{uid}")
    assert order["state"] == "cancelled"
    receipt = await receive(client, operator, warehouse=w.south, material=w.diesel, owner=w.civil, quantity="100",
                            lot="LATE")
    r = await client.post(f"/api/v1/taskings/{order['id']}/receipts", headers=operator, json={"movement_id": receipt["id"]})
    assert r.status_code == 409


async def test_a_military_capacitys_tasking_is_withheld_from_uncleared_readers(client, make_token, planner,
                                                                             world, uid):
    w = world
    await refinery(client, planner, w, f"CAP-{uid}", lead_days=0, daily="777", held_for="military")
    uncleared = {"Authorization": f"Bearer {await make_token('planner', regions=[w.region])}"}
    assert (await client.post("/api/v1/allocation-requests", headers=uncleared, json=flash(w, "100", 2))).status_code == 201
    own = (await client.post("/api/v1/allocation-plans", headers=uncleared, json={"region": w.region})).json()
    assert own["lines"] == [] and own["lines_withheld"] is False  # an uncleared planner tasks no military capacity
    await client.post(f"/api/v1/allocation-plans/{own['id']}/cancel", headers=uncleared)
    plan = (await client.post("/api/v1/allocation-plans", headers=planner, json={"region": w.region})).json()
    assert [(line["kind"], line["capacity"]) for line in plan["lines"]] == [("tasking", f"CAP-{uid}")]
    seen = await client.get(f"/api/v1/allocation-plans/{plan['id']}", headers=uncleared)
    assert seen.json()["lines"] == [] and seen.json()["lines_withheld"] is True
    assert f"CAP-{uid}" not in seen.text
    refused = await client.post(f"/api/v1/allocation-plans/{plan['id']}/approve", headers=uncleared)
    assert refused.status_code == 403
    assert (await client.post(f"/api/v1/allocation-plans/{plan['id']}/approve", headers=planner)).status_code == 200
    assert len(await list_all(client, planner, "/api/v1/taskings", capacity=f"CAP-{uid}")) == 1
    assert await list_all(client, uncleared, "/api/v1/taskings", capacity=f"CAP-{uid}") == []
    drill = await client.post("/api/v1/drills", headers=uncleared, json={"requests": [flash(w, "50", 2)]})
    assert drill.json()["taskings"] == [] and f"CAP-{uid}" not in drill.text


async def test_a_reversed_receipt_does_not_count_toward_a_tasking_order(client, operator, planner, world, uid):
    w = world
    await refinery(client, planner, w, f"CAP-{uid}", lead_days=0)
    await client.post("/api/v1/allocation-requests", headers=planner, json=flash(w, "100", 2))
    plan = (await client.post("/api/v1/allocation-plans", headers=planner, json={"region": w.region})).json()
    await client.post(f"/api/v1/allocation-plans/{plan['id']}/approve", headers=planner)
    [order] = await list_all(client, planner, "/api/v1/taskings", capacity=f"CAP-{uid}")
    receipt = await receive(client, operator, warehouse=w.south, material=w.diesel, owner=w.civil, quantity="100",
                            lot="R-1")
    reversal = await client.post("/api/v1/movements", headers={**operator, **idem()},
                                 json={"kind": "reversal", "movement_id": receipt["id"]})
    assert reversal.status_code == 201, reversal.text
    r = await client.post(f"/api/v1/taskings/{order['id']}/receipts", headers=operator, json={"movement_id": receipt["id"]})
    assert r.status_code == 422
    assert (await client.get(f"/api/v1/taskings/{order['id']}", headers=operator)).json()["received"] == "0.0"

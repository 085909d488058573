"""Capacities through the API: surveyed by code with their history, need-to-know (a capacity held for
the military is military), and the potential view: stock and capacity per region and material, days of
supply without and with capacity — and capacity never in balances or coverage."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.factories import make_world, receive

TODAY = date.today()


def day(n: int) -> str:
    return (TODAY + timedelta(days=n)).isoformat()


def capacity_body(world, **extra) -> dict:
    return {"party": world.enterprise, "material": world.diesel, "daily_quantity": "500.0", "lead_days": 4,
            "region": world.region, "warehouse": world.north, "surveyed_on": day(-10), "survey_interval_days": 180,
            "note": "refinery, one crude unit", **extra}


async def put_capacity(client, headers, code: str, body: dict, status: int = 201) -> dict:
    r = await client.put(f"/api/v1/capacities/{code}", headers=headers, json=body)
    assert r.status_code == status, r.text
    return r.json()


async def test_a_capacity_is_surveyed_and_each_new_survey_date_is_kept(client, planner, world, uid):
    code = f"CAP-{uid}"
    created = await put_capacity(client, planner, code, capacity_body(world))
    assert (created["daily_quantity"], created["lead_days"], created["region"], created["warehouse"]) == (
        "500.0", 4, world.region, world.north)
    assert created["survey_due_on"] == day(170) and created["survey_overdue"] is False
    restated = await put_capacity(client, planner, code, capacity_body(world, daily_quantity="520"), status=200)
    assert [s["daily_quantity"] for s in restated["surveys"]] == ["520.0"]  # the same date restates that survey
    resurveyed = await put_capacity(client, planner, code, capacity_body(world, daily_quantity="450.5",
                                                                         surveyed_on=day(-1)), status=200)
    assert [(s["surveyed_on"], s["daily_quantity"]) for s in resurveyed["surveys"]] == [
        (day(-1), "450.5"), (day(-10), "520.0")]
    read = await client.get(f"/api/v1/capacities/{code}", headers=planner)
    assert read.status_code == 200 and read.json()["daily_quantity"] == "450.5"
    assert len(read.json()["surveys"]) == 2

    older = await client.put(f"/api/v1/capacities/{code}", headers=planner,
                             json=capacity_body(world, surveyed_on=day(-30)))
    assert older.status_code == 422 and older.json()["errors"][0]["field"] == "surveyed_on"
    listed = await client.get("/api/v1/capacities", headers=planner, params={"region": world.region})
    assert [c["code"] for c in listed.json()["items"]] == [code]
    assert (await client.get("/api/v1/capacities", headers=planner,
                             params={"material": world.vaccine})).json()["items"] == []


@pytest.mark.parametrize("change, field", [
    ({"daily_quantity": "0"}, "daily_quantity"),
    ({"daily_quantity": "1.25"}, "daily_quantity"),  # diesel has one decimal
    ({"material": "NO-SUCH-MATERIAL"}, "material"),
    ({"party": "NO-SUCH-PARTY"}, "party"),
    ({"surveyed_on": day(3)}, "surveyed_on"),
])
async def test_a_capacity_with_bad_values_is_refused_and_nothing_is_written(client, planner, world, uid, change, field):
    r = await client.put(f"/api/v1/capacities/CAP-BAD-{uid}", headers=planner, json=capacity_body(world, **change))
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert field in {e["field"] for e in r.json()["errors"]}
    assert (await client.get(f"/api/v1/capacities/CAP-BAD-{uid}", headers=planner)).status_code == 404


async def test_a_warehouse_outside_the_capacitys_region_is_refused(client, admin, planner, world, uid):
    other = await make_world(client, admin, uid + "X")
    r = await client.put(f"/api/v1/capacities/CAP-{uid}", headers=planner,
                         json=capacity_body(world, warehouse=other.north))
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "warehouse"


async def test_a_capacity_held_for_the_military_is_seen_and_surveyed_only_with_clearance(client, make_token, planner,
                                                                                       world, uid):
    held = f"CAP-HELD-{uid}"
    owned = f"CAP-MIL-{uid}"
    public = f"CAP-CIV-{uid}"
    await put_capacity(client, planner, held, capacity_body(world, held_for="military"))
    await put_capacity(client, planner, owned, capacity_body(world, party=world.military))
    await put_capacity(client, planner, public, capacity_body(world))
    uncleared = {"Authorization": f"Bearer {await make_token('planner', regions=[world.region])}"}
    listed = await client.get("/api/v1/capacities", headers=uncleared, params={"region": world.region})
    assert [c["code"] for c in listed.json()["items"]] == [public]
    absent = await client.get(f"/api/v1/capacities/CAP-NONE-{uid}", headers=uncleared)
    for code in (held, owned):
        missing = await client.get(f"/api/v1/capacities/{code}", headers=uncleared)
        assert missing.status_code == 404 and missing.json()["type"] == "not-found"
        assert missing.text.replace(code, "?") == absent.text.replace(f"CAP-NONE-{uid}", "?")  # as one that is not
        refused = await client.put(f"/api/v1/capacities/{code}", headers=uncleared, json=capacity_body(world))
        assert refused.status_code == 404  # as if it did not exist
    made_military = await client.put(f"/api/v1/capacities/{public}", headers=uncleared,
                                     json=capacity_body(world, held_for="military"))
    assert made_military.status_code == 403
    new_military = await client.put(f"/api/v1/capacities/CAP-NEW-{uid}", headers=uncleared,
                                    json=capacity_body(world, party=world.military))
    assert new_military.status_code == 403
    assert (await client.get(f"/api/v1/capacities/{public}", headers=uncleared)).json()["held_for"] is None


async def test_capacities_outside_a_planners_regions_are_not_seen_nor_written(client, admin, make_token, world, uid):
    other = await make_world(client, admin, uid + "O")
    await put_capacity(client, admin, f"CAP-O-{uid}", capacity_body(other))
    outsider = {"Authorization": f"Bearer {await make_token('planner', clearance='military', regions=[world.region])}"}
    assert (await client.get(f"/api/v1/capacities/CAP-O-{uid}", headers=outsider)).status_code == 404
    r = await client.put(f"/api/v1/capacities/CAP-N-{uid}", headers=outsider, json=capacity_body(other))
    assert r.status_code == 403
    operator_only = {"Authorization": f"Bearer {await make_token('operator', clearance='military', regions=[world.region])}"}
    r = await client.put(f"/api/v1/capacities/CAP-N-{uid}", headers=operator_only, json=capacity_body(world))
    assert r.status_code == 403


async def _potential(client, headers, world, material) -> dict | None:
    r = await client.get("/api/v1/potential", headers=headers, params={"region": world.region})
    assert r.status_code == 200, r.text
    return next((i for i in r.json()["items"] if i["material"] == material and i["region"] == world.region), None)


async def test_potential_counts_days_of_supply_without_and_with_capacity(client, admin, operator, planner, world, uid):
    """Hand-worked: 240,000 L usable for 20,000 people at 1 L a day is 12 days. A refinery adds
    4,000 L a day from day 4 and a military plant 6,000 L a day from day 8: on day 4 there are
    160,000 L left, falling by 16,000 L a day; on day 8, 96,000 L, falling by 10,000 L a day:
    9.6 days more, 17.6 in all."""
    await client.put(f"/api/v1/materials/{world.diesel}", headers=admin, json={
        "name": "Diesel", "category": "fuel", "unit": "L", "decimals": 1, "shelf_life_days": 730,
        "storage_class": "bulk_liquid", "daily_consumption_per_person": "1"})
    await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                  quantity="200000", lot="P-1")
    await receive(client, operator, warehouse=world.south, material=world.diesel, owner=world.military,
                  quantity="40000", lot="P-2")
    await receive(client, operator, warehouse=world.south, material=world.diesel, owner=world.civil,
                  quantity="999", lot="P-OLD", expires_on=day(0))  # expires today: not usable
    r = await client.put(f"/api/v1/reserve-targets/TGT-{uid}", headers=admin, json={
        "scope": {"region": world.region}, "material": world.diesel, "quantity": "100000", "population": 20000})
    assert r.status_code == 201, r.text
    before = await _potential(client, planner, world, world.diesel)
    assert (before["usable"], before["capacity_per_day"], before["days_of_supply"],
            before["days_of_supply_with_capacity"]) == ("240000.0", "0.0", 12.0, 12.0)

    await put_capacity(client, planner, f"CAP-R-{uid}", capacity_body(world, daily_quantity="4000", lead_days=4))
    await put_capacity(client, planner, f"CAP-M-{uid}", capacity_body(world, party=world.military,
                                                                      daily_quantity="6000", lead_days=8))
    cleared = await _potential(client, planner, world, world.diesel)
    assert (cleared["capacity_per_day"], cleared["days_of_supply"], cleared["days_of_supply_with_capacity"],
            cleared["sustained"]) == ("10000.0", 12.0, 17.6, False)
    assert cleared["capacity_by_lead_day"] == [{"lead_days": 4, "daily_quantity": "4000.0"},
                                               {"lead_days": 8, "daily_quantity": "6000.0"}]

    # capacity is potential, never stock: balances and coverage are what they were
    coverage = await client.get("/api/v1/coverage", headers=admin, params={"region": world.region})
    assert [(c["target"], c["usable"]) for c in coverage.json()["items"]] == [(f"TGT-{uid}", "240000")]
    stock = await client.get("/api/v1/stock", headers=admin, params={"material": world.diesel})
    assert sorted(p["balance"] for p in stock.json()["items"]) == ["200000.0", "40000.0", "999.0"]


async def test_an_uncleared_reader_counts_no_military_stock_or_capacity_in_the_potential(client, admin, operator,
                                                                                          make_token, planner,
                                                                                          world, uid):
    await client.put(f"/api/v1/materials/{world.diesel}", headers=admin, json={
        "name": "Diesel", "category": "fuel", "unit": "L", "decimals": 1, "shelf_life_days": 730,
        "storage_class": "bulk_liquid", "daily_consumption_per_person": "2"})
    await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                  quantity="10000", lot="U-1")
    await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.military,
                  quantity="7777", lot="U-2")
    r = await client.put(f"/api/v1/reserve-targets/TGT-{uid}", headers=admin, json={
        "scope": {"region": world.region}, "material": world.diesel, "sector": "civilian", "quantity": "5000",
        "population": 1000})
    assert r.status_code == 201, r.text
    await put_capacity(client, planner, f"CAP-C-{uid}", capacity_body(world, daily_quantity="1000", lead_days=2))
    await put_capacity(client, planner, f"CAP-H-{uid}", capacity_body(world, daily_quantity="3333",
                                                                      lead_days=1, held_for="military"))
    uncleared = {"Authorization": f"Bearer {await make_token('planner', regions=[world.region])}"}
    seen = await _potential(client, uncleared, world, world.diesel)
    # 10,000 L for 1,000 people at 2 L: 5 days; 1,000 L a day from day 2: 6,000 left, −1,000 a day: 8 days
    assert (seen["usable"], seen["capacity_per_day"], seen["days_of_supply"],
            seen["days_of_supply_with_capacity"]) == ("10000.0", "1000.0", 5.0, 8.0)
    r = await client.get("/api/v1/potential", headers=uncleared, params={"region": world.region})
    assert "7777" not in r.text and "3333" not in r.text and "17777" not in r.text
    full = await _potential(client, planner, world, world.diesel)
    assert (full["usable"], full["capacity_per_day"], full["sustained"]) == ("17777.0", "4333.0", True)
    assert full["days_of_supply_with_capacity"] is None


async def test_potential_rolls_capacity_up_to_the_regions_above(client, admin, planner, world, uid, root_region):
    await put_capacity(client, planner, f"CAP-{uid}", capacity_body(world, material=world.vaccine,
                                                                    daily_quantity="250", warehouse=None))
    national = await client.get("/api/v1/potential", headers=admin,
                                params={"region": root_region, "category": "medical"})
    rows = {(i["region"], i["material"]): i for i in national.json()["items"]}
    assert rows[(world.region, world.vaccine)]["capacity_per_day"] == "250"
    assert rows[(root_region, world.vaccine)]["capacity_per_day"] == "250"
    assert rows[(world.region, world.vaccine)]["days_of_supply"] is None  # no target says whom it serves
    fuel = await client.get("/api/v1/potential", headers=admin, params={"region": world.region, "category": "fuel"})
    assert all(i["category"] == "fuel" for i in fuel.json()["items"])

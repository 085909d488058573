"""Coverage counts only usable stock: available, not expiring within the horizon, not reserved —
across a region's whole subtree, for a material, a category or a substitution group."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from stockpile.domain.coverage import coverage_state, days_of_supply
from tests.factories import make_world, receive

TODAY = date.today()


def day(n: int) -> str:
    return (TODAY + timedelta(days=n)).isoformat()


async def target(client, headers, code, **body):
    r = await client.put(f"/api/v1/reserve-targets/{code}", headers=headers, json=body)
    assert r.status_code in (200, 201), r.text
    return r.json()


async def coverage_of(client, headers, code, **params) -> dict:
    items = (await client.get("/api/v1/coverage", params=params, headers=headers)).json()["items"]
    return {i["target"]: i for i in items}.get(code)


@pytest.fixture
async def reserve(client, admin, operator, uid, pg_pool):
    """Diesel at the north depot: usable 100, expiring soon 50, quarantined 30, 20 reserved of the usable lot;
    a sub-region depot with 40 of a substitute material; military-owned 500."""
    w = await make_world(client, admin, uid)
    good = await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="100",
                         lot="GOOD", expires_on=day(400))
    await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="50",
                  lot="SOON", expires_on=day(10))
    bad = await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="30",
                        lot="QUAR", expires_on=day(400))
    await client.post(f"/api/v1/lots/{bad['postings'][0]['account']['lot_id']}/status", headers=operator,
                      json={"status": "quarantine"})
    await pg_pool.execute("UPDATE accounts SET reserved = 200 WHERE lot_id = $1::uuid",
                          good["postings"][0]["account"]["lot_id"])
    sub = f"SUB-{uid}"
    assert (await client.put(f"/api/v1/regions/{sub}", headers=admin, json={"name": "sub", "parent": w.region})).status_code == 201
    depot = f"WH-SUB-{uid}"
    assert (await client.put(f"/api/v1/warehouses/{depot}", headers=admin, json={
        "name": "sub depot", "operator": w.civil, "region": sub, "kind": "civilian", "latitude": 1, "longitude": 1})).status_code == 201
    heating = f"HO-{uid}"
    for code, name in ((w.diesel, "Diesel"), (heating, "Heating oil")):
        assert (await client.put(f"/api/v1/materials/{code}", headers=admin, json={
            "name": name, "category": "fuel", "unit": "L", "decimals": 1, "shelf_life_days": 730,
            "substitution_group": f"MD-{uid}", "daily_consumption_per_person": "0.5"})).status_code in (200, 201)
    await receive(client, operator, warehouse=depot, material=heating, owner=w.civil, quantity="40", lot="HO1",
                  expires_on=day(400))
    await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.military, quantity="500", lot="MIL",
                  expires_on=day(400))
    return w, sub, heating


async def test_only_usable_stock_counts(client, planner_of, reserve, uid):
    w, _, _ = reserve
    planner = await planner_of(w.region)
    await target(client, planner, f"T1-{uid}", scope={"warehouse": w.north}, material=w.diesel, owner=w.civil,
                 quantity="200", horizon_days=30, population=10)
    got = await coverage_of(client, planner, f"T1-{uid}")
    # 100 good − 20 reserved; 50 expiring within 30 days, 30 quarantined and military stock do not count
    assert got["usable"] == "80" and got["required"] == "200" and got["ratio"] == 0.4 and got["state"] == "critical"
    assert got["days_of_supply"] == 16.0 and got["floor"] == "100"


async def test_a_shorter_horizon_counts_stock_that_lives_past_it(client, planner_of, reserve, uid):
    w, _, _ = reserve
    planner = await planner_of(w.region)
    await target(client, planner, f"T2-{uid}", scope={"warehouse": w.north}, material=w.diesel, sector="civilian",
                 quantity="140", horizon_days=5)
    got = await coverage_of(client, planner, f"T2-{uid}")
    assert got["usable"] == "130" and got["state"] == "ok"


async def test_a_region_target_covers_its_sub_regions_and_substitutes(client, planner_of, reserve, uid):
    w, sub, heating = reserve
    planner = await planner_of(w.region)
    await target(client, planner, f"T3-{uid}", scope={"region": w.region}, substitution_group=f"MD-{uid}",
                 sector="civilian", quantity="130", warning_ratio="0.95", critical_ratio="0.5")
    got = await coverage_of(client, planner, f"T3-{uid}")
    assert got["usable"] == "120" and got["state"] == "warning"
    only_sub = await coverage_of(client, planner, f"T3-{uid}", region=sub)
    assert only_sub is None  # the target lives at the parent region, not under the sub-region
    assert (await coverage_of(client, planner, f"T3-{uid}", category="food")) is None
    assert (await coverage_of(client, planner, f"T3-{uid}", state="warning"))["target"] == f"T3-{uid}"
    assert (await coverage_of(client, planner, f"T3-{uid}", state="ok")) is None


async def test_uncleared_readers_see_military_stock_only_aggregated_to_a_region(client, planner_of, make_token, reserve, uid):
    w, _, _ = reserve
    planner = await planner_of(w.region)
    await target(client, planner, f"T4-{uid}", scope={"warehouse": w.north}, material=w.diesel, quantity="1000")
    await target(client, planner, f"T5-{uid}", scope={"region": w.region}, material=w.diesel, quantity="1000")
    await target(client, planner, f"T6-{uid}", scope={"region": w.region}, material=w.diesel, sector="military",
                 quantity="1000")
    assert (await coverage_of(client, planner, f"T4-{uid}"))["usable"] == "580"
    uncleared = {"Authorization": f"Bearer {await make_token('auditor')}"}
    assert await coverage_of(client, uncleared, f"T4-{uid}") is None
    assert await coverage_of(client, uncleared, f"T6-{uid}") is None
    assert (await coverage_of(client, uncleared, f"T5-{uid}"))["usable"] == "580"
    assert (await client.get(f"/api/v1/reserve-targets/T6-{uid}", headers=uncleared)).status_code == 404


async def test_planners_set_targets_only_in_their_regions(client, admin, planner_of, reserve, uid):
    w, _, _ = reserve
    elsewhere = await planner_of("TEST-ELSEWHERE")
    r = await client.put(f"/api/v1/reserve-targets/T7-{uid}", headers=elsewhere, json={
        "scope": {"region": w.region}, "material": w.diesel, "quantity": "1"})
    assert r.status_code == 403 and r.json()["type"] == "forbidden"
    assert (await client.get(f"/api/v1/reserve-targets/T7-{uid}", headers=admin)).status_code == 404


@pytest.mark.parametrize(("body", "field"), [
    ({"scope": {}}, "scope"), ({"category": "fuel"}, "material"), ({"owner": "X", "sector": "civilian"}, "owner"),
    ({"critical_ratio": "0.95"}, "critical_ratio"), ({"quantity": "0"}, "quantity"), ({"warning_ratio": "1.5"}, "warning_ratio"),
])
async def test_a_malformed_target_is_refused(client, admin, reserve, uid, body, field):
    w, _, _ = reserve
    base = {"scope": {"region": w.region}, "material": w.diesel, "quantity": "10"}
    r = await client.put(f"/api/v1/reserve-targets/BAD-{uid}", headers=admin, json={**base, **body})
    assert r.status_code == 422 and any(e["field"].startswith(field) for e in r.json()["errors"]), r.text


@pytest.fixture
def planner_of(make_token, pg_pool):
    async def make(region: str) -> dict:
        await pg_pool.execute("INSERT INTO regions (code, name) VALUES ($1, $1) ON CONFLICT DO NOTHING", region)
        return {"Authorization": f"Bearer {await make_token('planner', clearance='military', regions=[region])}"}

    return make


def test_states_follow_the_ratios():
    assert coverage_state(Decimal("0.95"), Decimal("0.9"), Decimal("0.7")) == "ok"
    assert coverage_state(Decimal("0.9"), Decimal("0.9"), Decimal("0.7")) == "ok"
    assert coverage_state(Decimal("0.89"), Decimal("0.9"), Decimal("0.7")) == "warning"
    assert coverage_state(Decimal("0.69"), Decimal("0.9"), Decimal("0.7")) == "critical"


def test_days_of_supply_needs_a_population_and_a_rate():
    assert days_of_supply(Decimal("80"), 10, Decimal("0.5")) == Decimal("16.0")
    assert days_of_supply(Decimal("80"), None, Decimal("0.5")) is None
    assert days_of_supply(Decimal("80"), 10, None) is None

"""Coverage counts only usable stock: available, not expiring within the horizon, not reserved —
across a region's whole subtree, for a material, a category or a substitution group."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

import pytest

from tests.factories import idem, make_world, receive

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


async def test_uncleared_readers_coverage_counts_only_the_stock_they_may_see(client, planner_of, make_token, reserve, uid):
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
    # counted on the stock the reader may see: the military 500 is not in it (no position to subtract)
    assert (await coverage_of(client, uncleared, f"T5-{uid}"))["usable"] == "80"
    assert (await coverage_of(client, planner, f"T5-{uid}"))["usable"] == "580"
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


async def test_the_sql_agrees_with_the_reference_rule_on_a_random_reserve(client, admin, operator, uid, pg_pool):
    """Random lots (statuses, expiries, reservations, owners of every sector) in a region tree, random
    targets (warehouse or region, material / category / substitution group, owner / sector / all,
    horizons): both SQL paths — the coverage endpoint and an alert evaluation's one pass — give
    every target exactly the usable quantity of the position-by-position rule, and the evaluation
    picks exactly the lots the expiry rule calls for."""
    from stockpile.domain.alerts import EXPIRY_CRITICAL_WITHIN_DAYS, expiry_alert
    from stockpile.domain.coverage import Holding, TargetScope, outlives_horizon, usable_quantity
    from stockpile.store import allocation as allocation_store
    from stockpile.store import alerts as alert_store
    from stockpile.store import coverage as coverage_store

    rng = random.Random(uid)
    top, east, north_east, west = (f"{x}-{uid}" for x in ("RND", "RND-E", "RND-NE", "RND-W"))
    tree = {top: "TEST-NATION", east: top, north_east: east, west: top}
    for code, parent in tree.items():
        assert (await client.put(f"/api/v1/regions/{code}", headers=admin, json={"name": code, "parent": parent})).status_code == 201
    owners = {f"O{i}-{uid}": sector for i, sector in enumerate(["military", "civilian", "enterprise", "civilian"])}
    for code, sector in owners.items():
        assert (await client.put(f"/api/v1/parties/{code}", headers=admin, json={"name": code, "sector": sector})).status_code == 201
    warehouses = {f"W{i}-{uid}": region for i, region in enumerate([north_east, north_east, east, west, top])}
    for code, region in warehouses.items():
        assert (await client.put(f"/api/v1/warehouses/{code}", headers=admin, json={
            "name": code, "operator": next(iter(owners)), "region": region, "kind": "joint",
            "latitude": 1, "longitude": 1})).status_code == 201
    materials = {f"M{i}-{uid}": spec for i, spec in enumerate([("fuel", 1, f"G-{uid}"), ("fuel", 0, f"G-{uid}"),
                                                                  ("food", 3, None), ("medical", 0, None)])}
    for code, (category, decimals, group) in materials.items():
        assert (await client.put(f"/api/v1/materials/{code}", headers=admin, json={
            "name": code, "category": category, "unit": "u", "decimals": decimals, "shelf_life_days": 900,
            "storage_class": "ambient", "substitution_group": group})).status_code == 201

    for i in range(40):
        warehouse, material, owner = rng.choice(list(warehouses)), rng.choice(list(materials)), rng.choice(list(owners))
        decimals = materials[material][1]
        quantity = f"{rng.randint(1, 5000) / 10 ** decimals:.{decimals}f}"
        body = {"kind": "receipt", "warehouse": warehouse, "material": material, "owner": owner, "quantity": quantity,
                "lot": {"code": f"L{i}", "expires_on": day(rng.choice([-5, 0, 3, 7, 8, 20, 31, 45, 91, 400]))}}
        r = await client.post("/api/v1/movements", json=body, headers={**operator, **idem()})
        assert r.status_code == 201, r.text
        lot_id = r.json()["postings"][0]["account"]["lot_id"]
        if rng.random() < 0.2:
            status = rng.choice(["quarantine", "recalled"])
            assert (await client.post(f"/api/v1/lots/{lot_id}/status", headers=operator,
                                      json={"status": status, "reason": "test"})).status_code == 200
        if rng.random() < 0.3:
            await pg_pool.execute("UPDATE accounts SET reserved = balance / 3 WHERE lot_id = $1::uuid", lot_id)

    below = {top: {top, east, north_east, west}, east: {east, north_east}, north_east: {north_east}, west: {west}}
    scopes: dict[str, TargetScope] = {}
    for i in range(16):
        by, horizon = rng.choice(["material", "category", "substitution_group"]), rng.choice([0, 7, 30, 90])
        chosen = rng.choice(list(materials))
        selects = {"material": chosen, "category": materials[chosen][0], "substitution_group": f"G-{uid}"}[by]
        holder = rng.choice([{}, {"owner": rng.choice(list(owners))}, {"sector": rng.choice(["military", "civilian"])}])
        scope = rng.choice([{"warehouse": rng.choice(list(warehouses))}, {"region": rng.choice(list(below))}])
        await target(client, admin, f"RT{i}-{uid}", scope=scope, quantity="100", horizon_days=horizon,
                     **{by: selects}, **holder)
        picked = frozenset(m for m, (category, _, group) in materials.items()
                           if {"material": m, "category": category, "substitution_group": group}[by] == selects)
        scopes[f"RT{i}-{uid}"] = TargetScope(picked, horizon, warehouse=scope.get("warehouse"),
                                             regions=frozenset(below.get(scope.get("region"), ())), **holder)

    rows = await pg_pool.fetch(
        """SELECT w.code AS warehouse, r.code AS region, m.code AS material, o.code AS owner, o.sector, a.balance,
                  a.reserved, l.status, l.expires_on, l.id::text AS lot_id
             FROM accounts a JOIN lots l ON l.id = a.lot_id JOIN warehouses w ON w.id = l.warehouse_id
             JOIN regions r ON r.id = w.region_id JOIN materials m ON m.id = l.material_id
             JOIN parties o ON o.id = a.owner_id
            WHERE a.type = 'stock' AND m.code = ANY($1::text[])""", list(materials))
    holdings = [Holding(*(r[k] for k in ("warehouse", "region", "material", "owner", "sector", "balance", "reserved",
                                         "status", "expires_on"))) for r in rows]
    decimals = {m: spec[1] for m, spec in materials.items()}
    expected = {code: usable_quantity(scope, holdings, decimals, TODAY) for code, scope in scopes.items()}
    assert any(expected.values()) and not all(expected.values())  # the draw covers both cases

    served = {i["target"]: Decimal(i["usable"]) for i in
              (await client.get("/api/v1/coverage", params={"region": top, "limit": 1000}, headers=admin)).json()["items"]}
    assert {code: served.get(code) for code in scopes} == expected

    async with pg_pool.acquire() as conn, conn.transaction():
        await alert_store.begin_wanted(conn)
        await coverage_store.take_stock(conn, today=TODAY, expiring_within_days=30)
        taken = {r["code"]: r["usable"] for r in await coverage_store.taken_coverage(conn)}
        staged = await conn.fetch(f"SELECT kind, subject, severity FROM ({alert_store.TAKEN_EXPIRY_WANTED}) x "
                                  f"WHERE $1::int IS NOT NULL", 0, TODAY, EXPIRY_CRITICAL_WITHIN_DAYS)
    assert {code: taken[code] for code in scopes} == expected
    # the third path, a floor check's: only some targets, from a pass over only the stock they can count
    ids = {r["code"]: r["id"] for r in await pg_pool.fetch("SELECT id, code FROM reserve_targets WHERE code = ANY($1)",
                                                          list(scopes))}
    async with pg_pool.acquire() as conn, conn.transaction():
        for some in [[code] for code in scopes] + [rng.sample(list(scopes), 5), list(scopes)]:
            chosen = [ids[c] for c in some]
            rows_of = await coverage_store.coverage_of_targets(
                conn, today=TODAY, target_ids=chosen, within=await coverage_store.reach(conn, chosen))
            assert {r["code"]: r["usable"] for r in rows_of} == {code: expected[code] for code in some}

    # the positions each target counts (what floors are made of): the same rule, pair by pair
    positions = await pg_pool.fetch(
        """SELECT a.id, w.code AS warehouse, r.code AS region, m.code AS material, o.code AS owner, o.sector, a.balance,
                  a.reserved, l.status, l.expires_on
             FROM accounts a JOIN lots l ON l.id = a.lot_id JOIN warehouses w ON w.id = l.warehouse_id
             JOIN regions r ON r.id = w.region_id JOIN materials m ON m.id = l.material_id
             JOIN parties o ON o.id = a.owner_id
            WHERE a.type = 'stock' AND m.code = ANY($1::text[])""", list(materials))
    wanted = {(p["id"], ids[code]) for p in positions for code, scope in scopes.items()
              if scope.counts(Holding(*(p[k] for k in ("warehouse", "region", "material", "owner", "sector", "balance",
                                                       "reserved", "status", "expires_on"))))
              and p["status"] == "available" and outlives_horizon(p["expires_on"], TODAY, scope.horizon_days)}
    assert wanted and len(wanted) < len(positions) * len(scopes)
    account_ids = [p["id"] for p in positions]
    async with pg_pool.acquire() as conn:
        pairs = {(m["account_id"], t) for m in await allocation_store.memberships(conn, account_ids, TODAY)
                 for t in m["target_ids"]}
        some = set(rng.sample(sorted(ids.values()), 5))
        restricted = {(m["account_id"], t) for m in await allocation_store.memberships(conn, account_ids, TODAY, some)
                      for t in m["target_ids"]}
    assert {pair for pair in pairs if pair[1] in ids.values()} == wanted
    assert restricted == {pair for pair in wanted if pair[1] in some}
    on_hand: dict[str, tuple] = {}
    for r in rows:
        total = on_hand.get(r["lot_id"], (r["expires_on"], 0))[1] + r["balance"]
        on_hand[r["lot_id"]] = (r["expires_on"], total)
    wanted = {(f"lot:{lot}", *alert) for lot, (expires_on, units) in on_hand.items()
              if (alert := expiry_alert(expires_on, units, TODAY, 30))}
    assert {(s["subject"], s["kind"], s["severity"]) for s in staged if s["subject"][4:] in on_hand} == wanted
    assert wanted  # the draw has lots near expiry

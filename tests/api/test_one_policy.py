"""One policy for who sees and changes what: targets judged as they are, aggregates that count only
what the reader may see, rotation orders worked only where they belong, metrics by clearance."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from stockpile.metrics import SCRAPE_CLEARED, SNAPSHOT, api_exposition
from stockpile.services import alerts
from stockpile.store import snapshots
from stockpile.store.db import Database
from tests.factories import lot_of, make_world, post_movement, receive

PROBLEM = "application/problem+json"
TODAY = datetime.now(timezone.utc).date()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def target_row(pg_pool, code: str):
    return await pg_pool.fetchrow(
        "SELECT scope_region_id, scope_warehouse_id, owner_id, quantity, floor_ratio, updated_at "
        "FROM reserve_targets WHERE code = $1", code)


def target_body(scope: dict, quantity: str = "1", floor_ratio: float = 0.0, **more) -> dict:
    return {"scope": scope, "quantity": quantity, "warning_ratio": 0.9, "critical_ratio": 0.7,
            "floor_ratio": floor_ratio, "horizon_days": 30, **more}


async def test_a_planner_cannot_take_over_a_target_outside_its_remit(client, admin, make_token, pg_pool, uid):
    home = await make_world(client, admin, uid + "H")
    away = await make_world(client, admin, uid + "A")
    military_code, away_code, home_code = f"TGT-MIL-{uid}", f"TGT-AWAY-{uid}", f"TGT-HOME-{uid}"
    for code, body in ((military_code, target_body({"region": "TEST-NATION"}, "1049914", 0.5, category="fuel",
                                                   owner=home.military)),
                       (away_code, target_body({"region": away.region}, "5000", 0.5, material=away.diesel)),
                       (home_code, target_body({"region": home.region}, "5000", 0.5, material=home.diesel))):
        assert (await client.put(f"/api/v1/reserve-targets/{code}", json=body, headers=admin)).status_code == 201
    planner = bearer(await make_token("planner", regions=[home.region]))
    before = {code: await target_row(pg_pool, code) for code in (military_code, away_code, home_code)}

    takeover = target_body({"region": home.region}, "1", 0.0, material=home.diesel)
    for code in (military_code, away_code):  # targets it cannot see: they do not exist for it
        r = await client.put(f"/api/v1/reserve-targets/{code}", json=takeover, headers=planner)
        assert r.status_code == 404 and r.headers["content-type"].startswith(PROBLEM), r.text
        assert r.json()["type"] == "not-found" and "1049914" not in r.text
    moved_away = await client.put(f"/api/v1/reserve-targets/{home_code}", headers=planner,
                                  json=target_body({"region": away.region}, "1", 0.0, material=away.diesel))
    assert moved_away.status_code == 403 and moved_away.json()["type"] == "forbidden"
    made_military = await client.put(f"/api/v1/reserve-targets/{home_code}", headers=planner,
                                     json=target_body({"region": home.region}, "1", 0.0, category="fuel",
                                                      owner=home.military))
    assert made_military.status_code == 403 and "clearance" in made_military.json()["detail"]
    assert {code: await target_row(pg_pool, code) for code in before} == before

    own = await client.put(f"/api/v1/reserve-targets/{home_code}", json=takeover, headers=planner)
    assert own.status_code == 200 and own.json()["quantity"] == "1"


async def test_coverage_shown_to_an_uncleared_reader_counts_no_military_stock(client, admin, operator, make_token,
                                                                             pg_pool, uid):
    w = await make_world(client, admin, uid)
    await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="1000", lot="C-1")
    await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.military, quantity="31337.4",
                  lot="M-1")
    planner = bearer(await make_token("planner", regions=[w.region]))
    code = f"TGT-ALL-{uid}"
    made = await client.put(f"/api/v1/reserve-targets/{code}", headers=planner,
                            json=target_body({"region": w.region}, "40000", 0.5, material=w.diesel))
    assert made.status_code == 201, made.text

    def usable(response) -> str:
        assert response.status_code == 200, response.text
        return next(item["usable"] for item in response.json()["items"] if item["target"] == code)

    assert Decimal(usable(await client.get("/api/v1/coverage", params={"region": w.region}, headers=planner))) == 1000
    assert Decimal(usable(await client.get("/api/v1/coverage", params={"region": w.region}, headers=admin))) == Decimal(
        "32337.4")

    async with pg_pool.acquire() as conn, conn.transaction():
        await alerts.evaluate(conn, today=TODAY, now=datetime.now(timezone.utc), expiring_days=30)
    listed = await client.get("/api/v1/alerts", params={"kind": "shortfall", "state": "open"}, headers=planner)
    mine = [a for a in listed.json()["items"] if a["subject"] == f"target:{code}"]
    assert len(mine) == 1 and mine[0]["details"] == {"target": code, "restricted": True}
    assert mine[0]["severity"] == "warning"  # judged on all the stock: 32,337.4 of 40,000
    assert "31337" not in listed.text and "32337" not in listed.text and "%" not in mine[0]["title"]
    seen_by_admin = await client.get(f"/api/v1/alerts/{mine[0]['id']}", headers=admin)
    assert Decimal(seen_by_admin.json()["details"]["usable"]) == Decimal("32337.4")


async def test_a_rotation_order_is_worked_only_at_its_own_warehouse(client, admin, operator, pg_pool, uid):
    w = await make_world(client, admin, uid)
    policy = f"ROT-{uid}"
    assert (await client.put(f"/api/v1/rotation-policies/{policy}", headers=admin,
                             json={"material": w.diesel, "trigger_days_before_expiry": 90})).status_code == 201
    lot = lot_of(await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="100",
                               lot="OLD", expires_on=(TODAY + timedelta(days=20)).isoformat()))
    order = await pg_pool.fetchval(
        """INSERT INTO rotation_orders (lot_id, owner_id, policy_id, quantity, out_by, in_by, outlet, explanation,
                                        public_explanation)
           SELECT $1::uuid, o.id, p.id, 1000, $3::date, $3::date + 30, p.outlet, 'due', 'due'
             FROM parties o, rotation_policies p WHERE o.code = $2 AND p.code = $4 RETURNING id::text""",
        lot, w.civil, TODAY + timedelta(days=10), policy)
    movements = await pg_pool.fetchval("SELECT count(*) FROM movements")
    elsewhere = await post_movement(client, operator, {
        "kind": "rotation_in", "warehouse": w.south, "material": w.diesel, "owner": w.civil, "quantity": "100",
        "rotation_order_id": order, "lot": {"code": "FRESH", "expires_on": (TODAY + timedelta(days=700)).isoformat()}})
    assert elsewhere.status_code == 409 and "another warehouse" in elsewhere.json()["detail"], elsewhere.text
    assert await pg_pool.fetchval("SELECT count(*) FROM movements") == movements
    assert await pg_pool.fetchval("SELECT in_quantity FROM rotation_orders WHERE id = $1::uuid", order) == 0
    assert await pg_pool.fetchval("SELECT count(*) FROM lots l JOIN warehouses w ON w.id = l.warehouse_id "
                                  "WHERE l.code = 'FRESH' AND w.code = $1", w.south) == 0
    at_home = await post_movement(client, operator, {
        "kind": "rotation_in", "warehouse": w.north, "material": w.diesel, "owner": w.civil, "quantity": "100",
        "rotation_order_id": order, "lot": {"code": "FRESH", "expires_on": (TODAY + timedelta(days=700)).isoformat()}})
    assert at_home.status_code == 201, at_home.text


async def test_metrics_show_military_stock_only_to_a_cleared_token(make_database):
    from litestar.testing import AsyncTestClient

    from stockpile.api.app import create_app
    from stockpile.config import Settings
    from tests.live import make_admin_token

    url = make_database()
    token = await make_admin_token(url)
    app = create_app(Settings(database_url=None, token_cache_seconds=0, rate_limit_per_second=0), url)
    async with AsyncTestClient(app=app) as c:
        admin = bearer(token)
        assert (await c.put("/api/v1/regions/TEST-NATION", json={"name": "n"}, headers=admin)).status_code == 201
        w = await make_world(c, admin, "MM")
        await receive(c, admin, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="1000", lot="C")
        await receive(c, admin, warehouse=w.north, material=w.diesel, owner=w.military, quantity="31337.4", lot="M")
        assert (await c.put("/api/v1/reserve-targets/T-ALL", headers=admin, json=target_body(
            {"region": w.region}, "4000", 0.5, material=w.diesel))).status_code == 201
        db = Database(url, pool_size=1)
        try:
            async with db.transaction() as tx:
                samples = await snapshots.aggregate(tx.pg, date.today())
        finally:
            await db.dispose()

    def scrape(cleared: bool) -> str:
        kept = SNAPSHOT.samples, SNAPSHOT.taken_at  # the process-wide snapshot other tests read
        SNAPSHOT.samples, SNAPSHOT.taken_at = samples, 1.0
        mark = SCRAPE_CLEARED.set(cleared)
        try:
            return api_exposition().decode()
        finally:
            SCRAPE_CLEARED.reset(mark)
            SNAPSHOT.samples, SNAPSHOT.taken_at = kept

    uncleared, cleared = scrape(False), scrape(True)
    # the military holding as a sample value (timestamps elsewhere in the output may hold the digits)
    holding = re.compile(r" 3[12]337\.4\d*$", re.MULTILINE)
    assert 'sector="military"' not in uncleared and not holding.search(uncleared)
    assert holding.search(cleared)  # the same pattern finds it where it may be shown
    assert 'stockpile_coverage_usable_quantity{target="T-ALL"} 1000.0' in uncleared
    assert 'sector="military"' in cleared and 'stockpile_coverage_usable_quantity{target="T-ALL"} 32337.4' in cleared
    assert uncleared.count("stockpile_targets{") == cleared.count("stockpile_targets{") == 3


async def test_only_a_cleared_admin_changes_a_military_party(client, admin, make_token, pg_pool, uid):
    w = await make_world(client, admin, uid)
    uncleared = bearer(await make_token("admin"))
    declassify = await client.put(f"/api/v1/parties/{w.military}", headers=uncleared,
                                  json={"name": "Logistics Brigade", "sector": "civilian", "parent": None})
    assert declassify.status_code == 403 and declassify.json()["type"] == "forbidden"
    hide = await client.put(f"/api/v1/parties/{w.civil}", headers=uncleared,
                            json={"name": "Civil Reserve Bureau", "sector": "military", "parent": None})
    assert hide.status_code == 403
    assert await pg_pool.fetchval("SELECT sector FROM parties WHERE code = $1", w.military) == "military"
    assert await pg_pool.fetchval("SELECT sector FROM parties WHERE code = $1", w.civil) == "civilian"
    renamed = await client.put(f"/api/v1/parties/{w.civil}", headers=uncleared,
                               json={"name": "Civil Reserve Bureau (north)", "sector": "civilian", "parent": None})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Civil Reserve Bureau (north)"


async def test_an_emptied_military_lot_stays_unknown_to_an_uncleared_reader_for_reads_and_writes(
        client, admin, operator, make_token, pg_pool, uid):
    w = await make_world(client, admin, uid)
    lot = lot_of(await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.military,
                               quantity="40", lot="MIL-GONE"))
    issued = await post_movement(client, operator, {"kind": "issue", "lot_id": lot, "owner": w.military,
                                                    "quantity": "40"})
    assert issued.status_code == 201, issued.text
    uncleared = bearer(await make_token("operator", warehouses=[w.north]))
    assert (await client.get(f"/api/v1/lots/{lot}", headers=uncleared)).status_code == 404
    status = await client.post(f"/api/v1/lots/{lot}/status", headers=uncleared, json={"status": "quarantine"})
    assert status.status_code == 404 and status.json()["detail"] == f"lot {lot} does not exist"
    assert await pg_pool.fetchval("SELECT status FROM lots WHERE id = $1::uuid", lot) == "available"
    assert (await client.get(f"/api/v1/lots/{lot}", headers=operator)).status_code == 200  # cleared: it exists

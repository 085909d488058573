"""The plan-rotation job on a real database: orders first expiring first within a target's out-share
cap, the rest held back with a ``rotation_blocked`` alert, nothing planned where the region is at
emergency, nothing more on a second run, and ``rotation_overdue`` for orders past their dates."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from stockpile.api.app import create_app
from stockpile.config import Settings
from stockpile.jobs.catalog import catalog
from stockpile.jobs.runs import run_slot
from stockpile.store import readiness, snapshots
from stockpile.store import rotation_plan as rotation_plan_store
from stockpile.store.db import Database
from tests.factories import make_world, receive
from tests.live import make_admin_token

TODAY = datetime.now(timezone.utc).date()


def day(n: int) -> str:
    return (TODAY + timedelta(days=n)).isoformat()


@pytest.fixture
async def reserve(make_database, settings):
    """A database of its own (planning is national). Diesel at the north depot, owned by the civil
    bureau: lots A, B, C, D expiring in 10, 20, 45, 50 days (100.0 L each) and 1000.0 L of fresh
    stock; a fuel policy (due 60 days before expiry, a quarter of a target out at once); a target of
    1000.0 L there (floor 0.7, horizon 30 days). A depot in another region, at emergency, holds lot
    E expiring in 15 days."""
    url = make_database()
    token = await make_admin_token(url)
    db = Database(url, pool_size=4)
    async with AsyncTestClient(app=create_app(settings, url)) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        admin = dict(c.headers)
        assert (await c.put("/api/v1/regions/TEST-NATION", json={"name": "n"})).status_code == 201
        w = await make_world(c, admin, "R")
        lots = {}
        for code, days, quantity in (("A", 10, "100"), ("B", 20, "100"), ("C", 45, "100"), ("D", 50, "100"),
                                     ("FRESH", 600, "1000")):
            moved = await receive(c, admin, warehouse=w.north, material=w.diesel, owner=w.civil, quantity=quantity,
                                  lot=code, expires_on=day(days))
            lots[code] = moved["postings"][0]["account"]["lot_id"]
        assert (await c.put("/api/v1/regions/CRISIS", json={"name": "crisis", "parent": "TEST-NATION"})).status_code == 201
        assert (await c.put("/api/v1/warehouses/WH-CRISIS", json={
            "name": "crisis depot", "operator": w.civil, "region": "CRISIS", "kind": "civilian", "latitude": 1,
            "longitude": 1})).status_code == 201
        moved = await receive(c, admin, warehouse="WH-CRISIS", material=w.diesel, owner=w.civil, quantity="100",
                              lot="E", expires_on=day(15))
        lots["E"] = moved["postings"][0]["account"]["lot_id"]
        r = await c.put("/api/v1/rotation-policies/FUEL", json={
            "category": "fuel", "trigger_days_before_expiry": 60, "max_out_share": "0.25", "max_gap_days": 30,
            "lead_days": 14, "outlet": "sale"})
        assert r.status_code in (200, 201), r.text
        r = await c.put("/api/v1/reserve-targets/T-NORTH", json={
            "scope": {"warehouse": w.north}, "material": w.diesel, "quantity": "1000", "warning_ratio": "0.9",
            "critical_ratio": "0.8", "floor_ratio": "0.7", "horizon_days": 30})
        assert r.status_code in (200, 201), r.text
        async with db.transaction() as tx:
            principal = await tx.pg.fetchval("SELECT id FROM principals WHERE name = 'live-admin'")
            crisis = await tx.pg.fetchval("SELECT id FROM regions WHERE code = 'CRISIS'")
            await readiness.declare(tx.pg, region_id=crisis, level="emergency", reason="flooding",
                                    principal_id=principal, pending=False, ends_at=None)
        yield c, db, lots, (principal, crisis)
    await db.dispose()


async def run(db: Database, slot: int) -> dict:
    outcome = await run_slot(db, catalog(Settings())["plan-rotation"], slot=slot)
    assert outcome.ran and outcome.outcome == "ok", outcome.detail
    return outcome.detail


async def orders(db: Database) -> dict[str, asyncpg.Record]:
    async with db.transaction() as tx:
        rows = await tx.pg.fetch(
            """SELECT o.id::text AS id, l.code AS lot, o.quantity, o.out_by, o.in_by, o.outlet, o.state, o.explanation
                 FROM rotation_orders o JOIN lots l ON l.id = o.lot_id ORDER BY l.code, o.created_at""")
    return {r["lot"]: r for r in rows}


async def open_alerts(db: Database) -> dict[tuple[str, str], asyncpg.Record]:
    async with db.transaction() as tx:
        rows = await tx.pg.fetch("SELECT kind, subject, severity, details FROM alerts WHERE state <> 'resolved'"
                                 " AND kind IN ('rotation_blocked', 'rotation_overdue')")
    return {(r["kind"], r["subject"]): r for r in rows}


async def rotation_gauges(db: Database) -> dict[tuple, float]:
    """The rotation series of the metric snapshot the refresh-metrics job takes."""
    outcome = await run_slot(db, catalog(Settings())["refresh-metrics"], slot=-100)
    assert outcome.outcome == "ok", outcome.detail
    async with db.transaction() as tx:
        _, samples = await snapshots.load(tx.pg, "business")
    return {(s["metric"], tuple(sorted(s["labels"].items()))): s["value"] for s in samples
            if s["metric"].startswith("stockpile_rotation_")}


async def test_planning_twice_orders_once_within_the_cap_and_holds_the_rest_back(reserve):
    _, db, _, _ = reserve
    first = await run(db, -1)
    assert (first["created"], first["suspended"], first["overdue"]) == (3, 1, 0)
    [blocked] = first["blocked"]
    assert (blocked["target"], blocked["positions"], blocked["first_lot"]) == ("T-NORTH", 1, "D")
    assert blocked["reasons"] == {"first_expiring": 1}

    planned = await orders(db)
    # 250.0 L may be out: A and B in full (they die within the horizon), 50.0 L of C; D waits for C
    assert {lot: o["quantity"] for lot, o in planned.items()} == {"A": 1000, "B": 1000, "C": 500}
    assert (planned["A"]["out_by"], planned["A"]["in_by"]) == (TODAY, TODAY + timedelta(days=30))
    assert (planned["B"]["out_by"], planned["B"]["in_by"]) == (TODAY + timedelta(days=6), TODAY + timedelta(days=36))
    assert planned["C"]["out_by"] == TODAY + timedelta(days=31)
    assert all(o["state"] == "planned" and o["outlet"] == "sale" for o in planned.values())
    assert "50.0 out now, 50.0 held back" in planned["C"]["explanation"]
    assert "out-share cap reached: target T-NORTH" in planned["C"]["explanation"]

    alerts = await open_alerts(db)
    assert set(alerts) == {("rotation_blocked", "target:T-NORTH")}
    assert "waits for lot C" in alerts["rotation_blocked", "target:T-NORTH"]["details"]

    second = await run(db, -2)
    assert (second["created"], second["suspended"]) == (0, 1)
    assert [b["target"] for b in second["blocked"]] == ["T-NORTH"]
    assert {lot: o["quantity"] for lot, o in (await orders(db)).items()} == {"A": 1000, "B": 1000, "C": 500}
    assert set(await open_alerts(db)) == {("rotation_blocked", "target:T-NORTH")}


async def test_rotation_resumes_when_the_region_returns_to_peacetime(reserve):
    _, db, _, (principal, crisis) = reserve
    await run(db, -1)
    assert "E" not in await orders(db)
    async with db.transaction() as tx:
        await readiness.declare(tx.pg, region_id=crisis, level="peacetime", reason="water receded",
                                principal_id=principal, pending=False, ends_at=None)
    after = await run(db, -2)
    assert (after["created"], after["suspended"]) == (1, 0)
    e = (await orders(db))["E"]
    assert (e["quantity"], e["out_by"]) == (1000, TODAY + timedelta(days=1))  # no target there: all of it


async def test_late_orders_raise_rotation_overdue_until_they_are_worked_or_cancelled(reserve):
    c, db, _, _ = reserve
    await run(db, -1)
    planned = await orders(db)
    async with db.transaction() as tx:  # as if planned a while ago: A was due out 3 days ago, B back yesterday
        await tx.pg.execute("UPDATE rotation_orders SET out_by = $2, in_by = $3 WHERE id = $1::uuid",
                            planned["A"]["id"], TODAY - timedelta(days=3), TODAY + timedelta(days=27))
        await tx.pg.execute("UPDATE rotation_orders SET out_by = $2, in_by = $3 WHERE id = $1::uuid",
                            planned["B"]["id"], TODAY - timedelta(days=31), TODAY - timedelta(days=1))
    late = await run(db, -2)
    assert late["overdue"] == 2
    alerts = await open_alerts(db)
    assert alerts["rotation_overdue", f"rotation_order:{planned['A']['id']}"]["severity"] == "warning"
    assert alerts["rotation_overdue", f"rotation_order:{planned['B']['id']}"]["severity"] == "critical"
    gauges = await rotation_gauges(db)
    overdue = {labels: value for (name, labels), value in gauges.items() if name == "stockpile_rotation_overdue_quantity"}
    assert {key: value for key, value in gauges.items() if key[0] == "stockpile_rotation_orders"} == {
        ("stockpile_rotation_orders", (("state", "planned"),)): 3.0,
        ("stockpile_rotation_orders", (("state", "in_progress"),)): 0.0,
        ("stockpile_rotation_orders", (("state", "completed"),)): 0.0,
        ("stockpile_rotation_orders", (("state", "cancelled"),)): 0.0,
    }
    assert overdue.pop((("category", "fuel"), ("unit", "L"))) == 200.0  # A and B, not back
    assert set(overdue.values()) <= {0.0}  # every other category and unit: nothing overdue, shown as 0

    r = await c.post(f"/api/v1/rotation-orders/{planned['B']['id']}/cancel", json={"reason": "buyer withdrew"})
    assert r.status_code == 200, r.text
    again = await run(db, -3)
    assert again["overdue"] == 1
    alerts = await open_alerts(db)
    assert ("rotation_overdue", f"rotation_order:{planned['B']['id']}") not in alerts
    assert ("rotation_overdue", f"rotation_order:{planned['A']['id']}") in alerts
    # B's position is due again and had its order cancelled: the planner orders it anew
    assert again["created"] == 1
    replanned = await orders(db)
    assert replanned["B"]["state"] == "planned" and replanned["B"]["id"] != planned["B"]["id"]


async def test_a_run_that_opens_many_orders_leaves_statistics_that_know_them(reserve, monkeypatch):
    """Approvals read open orders right after a first national run: the run analyses the orders it
    opened in bulk, so those reads are not planned for an empty table (here the bulk is 3 orders)."""
    _, db, _, _ = reserve
    monkeypatch.setattr(rotation_plan_store, "ANALYZE_AFTER", 3)
    known = "SELECT reltuples FROM pg_class WHERE relname = 'rotation_orders'"
    async with db.transaction() as tx:
        assert await tx.pg.fetchval(known) < 3
    assert (await run(db, -1))["created"] == 3
    async with db.transaction() as tx:
        assert await tx.pg.fetchval(known) == 3


async def test_a_target_changed_between_the_reads_is_weighed_as_the_coverage_counted_it(reserve):
    """A run makes ready on a second connection while the first takes coverage. When T-NORTH grows
    from 1000.0 to 5000.0 L in between, its floor (3500.0 L, over the 1200.0 L it counts) holds C
    back: the run is made again of the coverage's own rows, not weighed on the target first read
    (which would let 50.0 L of C go within its out-share cap)."""
    from stockpile.services import rotation_plan
    from stockpile.store import coverage

    _, db, _, _ = reserve
    async with db.transaction() as tx:
        reads = await rotation_plan._read(tx.pg, TODAY)
        ready = reads.ready(TODAY)
        covered = await coverage.coverage(tx.pg, today=TODAY, region=None, category=None)
        assert ready.weighing(covered, TODAY)[0] is ready.run  # nothing changed: the run made ready

        await tx.pg.execute("UPDATE reserve_targets SET quantity = 5000 WHERE code = 'T-NORTH'")
        covered = await coverage.coverage(tx.pg, today=TODAY, region=None, category=None)
        run_, targets, rows = ready.weighing(covered, TODAY)
        assert run_ is not ready.run and [(t.code, t.quantity) for t in targets] == [("T-NORTH", 5000)]
        assert [r["quantity"] for r in rows] == [5000]
        result = run_.plan({r["code"]: r["usable"] for r in covered}, reads.open_orders)
        await tx.pg.execute("UPDATE reserve_targets SET quantity = 1000 WHERE code = 'T-NORTH'")
    assert sorted((o.position.lot_code, o.quantity) for o in result.orders) == [("A", 1000), ("B", 1000)]
    assert [(b.position.lot_code, b.reason) for b in result.blocked] == [("C", "floor"), ("D", "first_expiring")]


async def test_the_open_orders_summed_in_sql_weigh_on_each_target_as_the_rule_order_by_order(make_database,
                                                                                             settings):
    """Open orders on a drawn reserve — planned and in progress, part out and part back, on lots
    quarantined, expired or dying within a horizon, some changed once ordered; completed and cancelled
    ones beside them — weigh on every target (warehouse or region, material, category or group, owner
    or sector, horizon) as ``open_orders_of`` says, order by order; and each due position knows what
    its order has to take."""
    import random

    from stockpile.domain.coverage import Holding
    from stockpile.domain.rotation import OpenOrder, is_due, open_orders_of
    from stockpile.services import rotation_plan
    from stockpile.store import rotation_plan as store

    rng = random.Random(12)
    url = make_database()
    token = await make_admin_token(url)
    db = Database(url, pool_size=2)
    async with AsyncTestClient(app=create_app(settings, url)) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        tree = {"TEST-NATION": None, "EAST": "TEST-NATION", "NORTH-EAST": "EAST", "WEST": "TEST-NATION"}
        for code, parent in tree.items():
            assert (await c.put(f"/api/v1/regions/{code}", json={"name": code, "parent": parent})).status_code == 201
        owners = {f"O{i}": sector for i, sector in enumerate(["military", "civilian", "enterprise", "civilian"])}
        for code, sector in owners.items():
            assert (await c.put(f"/api/v1/parties/{code}", json={"name": code, "sector": sector})).status_code == 201
        warehouses = {f"W{i}": region for i, region in enumerate(["NORTH-EAST", "NORTH-EAST", "EAST", "WEST"])}
        for code, region in warehouses.items():
            assert (await c.put(f"/api/v1/warehouses/{code}", json={
                "name": code, "operator": "O1", "region": region, "kind": "joint", "latitude": 1,
                "longitude": 1})).status_code == 201
        materials = {"M0": ("fuel", 1, "G"), "M1": ("fuel", 0, "G"), "M2": ("food", 3, None)}
        for code, (category, decimals, group) in materials.items():
            assert (await c.put(f"/api/v1/materials/{code}", json={
                "name": code, "category": category, "unit": "u", "decimals": decimals, "shelf_life_days": 900,
                "storage_class": "ambient", "substitution_group": group})).status_code == 201
        for category in ("fuel", "food"):
            assert (await c.put(f"/api/v1/rotation-policies/ROT-{category}", json={
                "category": category, "trigger_days_before_expiry": 120})).status_code in (200, 201)
        for i in range(40):
            material = rng.choice(list(materials))
            decimals = materials[material][1]
            moved = await receive(c, dict(c.headers), warehouse=rng.choice(list(warehouses)), material=material,
                                  owner=rng.choice(list(owners)), lot=f"L{i}",
                                  quantity=f"{rng.randint(10, 5000) / 10 ** decimals:.{decimals}f}",
                                  expires_on=day(rng.choice([-5, 0, 3, 8, 20, 31, 45, 91, 400])))
            if rng.random() < 0.15:
                lot_id = moved["postings"][0]["account"]["lot_id"]
                assert (await c.post(f"/api/v1/lots/{lot_id}/status",
                                     json={"status": "quarantine", "reason": "test"})).status_code == 200
        for i in range(16):
            by, chosen = rng.choice(["material", "category", "substitution_group"]), rng.choice(list(materials))
            selects = {"material": chosen, "category": materials[chosen][0], "substitution_group": "G"}[by]
            holder = rng.choice([{}, {"owner": rng.choice(list(owners))},
                                 {"sector": rng.choice(["military", "civilian"])}])
            scope = rng.choice([{"warehouse": rng.choice(list(warehouses))}, {"region": rng.choice(list(tree))}])
            r = await c.put(f"/api/v1/reserve-targets/T{i}", json={
                "scope": scope, "quantity": "100", "horizon_days": rng.choice([0, 7, 30, 90]), by: selects, **holder})
            assert r.status_code in (200, 201), r.text

    async with db.transaction() as tx:
        pg = tx.pg
        positions = await pg.fetch("SELECT a.lot_id, a.owner_id, a.balance FROM accounts a WHERE a.type = 'stock'")
        policy = await pg.fetchval("SELECT min(id) FROM rotation_policies")
        for p in positions:
            quantity = rng.randint(1, p["balance"])
            out = rng.choice([0, quantity // 2, quantity])
            for state in rng.sample(["planned", "in_progress", "completed", "cancelled"], rng.randint(0, 2)):
                if state in ("planned", "in_progress") and await pg.fetchval(
                        "SELECT count(*) FROM rotation_orders WHERE lot_id = $1 AND owner_id = $2"
                        " AND state IN ('planned', 'in_progress')", p["lot_id"], p["owner_id"]):
                    continue
                await pg.execute(
                    """INSERT INTO rotation_orders (lot_id, owner_id, policy_id, quantity, out_quantity, in_quantity,
                                                    out_by, in_by, outlet, state, explanation)
                       VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 'sale', $8, 'drawn')""",
                    p["lot_id"], p["owner_id"], policy, quantity, out, rng.randint(0, out), TODAY, state)
        # lots quarantined, released and re-dated once their orders are open: the orders follow (migration 0020)
        for lot_id in rng.sample(sorted({p["lot_id"] for p in positions}), 8):
            await pg.execute("UPDATE lots SET status = $2, expires_on = expires_on + $3::int WHERE id = $1", lot_id,
                             rng.choice(["available", "quarantine", "recalled"]), rng.choice([-40, 0, 30, 60]))
        opened = await pg.fetch(
            """SELECT o.id::text AS id, o.lot_id::text AS lot_id, w.code AS warehouse, r.code AS region,
                      m.code AS material, m.decimals, ow.code AS owner, ow.sector, a.balance, a.reserved, l.status,
                      l.expires_on, o.quantity, o.out_quantity, o.in_quantity
                 FROM rotation_orders o JOIN lots l ON l.id = o.lot_id JOIN warehouses w ON w.id = l.warehouse_id
                 JOIN regions r ON r.id = w.region_id JOIN materials m ON m.id = l.material_id
                 JOIN parties ow ON ow.id = o.owner_id
                 JOIN accounts a ON a.lot_id = o.lot_id AND a.owner_id = o.owner_id AND a.type = 'stock'
                WHERE o.state IN ('planned', 'in_progress')""")
        targets, _ = await rotation_plan.targets(pg)
        due = await store.due_positions(pg, TODAY)
        every = await pg.fetch(
            """SELECT a.lot_id::text AS lot_id, ow.code AS owner, a.balance, a.reserved, l.status, l.expires_on,
                      m.shelf_life_days, o.quantity - o.out_quantity AS ordered
                 FROM accounts a JOIN lots l ON l.id = a.lot_id JOIN parties ow ON ow.id = a.owner_id
                 JOIN materials m ON m.id = l.material_id
                 LEFT JOIN rotation_orders o ON o.lot_id = a.lot_id AND o.owner_id = a.owner_id
                                            AND o.state IN ('planned', 'in_progress')
                WHERE a.type = 'stock'""")
        policies = [rotation_plan._policy(r) for r in await store.policies(pg)]  # both trigger 120 days out
        summed = await rotation_plan.open_orders(pg, TODAY, due)
        total = await pg.fetchval("SELECT count(*) FROM rotation_orders")
    await db.dispose()

    rule = open_orders_of([OpenOrder(
        o["id"], o["lot_id"], Holding(o["warehouse"], o["region"], o["material"], o["owner"], o["sector"], o["balance"],
                                      o["reserved"], o["status"], o["expires_on"]),
        o["decimals"], o["quantity"], o["out_quantity"], o["in_quantity"]) for o in opened], targets, TODAY)
    assert total > len(opened) > 10  # closed orders beside the open ones
    assert summed.by_target == rule.by_target
    assert len(rule.by_target) >= 8 and any(s.to_go != s.out for s in rule.by_target.values())
    assert any(s.to_go == 0 < s.out for s in rule.by_target.values())  # out, but nothing of what it counts
    assert summed.by_position == {k: v for k, v in rule.by_position.items()
                                  if k in {(r["lot_id"], r["owner"]) for r in due}}
    assert summed.by_position and all(
        r["balance"] - r["reserved"] > (r["ordered"] or 0) for r in due)  # an order taking all it has: left out
    # the due positions are those the policy calls due, position by position (found in SQL by index)
    assert sorted((r["lot_id"], r["owner"]) for r in due) == sorted(
        (p["lot_id"], p["owner"]) for p in every
        if p["status"] == "available" and p["balance"] - p["reserved"] > max(p["ordered"] or 0, 0)
        and is_due(p["expires_on"], p["shelf_life_days"], policies[0], TODAY))
    assert 0 < len(due) < len(every)

"""Alert lifecycle: open → update → acknowledge → resolve, one unresolved alert per (kind, subject)
even under concurrent evaluations, history kept, every announcement in the outbox."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta, timezone

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from stockpile.api.app import create_app
from stockpile.services import alerts
from stockpile.store.db import Database
from stockpile.store.engine import asyncpg_dsn
from tests.factories import idem, make_world, receive
from tests.live import make_admin_token

TODAY = datetime.now(timezone.utc).date()


def day(n: int) -> str:
    return (TODAY + timedelta(days=n)).isoformat()


@pytest.fixture
async def fresh(make_database, settings):
    """A database of its own (alerts are global), an API client on it, and an evaluation helper."""
    url = make_database()
    token = await make_admin_token(url)
    db = Database(url, pool_size=4)

    async def evaluate(today: date = TODAY, within: int = 30) -> dict:
        async with db.transaction() as tx:
            return await alerts.evaluate(tx.pg, today=today, now=datetime.now(timezone.utc), expiring_days=within)

    async with AsyncTestClient(app=create_app(settings, url)) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        assert (await c.put("/api/v1/regions/TEST-NATION", json={"name": "n"})).status_code == 201
        yield c, db, evaluate, url
    await db.dispose()


async def _alerts(db: Database) -> list[asyncpg.Record]:
    async with db.transaction() as tx:
        return await tx.pg.fetch("SELECT kind, subject, severity, state FROM alerts ORDER BY kind, subject")


async def _outbox(db: Database) -> list[str]:
    async with db.transaction() as tx:
        return [r["topic"] for r in await tx.pg.fetch("SELECT topic FROM outbox ORDER BY created_at, topic")]


async def test_an_alert_opens_escalates_is_acknowledged_and_resolves(fresh):
    c, db, evaluate, _ = fresh
    admin = dict(c.headers)
    w = await make_world(c, admin, "A")
    lot = (await receive(c, admin, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="100", lot="E",
                         expires_on=day(20)))["postings"][0]["account"]["lot_id"]
    assert (await evaluate())["opened"] == 1
    assert [(a["kind"], a["severity"], a["state"]) for a in await _alerts(db)] == [("expiring", "warning", "open")]
    assert await _outbox(db) == ["alert.opened"]

    seen = (await c.get("/api/v1/alerts", params={"state": "open"})).json()["items"][0]
    async with db.transaction() as tx:
        version = await tx.pg.fetchval("SELECT xmin::text FROM alerts")
    assert (await evaluate())["still_open"] == 1  # re-evaluation keeps one alert…
    async with db.transaction() as tx:
        assert await tx.pg.fetchval("SELECT xmin::text FROM alerts") == version  # …without rewriting it…
    again = (await c.get(f"/api/v1/alerts/{seen['id']}")).json()
    assert datetime.fromisoformat(again["last_seen_at"]) > datetime.fromisoformat(seen["last_seen_at"])  # …yet seen again
    assert (await evaluate(today=TODAY + timedelta(days=15)))["escalated"] == 1  # 5 days left: critical
    listed = (await c.get("/api/v1/alerts", params={"state": "open"})).json()["items"]
    assert [(a["kind"], a["severity"]) for a in listed] == [("expiring", "critical")]

    acked = await c.post(f"/api/v1/alerts/{listed[0]['id']}/acknowledge", json={"note": "rotation ordered"})
    assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"
    assert (await evaluate(today=TODAY + timedelta(days=15)))["still_open"] == 1
    assert [a["state"] for a in await _alerts(db)] == ["acknowledged"]

    await c.post("/api/v1/movements", headers=idem(), json={"kind": "write_off", "lot_id": lot, "owner": w.civil,
                                                            "quantity": "100", "reason": "rotated out"})
    assert (await evaluate(today=TODAY + timedelta(days=15)))["resolved"] == 1
    one = (await c.get(f"/api/v1/alerts/{listed[0]['id']}")).json()
    assert one["state"] == "resolved"
    assert [h["event"] for h in one["history"]] == ["opened", "escalated", "acknowledged", "resolved"]
    assert sorted(await _outbox(db)) == ["alert.escalated", "alert.opened", "alert.resolved"]
    again = await c.post(f"/api/v1/alerts/{listed[0]['id']}/acknowledge", json={})
    assert again.status_code == 409


async def test_expired_stock_shortfalls_and_overdue_transfers_raise_their_kinds(fresh):
    c, db, evaluate, _ = fresh
    admin = dict(c.headers)
    w = await make_world(c, admin, "B")
    await receive(c, admin, warehouse=w.north, material=w.vaccine, owner=w.civil, quantity="5", lot="OLD", expires_on=day(-3))
    good = await receive(c, admin, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="50", lot="OK",
                         expires_on=day(900))
    assert (await c.put("/api/v1/reserve-targets/T-B", json={
        "scope": {"region": w.region}, "material": w.diesel, "quantity": "100"})).status_code == 201
    sent = await c.post("/api/v1/transfers", headers=idem(), json={
        "from_warehouse": w.north, "to_warehouse": w.south, "expected_at": "2020-01-01T00:00:00Z",
        "lines": [{"lot_id": good["postings"][0]["account"]["lot_id"], "owner": w.civil, "quantity": "1"}]})
    assert sent.status_code == 201
    await evaluate()
    kinds = {(a["kind"], a["subject"].split(":")[0], a["severity"]) for a in await _alerts(db)}
    assert kinds == {("expired_on_hand", "lot", "critical"), ("shortfall", "target", "critical"),
                     ("transfer_overdue", "transfer", "warning")}


async def test_two_concurrent_evaluations_open_each_alert_once(fresh):
    c, db, evaluate, _ = fresh
    admin = dict(c.headers)
    w = await make_world(c, admin, "C")
    for i in range(5):
        await receive(c, admin, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="1", lot=f"S{i}",
                      expires_on=day(3 + i))
    results = await asyncio.gather(*(evaluate() for _ in range(4)))
    assert sum(r["opened"] for r in results) == 5
    assert len(await _alerts(db)) == 5 and len(await _outbox(db)) == 5


async def test_check_ledger_raises_and_resolves_ledger_invariant(fresh):
    from stockpile.config import Settings
    from stockpile.jobs.catalog import catalog
    from stockpile.jobs.runs import run_slot

    c, db, _, url = fresh
    admin = dict(c.headers)
    w = await make_world(c, admin, "D")
    lot = (await receive(c, admin, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="1",
                         lot="L"))["postings"][0]["account"]["lot_id"]
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        await conn.execute("SET session_replication_role = replica")
        await conn.execute("UPDATE accounts SET balance = balance + 1 WHERE lot_id = $1::uuid", lot)
        job = catalog(Settings())["check-ledger"]
        first = await run_slot(db, job, slot=-1)
        assert first.detail["alerts"]["opened"] == 1
        assert [(a["kind"], a["severity"]) for a in await _alerts(db)] == [("ledger_invariant", "critical")]
        await conn.execute("UPDATE accounts SET balance = balance - 1 WHERE lot_id = $1::uuid", lot)
        second = await run_slot(db, job, slot=-2)
        assert second.detail["alerts"]["resolved"] == 1
    finally:
        await conn.close()


async def test_uncleared_readers_do_not_see_alerts_about_military_stock(fresh, settings):
    c, db, evaluate, url = fresh
    admin = dict(c.headers)
    w = await make_world(c, admin, "E")
    await receive(c, admin, warehouse=w.north, material=w.diesel, owner=w.military, quantity="1", lot="M",
                  expires_on=day(5))
    await evaluate()
    created = await c.post("/api/v1/tokens", json={"principal": "alert-reader", "roles": ["auditor"]})
    uncleared = {"Authorization": f"Bearer {created.json()['token']}"}
    assert len((await c.get("/api/v1/alerts")).json()["items"]) == 1
    assert (await c.get("/api/v1/alerts", headers=uncleared)).json()["items"] == []


async def test_an_expiry_alert_follows_the_quantity_on_hand_and_an_unchanged_one_is_not_rewritten(fresh):
    c, db, evaluate, _ = fresh
    admin = dict(c.headers)
    w = await make_world(c, admin, "R")
    moving = (await receive(c, admin, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="100", lot="MOV",
                            expires_on=day(10)))["postings"][0]["account"]["lot_id"]
    await receive(c, admin, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="40", lot="STILL",
                  expires_on=day(12))
    assert (await evaluate())["opened"] == 2

    async def state() -> dict[str, tuple]:
        async with db.transaction() as tx:
            rows = await tx.pg.fetch("SELECT details->>'lot_code' AS lot, title, details->>'on_hand' AS on_hand, "
                                     "details->>'unit' AS unit, xmin::text AS version FROM alerts")
        return {r["lot"]: (r["title"], r["on_hand"], r["unit"], r["version"]) for r in rows}

    before = await state()
    assert before["MOV"][:3] == (f"lot MOV of {w.diesel} at {w.north} expires on {day(10)} with 100.0 L on hand",
                                 "100.0", "L")
    issued = await c.post("/api/v1/movements", headers=idem(), json={
        "kind": "issue", "lot_id": moving, "owner": w.civil, "quantity": "30", "reason": "generator test"})
    assert issued.status_code == 201
    outcome = await evaluate()
    assert (outcome["opened"], outcome["resolved"], outcome["still_open"]) == (0, 0, 2)
    after = await state()
    assert after["MOV"][:2] == (f"lot MOV of {w.diesel} at {w.north} expires on {day(10)} with 70.0 L on hand", "70.0")
    assert after["STILL"] == before["STILL"]  # same row version: an unchanged alert is not written
    assert after["MOV"][3] != before["MOV"][3]

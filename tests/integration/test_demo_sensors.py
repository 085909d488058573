"""The demo's sensors: registered with a device token and their last hours of readings, in which the
evaluation finds the one cold-chain excursion and the one slow leak the simulator plays — and
nothing else; simulating the same minutes again stores nothing twice."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from stockpile.demo import load_demo
from stockpile.demo.sensors import DEMO_SENSORS, SCENARIO
from stockpile.jobs.catalog import catalog
from stockpile.jobs.runs import manual_slot, run_slot
from stockpile.services import principals
from stockpile.services.sensor_simulation import simulate
from stockpile.store.db import Database


@pytest.fixture(scope="module")
async def demo(make_database):
    url = make_database()
    now = datetime.now(timezone.utc)
    result = await load_demo(url, now=now)
    db = Database(url, pool_size=2)
    yield db, result, now
    await db.dispose()


async def test_the_demo_registers_its_sensors_and_a_device_token_and_their_last_hours(demo):
    db, result, _ = demo
    async with db.transaction() as tx:
        counts = {r["code"]: r["n"] for r in await tx.pg.fetch(
            "SELECT s.code, count(r.*) AS n FROM sensors s LEFT JOIN sensor_readings r ON r.sensor_id = s.id "
            "GROUP BY s.code")}
    assert set(counts) == {s[0] for s in DEMO_SENSORS}
    assert all(n >= 6 * 60 for n in counts.values()), counts
    assert [name for role, name, _ in result.tokens if role == "sensor"] == ["demo-sensor"]


async def test_the_evaluation_finds_the_excursion_and_the_leak_and_nothing_else(demo, settings):
    db, _, _ = demo
    outcome = await run_slot(db, catalog(settings)["evaluate-sensors"], slot=manual_slot())
    assert outcome.outcome == "ok", outcome.detail
    async with db.transaction() as tx:
        open_ = {(r["kind"], r["subject"]) for r in await tx.pg.fetch(
            "SELECT kind, subject FROM alerts WHERE state = 'open' AND subject LIKE 'sensor:%'")}
        quarantined = await tx.pg.fetchval(
            "SELECT count(*) FROM lot_events e JOIN principals p ON p.id = e.principal_id WHERE p.name = $1",
            f"sensor:{SCENARIO.excursion}")
    assert open_ == {("cold_chain_excursion", f"sensor:{SCENARIO.excursion}"),
                     ("stock_variance", f"sensor:{SCENARIO.leak}")}
    assert quarantined >= 1


async def test_simulating_the_same_minutes_again_stores_nothing_twice(demo):
    db, _, now = demo
    end = now.replace(second=0, microsecond=0)
    async with db.transaction() as tx:
        actor = await principals.command_line(tx.pg, "test")
        done = await simulate(tx.pg, actor, SCENARIO, start=end - timedelta(hours=1), end=end,
                              step=timedelta(minutes=1), seed=99, retention_days=90)
    assert done.accepted == 0 and done.duplicates == 61 * len(DEMO_SENSORS) and not done.refused

"""Keeping readings: the ``maintain-readings`` job makes the week's partitions ahead and replaces raw
readings past their retention by hourly rollups that hold what they replaced — the same count,
minimum, maximum and mean per hour and per day — and running it again changes nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from litestar.testing import AsyncTestClient

from stockpile.api.app import create_app
from stockpile.jobs.catalog import catalog
from stockpile.jobs.runs import manual_slot, run_slot
from stockpile.store.db import Database
from tests.factories import list_all, make_world
from tests.live import make_admin_token


@pytest.fixture
async def fresh(make_database, settings):
    """A database of its own (the job rolls up every sensor's old readings) and a client on it."""
    url = make_database()
    token = await make_admin_token(url)
    async with AsyncTestClient(app=create_app(settings, url)) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        assert (await c.put("/api/v1/regions/TEST-NATION", json={"name": "n"})).status_code == 201
        yield c, url


async def maintain(url: str, settings, retention_days: int) -> dict:
    db = Database(url, pool_size=2)
    try:
        job = catalog(replace(settings, readings_retention_days=retention_days))["maintain-readings"]
        outcome = await run_slot(db, job, slot=manual_slot())
        assert outcome.outcome == "ok", outcome.detail
        return outcome.detail
    finally:
        await db.dispose()


async def test_rollups_keep_every_hour_and_day_as_the_raw_readings_had_it(fresh, settings):
    client, url = fresh
    headers = dict(client.headers)
    w = await make_world(client, headers, "RET")
    code = "P-RET"
    r = await client.put(f"/api/v1/sensors/{code}", json={
        "warehouse": w.north, "kind": "temperature", "storage_class": "cold_chain", "unit": "C",
        "band": {"min": "2", "max": "8"}, "tolerance_minutes": 30})
    assert r.status_code == 201, r.text
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    start = now - timedelta(days=3)
    readings = [{"sensor": code, "at": (start + timedelta(minutes=7 * i)).isoformat(),
                 "value": f"{4 + (i * 37 % 23) / 10:.2f}"} for i in range(3 * 24 * 60 // 7)]
    posted = await client.post("/api/v1/sensor-readings", json={"readings": readings})
    assert posted.json()["accepted"] == len(readings), posted.text

    async def aggregates(step: int) -> list[dict]:
        return await list_all(client, headers, f"/api/v1/sensors/{code}/readings", step=step, limit=1000,
                              since=(start - timedelta(days=1)).isoformat(), until=(now + timedelta(hours=1)).isoformat())

    hourly, daily = await aggregates(3600), await aggregates(86400)
    assert sum(h["readings"] for h in hourly) == len(readings)

    done = await maintain(url, settings, retention_days=0)  # everything before today is past retention

    today = now.replace(hour=0, minute=0)
    kept = [x for x in readings if datetime.fromisoformat(x["at"]) >= today]
    assert done["readings_rolled_up"] == len(readings) - len(kept) > 0
    raw = await list_all(client, headers, f"/api/v1/sensors/{code}/readings", limit=1000,
                         since=(start - timedelta(days=1)).isoformat(), until=(now + timedelta(hours=1)).isoformat())
    assert len(raw) == len(kept)
    assert await aggregates(3600) == hourly
    assert await aggregates(86400) == daily

    again = await maintain(url, settings, retention_days=0)
    assert again["readings_rolled_up"] == 0 and again["partitions_made"] == 0
    assert await aggregates(3600) == hourly


async def test_the_week_ahead_has_its_partitions_and_a_reading_without_one_is_kept(fresh, settings):
    client, url = fresh
    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as tx:
            names = {r["relname"] for r in await tx.pg.fetch(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'sensor_readings'::regclass")}
        today = datetime.now(timezone.utc).date()
        assert {f"sensor_readings_{(today + timedelta(days=d)):%Y%m%d}" for d in range(0, 8)} <= names
        assert "sensor_readings_default" in names
        # a partition made later takes over the rows the default partition caught for its day
        day = today + timedelta(days=30)
        async with db.transaction() as tx:
            await tx.pg.execute("INSERT INTO regions (code, name) VALUES ('R-P', 'r')")
            await tx.pg.execute("INSERT INTO parties (code, name, sector) VALUES ('P-P', 'p', 'civilian')")
            await tx.pg.execute("""INSERT INTO warehouses (code, name, operator_id, region_id, kind, latitude, longitude)
                                   SELECT 'W-P', 'w', p.id, r.id, 'civilian', 60, 25 FROM parties p, regions r
                                    WHERE p.code = 'P-P' AND r.code = 'R-P'""")
            sensor = await tx.pg.fetchval("""INSERT INTO sensors (code, warehouse_id, kind, storage_class, unit, band_max,
                                                                  tolerance_minutes)
                                             SELECT 'S-P', id, 'humidity', 'ambient', '%', 70, 30 FROM warehouses
                                              WHERE code = 'W-P' RETURNING id""")
            await tx.pg.execute("INSERT INTO sensor_readings VALUES ($1, $2, 55)", sensor,
                                datetime(day.year, day.month, day.day, 12, tzinfo=timezone.utc))
            assert await tx.pg.fetchval("SELECT count(*) FROM sensor_readings_default") == 1
            assert await tx.pg.fetchval("SELECT sensor_readings_partition($1)", day)
            assert await tx.pg.fetchval("SELECT count(*) FROM sensor_readings_default") == 0
            assert await tx.pg.fetchval(f'SELECT count(*) FROM "sensor_readings_{day:%Y%m%d}"') == 1
    finally:
        await db.dispose()

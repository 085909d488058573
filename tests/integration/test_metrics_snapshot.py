"""Dashboards' metrics: the worker aggregates, the API serves the snapshot from memory — no query
at scrape time — and the output passes `promtool check metrics`."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from dataclasses import replace

import asyncpg
from litestar.testing import AsyncTestClient

from stockpile.api.app import create_app
from stockpile.config import Settings
from stockpile.jobs.catalog import catalog
from stockpile.jobs.runs import run_slot
from stockpile.store.db import Database
from stockpile.store.engine import asyncpg_dsn
from tests.factories import make_world, receive
from tests.live import make_admin_token


class Unreachable:
    """A database that fails every use: scraping must not need one."""

    def transaction(self):
        raise AssertionError("a scrape touched the database")


async def test_the_api_serves_the_workers_snapshot_without_querying(make_database, settings):
    url = make_database()
    token = await make_admin_token(url)
    app = create_app(replace(settings, metrics_reload_seconds=1, metrics_public=True), url)
    async with AsyncTestClient(app=app) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        assert (await c.put("/api/v1/regions/TEST-NATION", json={"name": "n"})).status_code == 201
        w = await make_world(c, dict(c.headers), "MX")
        moved = await receive(c, dict(c.headers), warehouse=w.north, material=w.diesel, owner=w.civil, quantity="1234.5",
                              lot="A")
        assert (await c.put("/api/v1/reserve-targets/T-MX", json={
            "scope": {"region": w.region}, "material": w.diesel, "quantity": "2469"})).status_code == 201
        db = Database(url, pool_size=2)
        try:
            await run_slot(db, catalog(Settings())["seal-audit"], slot=-1)
            outcome = await run_slot(db, catalog(Settings())["refresh-metrics"], slot=-1)
        finally:
            await db.dispose()
        assert outcome.outcome == "ok" and outcome.detail["series"] > 0
        for _ in range(600):  # the reload runs every second; a loaded machine may take longer to get to it
            text = (await c.get("/metrics")).text
            if "stockpile_stock_quantity{" in text:
                break
            await asyncio.sleep(0.1)
        app.state.db = Unreachable()
        text = (await c.get("/metrics")).text
    assert f'stockpile_stock_quantity{{category="fuel",region="{w.region}",sector="civilian",unit="L"}} 1234.5' in text
    assert 'stockpile_coverage_ratio{target="T-MX"} 0.5' in text
    assert 'stockpile_targets{state="critical"} 1.0' in text
    assert 'stockpile_job_last_success_timestamp_seconds{job_name="seal-audit"}' in text
    assert 'stockpile_ledger_movements_total{kind="receipt"} 1.0' in text
    lot_id = moved["postings"][0]["account"]["lot_id"]
    assert lot_id not in text and w.north not in text  # aggregates only, never a lot or a warehouse
    promtool = shutil.which("promtool")
    assert promtool, "promtool is installed by ./dev test (Debian's prometheus package)"
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


async def test_series_stay_bounded_for_a_national_data_set_of_2000_warehouses(make_database, settings):
    """2,000 warehouses in 200 districts of 20 provinces, 30 owners of every sector, 50 materials,
    20,000 lots and 5,000 targets: the dashboards' series stay within 2,000, whatever the scale."""
    from bench.coverage import LOAD

    url = make_database()
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        await conn.execute(LOAD.format(warehouses=2000, lots=20000, targets=5000))
        # every material in its own unit, so stock series multiply by units as they would nationally
        await conn.execute("UPDATE materials SET unit = (ARRAY['L', 'kg', 't', 'pack', 'dose'])[1 + id % 5]")
        distinct_units = await conn.fetchval("SELECT count(DISTINCT unit) FROM materials")
    finally:
        await conn.close()
    db = Database(url, pool_size=2)
    try:
        for job in ("evaluate-alerts", "refresh-metrics"):
            outcome = await run_slot(db, catalog(Settings())[job], slot=-1)
            assert outcome.outcome == "ok", outcome.detail
    finally:
        await db.dispose()
    app = create_app(replace(settings, metrics_reload_seconds=1, metrics_public=True), url)
    async with AsyncTestClient(app=app) as c:
        for _ in range(50):  # the process-wide snapshot is replaced by this database's on the next reload
            text = (await c.get("/metrics")).text
            if 'region="P1"' in text:
                break
            await asyncio.sleep(0.1)
    series = [line for line in text.splitlines() if line and not line.startswith("#")]
    business = [line for line in series if line.startswith("stockpile_") and not line.startswith("stockpile_request")]
    stock = [line for line in series if line.startswith("stockpile_stock_quantity{")]
    assert distinct_units == 5
    assert len(stock) > 20 * 3  # every province and category is there: the data set really is national
    assert sum(1 for line in business if line.startswith("stockpile_coverage_ratio{")) == 100  # the worst targets only
    # no business series is labelled by a warehouse or a lot (request series carry route templates such
    # as /api/v1/lots/{lot_id} from whatever else ran in this process, and are bounded by the routes)
    assert not any(label in line for line in business for label in ('warehouse="', 'lot="', 'lot_id="'))
    assert len(business) <= 2000, f"{len(business)} business series"

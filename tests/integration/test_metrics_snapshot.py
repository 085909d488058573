"""Dashboards' metrics: the worker aggregates, the API serves the snapshot from memory — no query
at scrape time — and the output passes `promtool check metrics`."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from dataclasses import replace

from litestar.testing import AsyncTestClient

from stockpile.api.app import create_app
from stockpile.config import Settings
from stockpile.jobs.catalog import catalog
from stockpile.jobs.runs import run_slot
from stockpile.store.db import Database
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
        for _ in range(50):
            text = (await c.get("/metrics")).text
            if "stockpile_stock_quantity{" in text:
                break
            await asyncio.sleep(0.1)
        app.state.db = Unreachable()
        text = (await c.get("/metrics")).text
    assert f'stockpile_stock_quantity{{category="fuel",region="{w.region}",sector="civilian",unit="L"}} 1234.5' in text
    assert 'stockpile_coverage_ratio{target="T-MX"} 0.5' in text
    assert 'stockpile_targets{state="critical"} 1.0' in text
    assert 'stockpile_job_last_success_timestamp_seconds{job="seal-audit"}' in text
    assert 'stockpile_ledger_movements_total{kind="receipt"} 1.0' in text
    lot_id = moved["postings"][0]["account"]["lot_id"]
    assert lot_id not in text and w.north not in text  # aggregates only, never a lot or a warehouse
    promtool = shutil.which("promtool")
    assert promtool, "promtool is installed by ./dev test (Debian's prometheus package)"
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr

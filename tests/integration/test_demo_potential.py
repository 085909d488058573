"""The demo's mobilisation potential: a refinery, a mill and a pharmaceutical plant, surveyed, in the
potential view, one of them overdue for its survey, the refinery's jet fuel hidden from uncleared readers."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from stockpile.demo import load_demo
from stockpile.domain.access import Principal
from stockpile.services import alerts, capacities
from stockpile.store.db import Database

NOW = datetime.now(timezone.utc).replace(microsecond=0)
CLEARED = Principal(0, "reader", frozenset({"auditor"}), "military")
UNCLEARED = Principal(0, "reader", frozenset({"auditor"}))


@pytest.fixture(scope="module")
async def demo_db(make_database):
    url = make_database()
    await load_demo(url, seed=7, now=NOW)
    db = Database(url, pool_size=2)
    yield db
    await db.dispose()


async def test_the_demo_carries_a_refinery_a_mill_and_a_pharmaceutical_plant(demo_db):
    async with demo_db.transaction() as tx:
        listed = await capacities.listing(tx.pg, CLEARED, region=None, material=None, after=None, limit=100)
        refinery, surveys = await capacities.get(tx.pg, "CAP-REFINERY-NORTHPORT-DSL", CLEARED)
        seen = await capacities.listing(tx.pg, UNCLEARED, region=None, material=None, after=None, limit=100)
    assert {r["code"] for r in listed} == {"CAP-REFINERY-NORTHPORT-DSL", "CAP-REFINERY-NORTHPORT-JET",
                                          "CAP-MILL-FROSTVIK", "CAP-PHARMA-ALDMOUTH"}
    assert (refinery["party"], refinery["material"], refinery["warehouse"]) == ("ENT-VALTA-ENERGY", "DIESEL-0", "WH-N-01")
    assert len(surveys) == 2
    assert "CAP-REFINERY-NORTHPORT-JET" not in {r["code"] for r in seen}  # held for the military


async def test_the_demo_potential_counts_the_refinery_nationally_and_its_mill_is_overdue(demo_db):
    async with demo_db.transaction() as tx:
        items = await capacities.potential(tx.pg, CLEARED, today=NOW.date(), region="VAL", category="fuel")
    national = {i.row["material"]: i for i in items if i.row["region"] == "VAL"}
    assert national["DIESEL-0"].capacity_per_day == 450000 and national["DIESEL-0"].usable > 0
    assert national["JET-A1"].capacity_per_day == 120000
    async with demo_db.transaction() as tx:
        await alerts.evaluate(tx.pg, today=NOW.date(), now=NOW, expiring_days=30)
        overdue = await tx.pg.fetch("SELECT subject FROM alerts WHERE kind = 'survey_overdue' AND state = 'open'")
    assert [r["subject"] for r in overdue] == ["capacity:CAP-MILL-FROSTVIK"]

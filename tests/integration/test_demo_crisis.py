"""A crisis on the demo data, end to end through the API: an emergency in the south, relief
requests planned, approved, dispatched and received; then a confirmed national wartime, a military
requisition of fuel, and a drill that changes nothing."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from litestar.testing import AsyncTestClient

from stockpile.api.app import create_app
from stockpile.demo import load_demo
from stockpile.jobs.catalog import catalog
from stockpile.jobs.runs import run_slot
from stockpile.store import snapshots
from stockpile.store.db import Database

NOW = datetime.now(timezone.utc).replace(microsecond=0)
NEEDED_BY = (NOW.date() + timedelta(days=5)).isoformat()


@pytest.fixture(scope="module")
async def demo(make_database):
    url = make_database()
    return url, await load_demo(url, seed=11, now=NOW)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_planner_works_an_emergency_and_a_confirmed_wartime_through_on_the_demo_data(demo, settings):
    url, loaded = demo
    tokens = {name: token for _, name, token in loaded.tokens}
    admin, planner = bearer(tokens["demo-admin"]), bearer(tokens["demo-planner"])
    commander, second = bearer(tokens["demo-commander"]), bearer(tokens["demo-commander-2"])
    async with AsyncTestClient(app=create_app(settings, url)) as api:
        # An emergency in Southbay: effective at once, for the province and its districts.
        r = await api.post("/api/v1/readiness/declarations", headers=commander,
                           json={"region": "PRV-SOUTH", "level": "emergency", "reason": "storm surge in the bay"})
        assert r.status_code == 201 and r.json()["state"] == "effective"
        levels = {x["region"]: x["level"] for x in (await api.get("/api/v1/readiness", headers=planner)).json()["items"]}
        assert levels["DST-ALDMOUTH"] == "emergency" and levels["PRV-NORTH"] == "peacetime"

        # Relief for the capital district: rice, flash and routine.
        before = await _on_hand(api, admin, "WH-S-03", "RICE")
        requests = []
        for priority, quantity in (("flash", "2000"), ("routine", "500")):
            r = await api.post("/api/v1/allocation-requests", headers=planner, json={
                "requester": "CIV-CD-SOUTH", "destination": "WH-S-03", "material": "RICE", "quantity": quantity,
                "priority": priority, "needed_by": NEEDED_BY, "purpose": "evacuation centres"})
            assert r.status_code == 201, r.text
            requests.append(r.json()["id"])
        r = await api.post("/api/v1/allocation-plans", headers=planner, json={"request_ids": requests})
        assert r.status_code == 201, r.text
        plan = r.json()
        assert plan["lines"], plan
        assert {line["rule"] for line in plan["lines"]} <= {"EME-OWN-CIV", "EME-CIV-ENT"}
        assert all(line["warehouse"] != "WH-S-03" and line["distance_km"] > 0 for line in plan["lines"])
        planned = {x["id"]: x for x in plan["requests"]}
        assert planned[requests[0]]["unfilled"] == "0.0"  # the flash request is served in full

        approver = commander if any(line["obligation"] for line in plan["lines"]) else planner
        r = await api.post(f"/api/v1/allocation-plans/{plan['id']}/approve", headers=approver)
        assert r.status_code == 200, r.text
        r = await api.post(f"/api/v1/allocation-plans/{plan['id']}/dispatch",
                           headers={**planner, "Idempotency-Key": f"dispatch-{plan['id']}"})
        assert r.status_code == 200, r.text
        for transfer in sorted({line["transfer_id"] for line in r.json()["lines"]}):
            received = await api.post(f"/api/v1/transfers/{transfer}/receipt",
                                      headers={**admin, "Idempotency-Key": f"receipt-{transfer}"}, json={})
            assert received.status_code == 201, received.text
        done = (await api.get(f"/api/v1/allocation-plans/{plan['id']}", headers=planner)).json()
        assert {line["state"] for line in done["lines"]} == {"received"}
        total = sum(float(x["planned"]) for x in done["requests"])
        assert await _on_hand(api, admin, "WH-S-03", "RICE") == pytest.approx(before + total)

        # National wartime: pending until a second commander confirms.
        r = await api.post("/api/v1/readiness/declarations", headers=commander,
                           json={"region": "VAL", "level": "wartime", "reason": "general mobilisation"})
        assert r.json()["state"] == "pending_confirmation"
        r = await api.post(f"/api/v1/readiness/declarations/{r.json()['id']}/confirm", headers=second)
        assert r.status_code == 200 and r.json()["state"] == "effective"

        # The army's fuel request: its own stock first, then requisitions under the wartime rules.
        r = await api.post("/api/v1/allocation-requests", headers=admin, json={
            "requester": "MIL-2BDE", "destination": "WH-E-02", "material": "DIESEL-0", "quantity": "50000",
            "priority": "immediate", "needed_by": NEEDED_BY, "purpose": "border brigade deployment"})
        assert r.status_code == 201, r.text
        r = await api.post("/api/v1/allocation-plans", headers=admin, json={"request_ids": [r.json()["id"]]})
        assert r.status_code == 201, r.text
        war = r.json()
        assert war["lines"] and {line["rule"] for line in war["lines"]} <= {"WAR-OWN-MIL", "WAR-MIL-CIV-FUEL", "WAR-MIL-ENT-FUEL"}
        assert (await api.post(f"/api/v1/allocation-plans/{war['id']}/approve", headers=commander)).status_code == 200

        # A drill: the Southbay tank farm lost, a flash fuel demand in the capital. Nothing changes.
        ledger = await _ledger_size(api, admin)
        r = await api.post("/api/v1/drills", headers=admin, json={
            "name": "tank farm lost", "lost_warehouses": ["WH-S-01"], "readiness": {"PRV-SOUTH": "wartime"},
            "requests": [{"requester": "CIV-CD-SOUTH", "destination": "WH-S-03", "material": "DIESEL-0",
                          "quantity": "20000", "priority": "flash", "needed_by": NEEDED_BY}]})
        assert r.status_code == 201, r.text
        assert "flash" in r.json()["fill_rate"] and all(line["warehouse"] != "WH-S-01" for line in r.json()["lines"])
        assert await _ledger_size(api, admin) == ledger

    db = Database(url, pool_size=2)
    try:
        outcome = await run_slot(db, catalog(settings)["check-ledger"], slot=-1)
        assert outcome.outcome == "ok" and outcome.detail["mismatched"] == []
        assert (await run_slot(db, catalog(settings)["refresh-metrics"], slot=-1)).outcome == "ok"
        async with db.transaction() as tx:
            _, samples = await snapshots.load(tx.pg, "business")
        gauges = {(x["metric"], tuple(sorted(x["labels"].items()))): x["value"] for x in samples
                  if x["metric"].startswith("stockpile_allocation_")}
        assert gauges[("stockpile_allocation_plans", (("state", "dispatched"),))] == 1  # the relief plan
        assert gauges[("stockpile_allocation_plans", (("state", "approved"),))] == 1  # the army's, not yet sent
        allocated = {dict(k[1])["priority"]: v for k, v in gauges.items()
                     if k[0] == "stockpile_allocation_requests" and dict(k[1])["state"] == "allocated"}
        assert allocated == {"flash": 1, "immediate": 1, "priority": 0, "routine": 1}
    finally:
        await db.dispose()


async def _on_hand(api, headers, warehouse: str, material: str) -> float:
    items, cursor = [], None
    while True:
        r = await api.get("/api/v1/stock", headers=headers, params={"warehouse": warehouse, "material": material,
                                                                    "limit": 1000, **({"cursor": cursor} if cursor else {})})
        items += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return sum(float(i["balance"]) for i in items)


async def _ledger_size(api, headers) -> tuple[int, float]:
    r = await api.get("/api/v1/movements", headers=headers, params={"limit": 1})
    newest = r.json()["items"][0]["id"]
    reserved = 0.0
    r = await api.get("/api/v1/stock", headers=headers, params={"material": "DIESEL-0", "limit": 1000})
    reserved = sum(float(i["reserved"]) for i in r.json()["items"])
    return newest, reserved


async def test_stockpile_drill_runs_a_yaml_scenario_and_prints_a_readable_report(demo, tmp_path):
    import os
    import subprocess
    import sys

    url, _ = demo
    scenario = tmp_path / "blackout.yaml"
    scenario.write_text(f"""name: northern blackout
readiness: {{PRV-NORTH: emergency}}
lost_warehouses: [WH-N-01]
requests:
  - {{requester: CIV-CD-NORTH, destination: WH-N-04, material: WATER-BOTTLED, quantity: "500", priority: flash, needed_by: "{NEEDED_BY}"}}
  - {{requester: CIV-CD-NORTH, destination: WH-N-04, material: DIESEL-0, quantity: "1", priority: routine, needed_by: "{NEEDED_BY}"}}
""")
    env = {**os.environ, "DATABASE_URL": url}
    run = subprocess.run([sys.executable, "-m", "stockpile", "drill", str(scenario)], env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "Fill rate by priority:" in run.stdout and "flash" in run.stdout and "drill-2" in run.stdout
    as_json = subprocess.run([sys.executable, "-m", "stockpile", "drill", str(scenario), "--json"], env=env,
                             capture_output=True, text=True, timeout=120)
    import json

    report = json.loads(as_json.stdout)
    assert set(report["fill_rate"]) == {"flash", "routine"}
    assert all(line["warehouse"] != "WH-N-01" for line in report["lines"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("requests: [{requester: NOBODY, destination: WH-N-04, material: RICE, quantity: 1, priority: flash, "
                   f"needed_by: '{NEEDED_BY}'}}]\n")
    refused = subprocess.run([sys.executable, "-m", "stockpile", "drill", str(bad)], env=env, capture_output=True,
                             text=True, timeout=120)
    assert refused.returncode == 1 and "NOBODY" in refused.stderr

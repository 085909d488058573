"""The sensor rules as the worker's ``evaluate-sensors`` job applies them: a cold-chain excursion
that lasts quarantines the lots and raises ``cold_chain_excursion`` with its readings (a shorter one
does nothing); a gauge at variance with the book raises ``stock_variance`` until an operator's count
corrects the book; a silent sensor raises ``sensor_offline``; a military tank's variance is military;
and the metrics count sensors by warehouse kind and storage class."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from prometheus_client import REGISTRY

from stockpile.domain.sensors import lasted
from stockpile.jobs.catalog import catalog
from stockpile.jobs.runs import manual_slot, run_slot
from stockpile.store import sensors as store
from stockpile.store import snapshots
from stockpile.store.db import Database
from tests.factories import list_all, lot_of, make_world, post_movement, receive


@pytest.fixture
async def world(client, admin, uid):
    return await make_world(client, admin, uid)


@pytest.fixture(scope="module")
async def evaluate(database_url, settings):
    """Run the evaluate-sensors job now, as the worker would (a slot of its own each time)."""
    db = Database(database_url, pool_size=2)
    job = catalog(settings)["evaluate-sensors"]

    async def run() -> dict:
        outcome = await run_slot(db, job, slot=manual_slot())
        assert outcome.outcome == "ok", outcome.detail
        return outcome.detail

    yield run
    await db.dispose()


def ago(minutes: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(minutes=minutes)).isoformat()


async def register(client, admin, code: str, body: dict) -> str:
    r = await client.put(f"/api/v1/sensors/{code}", headers=admin, json=body)
    assert r.status_code == 201, r.text
    return code


async def probe(client, admin, world, warehouse: str, tolerance: int = 30) -> str:
    return await register(client, admin, f"P-{world.uid}-{warehouse}", {
        "warehouse": warehouse, "kind": "temperature", "storage_class": "cold_chain", "unit": "C",
        "band": {"min": "2", "max": "8"}, "tolerance_minutes": tolerance})


async def gauge(client, admin, world, warehouse: str, tolerance: int = 60) -> str:
    return await register(client, admin, f"G-{world.uid}-{warehouse}", {
        "warehouse": warehouse, "kind": "tank_level", "material": world.diesel, "unit": "L",
        "tolerance_minutes": tolerance})


async def send(client, operator, code: str, readings: list[tuple[float, str]]) -> None:
    """Readings (minutes ago, value) of one sensor."""
    r = await client.post("/api/v1/sensor-readings", headers=operator,
                          json={"readings": [{"sensor": code, "at": ago(m), "value": v} for m, v in readings]})
    assert r.status_code == 200 and not r.json()["refused"], r.text


async def alert_of(client, headers, kind: str, code: str) -> dict | None:
    """The open alert of ``kind`` about sensor ``code`` the reader may see (None: there is none)."""
    found = [a for a in await list_all(client, headers, "/api/v1/alerts", kind=kind, state="open")
             if a["subject"] == f"sensor:{code}"]
    assert len(found) <= 1
    return found[0] if found else None


async def status_of(client, headers, lot: str) -> str:
    return (await client.get(f"/api/v1/lots/{lot}", headers=headers)).json()["status"]


async def test_an_excursion_that_lasts_quarantines_the_class_and_raises_an_alert_with_its_readings(
        client, admin, operator, world, evaluate, pg_pool):
    vaccine_a = lot_of(await receive(client, operator, warehouse=world.north, material=world.vaccine, owner=world.civil,
                                     quantity="100", lot=f"VA-{world.uid}"))
    vaccine_b = lot_of(await receive(client, operator, warehouse=world.north, material=world.vaccine,
                                     owner=world.enterprise, quantity="40", lot=f"VB-{world.uid}"))
    diesel = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                                  quantity="100", lot=f"D-{world.uid}"))
    elsewhere = lot_of(await receive(client, operator, warehouse=world.south, material=world.vaccine,
                                     owner=world.civil, quantity="100", lot=f"VS-{world.uid}"))
    code = await probe(client, admin, world, world.north)
    # in band an hour ago, then 12 °C for the last 45 minutes (tolerance 30)
    await send(client, operator, code, [(60, "5"), (55, "5.5")] + [(m, "12.0") for m in range(45, -1, -5)])

    found = await evaluate()

    assert found["excursions"] >= 1 and found["lots_quarantined"] >= 2
    assert [await status_of(client, admin, lot) for lot in (vaccine_a, vaccine_b, diesel, elsewhere)] == [
        "quarantine", "quarantine", "available", "available"]
    history = (await client.get(f"/api/v1/lots/{vaccine_a}", headers=admin)).json()["history"]
    assert [(h["to"], h["by"]) for h in history] == [("quarantine", f"sensor:{code}")]
    alert = await alert_of(client, admin, "cold_chain_excursion", code)
    assert alert["state"] == "open" and alert["severity"] == "critical" and alert["warehouse"] == world.north
    details = alert["details"]
    assert {lot["lot_id"] for lot in details["lots"]} == {vaccine_a, vaccine_b}
    assert [r["value"] for r in details["readings"]] == ["12.0"] * 7 and details["band"] == {"min": "2", "max": "8"}
    assert await pg_pool.fetchval("SELECT count(*) FROM outbox WHERE topic = 'alert.opened' AND payload->'alert'->>'id' = $1",
                                  alert["id"]) == 1
    assert await pg_pool.fetchval("SELECT count(*) FROM audit_events WHERE actor = $1 AND action = 'sensor quarantine'",
                                  f"sensor:{code}") == 2

    # quarantined stock cannot be issued, not by lot and not first-expiring-first
    by_lot = await post_movement(client, operator, {"kind": "issue", "lot_id": vaccine_a, "owner": world.civil,
                                                    "quantity": "1"})
    assert by_lot.status_code == 409 and by_lot.json()["type"] == "unusable-lot"
    picked = await post_movement(client, operator, {"kind": "issue", "warehouse": world.north, "material": world.vaccine,
                                                    "owner": world.civil, "quantity": "1"})
    assert picked.status_code == 409

    # back in band: the alert resolves; the lots stay quarantined until people release them
    await send(client, operator, code, [(-0.5, "5.0")])
    await evaluate()
    assert await alert_of(client, admin, "cold_chain_excursion", code) is None
    resolved = await list_all(client, admin, "/api/v1/alerts", kind="cold_chain_excursion", state="resolved")
    assert alert["id"] in {a["id"] for a in resolved}
    assert await status_of(client, admin, vaccine_a) == "quarantine"


async def test_an_excursion_shorter_than_the_tolerance_does_nothing(client, admin, operator, world, evaluate):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.vaccine, owner=world.civil,
                               quantity="100", lot=f"V-{world.uid}"))
    code = await probe(client, admin, world, world.north, tolerance=30)
    # a 25-minute spike that came back, then 20 minutes out of band now: neither lasted 30 minutes
    await send(client, operator, code, [(90, "5")] + [(m, "11") for m in range(85, 60, -5)] + [(55, "6"), (50, "6"),
                                                                                              (45, "6")]
               + [(m, "9.5") for m in range(20, -1, -5)])
    await evaluate()
    assert await alert_of(client, admin, "cold_chain_excursion", code) is None
    assert await status_of(client, admin, lot) == "available"


async def test_a_gauge_at_variance_raises_stock_variance_until_an_operators_count_corrects_the_book(
        client, admin, operator, world, evaluate):
    lot = lot_of(await receive(client, operator, warehouse=world.south, material=world.diesel, owner=world.civil,
                               quantity="1000", lot=f"D-{world.uid}"))
    code = await gauge(client, admin, world, world.south, tolerance=60)
    await send(client, operator, code, [(m, "940.0") for m in range(80, -1, -10)])

    await evaluate()

    alert = await alert_of(client, admin, "stock_variance", code)
    assert alert is not None and alert["state"] == "open", alert
    assert {k: alert["details"][k] for k in ("gauge", "book", "difference", "material")} == {
        "gauge": "940.0", "book": "1000.0", "difference": "-60.0", "material": world.diesel}
    assert await status_of(client, admin, lot) == "available"  # a gauge never changes stock
    balance = (await client.get(f"/api/v1/lots/{lot}", headers=admin)).json()["balance"]
    assert balance == "1000.0"

    counted = await post_movement(client, operator, {"kind": "adjustment", "lot_id": lot, "owner": world.civil,
                                                     "counted": "940", "reason": "dip count after gauge variance"})
    assert counted.status_code == 201, counted.text
    await evaluate()
    assert await alert_of(client, admin, "stock_variance", code) is None


async def test_a_gauge_within_the_tolerance_raises_nothing(client, admin, operator, world, evaluate):
    await receive(client, operator, warehouse=world.south, material=world.diesel, owner=world.civil,
                  quantity="1000", lot=f"D-{world.uid}")
    code = await gauge(client, admin, world, world.south, tolerance=60)
    await send(client, operator, code, [(m, "996.0") for m in range(80, -1, -10)])  # 0.4 % off
    await evaluate()
    assert await alert_of(client, admin, "stock_variance", code) is None


async def test_a_silent_sensor_raises_sensor_offline_until_it_reports_again(client, admin, operator, world, evaluate):
    code = await probe(client, admin, world, world.south)
    await send(client, operator, code, [(50, "5"), (45, "5")])
    await evaluate()
    alert = await alert_of(client, admin, "sensor_offline", code)
    assert alert is not None and alert["details"]["last_reading_at"] is not None
    await send(client, operator, code, [(0, "5")])
    await evaluate()
    assert await alert_of(client, admin, "sensor_offline", code) is None


async def test_a_military_tanks_variance_is_seen_only_by_cleared_readers(client, admin, operator, world, evaluate,
                                                                         make_token):
    await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.military,
                  quantity="800", lot=f"M-{world.uid}")
    await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                  quantity="200", lot=f"C-{world.uid}")
    code = await gauge(client, admin, world, world.north, tolerance=0)
    await send(client, operator, code, [(1, "700.0")])
    await evaluate()
    uncleared = {"Authorization": f"Bearer {await make_token('operator', regions=[world.region])}"}
    assert await alert_of(client, operator, "stock_variance", code) is not None
    assert await alert_of(client, uncleared, "stock_variance", code) is None
    assert code not in str(await list_all(client, uncleared, "/api/v1/alerts"))


async def test_the_evaluation_judges_as_the_rule_states(client, admin, operator, world, pg_pool):
    """The set-wise SQL and ``domain.sensors.lasted`` agree on random probes: readings at random
    times over the last three hours, in or out of band, with tolerances from 0 to an hour."""
    rng = random.Random(world.uid)
    now = datetime.now(timezone.utc)
    expected, readings = {}, []
    for n in range(40):
        tolerance = rng.choice((0, 10, 30, 60))
        code = await register(client, admin, f"R-{world.uid}-{n}", {
            "warehouse": world.north, "kind": "temperature", "storage_class": f"class-{world.uid}", "unit": "C",
            "band": {"min": "2", "max": "8"}, "tolerance_minutes": tolerance})
        minutes = sorted(rng.sample(range(1, 180), rng.randint(1, 12)), reverse=True)
        values = [rng.choice(("5", "5", "9.5")) for _ in minutes]
        expected[code] = lasted([(now - timedelta(minutes=m), v != "5") for m, v in zip(minutes, values)], tolerance)
        readings += [{"sensor": code, "at": (now - timedelta(minutes=m)).isoformat(), "value": v}
                     for m, v in zip(minutes, values)]
    r = await client.post("/api/v1/sensor-readings", headers=operator, json={"readings": readings})
    assert r.json()["accepted"] == len(readings)
    async with pg_pool.acquire() as pg:
        found = await store.judged(pg, now=now, oldest=now - timedelta(days=1), gauge_tolerance=Decimal("0.005"),
                                   silence_minutes=10**6)
    judged = {row["code"] for row in found if row["lasted"]}
    assert {code for code, yes in expected.items() if yes} == judged & set(expected)
    assert any(expected.values()) and not all(expected.values())


async def test_metrics_count_sensors_by_warehouse_kind_and_class_never_one_series_per_sensor(
        client, admin, operator, world, evaluate, pg_pool):
    before = REGISTRY.get_sample_value("stockpile_sensor_readings_ingested_total",
                                       {"warehouse_kind": "joint", "storage_class": "cold_chain"}) or 0
    await receive(client, operator, warehouse=world.north, material=world.vaccine, owner=world.civil,
                  quantity="10", lot=f"V-{world.uid}")
    code = await probe(client, admin, world, world.north, tolerance=0)
    await send(client, operator, code, [(2, "5"), (1, "12")])
    assert REGISTRY.get_sample_value("stockpile_sensor_readings_ingested_total",
                                     {"warehouse_kind": "joint", "storage_class": "cold_chain"}) == before + 2
    await evaluate()
    async with pg_pool.acquire() as pg:
        samples = [s for s in await snapshots.aggregate(pg, datetime.now(timezone.utc).date())
                   if s["metric"].startswith("stockpile_sensor")]
    by = {(s["metric"], s["labels"].get("state"), s["labels"]["warehouse_kind"], s["labels"]["storage_class"]): s["value"]
          for s in samples}
    assert by[("stockpile_sensors", "excursion", "joint", "cold_chain")] >= 1
    assert by[("stockpile_sensor_excursions_open", None, "joint", "cold_chain")] >= 1
    assert all(set(s["labels"]) <= {"state", "warehouse_kind", "storage_class"} for s in samples)
    assert code not in str(samples)

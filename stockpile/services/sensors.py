"""Sensor use cases: registering sensors, taking their readings, reading them back, judging them
(the ``evaluate-sensors`` job) and keeping their readings (the ``maintain-readings`` job).

A cold-chain excursion is the one thing a sensor does on its own: it quarantines the lots of its
storage class at its warehouse that hold stock, through the lot-status use case
(``services.lots.set_status``), each change in the lot's history and the audit trail under
``sensor:<code>`` — spoiled medicine must never be issued while people sleep. Every other finding is
an alert for people: a gauge never corrects the book, an operator's count does.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import asyncpg

from stockpile.domain import sensors as rules
from stockpile.domain.access import (
    Principal, reading_refused, require_visible, require_warehouse, sensor_disclosed, sensor_visible, unknown_sensor,
)
from stockpile.domain.alerts import Wanted
from stockpile.domain.errors import DomainError, Forbidden, Invalid, NotFound
from stockpile.domain.moments import rfc3339
from stockpile.domain.quantities import format_quantity
from stockpile.services import alerts, lots, principals
from stockpile.services.commands import ReadingIn, SensorIn
from stockpile.store import audit
from stockpile.store import masterdata as masterdata_store
from stockpile.store import sensors as store

KINDS = {"cold_chain_excursion", "stock_variance", "sensor_offline"}
LAST_READING_WITHIN = timedelta(days=1)  # how far back "the last reading" of a sensor is looked for
EVIDENCE_READINGS = 120  # readings an excursion alert quotes (the latest of those that proved it)


# -- sensors ---------------------------------------------------------------------------------------

async def upsert(pg: asyncpg.Connection, code: str, data: SensorIn, principal: Principal) -> tuple[bool, asyncpg.Record]:
    """Register or replace the sensor ``code``. A sensor the principal may not see answers as a
    missing one; its warehouse must be the principal's, and a gauge in a military tank needs clearance."""
    warehouse = await masterdata_store.warehouse_by_code(pg, data.warehouse)
    if warehouse is None:
        raise Invalid.field("warehouse", f"no warehouse {data.warehouse}")
    material = None
    if data.material is not None:
        material = await store.material_by_code(pg, data.material)
        if material is None:
            raise Invalid.field("material", f"no material {data.material}")
    band = data.band
    rules.check_sensor(rules.SensorSpec(
        kind=data.kind, unit=data.unit, storage_class=data.storage_class,
        material_unit=material["unit"] if material else None, band_min=band.min if band else None,
        band_max=band.max if band else None, tolerance_minutes=data.tolerance_minutes))
    now = await store.place(pg, code)
    if now is not None:
        require_visible(sensor_visible(principal, now["warehouse_id"], now["military_tank"]), "sensor with this code")
        require_warehouse(principal, now["warehouse_id"], code)
    require_warehouse(principal, warehouse["id"], data.warehouse)
    if material is not None and not sensor_disclosed(
            principal, await store.tank_is_military(pg, warehouse["id"], material["id"])):
        raise Forbidden("military stock of this material is kept at this warehouse: its gauge needs military clearance")
    created = await store.upsert(pg, code, {
        "warehouse_id": warehouse["id"], "kind": data.kind, "storage_class": data.storage_class,
        "material_id": material["id"] if material else None, "unit": data.unit,
        "band_min": band.min if band else None, "band_max": band.max if band else None,
        "tolerance_minutes": data.tolerance_minutes})
    return created, await get(pg, code, principal)


async def get(pg: asyncpg.Connection, code: str, principal: Principal) -> asyncpg.Record:
    """One sensor with its last reading; one the principal may not see answers as a missing one."""
    row = await store.get(pg, code, _last_reading_since(), principal.visibility.params())
    if row is None:
        raise NotFound(f"no sensor {code}")
    return row


async def listing(pg: asyncpg.Connection, principal: Principal, *, warehouse: str | None, after: str | None,
                  limit: int) -> list[asyncpg.Record]:
    """The sensors the principal may see (of its warehouses; a military tank's gauge only with
    clearance), by code, each with its last reading."""
    return await store.page(pg, warehouse=warehouse, after=after, limit=limit, since=_last_reading_since(),
                            visibility=principal.visibility.params())


def _last_reading_since() -> datetime:
    return datetime.now(timezone.utc) - LAST_READING_WITHIN


# -- readings --------------------------------------------------------------------------------------

@dataclass
class Ingested:
    """What a batch of readings did: new readings, readings already stored, refused ones by index,
    and the new ones per (warehouse kind, storage class) for the metrics."""

    accepted: int = 0
    duplicates: int = 0
    refused: list[tuple[int, str, DomainError]] = field(default_factory=list)
    by_class: Counter = field(default_factory=Counter)


async def ingest(pg: asyncpg.Connection, readings: list[ReadingIn], principal: Principal, *, now: datetime,
                 retention_days: int) -> Ingested:
    """Take a batch of readings: each one refused on its own (unknown sensor or one the principal may
    not know of, a sensor outside its warehouses, a value that is not a finite number, a time too far
    ahead or too old) and the others stored in one statement; a reading already stored (same sensor
    and time) is a duplicate and changes nothing."""
    if not 1 <= len(readings) <= rules.MAX_READINGS:
        raise Invalid.field("readings", f"send 1 to {rules.MAX_READINGS} readings")
    found = {r["code"]: r for r in await store.by_codes(pg, sorted({r.sensor for r in readings}))}
    refusal = {code: reading_refused(principal, code, s["warehouse_id"], s["military_tank"])
               for code, s in found.items()}
    done = Ingested()
    window = rules.ReadingWindow.at(now, retention_days)
    ids, ats, values = [], [], []
    for index, reading in enumerate(readings):
        sensor = found.get(reading.sensor)
        problem = unknown_sensor(reading.sensor) if sensor is None else refusal[reading.sensor]
        if problem is None:
            value = rules.reading_value(reading.value)
            why = window.refusal(reading.at)
            if value is None:
                problem = Invalid.field(f"readings[{index}].value", "is not a finite number")
            elif why is not None:
                problem = Invalid.field(f"readings[{index}].at", why)
            else:
                ids.append(sensor["id"])
                ats.append(reading.at)
                values.append(str(value))
                continue
        done.refused.append((index, reading.sensor, problem))
    new = await store.insert_readings(pg, ids, ats, values) if ids else {}
    done.accepted = sum(new.values())
    done.duplicates = len(ids) - done.accepted
    by_id = {s["id"]: s for s in found.values()}
    for sensor_id, n in new.items():
        done.by_class[(by_id[sensor_id]["warehouse_kind"], by_id[sensor_id]["storage_class"])] += n
    return done


async def readings(pg: asyncpg.Connection, code: str, principal: Principal, *, since: datetime, until: datetime,
                   step: int | None, after: datetime | None, limit: int) -> tuple[asyncpg.Record, list[asyncpg.Record]]:
    """A sensor's readings in [since, until): raw, or per ``step`` seconds (count, min, max, mean —
    past the raw retention from the hourly rollups); a sensor the principal may not see answers as a
    missing one."""
    if until <= since:
        raise Invalid.field("until", "must be after since")
    if step is not None and not 1 <= step <= rules.MAX_STEP:
        raise Invalid.field("step", "must be between 1 second and a year")
    sensor = await get(pg, code, principal)
    if step is None:
        return sensor, await store.readings(pg, sensor["id"], since=since, until=until, after=after, limit=limit)
    return sensor, await store.averaged(pg, sensor["id"], since=since, until=until, step=step, after=after, limit=limit)


# -- the rules -------------------------------------------------------------------------------------

async def evaluate(pg: asyncpg.Connection, *, now: datetime, gauge_tolerance: Decimal,
                   silence_minutes: int) -> dict[str, Any]:
    """Judge every sensor and reconcile the sensor alerts: ``cold_chain_excursion`` (critical; and the
    lots quarantined), ``stock_variance``, ``sensor_offline``. Returns the counts of what was found,
    quarantined and changed."""
    oldest = now - max(LAST_READING_WITHIN, timedelta(minutes=silence_minutes))
    found = await store.judged(pg, now=now, oldest=oldest, gauge_tolerance=gauge_tolerance,
                               silence_minutes=silence_minutes)
    wanted: list[Wanted] = []
    quarantined = 0
    for row in found:
        if row["silent"]:
            wanted.append(_offline(row, silence_minutes))
        if not row["lasted"]:
            continue
        if row["kind"] == "tank_level":
            wanted.append(_variance(row, gauge_tolerance))
        else:
            alert, changed = await _excursion(pg, row)
            wanted.append(alert)
            quarantined += changed
    changes = await alerts.apply(pg, wanted, KINDS)
    return {"excursions": sum(w.kind == "cold_chain_excursion" for w in wanted),
            "variances": sum(w.kind == "stock_variance" for w in wanted),
            "offline": sum(w.kind == "sensor_offline" for w in wanted),
            "lots_quarantined": quarantined, "alerts": changes}


def _where(row) -> dict[str, Any]:
    return {"warehouse_id": row["warehouse_id"], "region_id": row["region_id"]}


def _offline(row, silence_minutes: int) -> Wanted:
    heard = rfc3339(row["last_at"])
    return Wanted("sensor_offline", f"sensor:{row['code']}", "warning",
                  f"sensor {row['code']} at {row['warehouse']} has sent nothing for {silence_minutes} minutes",
                  {"sensor": row["code"], "warehouse": row["warehouse"], "last_reading_at": heard,
                   "silence_minutes": silence_minutes},
                  military=row["military_tank"], **_where(row))


def _variance(row, tolerance: Decimal) -> Wanted:
    decimals = row["decimals"]
    book = format_quantity(row["book"], decimals)
    gauge = row["last_value"]
    difference = gauge - Decimal(row["book"]).scaleb(-decimals)
    return Wanted("stock_variance", f"sensor:{row['code']}", "warning",
                  f"gauge {row['code']} reads {gauge} {row['material_unit']} of {row['material']} at {row['warehouse']}; "
                  f"the book says {book}",
                  {"sensor": row["code"], "warehouse": row["warehouse"], "material": row["material"],
                   "unit": row["material_unit"], "gauge": str(gauge), "book": book, "difference": str(difference),
                   "tolerance": str(tolerance), "since": rfc3339(row["anchor_at"]), "read_at": rfc3339(row["last_at"])},
                  military=row["military_tank"], **_where(row))


async def _excursion(pg: asyncpg.Connection, row) -> tuple[Wanted, int]:
    """The excursion alert of a probe, quoting the readings that proved it, after quarantining the
    lots of its storage class at its warehouse that hold stock (those already quarantined or
    recalled are left as they are)."""
    evidence = await store.window(pg, row["id"], row["anchor_at"], row["last_at"], EVIDENCE_READINGS)
    held = await store.lots_on_hand(pg, row["warehouse_id"], row["storage_class"])
    changed = [lot for lot in held if lot["status"] == "available"]
    if changed:
        actor = await principals.sensor_attribution(pg, row["code"])
        reason = (f"cold-chain excursion: {row['code']} outside its band since {rfc3339(row['anchor_at'])}")
        for lot in changed:
            await lots.set_status(pg, lot["id"], "quarantine", reason, actor)
            await audit.append(pg, restricted=lot["military"], at=row["last_at"], actor=actor.name, roles=[],
                               action="sensor quarantine", target=f"/api/v1/lots/{lot['id']}", outcome="ok",
                               status=None, client=None, request_id=None,
                               details={"from": "available", "to": "quarantine", "reason": reason})
    band = {"min": _text(row["band_min"]), "max": _text(row["band_max"])}
    alert = Wanted(
        "cold_chain_excursion", f"sensor:{row['code']}", "critical",
        f"{row['storage_class']} at {row['warehouse']} outside {band['min']}–{band['max']} {row['kind']} band "
        f"since {rfc3339(row['anchor_at'])} (sensor {row['code']}); {len(held)} lot(s) quarantined",
        {"sensor": row["code"], "warehouse": row["warehouse"], "storage_class": row["storage_class"], "band": band,
         "since": rfc3339(row["anchor_at"]), "last_at": rfc3339(row["last_at"]),
         "readings": [{"at": rfc3339(r["at"]), "value": str(r["value"])} for r in evidence],
         "lots": [{"lot_id": lot["id"], "lot_code": lot["code"], "material": lot["material"],
                   "status_before": lot["status"]} for lot in held]},
        military=any(lot["military"] for lot in held), **_where(row))
    return alert, len(changed)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


# -- keeping the readings --------------------------------------------------------------------------

async def maintain(pg: asyncpg.Connection, *, today: date, retention_days: int, ahead_days: int = 7) -> dict[str, Any]:
    """Make the daily partitions of the week ahead; replace the raw readings older than
    ``retention_days`` by their hourly rollups (whole days: a partition is rolled up and dropped,
    the default partition's old rows rolled up and deleted)."""
    made = await store.make_partitions(pg, today, today + timedelta(days=ahead_days))
    cutoff = today - timedelta(days=retention_days)
    rolled = {}
    for row in await store.partitions_before(pg, cutoff):
        rolled[row["relname"]] = await store.roll_up_partition(pg, row["relname"])
    caught = await store.roll_up_default(pg, datetime.combine(cutoff, time(), tzinfo=timezone.utc))
    return {"partitions_made": made, "days_rolled_up": len(rolled), "readings_rolled_up": sum(rolled.values()) + caught,
            "cutoff": cutoff.isoformat()}

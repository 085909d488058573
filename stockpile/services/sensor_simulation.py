"""Realistic readings for the sensors there are, so a newcomer sees the sensor rules at work
(``stockpile simulate-sensors``, and the demo's last hours).

- probes follow the day: a cold-chain store holds about 5 °C (±0.6 °C through the day, plus noise),
  a humidity probe about 45 % (±8 %); a probe named as the **excursion** has read 10–11 °C (a
  compressor failure) for the last ``EXCURSION_MINUTES``;
- a tank gauge reads the ledger's level of its material in its tank at that moment (the book now,
  less the stock movements since) plus 0.05 % noise; a gauge named as the **leak** loses
  ``LEAK_PER_HOUR`` of its level an hour over the last hours, so it drifts past the gauge tolerance.

Readings go through the ingest use case like a device's (a reading sent twice is stored once), so
running the simulator again over the same minutes changes nothing.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import asyncpg

from stockpile.domain.access import Principal
from stockpile.services import sensors
from stockpile.services.commands import ReadingIn
from stockpile.store import sensors as store

EXCURSION_MINUTES = 50
LEAK_HOURS = 4
LEAK_PER_HOUR = 0.004  # of the tank's level
BASE = {"temperature": 5.0, "humidity": 45.0}
SWING = {"temperature": 0.6, "humidity": 8.0}
NOISE = {"temperature": 0.15, "humidity": 1.5}


@dataclass(frozen=True)
class Scenario:
    """Which probe has an excursion and which gauge a slow leak (codes; None: none)."""

    excursion: str | None = None
    leak: str | None = None


def probe_value(kind: str, at: datetime, rng: random.Random, *, in_excursion: bool) -> Decimal:
    if in_excursion:
        return Decimal(f"{10.2 + rng.uniform(0, 0.9):.2f}")
    hour = at.hour + at.minute / 60
    value = BASE[kind] + SWING[kind] * math.sin(2 * math.pi * (hour - 9) / 24) + rng.gauss(0, NOISE[kind])
    return Decimal(f"{value:.2f}")


def gauge_value(level_units: int, decimals: int, rng: random.Random, *, leaked: float) -> Decimal:
    level = level_units / 10**decimals * (1 - leaked) * (1 + rng.gauss(0, 0.0005))
    return Decimal(f"{max(level, 0):.{decimals}f}")


def level_at(book: int, moved: list[tuple[float, int]], at: datetime) -> int:
    """The tank's book level at ``at``: the book now less what moved after."""
    epoch = at.timestamp()
    return book - sum(delta for when, delta in moved if when > epoch)


def readings(rows, scenario: Scenario, start: datetime, end: datetime, step: timedelta,
             rng: random.Random) -> list[ReadingIn]:
    """Every sensor's readings from ``start`` to ``end``, one every ``step``."""
    made = []
    for row in rows:
        moved = [(float(when), int(delta)) for when, delta in json.loads(row["moved"])]
        at = start
        while at <= end:
            if row["kind"] == "tank_level":
                leak_started = end - timedelta(hours=LEAK_HOURS)
                leaked = (max((at - leak_started).total_seconds(), 0) / 3600 * LEAK_PER_HOUR
                          if row["code"] == scenario.leak else 0.0)
                value = gauge_value(level_at(row["book"], moved, at), row["decimals"], rng, leaked=leaked)
            else:
                excursion = row["code"] == scenario.excursion and at > end - timedelta(minutes=EXCURSION_MINUTES)
                value = probe_value(row["kind"], at, rng, in_excursion=excursion)
            made.append(ReadingIn(sensor=row["code"], at=at, value=str(value)))
            at += step
    return made


async def simulate(pg: asyncpg.Connection, principal: Principal, scenario: Scenario, *, start: datetime,
                   end: datetime, step: timedelta, seed: int, retention_days: int) -> sensors.Ingested:
    """Post the simulated readings of every sensor from ``start`` to ``end`` (batches of 10,000)."""
    rng = random.Random(seed)
    made = readings(await store.simulated(pg, start), scenario, start, end, step, rng)
    done = sensors.Ingested()
    now = datetime.now(timezone.utc)
    for first in range(0, len(made), 10_000):
        batch = await sensors.ingest(pg, made[first:first + 10_000], principal, now=now,
                                     retention_days=retention_days)
        done.accepted += batch.accepted
        done.duplicates += batch.duplicates
        done.refused += batch.refused
    return done

"""The demo's sensors: cold-chain and humidity probes at the pharmaceutical stores, tank gauges at
the oil terminals, a device token for them, and their last hours of readings — one probe in a
cold-chain excursion, one gauge with a slow leak — so the ``evaluate-sensors`` job has something
to find on a newcomer's first look (``stockpile simulate-sensors`` keeps them reporting).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import asyncpg

from stockpile.domain.access import Principal
from stockpile.services import commands as c
from stockpile.services import sensors
from stockpile.services.sensor_simulation import Scenario, simulate
from stockpile.store import tokens

COLD = {"min": Decimal(2), "max": Decimal(8)}
# code, warehouse, kind, storage class or material, unit, band, tolerance (minutes)
DEMO_SENSORS = [
    ("TEMP-E01-COLD", "WH-E-01", "temperature", "cold_chain", "C", COLD, 30),
    ("HUM-E01-STORE", "WH-E-01", "humidity", "ambient", "%", {"max": Decimal(70)}, 120),
    ("TEMP-W02-COLD", "WH-W-02", "temperature", "cold_chain", "C", COLD, 30),
    ("GAUGE-S01-DIESEL", "WH-S-01", "tank_level", "DIESEL-0", "L", None, 60),
    ("GAUGE-S01-PETROL", "WH-S-01", "tank_level", "PETROL-95", "L", None, 60),
    ("GAUGE-N01-DIESEL", "WH-N-01", "tank_level", "DIESEL-0", "L", None, 60),
]
SCENARIO = Scenario(excursion="TEMP-W02-COLD", leak="GAUGE-N01-DIESEL")
DEVICE = "demo-sensor"
HISTORY = timedelta(hours=6)


async def load(pg: asyncpg.Connection, now: datetime, expires_at: datetime, admin: Principal,
               retention_days: int = 90) -> list[tuple[str, str, str]]:
    """Register the demo's sensors, issue their device token (returned as ``(role, name, token)``)
    and post their last hours of readings, a minute apart."""
    for code, warehouse, kind, watched, unit, band, tolerance in DEMO_SENSORS:
        gauge = kind == "tank_level"
        await sensors.upsert(pg, code, c.SensorIn(
            warehouse=warehouse, kind=kind, unit=unit, tolerance_minutes=tolerance,
            storage_class=None if gauge else watched, material=watched if gauge else None,
            band=c.BandIn(**band) if band else None), admin)
    principal_id = await tokens.upsert_principal(pg, DEVICE, ["sensor"], None)
    missing = await tokens.grant(pg, principal_id, sorted({s[1] for s in DEMO_SENSORS}), [])
    if missing:
        raise RuntimeError(f"demo sensor grants name unknown codes: {missing}")
    token = await tokens.issue_token(pg, principal_id, "demo", expires_at)
    end = now.replace(second=0, microsecond=0)
    await simulate(pg, admin, SCENARIO, start=end - HISTORY, end=end, step=timedelta(minutes=1), seed=11,
                   retention_days=retention_days)
    return [("sensor", DEVICE, token)]

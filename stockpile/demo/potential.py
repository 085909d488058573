"""The demo's mobilisation potential: capacities outside the reserve that Valtara can task — a
refinery's diesel and jet fuel (the jet fuel held for the military), a mill's flour and a
pharmaceutical plant's antibiotics — each surveyed, one with two surveys in its history and one
overdue for its next survey, so the potential view, the drills and ``survey_overdue`` have
something to show. Loaded through the use case the API uses (``capacities.upsert``)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import asyncpg

from stockpile.domain.access import Principal
from stockpile.services import capacities
from stockpile.services import commands as c

# code, party, material, daily quantity, lead days, region, warehouse, held for, surveys (days ago), interval, note
DEMO_CAPACITIES = [
    ("CAP-REFINERY-NORTHPORT-DSL", "ENT-VALTA-ENERGY", "DIESEL-0", "450000", 3, "DST-NORTHPORT", "WH-N-01", None,
     (220, 40), 180, "Northport refinery, middle-distillate train: arctic-grade diesel to the terminal"),
    ("CAP-REFINERY-NORTHPORT-JET", "ENT-VALTA-ENERGY", "JET-A1", "120000", 5, "DST-NORTHPORT", "WH-N-01", "military",
     (40,), 180, "Northport refinery, kerosene cut: earmarked for the Air Wing under the defence supply contract"),
    ("CAP-MILL-FROSTVIK", "ENT-GRAIN", "FLOUR-WHEAT", "60000", 2, "PRV-NORTH", None, None,
     (400,), 365, "Northern Grain Cooperative roller mill, two shifts; survey overdue"),
    ("CAP-PHARMA-ALDMOUTH", "ENT-PHARMA", "AMOXICILLIN-500", "2500", 14, "DST-ALDMOUTH", None, None,
     (90,), 365, "Meridian Pharma packaging line: amoxicillin from held active ingredient"),
]


async def load(pg: asyncpg.Connection, admin: Principal, today: date) -> None:
    """Record every demo capacity, oldest survey first."""
    for code, party, material, daily, lead, region, warehouse, held_for, surveys, interval, note in DEMO_CAPACITIES:
        for days_ago in surveys:
            await capacities.upsert(pg, code, c.CapacityIn(
                party=party, material=material, daily_quantity=Decimal(daily), lead_days=lead, region=region,
                warehouse=warehouse, held_for=held_for, surveyed_on=today - timedelta(days=days_ago),
                survey_interval_days=interval, note=note), admin, today)

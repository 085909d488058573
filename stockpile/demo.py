"""A realistic demo reserve for an empty database: ``stockpile demo`` and ``stockpile serve``.

The scenario is fictional: the Republic of Valtara, a compact northern country (58–62 °N,
22–30 °E) with four provinces, military units, a civil reserve bureau with provincial civil-defence
offices, and enterprises paid to store reserves (a refinery tank-farm operator, a grain
cooperative, a pharma distributor). Nothing in it names a real person.

Everything is loaded through the use cases the API uses (``masterdata.upsert``,
``movements.post_movement``, ``transfers.dispatch`` / ``receive``, ``reads.set_lot_status``) —
never by writing ledger rows directly — so every guarantee of the ledger holds for the demo data
exactly as it does for real traffic. The history is posted with a clock set to the moment each
movement happened (``recorded_at`` = ``occurred_at``), oldest first, so the ledger reads as a
plausible last year of operations: receipts, first-expiring-first issues, write-offs, counts,
ownership transfers between sectors, transfers (received, one short, some still on the road, one
overdue), a duplicated issue corrected by a reversal, a quarantined and a recalled lot.

The whole load is **one transaction**: it either leaves a complete demo or nothing (a half-loaded
demo would make the database "not empty" and block a retry). The transaction first takes an
advisory lock and refuses a database that already holds parties (``DemoRefused``), so two
processes starting on the same empty database cannot both load it.

The scenario is reproducible: the same ``seed`` and the same ``now`` give the same master data,
lot codes, quantities and movements (ids and tokens are random). Dates are relative to ``now``, so
on any day the demo has some stock already expired, some expiring within 30 and 90 days, and most
of it good for longer.

The demo tokens are real credentials printed to a log, so they expire ``TOKEN_DAYS`` (30) days after
the load, by the wall clock.
"""

from __future__ import annotations

import os
import random
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time as dtime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import asyncpg

from stockpile import demo_sensors
from stockpile.domain.access import Principal
from stockpile.domain.moments import Clock
from stockpile.services import commands as c
from stockpile.services import masterdata, rotation, targets, transfers
from stockpile import demo_potential
from stockpile.services.movements import Posted, post_movement
from stockpile.services.workspace import Workspace
from stockpile.store import audit, reads, tokens
from stockpile.store import coverage as coverage_store
from stockpile.store import masterdata as masterdata_store
from stockpile.store.db import Database, advisory_xact_lock

ADVISORY_LOCK = 0x5354_4B50_4445_4D4F  # "STKPDEMO": serialises demo loaders on one database
TOKEN_DAYS = 30  # demo tokens are printed to the log: they stop working on their own


class DemoRefused(RuntimeError):
    """The database already holds data; the demo loads only into an empty database."""


# --------------------------------------------------------------------------------------------------
# The scenario: master data
# --------------------------------------------------------------------------------------------------

# code, name, parent
# (code, scope, material selector, holder, usable/required to aim for, population served)
DEMO_TARGETS = [
    ("TGT-NAT-MIDDLE-DISTILLATES", {"region": "VAL"}, {"substitution_group": "middle-distillates"},
     {"sector": "civilian"}, 1.05, None),
    ("TGT-NORTH-GRAIN", {"region": "PRV-NORTH"}, {"substitution_group": "grain"}, {}, 0.82, 240_000),
    ("TGT-SOUTH-VACCINE", {"region": "PRV-SOUTH"}, {"material": "VACCINE-INFLUENZA"}, {}, 0.55, None),
    ("TGT-NAT-MEDICAL-CIVIL", {"region": "VAL"}, {"category": "medical"}, {"sector": "civilian"}, 1.2, None),
    ("TGT-NAT-JET-MILITARY", {"region": "VAL"}, {"material": "JET-A1"}, {"sector": "military"}, 0.86, None),
    ("TGT-EAST-RICE", {"region": "PRV-EAST"}, {"material": "RICE"}, {}, 1.3, 180_000),
    ("TGT-WEST-WATER", {"region": "PRV-WEST"}, {"material": "WATER-BOTTLED"}, {}, 0.95, 150_000),
]

# code, selector (material or category), trigger, other members of the policy (defaults otherwise)
DEMO_ROTATION_POLICIES = [
    ("ROT-FUEL", {"category": "fuel"}, {"trigger_days_before_expiry": 90}, {"max_out_share": Decimal("0.2")}),
    ("ROT-WHEAT", {"material": "WHEAT"}, {"trigger_fraction_remaining": Decimal("0.2")}, {"outlet": "exchange"}),
    ("ROT-FLOUR", {"material": "FLOUR-WHEAT"}, {"trigger_fraction_remaining": Decimal("0.2")}, {}),
    ("ROT-CANNED-MEAT", {"material": "CANNED-MEAT"}, {"trigger_days_before_expiry": 60}, {}),
    ("ROT-MEDICAL", {"category": "medical"}, {"trigger_days_before_expiry": 120},
     {"outlet": "donation", "max_extension_days": 365}),
]

REGIONS: list[tuple[str, str, str | None]] = [
    ("VAL", "Republic of Valtara", None),
    ("PRV-NORTH", "Northmarch Province", "VAL"),
    ("PRV-EAST", "Eastmarch Province", "VAL"),
    ("PRV-SOUTH", "Southbay Province", "VAL"),
    ("PRV-WEST", "Westmoor Province", "VAL"),
    ("DST-NORTHPORT", "Northport District", "PRV-NORTH"),
    ("DST-FROSTVIK", "Frostvik District", "PRV-NORTH"),
    ("DST-LINDHOLM", "Lindholm District", "PRV-NORTH"),
    ("DST-EASTVALE", "Eastvale District", "PRV-EAST"),
    ("DST-GREYFELL", "Greyfell District", "PRV-EAST"),
    ("DST-SOUTHBAY", "Southbay District", "PRV-SOUTH"),
    ("DST-ALDMOUTH", "Aldmouth Capital District", "PRV-SOUTH"),
    ("DST-WESTMOOR", "Westmoor District", "PRV-WEST"),
    ("DST-REDWATER", "Redwater District", "PRV-WEST"),
]

# code, name, sector, parent
PARTIES: list[tuple[str, str, str, str | None]] = [
    ("MIL-DEF-HQ", "Valtaran Defence Forces Headquarters", "military", None),
    ("MIL-LOG-CMD", "Defence Logistics Command", "military", "MIL-DEF-HQ"),
    ("MIL-1BDE", "1st Infantry Brigade", "military", "MIL-DEF-HQ"),
    ("MIL-2BDE", "2nd Border Brigade", "military", "MIL-DEF-HQ"),
    ("MIL-AIRWING", "Air Wing Westmoor", "military", "MIL-DEF-HQ"),
    ("CIV-RES-BUREAU", "National Emergency Reserve Bureau", "civilian", None),
    ("CIV-CD-NORTH", "Northmarch Civil Defence Office", "civilian", "CIV-RES-BUREAU"),
    ("CIV-CD-EAST", "Eastmarch Civil Defence Office", "civilian", "CIV-RES-BUREAU"),
    ("CIV-CD-SOUTH", "Southbay Civil Defence Office", "civilian", "CIV-RES-BUREAU"),
    ("CIV-CD-WEST", "Westmoor Civil Defence Office", "civilian", "CIV-RES-BUREAU"),
    ("ENT-VALTA-ENERGY", "Valta Energy plc (refinery)", "enterprise", None),
    ("ENT-TANKFARM", "Valta Energy Terminals Ltd (tank farms)", "enterprise", "ENT-VALTA-ENERGY"),
    ("ENT-GRAIN", "Northern Grain Cooperative", "enterprise", None),
    ("ENT-PHARMA", "Meridian Pharma Distribution Ltd", "enterprise", None),
]


@dataclass(frozen=True)
class MaterialSpec:
    code: str
    name: str
    category: str
    unit: str
    decimals: int
    shelf_life_days: int | None
    storage_class: str
    substitution_group: str | None
    daily_per_person: str | None
    prefix: str  # lot code prefix
    lot_size: tuple[int, int]  # whole units per receipt (before the warehouse's scale)
    metered: bool = False  # quantities carry the full precision (a flow meter), else whole units


MATERIALS: list[MaterialSpec] = [
    MaterialSpec("DIESEL-0", "Diesel fuel EN 590 (arctic grade)", "fuel", "L", 1, 730, "bulk_liquid",
                 "middle-distillates", None, "DSL", (8_000, 60_000), metered=True),
    MaterialSpec("HEATING-OIL", "Light heating oil", "fuel", "L", 1, 1095, "bulk_liquid",
                 "middle-distillates", None, "HTO", (10_000, 50_000), metered=True),
    MaterialSpec("PETROL-95", "Motor petrol 95 octane", "fuel", "L", 1, 365, "bulk_liquid",
                 None, None, "P95", (5_000, 40_000), metered=True),
    MaterialSpec("JET-A1", "Aviation turbine fuel Jet A-1", "fuel", "L", 1, 730, "bulk_liquid",
                 None, None, "JET", (10_000, 80_000), metered=True),
    MaterialSpec("LPG-11KG", "Propane cylinder 11 kg", "fuel", "unit", 0, None, "hazardous",
                 None, None, "LPG", (50, 400)),
    MaterialSpec("WHEAT", "Milling wheat", "food", "kg", 0, 1095, "ambient",
                 "grain", "0.300", "WHT", (20_000, 150_000)),
    MaterialSpec("FLOUR-WHEAT", "Wheat flour, type 550", "food", "kg", 1, 365, "ambient",
                 "grain", "0.250", "FLR", (2_000, 20_000)),
    MaterialSpec("RICE", "Long-grain rice", "food", "kg", 1, 730, "ambient",
                 None, "0.150", "RCE", (2_000, 25_000)),
    MaterialSpec("CANNED-MEAT", "Canned meat, 400 g tin", "food", "unit", 0, 1095, "ambient",
                 None, "0.5", "CNM", (500, 8_000)),
    MaterialSpec("MILK-POWDER", "Whole milk powder", "food", "kg", 3, 540, "ambient",
                 None, "0.030", "MKP", (200, 3_000)),
    MaterialSpec("WATER-BOTTLED", "Drinking water, bottled", "food", "L", 1, 730, "ambient",
                 None, "3", "WTR", (2_000, 30_000)),
    MaterialSpec("RATION-PACK", "Field ration pack, 24 h", "food", "unit", 0, 1095, "ambient",
                 None, "1", "RTN", (500, 6_000)),
    MaterialSpec("VACCINE-INFLUENZA", "Influenza vaccine, single dose", "medical", "dose", 0, 365, "cold_chain",
                 None, None, "VAX", (500, 10_000)),
    MaterialSpec("AMOXICILLIN-500", "Amoxicillin 500 mg, pack of 21 capsules", "medical", "unit", 0, 1095, "ambient",
                 "antibiotics-oral", None, "AMX", (100, 3_000)),
    MaterialSpec("DOXYCYCLINE-100", "Doxycycline 100 mg, pack of 10 tablets", "medical", "unit", 0, 1095, "ambient",
                 "antibiotics-oral", None, "DOX", (100, 2_000)),
    MaterialSpec("IV-SALINE", "Sodium chloride 0.9 % infusion", "medical", "L", 1, 1095, "ambient",
                 None, None, "IVS", (200, 4_000)),
    MaterialSpec("BANDAGE-ELASTIC", "Elastic bandage 10 cm x 4 m", "medical", "unit", 0, None, "ambient",
                 None, None, "BDG", (200, 5_000)),
]
MATERIAL = {m.code: m for m in MATERIALS}


@dataclass(frozen=True)
class WarehouseSpec:
    code: str
    name: str
    operator: str
    region: str
    kind: str
    latitude: float
    longitude: float
    materials: tuple[str, ...]
    owners: tuple[str, ...]  # who holds stock here; the first is the main owner
    scale: int = 1  # bulk sites hold bigger lots
    capacity: tuple[tuple[str, str], ...] = ()
    final_status: str = "active"


WAREHOUSES: list[WarehouseSpec] = [
    WarehouseSpec("WH-N-01", "Northport oil terminal", "ENT-TANKFARM", "DST-NORTHPORT", "joint", 61.6213, 23.9472,
                  ("DIESEL-0", "HEATING-OIL", "PETROL-95", "JET-A1"),
                  ("ENT-VALTA-ENERGY", "CIV-RES-BUREAU", "MIL-LOG-CMD"), 5, (("bulk_liquid", "9000000"),)),
    WarehouseSpec("WH-N-02", "Northport grain terminal", "ENT-GRAIN", "DST-NORTHPORT", "civilian", 61.5874, 24.1032,
                  ("WHEAT", "FLOUR-WHEAT"), ("ENT-GRAIN", "CIV-RES-BUREAU"), 5, (("ambient", "6000000"),)),
    WarehouseSpec("WH-N-03", "Frostvik garrison depot", "MIL-1BDE", "DST-FROSTVIK", "military", 61.9488, 25.4127,
                  ("DIESEL-0", "RATION-PACK", "CANNED-MEAT", "WATER-BOTTLED", "BANDAGE-ELASTIC", "AMOXICILLIN-500"),
                  ("MIL-1BDE", "MIL-LOG-CMD")),
    WarehouseSpec("WH-N-04", "Lindholm civil defence store", "CIV-CD-NORTH", "DST-LINDHOLM", "civilian", 61.2036, 26.3051,
                  ("WATER-BOTTLED", "CANNED-MEAT", "MILK-POWDER", "BANDAGE-ELASTIC", "IV-SALINE", "LPG-11KG"),
                  ("CIV-CD-NORTH", "CIV-RES-BUREAU")),
    WarehouseSpec("WH-E-01", "Eastvale pharmaceutical cold store", "ENT-PHARMA", "DST-EASTVALE", "joint", 60.7012, 28.0964,
                  ("VACCINE-INFLUENZA", "IV-SALINE", "AMOXICILLIN-500", "DOXYCYCLINE-100"),
                  ("CIV-RES-BUREAU", "MIL-LOG-CMD", "ENT-PHARMA"), 1, (("cold_chain", "250000"), ("ambient", "400000"))),
    WarehouseSpec("WH-E-02", "Greyfell brigade depot", "MIL-2BDE", "DST-GREYFELL", "military", 60.9527, 29.3816,
                  ("DIESEL-0", "PETROL-95", "RATION-PACK", "WATER-BOTTLED", "BANDAGE-ELASTIC", "IV-SALINE"),
                  ("MIL-2BDE", "MIL-LOG-CMD")),
    WarehouseSpec("WH-E-03", "Eastvale food reserve warehouse", "CIV-CD-EAST", "DST-EASTVALE", "civilian", 60.5531, 27.8522,
                  ("RICE", "FLOUR-WHEAT", "CANNED-MEAT", "MILK-POWDER", "WATER-BOTTLED"),
                  ("CIV-CD-EAST", "CIV-RES-BUREAU")),
    WarehouseSpec("WH-S-01", "Southbay refinery tank farm", "ENT-TANKFARM", "DST-SOUTHBAY", "joint", 58.6205, 24.7983,
                  ("DIESEL-0", "HEATING-OIL", "PETROL-95", "JET-A1", "LPG-11KG"),
                  ("ENT-VALTA-ENERGY", "CIV-RES-BUREAU", "MIL-LOG-CMD"), 5, (("bulk_liquid", "20000000"), ("hazardous", "20000"))),
    WarehouseSpec("WH-S-02", "Southbay grain silos", "ENT-GRAIN", "DST-SOUTHBAY", "civilian", 58.7018, 25.0511,
                  ("WHEAT", "FLOUR-WHEAT", "RICE"), ("ENT-GRAIN", "CIV-RES-BUREAU"), 4, (("ambient", "8000000"),)),
    WarehouseSpec("WH-S-03", "Aldmouth central reserve depot", "CIV-RES-BUREAU", "DST-ALDMOUTH", "joint", 59.2487, 25.6032,
                  ("RICE", "CANNED-MEAT", "MILK-POWDER", "WATER-BOTTLED", "IV-SALINE", "BANDAGE-ELASTIC", "DOXYCYCLINE-100"),
                  ("CIV-RES-BUREAU", "CIV-CD-SOUTH", "MIL-LOG-CMD"), 2),
    WarehouseSpec("WH-W-01", "Westmoor air base fuel depot", "MIL-AIRWING", "DST-WESTMOOR", "military", 60.2516, 22.6044,
                  ("JET-A1", "DIESEL-0"), ("MIL-AIRWING", "MIL-LOG-CMD"), 2),
    WarehouseSpec("WH-W-02", "Redwater pharma distribution centre", "ENT-PHARMA", "DST-REDWATER", "joint", 59.8049, 23.4018,
                  ("VACCINE-INFLUENZA", "AMOXICILLIN-500", "DOXYCYCLINE-100", "IV-SALINE", "BANDAGE-ELASTIC"),
                  ("ENT-PHARMA", "CIV-RES-BUREAU", "MIL-LOG-CMD"), 1, (("cold_chain", "180000"),)),
    WarehouseSpec("WH-W-03", "Westmoor civil defence store", "CIV-CD-WEST", "DST-WESTMOOR", "civilian", 60.1037, 22.9521,
                  ("WATER-BOTTLED", "RICE", "CANNED-MEAT", "LPG-11KG", "BANDAGE-ELASTIC"),
                  ("CIV-CD-WEST", "CIV-RES-BUREAU")),
    # Suspended after a structural inspection; part of its stock is being evacuated.
    WarehouseSpec("WH-W-04", "Redwater old quarry depot", "MIL-LOG-CMD", "DST-REDWATER", "military", 59.6528, 23.1047,
                  ("DIESEL-0", "RATION-PACK"), ("MIL-LOG-CMD",), final_status="suspended"),
]
WAREHOUSE = {w.code: w for w in WAREHOUSES}

# name, roles, clearance, warehouse grants, region grants
PRINCIPALS: list[tuple[str, str, str | None, tuple[str, ...], tuple[str, ...]]] = [
    ("demo-admin", "admin", "military", (), ()),
    ("demo-operator", "operator", None, ("WH-N-04", "WH-S-02"), ()),
    ("demo-planner", "planner", None, (), ("PRV-SOUTH",)),
    ("demo-commander", "commander", "military", (), ()),
    ("demo-commander-2", "commander", "military", (), ()),  # confirms wartime (two-person rule)
    ("demo-auditor", "auditor", None, (), ()),
    ("demo-metrics", "metrics", None, (), ()),
]

# Transfers: key, from, to, materials, preferred owners, share of a position moved, days on the road
# (None = still in transit), short receipt.
ROUTES: list[tuple[str, str, str, tuple[str, ...], tuple[str, ...], tuple[float, float], int | None, bool]] = [
    ("diesel-to-greyfell", "WH-S-01", "WH-E-02", ("DIESEL-0",), ("MIL-LOG-CMD",), (0.2, 0.4), 2, False),
    ("flour-to-eastvale", "WH-S-02", "WH-E-03", ("FLOUR-WHEAT",), ("CIV-RES-BUREAU",), (0.3, 0.6), 2, False),
    ("pharma-to-aldmouth", "WH-W-02", "WH-S-03", ("IV-SALINE", "DOXYCYCLINE-100"), ("CIV-RES-BUREAU",), (0.3, 0.5), 1, False),
    ("quarry-evacuation-fuel", "WH-W-04", "WH-W-01", ("DIESEL-0",), ("MIL-LOG-CMD",), (0.5, 0.8), 3, True),
    ("diesel-to-frostvik", "WH-N-01", "WH-N-03", ("DIESEL-0",), ("MIL-LOG-CMD",), (0.2, 0.4), 2, False),
    ("vaccine-east-to-west", "WH-E-01", "WH-W-02", ("VACCINE-INFLUENZA",), ("CIV-RES-BUREAU",), (0.2, 0.5), 1, False),
    ("quarry-evacuation-rations", "WH-W-04", "WH-N-03", ("RATION-PACK",), ("MIL-LOG-CMD",), (0.4, 0.7), 3, False),
    ("jet-to-airbase", "WH-S-01", "WH-W-01", ("JET-A1",), ("MIL-LOG-CMD",), (0.2, 0.4), None, False),
    ("rice-to-aldmouth", "WH-S-02", "WH-S-03", ("RICE",), ("CIV-RES-BUREAU",), (0.3, 0.6), None, False),
    ("medical-to-greyfell", "WH-W-02", "WH-E-02", ("BANDAGE-ELASTIC", "IV-SALINE"), ("MIL-LOG-CMD",), (0.3, 0.6), None, False),
    ("wheat-to-eastvale", "WH-N-02", "WH-E-03", ("WHEAT",), ("CIV-RES-BUREAU",), (0.1, 0.2), None, False),
]
OVERDUE_ROUTE = "wheat-to-eastvale"  # dispatched a week ago, expected three days ago, not arrived

ISSUE_REASONS = {
    "fuel": ["exercise consumption", "generator test run", "vehicle refuelling", "district heating plant supply"],
    "food": ["field exercise rations", "shelter drill catering", "relief delivery to evacuation centre",
             "school canteen rotation sale"],
    "medical": ["hospital resupply", "field hospital exercise", "vaccination campaign", "health centre resupply"],
}


# --------------------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------------------


@dataclass
class DemoResult:
    """What the demo loaded, and the demo tokens (shown once: only their hashes are stored)."""

    seed: int
    counts: dict[str, int]
    tokens: list[tuple[str, str, str]]  # (role, principal name, token)
    seconds: float
    tokens_expire_at: datetime | None = None
    api_url: str = "http://127.0.0.1:8000"
    tokens_file: Path | None = None

    def token(self, role: str) -> str:
        return next(t for r, _, t in self.tokens if r == role)

    def report(self) -> str:
        n = self.counts
        lines = [
            f"demo reserve loaded (seed {self.seed}, {self.seconds:.1f} s): the fictional Republic of Valtara",
            f"  regions {n['regions']}, warehouses {n['warehouses']} ({n['suspended_warehouses']} suspended), "
            f"materials {n['materials']}, parties {n['parties']}",
            f"  lots {n['lots']} ({n['expired_lots']} expired with stock on hand, {n['expiring_30']} expiring "
            f"within 30 days), stock positions {n['positions']}",
            f"  movements {n['movements']}, transfers {n['transfers']} ({n['in_transit']} in transit)",
            "demo tokens (role  name  token) — shown only once, keep them"
            + (f"; they expire at {self.tokens_expire_at:%Y-%m-%d %H:%M} UTC:" if self.tokens_expire_at else ":"),
        ]
        lines += [f"{role}  {name}  {token}" for role, name, token in self.tokens]
        if self.tokens_file is not None:
            lines.append(f"(also written to {self.tokens_file})")
        lines.append(
            f'try: curl -H "Authorization: Bearer {self.token("admin")}" "{self.api_url}/api/v1/stock?limit=5"'
        )
        return "\n".join(lines)


def _default_api_url() -> str:
    host = os.environ.get("STOCKPILE_HOST") or "127.0.0.1"
    if host in {"0.0.0.0", "::", ""}:
        host = "127.0.0.1"
    return f"http://{host}:{os.environ.get('STOCKPILE_PORT') or 8000}"


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


async def load_demo(url: str, *, seed: int = 7, tokens_file: Path | None = None, now: datetime | None = None,
                    api_url: str | None = None) -> DemoResult:
    """Load the demo reserve into the empty, migrated database at ``url``, in one transaction.

    Raises ``DemoRefused`` (and writes nothing) when the database already holds parties.
    ``tokens_file``, when given, receives the demo tokens (``role  name  token`` per line, mode 0600).
    ``now`` fixes the present the history is built around (default: the current time).
    """
    started = time.perf_counter()
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as tx:
            pg = tx.pg
            await advisory_xact_lock(pg, ADVISORY_LOCK)
            if await masterdata_store.any_party(pg):
                raise DemoRefused("the database already holds data; the demo loads only into an empty database")
            loader = _Loader(pg, random.Random(seed), now)
            await loader.master_data()
            await loader.rotation_policies()
            tokens_expire_at = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=TOKEN_DAYS)
            issued = await loader.principals(tokens_expire_at)
            await loader.history()
            await loader.targets()
            await demo_potential.load(pg, loader.actors["admin"], now.date())
            await loader.finish()
            issued += await demo_sensors.load(pg, now, tokens_expire_at, loader.actors["admin"])
            counts = await reads.reserve_counts(pg, now.date())
            await audit.append(pg, at=now, actor="cli:demo", roles=[], action="cli demo", target=None, outcome="ok",
                               status=None, client=None, request_id=None, details={"seed": seed, **counts})
    finally:
        await db.dispose()
    result = DemoResult(seed=seed, counts=counts, tokens=issued, seconds=time.perf_counter() - started,
                        tokens_expire_at=tokens_expire_at, api_url=api_url or _default_api_url(),
                        tokens_file=tokens_file)
    if tokens_file is not None:
        _write_tokens(Path(tokens_file), issued)
    return result


def _write_tokens(path: Path, issued: list[tuple[str, str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.writelines(f"{role}  {name}  {token}\n" for role, name, token in issued)
    os.chmod(path, 0o600)


def _amount(units: int, decimals: int) -> Decimal:
    """Smallest units → the exact decimal the commands take (``1200005, 1 → Decimal('120000.5')``)."""
    return Decimal(units).scaleb(-decimals)


@dataclass
class _Lot:
    id: str
    code: str
    warehouse: str
    material: str
    expires_on: date | None
    status: str = "available"


@dataclass
class _LotPlan:
    warehouse: str
    material: str
    code: str
    manufactured_on: date
    expires_on: date | None
    receipts: list[tuple[datetime, str, int, str]] = field(default_factory=list)  # moment, owner, units, note


class _Loader:
    """Builds the scenario with a seeded RNG and posts it, oldest movement first, on one connection."""

    def __init__(self, pg: asyncpg.Connection, rng: random.Random, now: datetime) -> None:
        self.pg, self.rng, self.now = pg, rng, now
        self.today = now.date()
        self.actors: dict[str, Principal] = {}
        self.operator_scope: set[str] = set()
        self.lots: dict[str, _Lot] = {}
        self.balance: dict[tuple[str, str], int] = defaultdict(int)  # (lot id, owner) → units
        self.transfers: dict[str, str] = {}  # route key → transfer id
        self.lot_counter = 0

    # ---- master data and principals -------------------------------------------------------------

    async def master_data(self) -> None:
        pg = self.pg
        for code, name, parent in REGIONS:
            await masterdata.upsert(pg, "regions", code, c.RegionIn(name=name, parent=parent))
        for code, name, sector, parent in PARTIES:
            await masterdata.upsert(pg, "parties", code, c.PartyIn(name=name, sector=sector, parent=parent))
        for m in MATERIALS:
            await masterdata.upsert(pg, "materials", m.code, c.MaterialIn(
                name=m.name, category=m.category, unit=m.unit, decimals=m.decimals, storage_class=m.storage_class,
                shelf_life_days=m.shelf_life_days, substitution_group=m.substitution_group,
                daily_consumption_per_person=Decimal(m.daily_per_person) if m.daily_per_person else None,
            ))
        for w in WAREHOUSES:
            await masterdata.upsert(pg, "warehouses", w.code, self._warehouse_in(w, "active"))

    @staticmethod
    def _warehouse_in(w: WarehouseSpec, status: str) -> c.WarehouseIn:
        return c.WarehouseIn(
            name=w.name, operator=w.operator, region=w.region, kind=w.kind, latitude=w.latitude,
            longitude=w.longitude, status=status, capacity={k: Decimal(v) for k, v in w.capacity},
        )

    async def principals(self, expires_at: datetime) -> list[tuple[str, str, str]]:
        """The demo's principals, each with a token that stops working at ``expires_at`` (the wall
        clock's, not the scenario's: the tokens are real credentials printed to a log)."""
        issued = []
        for name, role, clearance, warehouses, regions in PRINCIPALS:
            principal_id = await tokens.upsert_principal(self.pg, name, [role], clearance)
            missing = await tokens.grant(self.pg, principal_id, list(warehouses), list(regions))
            if missing:
                raise RuntimeError(f"demo grants name unknown codes: {missing}")
            token = await tokens.issue_token(self.pg, principal_id, "demo", expires_at)
            issued.append((role, name, token))
            # The principal as the API would see it: grants expanded, so the use cases' scope and
            # need-to-know checks apply to the demo exactly as to a request.
            principal = await tokens.principal_for_token(self.pg, token)
            if principal is None:
                raise RuntimeError(f"the demo token of {name} does not authenticate")
            self.actors[role] = principal
            if role == "operator":
                self.operator_scope = set(warehouses)
        return issued

    def _actor(self, warehouse: str) -> Principal:
        """The demo operator records movements at its own warehouses (civilian stock only); the
        admin (cleared for military stock) records the rest."""
        return self.actors["operator"] if warehouse in self.operator_scope else self.actors["admin"]

    # ---- time ---------------------------------------------------------------------------------

    def _moment(self, day: date) -> datetime:
        """A working-hours moment on ``day`` (never later than now)."""
        moment = datetime.combine(day, dtime(self.rng.randint(6, 17), self.rng.choice((0, 10, 15, 20, 30, 40, 45, 50))),
                                  tzinfo=timezone.utc)
        return min(moment, self.now - timedelta(minutes=5))

    def _day(self, lo: int, hi: int) -> date:
        """A day between ``lo`` and ``hi`` days from today (inclusive; negative = past)."""
        return self.today + timedelta(days=self.rng.randint(lo, hi))

    # ---- posting ------------------------------------------------------------------------------

    async def _post(self, cmd: c.Movement, moment: datetime, warehouse: str) -> Posted:
        posted = await post_movement(Workspace(self.pg), cmd, self._actor(warehouse), Clock(moment))
        self._track(posted, warehouse)
        return posted

    def _track(self, posted: Posted, warehouse: str | None) -> None:
        """Follow stock balances and lots in memory, so later movements take only what is there."""
        for p in posted.postings:
            if p.account_id is None or p.account_id in posted.transit_of:
                continue
            pos = posted.positions[p.account_id]
            if pos.lot_id not in self.lots and warehouse is not None:
                self.lots[pos.lot_id] = _Lot(pos.lot_id, pos.lot_code, warehouse,
                                             posted.materials[pos.material_id][0], pos.expires_on, pos.status)
            self.balance[(pos.lot_id, pos.owner_code)] += p.delta

    def _usable(self, lot: _Lot, day: date, margin_days: int = 0) -> bool:
        return lot.status == "available" and (lot.expires_on is None or lot.expires_on > day + timedelta(days=margin_days))

    def _positions(self, warehouse: str, material: str) -> list[tuple[_Lot, str, int]]:
        """(lot, owner, balance) with stock at a warehouse, in a stable order."""
        out = [(self.lots[lot_id], owner, units) for (lot_id, owner), units in self.balance.items()
               if units > 0 and self.lots[lot_id].warehouse == warehouse and self.lots[lot_id].material == material]
        out.sort(key=lambda x: (x[0].expires_on or date.max, x[0].code, x[1]))
        return out

    # ---- the scenario -------------------------------------------------------------------------

    def _plan_lots(self) -> list[_LotPlan]:
        """A few lots of each material each warehouse keeps, with expiries staggered around today:
        about 8 % already expired, 10 % expiring within 30 days, 12 % within 90, the rest later."""
        plans = []
        for w in WAREHOUSES:
            for material in w.materials:
                m = MATERIAL[material]
                for _ in range(self.rng.randint(3, 6)):
                    plans.append(self._plan_lot(w, m))
        return plans

    def _plan_lot(self, w: WarehouseSpec, m: MaterialSpec) -> _LotPlan:
        rng = self.rng
        if m.shelf_life_days is None:
            expires_on = None
            manufactured_on = self._day(-700, -60)
        else:
            shelf = m.shelf_life_days
            r = rng.random()
            offset = (rng.randint(-90, -1) if r < 0.08 else rng.randint(1, 30) if r < 0.18
                      else rng.randint(31, 90) if r < 0.30 else rng.randint(91, shelf - 40))
            expires_on = self.today + timedelta(days=offset)
            manufactured_on = expires_on - timedelta(days=shelf)
        self.lot_counter += 1
        code = f"{m.prefix}-{manufactured_on:%y%m}-{self.lot_counter:04d}"
        plan = _LotPlan(w.code, m.code, code, manufactured_on, expires_on)
        # Received while fresh: after manufacture, before expiry, at least 25 days ago.
        first = max(manufactured_on + timedelta(days=2), self.today - timedelta(days=400))
        last = self.today - timedelta(days=25)
        if expires_on is not None:
            last = min(last, expires_on - timedelta(days=5))
        lo, hi = (first - self.today).days, (last - self.today).days
        main = w.owners[0] if len(w.owners) == 1 or rng.random() < 0.6 else rng.choice(w.owners[1:])
        units = self._lot_units(m, w.scale)
        note = f"delivery note {rng.randint(1000, 9999)}"
        plan.receipts.append((self._moment(self._day(lo, hi)), main, units, note))
        # Joint storage: a second owner takes a share of the same batch on the same lot code.
        if len(w.owners) > 1 and rng.random() < (0.45 if w.kind == "joint" else 0.3):
            other = rng.choice([o for o in w.owners if o != main])
            share = self._lot_units(m, w.scale) // rng.randint(2, 4) or 1
            plan.receipts.append((self._moment(self._day(lo, hi)), other, share,
                                  f"joint storage share, delivery note {rng.randint(1000, 9999)}"))
        return plan

    def _lot_units(self, m: MaterialSpec, scale: int) -> int:
        lo, hi = m.lot_size
        if m.metered:
            return self.rng.randint(lo * 10**m.decimals, hi * 10**m.decimals) * scale
        step = 100 if hi >= 20_000 else 10 if hi >= 1_000 else 1
        return self.rng.randint(lo // step, hi // step) * step * scale * 10**m.decimals

    async def history(self) -> None:
        plans = self._plan_lots()
        receipts = sorted(
            ((moment, i, plan, owner, units, note) for i, plan in enumerate(plans)
             for moment, owner, units, note in plan.receipts),
            key=lambda r: (r[0], r[1]),
        )
        for moment, _, plan, owner, units, note in receipts:
            m = MATERIAL[plan.material]
            await self._post(c.Receipt(
                warehouse=plan.warehouse, material=plan.material, owner=owner, quantity=_amount(units, m.decimals),
                lot=c.LotIn(code=plan.code, manufactured_on=plan.manufactured_on, expires_on=plan.expires_on),
                occurred_at=moment, reason="reserve replenishment", note=note,
            ), moment, plan.warehouse)

        events = self._plan_events()
        events.sort(key=lambda e: (e[0], e[1]))
        for moment, _, action, args in events:
            await action(moment, *args)

    def _plan_events(self) -> list[tuple[datetime, int, object, tuple]]:
        """The last weeks of operations, as (moment, order, action, arguments)."""
        rng, events = self.rng, []

        def add(moment: datetime, action, *args) -> None:
            events.append((moment, len(events), action, args))

        pairs = [(w.code, material) for w in WAREHOUSES for material in w.materials]
        for warehouse, material in pairs:
            for _ in range(rng.choice((0, 1, 1, 2, 3))):
                add(self._moment(self._day(-24, -3)), self._issue, warehouse, material, rng.uniform(0.05, 0.25))
        duplicated = rng.choice([p for p in pairs if WAREHOUSE[p[0]].kind == "civilian"])
        add(self._moment(self._day(-15, -12)), self._duplicated_issue, *duplicated)
        for warehouse, material in rng.sample(pairs, 10):
            add(self._moment(self._day(-20, -3)), self._write_off, warehouse, material)
        for (warehouse, material), sign in zip(rng.sample(pairs, 4), (-1, 1, -1, -1)):
            add(self._moment(self._day(-18, -4)), self._count, warehouse, material, sign)
        joint = [p for p in pairs if len(WAREHOUSE[p[0]].owners) > 1]
        for warehouse, material in rng.sample(joint, 8):
            add(self._moment(self._day(-22, -5)), self._retitle, warehouse, material)
        for route in ROUTES:
            key, days = route[0], route[6]
            if days is not None:
                sent = self._moment(self._day(-22, -8))
                add(sent, self._dispatch, route)
                add(self._moment(sent.date() + timedelta(days=days)), self._receive, route)
            elif key == OVERDUE_ROUTE:
                add(self._moment(self._day(-7, -7)), self._dispatch, route)
            else:
                add(self._moment(self._day(-2, -1)), self._dispatch, route)
        add(self._moment(self._day(-6, -4)), self._set_status, "WH-E-01", "VACCINE-INFLUENZA", "quarantine",
            "cold-chain excursion: logger showed 11 °C for 3 h; awaiting quality assessment")
        add(self._moment(self._day(-10, -8)), self._set_status, "WH-S-03", "IV-SALINE", "recalled",
            "manufacturer recall notice RC-2231: particulate matter in batch")
        return events

    async def _issue(self, moment: datetime, warehouse: str, material: str, fraction: float,
                     duplicate: bool = False) -> None:
        """Issue first-expiring-first (the service picks the lots) from the owner holding most."""
        day = moment.date()
        usable: dict[str, int] = defaultdict(int)
        for lot, owner, units in self._positions(warehouse, material):
            if self._usable(lot, day):
                usable[owner] += units
        if not usable:
            return
        owner = max(sorted(usable), key=lambda o: usable[o])
        units = int(usable[owner] * fraction)
        m = MATERIAL[material]
        if not m.metered:
            units -= units % 10**m.decimals
        if units <= 0:
            return
        reason = self.rng.choice(ISSUE_REASONS[m.category])
        cmd = c.Issue(owner=owner, quantity=_amount(units, m.decimals), warehouse=warehouse, material=material,
                      occurred_at=moment, reason=reason, note=f"issue voucher {self.rng.randint(10000, 99999)}")
        first = await self._post(cmd, moment, warehouse)
        if duplicate and usable[owner] >= 2 * units:
            # The same voucher keyed twice; the second entry is corrected by a reversal.
            later = moment + timedelta(minutes=3)
            again = await self._post(c.Issue(owner=owner, quantity=cmd.quantity, warehouse=warehouse, material=material,
                                             occurred_at=later, reason=reason, note=cmd.note), later, warehouse)
            fix = later + timedelta(minutes=40)
            await self._post(c.Reversal(movement_id=again.id, occurred_at=fix,
                                        reason=f"duplicate entry of movement {first.id}",
                                        note="voucher keyed twice"), fix, warehouse)

    async def _duplicated_issue(self, moment: datetime, warehouse: str, material: str) -> None:
        await self._issue(moment, warehouse, material, 0.1, duplicate=True)

    async def _write_off(self, moment: datetime, warehouse: str, material: str) -> None:
        """Expired stock destroyed (part of it: destruction is booked as it happens), or damage."""
        day = moment.date()
        positions = self._positions(warehouse, material)
        expired = [p for p in positions if p[0].expires_on is not None and p[0].expires_on <= day]
        if expired:
            lot, owner, units = expired[0]
            units = max(1, units // self.rng.randint(2, 4))
            reason = "expired: destroyed under supervision"
        elif positions:
            lot, owner, units = self.rng.choice(positions)
            units = max(1, units // self.rng.randint(40, 200))
            reason = self.rng.choice(["damaged in handling", "leaking container", "water damage", "pest damage"])
        else:
            return
        m = MATERIAL[material]
        await self._post(c.WriteOff(lot_id=lot.id, owner=owner, quantity=_amount(units, m.decimals),
                                    occurred_at=moment, reason=reason,
                                    note=f"write-off report WO-{self.rng.randint(100, 999)}"), moment, warehouse)

    async def _count(self, moment: datetime, warehouse: str, material: str, sign: int) -> None:
        """A physical count finding a small shortage (``sign`` −1) or surplus (+1)."""
        positions = self._positions(warehouse, material)
        if not positions:
            return
        lot, owner, units = self.rng.choice(positions)
        m = MATERIAL[material]
        step = 10**m.decimals
        diff = max(step, (units // 500) // step * step) * sign
        counted = max(0, units + diff)
        reason = "annual stocktake: shortage" if diff < 0 else "annual stocktake: surplus found (mislabelled pallet)"
        await self._post(c.Adjustment(lot_id=lot.id, owner=owner, counted=_amount(counted, m.decimals),
                                      occurred_at=moment, reason=reason), moment, warehouse)

    async def _retitle(self, moment: datetime, warehouse: str, material: str) -> None:
        """A share of a lot changes title (custody stays): joint-storage agreements between sectors."""
        w = WAREHOUSE[warehouse]
        positions = [p for p in self._positions(warehouse, material) if p[2] >= 10]
        if not positions:
            return
        lot, owner, units = self.rng.choice(positions)
        to_owner = self.rng.choice([o for o in w.owners if o != owner])
        share = units * self.rng.randint(20, 45) // 100
        m = MATERIAL[material]
        if not m.metered:
            share -= share % 10**m.decimals
        if share <= 0:
            return
        await self._post(c.OwnershipTransfer(
            lot_id=lot.id, from_owner=owner, to_owner=to_owner, quantity=_amount(share, m.decimals),
            occurred_at=moment, reason="joint storage agreement: share purchased",
            note=f"agreement JS-{self.rng.randint(100, 999)}",
        ), moment, warehouse)

    async def _dispatch(self, moment: datetime, route) -> None:
        key, source, target, materials, preferred, (lo, hi), days, _short = route
        day = moment.date()
        lines = []
        for material in materials:
            candidates = [p for p in self._positions(source, material) if self._usable(p[0], day, margin_days=45)]
            ranked = [p for p in candidates if p[1] in preferred] or candidates
            m = MATERIAL[material]
            for lot, owner, units in ranked[:2]:
                quantity = int(units * self.rng.uniform(lo, hi))
                if not m.metered:
                    quantity -= quantity % 10**m.decimals
                if quantity > 0:
                    lines.append(c.TransferLineIn(lot_id=lot.id, owner=owner, quantity=_amount(quantity, m.decimals)))
        if not lines:
            return
        # Received routes were expected when they arrived; the overdue one four days after dispatch
        # (days ago); the others still on the road are due in the next days.
        travel = days if days is not None else 4 if key == OVERDUE_ROUTE else self.rng.randint(2, 4)
        expected = datetime.combine(day + timedelta(days=travel), dtime(16, 0), tzinfo=timezone.utc)
        cmd = c.TransferIn(from_warehouse=source, to_warehouse=target, lines=lines, expected_at=expected,
                           note=f"{key.replace('-', ' ')}; waybill {self.rng.randint(100000, 999999)}")
        shown, posted = await transfers.dispatch(self.pg, cmd, self._actor(source), Clock(moment))
        self._track(posted, None)
        self.transfers[key] = shown["id"]

    async def _receive(self, moment: datetime, route) -> None:
        key, _source, target, *_rest, short = route
        transfer_id = self.transfers.get(key)
        if transfer_id is None:
            return
        lines = None
        note = "received in full"
        if short:
            shown = await transfers.show(self.pg, transfer_id)
            lines = []
            for i, line in enumerate(shown["lines"]):
                dispatched = Decimal(line["quantity"])
                received = dispatched
                if i == 0:  # a spill on the road: 1.5 % short, measured at the destination's meter
                    decimals = MATERIAL[line["material"]].decimals
                    received = (dispatched * Decimal("0.985")).quantize(Decimal(1).scaleb(-decimals))
                lines.append(c.ReceivedLineIn(lot_id=line["lot_id"], owner=line["owner"], received=received))
            note = "short receipt: spill reported by the driver, see incident report IR-0412"
        cmd = c.TransferReceiptIn(lines=lines, occurred_at=moment, note=note)
        _shown, posted = await transfers.receive(self.pg, transfer_id, cmd, self._actor(target), Clock(moment))
        self._track(posted, target)

    async def _set_status(self, moment: datetime, warehouse: str, material: str, status: str, reason: str) -> None:
        """Quarantine or recall the lot with most stock (usable lots first) — not a ledger movement."""
        day = moment.date()
        totals: dict[str, int] = defaultdict(int)
        for lot, _owner, units in self._positions(warehouse, material):
            totals[lot.id] += units
        if not totals:
            return
        lot_id = max(sorted(totals), key=lambda i: (self._usable(self.lots[i], day), totals[i]))
        await reads.set_lot_status(self.pg, lot_id, status, reason, self._actor(warehouse).id)
        self.lots[lot_id].status = status

    async def targets(self) -> None:
        """Reserve targets sized against what the history left, so the demo shows every coverage
        state: each is set so usable ÷ required comes out near its ``ratio``."""
        admin = self.actors["admin"]
        today = self.now.date()
        for code, scope, selector, holder, ratio, population in DEMO_TARGETS:
            def command(quantity: Decimal) -> c.TargetIn:
                return c.TargetIn(scope=c.TargetScope(**scope), quantity=quantity, population=population,
                                  horizon_days=30, **selector, **holder)

            await targets.upsert(self.pg, code, command(Decimal(1)), admin)
            [row] = [r for r in await coverage_store.coverage(self.pg, today=today, region=None, category=None)
                     if r["code"] == code]
            usable = row["usable"]
            required = (usable / Decimal(str(ratio))).quantize(Decimal(1)) if usable > 0 else Decimal(1000)
            await targets.upsert(self.pg, code, command(max(required, Decimal(1))), admin)

    async def rotation_policies(self) -> None:
        """When each kind of stock is rotated (upserts by code: loading them twice changes nothing)."""
        for code, selector, trigger, rest in DEMO_ROTATION_POLICIES:
            await rotation.upsert_policy(self.pg, code, c.RotationPolicyIn(**selector, **trigger, **rest))

    async def finish(self) -> None:
        """Master-data changes that come after the history (a depot suspended after inspection)."""
        for w in WAREHOUSES:
            if w.final_status != "active":
                await masterdata.upsert(self.pg, "warehouses", w.code, self._warehouse_in(w, w.final_status))

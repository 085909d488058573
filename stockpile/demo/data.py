"""The demo's scenario, as data: the fictional Republic of Valtara.

A compact northern country (58–62 °N, 22–30 °E) with four provinces, military units, a civil
reserve bureau with provincial civil-defence offices, and enterprises paid to store reserves (a
refinery tank-farm operator, a grain cooperative, a pharma distributor). Nothing in it names a real
person.

Only what the scenario *is* lives here — regions, parties, materials, warehouses, principals and
their roles, transfers on the road, lot status changes, reserve targets and rotation policies. How it
is loaded (and the history of movements drawn from it with a seeded RNG) is in ``loader`` and
``history``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

# code, name, parent
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


# Lot status changes (not ledger movements): warehouse, material, new status, reason, days ago
# (earliest, latest). The lot with most stock there (usable lots first) is the one changed.
LOT_STATUS_CHANGES: list[tuple[str, str, str, str, tuple[int, int]]] = [
    ("WH-E-01", "VACCINE-INFLUENZA", "quarantine",
     "cold-chain excursion: logger showed 11 °C for 3 h; awaiting quality assessment", (-6, -4)),
    ("WH-S-03", "IV-SALINE", "recalled", "manufacturer recall notice RC-2231: particulate matter in batch", (-10, -8)),
]

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


"""Reserve targets (upsert by code) and the coverage view."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg

from stockpile.domain.access import Principal
from stockpile.domain.coverage import coverage_state, days_of_supply, validate_ratios
from stockpile.domain.errors import Forbidden, Invalid, NotFound
from stockpile.services import commands as c
from stockpile.store import coverage as store
from stockpile.store import masterdata

THOUSANDTH = Decimal("0.001")


def _num(value: Decimal) -> str:
    text = format(value.quantize(THOUSANDTH).normalize(), "f")
    return text if "." in text or "E" not in text else str(value)


async def upsert(pg: asyncpg.Connection, code: str, data: c.TargetIn, principal: Principal) -> tuple[bool, dict]:
    errors = validate_ratios(data.warning_ratio, data.critical_ratio, data.floor_ratio)
    if (data.scope.warehouse is None) == (data.scope.region is None):
        errors.append({"field": "scope", "message": "give exactly one of warehouse or region"})
    if sum(x is not None for x in (data.material, data.category, data.substitution_group)) != 1:
        errors.append({"field": "material", "message": "give exactly one of material, category or substitution_group"})
    if data.owner is not None and data.sector is not None:
        errors.append({"field": "owner", "message": "give owner or sector, not both"})
    if not data.quantity.is_finite() or data.quantity <= 0 or data.quantity >= Decimal(10) ** 20:
        errors.append({"field": "quantity", "message": "must be a positive number"})
    refs = {}
    for field, table, given in (("scope.warehouse", "warehouses", data.scope.warehouse),
                                ("scope.region", "regions", data.scope.region),
                                ("material", "materials", data.material), ("owner", "parties", data.owner)):
        if given is not None:
            found = await masterdata.ids_by_code(pg, table, [given])
            if given not in found:
                errors.append({"field": field, "message": f"unknown code {given!r}"})
            refs[field] = found.get(given)
    if errors:
        raise Invalid(errors)
    warehouse_id, region_id = refs.get("scope.warehouse"), refs.get("scope.region")
    if (warehouse_id and not principal.covers_warehouse(warehouse_id)) or (region_id and not principal.covers_region(region_id)):
        raise Forbidden(f"{principal.name} may not set targets outside its regions")
    created = await store.upsert_target(pg, code, {
        "scope_warehouse_id": warehouse_id, "scope_region_id": region_id, "material_id": refs.get("material"),
        "category": data.category, "substitution_group": data.substitution_group, "owner_id": refs.get("owner"),
        "sector": data.sector, "quantity": data.quantity, "warning_ratio": data.warning_ratio,
        "critical_ratio": data.critical_ratio, "floor_ratio": data.floor_ratio, "horizon_days": data.horizon_days,
        "population": data.population,
    })
    return created, present(await store.target(pg, code))


def present(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "code": row["code"],
        "scope": {"warehouse": row["warehouse"]} if row["warehouse"] else {"region": row["region"]},
        "material": row["material"], "category": row["category"], "substitution_group": row["substitution_group"],
        "owner": row["owner"], "sector": row["sector"], "quantity": _num(row["quantity"]),
        "warning_ratio": float(row["warning_ratio"]), "critical_ratio": float(row["critical_ratio"]),
        "floor_ratio": float(row["floor_ratio"]), "horizon_days": row["horizon_days"], "population": row["population"],
    }


async def get(pg: asyncpg.Connection, code: str, visibility: dict) -> dict[str, Any]:
    row = await store.target(pg, code, **visibility)
    if row is None:
        raise NotFound(f"no reserve target with code {code!r}")
    return present(row)


async def coverage(pg: asyncpg.Connection, *, today: date, region: str | None, category: str | None,
                   state: str | None, visibility: dict) -> list[dict[str, Any]]:
    """Coverage of every visible target, in one statement; ``state`` filters the result."""
    items = []
    for row in await store.coverage(pg, today=today, region=region, category=category, **visibility):
        required, usable = row["quantity"], row["usable"]
        ratio = usable / required
        current = coverage_state(ratio, row["warning_ratio"], row["critical_ratio"])
        if state is not None and current != state:
            continue
        days = days_of_supply(usable, row["population"], row["daily_consumption_per_person"])
        items.append({
            **present(row), "target": row["code"], "required": _num(required), "usable": _num(usable),
            "floor": _num(required * row["floor_ratio"]), "ratio": round(float(ratio), 4), "state": current,
            "days_of_supply": None if days is None else float(days), "unit": row["unit"],
        })
    return items

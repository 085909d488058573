"""Reserve targets (upsert by code) and the coverage view."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import asyncpg

from stockpile.domain.access import Principal, TargetPlace, require_target_writable
from stockpile.domain.coverage import coverage_state, days_of_supply, validate_ratios
from stockpile.domain.errors import Invalid, NotFound
from stockpile.services import commands as c
from stockpile.store import coverage as store
from stockpile.store import masterdata


@dataclass(frozen=True)
class Coverage:
    """One target's coverage: its stored row (with ``usable`` and ``unit``) and what the domain made of it."""

    row: asyncpg.Record
    required: Decimal
    usable: Decimal
    ratio: Decimal
    state: str
    days_of_supply: Decimal | None


async def upsert(pg: asyncpg.Connection, code: str, data: c.TargetIn, principal: Principal) -> tuple[bool, asyncpg.Record]:
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
                                ("material", "materials", data.material)):
        if given is not None:
            found = await masterdata.ids_by_code(pg, table, [given])
            if given not in found:
                errors.append({"field": field, "message": f"unknown code {given!r}"})
            refs[field] = found.get(given)
    owner = None if data.owner is None else await masterdata.party_by_code(pg, data.owner)
    if data.owner is not None and owner is None:
        errors.append({"field": "owner", "message": f"unknown code {data.owner!r}"})
    if errors:
        raise Invalid(errors)
    warehouse_id, region_id = refs.get("scope.warehouse"), refs.get("scope.region")
    owner_sector = None if owner is None else owner["sector"]
    current = await store.target(pg, code, for_update=True)
    require_target_writable(
        principal, None if current is None else place(current),
        TargetPlace.of(warehouse_id, region_id, names_owner=data.owner is not None, owner_sector=owner_sector,
                       sector=data.sector))
    created = await store.upsert_target(pg, code, {
        "scope_warehouse_id": warehouse_id, "scope_region_id": region_id, "material_id": refs.get("material"),
        "category": data.category, "substitution_group": data.substitution_group, "owner_id": None if owner is None else owner["id"],
        "sector": data.sector, "quantity": data.quantity, "warning_ratio": data.warning_ratio,
        "critical_ratio": data.critical_ratio, "floor_ratio": data.floor_ratio, "horizon_days": data.horizon_days,
        "population": data.population,
    })
    return created, await store.target(pg, code)


def place(row: asyncpg.Record) -> TargetPlace:
    """A stored target (a row of ``store.coverage.TARGET``) as the policy judges it."""
    return TargetPlace.of(row["scope_warehouse_id"], row["scope_region_id"], names_owner=row["owner_id"] is not None,
                          owner_sector=row["owner_sector"], sector=row["sector"])


async def get(pg: asyncpg.Connection, code: str, principal: Principal) -> asyncpg.Record:
    """One target; one ``principal`` may not see answers as a missing one."""
    row = await store.target(pg, code, **principal.visibility.params())
    if row is None:
        raise NotFound(f"no reserve target with code {code!r}")
    return row


async def listing(pg: asyncpg.Connection, principal: Principal, *, after: str | None,
                  limit: int) -> list[asyncpg.Record]:
    """The targets ``principal`` may see, by code."""
    return await store.targets(pg, after=after, limit=limit, **principal.visibility.params())


async def coverage(pg: asyncpg.Connection, principal: Principal, *, today: date, region: str | None,
                   category: str | None, state: str | None) -> list[Coverage]:
    """Coverage of every target ``principal`` may see, counted on the stock it may see, in one
    statement; ``state`` filters the result."""
    items = []
    for row in await store.coverage(pg, today=today, region=region, category=category,
                                    **principal.visibility.params()):
        required, usable = row["quantity"], row["usable"]
        ratio = usable / required
        current = coverage_state(ratio, row["warning_ratio"], row["critical_ratio"])
        if state is not None and current != state:
            continue
        days = days_of_supply(usable, row["population"], row["daily_consumption_per_person"])
        items.append(Coverage(row, required, usable, ratio, current, days))
    return items

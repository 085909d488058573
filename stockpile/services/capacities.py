"""Capacities: survey them (upsert by code, each new survey date kept in the history), read them, and
the potential view (stock and capacity per region and material, days of supply with and without)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import asyncpg

from stockpile.domain.access import CapacityPlace, Principal, require_capacity_writable, require_visible
from stockpile.domain.errors import Invalid
from stockpile.domain.potential import DaysOfSupply, Output, capacity_military, days_with_capacity
from stockpile.domain.quantities import parse_quantity
from stockpile.services import commands as c
from stockpile.store import capacities as store
from stockpile.store import masterdata


def place(row: asyncpg.Record) -> CapacityPlace:
    """A stored capacity (a row of ``store.capacities.CAPACITY``) as the policy judges it."""
    return CapacityPlace(row["region_id"], row["warehouse_id"], row["military"])


async def _values(pg: asyncpg.Connection, data: c.CapacityIn, today: date) -> tuple[dict, CapacityPlace]:
    """The capacity's row values (codes resolved, quantity in smallest units) and its place as it becomes."""
    errors = []
    party = await masterdata.party_by_code(pg, data.party)
    if party is None:
        errors.append({"field": "party", "message": f"unknown code {data.party!r}"})
    materials = await masterdata.materials_with_code(pg, data.material)
    if not materials:
        errors.append({"field": "material", "message": f"unknown code {data.material!r}"})
    region_id = (await masterdata.ids_by_code(pg, "regions", [data.region])).get(data.region)
    if region_id is None:
        errors.append({"field": "region", "message": f"unknown code {data.region!r}"})
    warehouse = None if data.warehouse is None else await masterdata.warehouse_by_code(pg, data.warehouse)
    if data.warehouse is not None and warehouse is None:
        errors.append({"field": "warehouse", "message": f"unknown code {data.warehouse!r}"})
    elif warehouse is not None and region_id is not None and not await masterdata.ancestors_include(
            pg, "regions", warehouse["region_id"], region_id):
        errors.append({"field": "warehouse", "message": f"warehouse {data.warehouse} does not lie in {data.region}"})
    if data.surveyed_on > today:
        errors.append({"field": "surveyed_on", "message": "a survey cannot be dated in the future"})
    daily = None
    if materials:
        try:
            daily = parse_quantity(data.daily_quantity, materials[0]["decimals"], field="daily_quantity")
        except Invalid as exc:
            errors += exc.errors
    if errors:
        raise Invalid(errors)
    values = {"party_id": party["id"], "material_id": materials[0]["id"], "daily_quantity": daily,
              "lead_days": data.lead_days, "region_id": region_id,
              "warehouse_id": None if warehouse is None else warehouse["id"], "held_for": data.held_for,
              "surveyed_on": data.surveyed_on, "survey_interval_days": data.survey_interval_days, "note": data.note}
    return values, CapacityPlace(region_id, values["warehouse_id"], capacity_military(party["sector"], data.held_for))


async def upsert(pg: asyncpg.Connection, code: str, data: c.CapacityIn, principal: Principal,
                 today: date) -> tuple[bool, asyncpg.Record, list[asyncpg.Record]]:
    """Create or replace a capacity as surveyed. A new ``surveyed_on`` is a new survey in its history;
    the same date restates that survey; an earlier one than the latest is refused (surveys are
    recorded in order, so the capacity always shows its latest). Returns whether it was created, the
    capacity and its surveys."""
    values, becomes = await _values(pg, data, today)
    current = await store.capacity(pg, code, for_update=True)
    require_capacity_writable(principal, None if current is None else place(current), becomes)
    if current is not None and data.surveyed_on < current["surveyed_on"]:
        raise Invalid.field("surveyed_on", f"the latest survey is of {current['surveyed_on'].isoformat()}; "
                                           "an earlier one cannot replace it")
    created = await store.upsert(pg, code, values)
    row = await store.capacity(pg, code)
    await store.record_survey(pg, row["id"], surveyed_on=data.surveyed_on, daily_quantity=values["daily_quantity"],
                              lead_days=data.lead_days, note=data.note, principal_id=principal.id)
    return created, row, await store.surveys(pg, row["id"])


async def get(pg: asyncpg.Connection, code: str, principal: Principal) -> tuple[asyncpg.Record, list[asyncpg.Record]]:
    """One capacity with its survey history; one ``principal`` may not see answers as a missing one."""
    row = await store.capacity(pg, code, **principal.visibility.params())
    require_visible(row is not None, f"capacity with code {code!r}")
    return row, await store.surveys(pg, row["id"])


async def listing(pg: asyncpg.Connection, principal: Principal, *, region: str | None, material: str | None,
                  after: str | None, limit: int) -> list[asyncpg.Record]:
    """The capacities ``principal`` may see, by code."""
    return await store.capacities(pg, region=region, material=material, after=after, limit=limit,
                                  **principal.visibility.params())


@dataclass(frozen=True)
class Potential:
    """One region × material: usable stock and capacity per day (material units), the daily need of
    the population its targets serve (None when unknown) and what the domain made of them."""

    row: asyncpg.Record
    usable: Decimal
    capacity_per_day: Decimal
    daily_need: Decimal | None
    days: DaysOfSupply | None


def outputs(leads: list[int], dailies: list[int], decimals: int) -> list[Output]:
    """Capacity per lead day (smallest units) as the days-of-supply arithmetic takes it (material units)."""
    return [Output(lead, Decimal(daily).scaleb(-decimals)) for lead, daily in zip(leads, dailies)]


async def potential(pg: asyncpg.Connection, principal: Principal, *, today: date, region: str | None,
                    category: str | None) -> list[Potential]:
    """The potential the reader may see, in one statement: per region × material, stock usable,
    capacity per day, and days of supply without and with capacity mobilised from its lead day."""
    items = []
    for row in await store.potential(pg, today=today, region=region, category=category,
                                     **principal.visibility.params()):
        decimals = row["decimals"]
        usable = Decimal(row["units"]).scaleb(-decimals)
        need = None
        if row["population"] and row["daily_consumption_per_person"]:
            need = row["population"] * row["daily_consumption_per_person"]
        days = None if need is None else days_with_capacity(usable, need,
                                                            outputs(row["leads"], row["dailies"], decimals))
        items.append(Potential(row, usable, Decimal(row["daily"]).scaleb(-decimals), need, days))
    return items

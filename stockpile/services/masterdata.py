"""Master data: parties, regions, warehouses, materials — upserted by code."""

from __future__ import annotations

from typing import Any

import asyncpg

from stockpile.domain.access import Principal, require_party_writable
from stockpile.domain.errors import Conflict, Invalid, NotFound
from stockpile.services import commands as c
from stockpile.store import masterdata as store


async def _parent_id(pg: asyncpg.Connection, table: str, code: str, parent: str | None) -> int | None:
    if parent is None:
        return None
    if parent == code:
        raise Invalid.field("parent", "cannot be the object itself")
    ids = await store.ids_by_code(pg, table, [parent, code])
    if parent not in ids:
        raise Invalid.field("parent", f"unknown code {parent!r}")
    if code in ids and await store.ancestors_include(pg, table, ids[parent], ids[code]):
        raise Invalid.field("parent", f"{parent!r} is below {code!r}; that would make a cycle")
    return ids[parent]


async def upsert(pg: asyncpg.Connection, kind: str, code: str, data: Any,
                 principal: Principal | None = None) -> tuple[bool, asyncpg.Record]:
    """Create or replace the object with this code; returns (created, stored object).

    ``principal``: who asks (None: the trusted loaders, demo and import). A party's sector decides
    who sees its stock, so a military party — as it is, or as it would become — is changed only by
    a principal cleared for military stock."""
    if kind == "parties":
        if principal is not None:
            require_party_writable(principal, await store.party_sector_by_code(pg, code), data.sector)
        values = {"name": data.name, "sector": data.sector,
                  "parent_id": await _parent_id(pg, "parties", code, data.parent)}
    elif kind == "regions":
        values = {"name": data.name, "parent_id": await _parent_id(pg, "regions", code, data.parent)}
    elif kind == "warehouses":
        values = await _warehouse_values(pg, data)
    else:
        values = await _material_values(pg, code, data)
    created = await store.upsert(pg, kind, code, values)
    return created, await store.get(pg, kind, code)


async def _warehouse_values(pg: asyncpg.Connection, data: c.WarehouseIn) -> dict[str, Any]:
    operators = await store.ids_by_code(pg, "parties", [data.operator])
    regions = await store.ids_by_code(pg, "regions", [data.region])
    errors = []
    if data.operator not in operators:
        errors.append({"field": "operator", "message": f"unknown party code {data.operator!r}"})
    if data.region not in regions:
        errors.append({"field": "region", "message": f"unknown region code {data.region!r}"})
    for storage_class, amount in data.capacity.items():
        if not amount.is_finite() or amount < 0:
            errors.append({"field": f"capacity.{storage_class}", "message": "must be a non-negative number"})
    if errors:
        raise Invalid(errors)
    import json

    return {
        "name": data.name, "operator_id": operators[data.operator], "region_id": regions[data.region],
        "kind": data.kind, "latitude": data.latitude, "longitude": data.longitude, "status": data.status,
        "capacity": json.dumps({k: format(v.normalize(), "f") for k, v in data.capacity.items()}),
    }


async def _material_values(pg: asyncpg.Connection, code: str, data: c.MaterialIn) -> dict[str, Any]:
    current = await store.material_decimals(pg, code)
    if current is not None and current != data.decimals and await store.material_has_lots(pg, code):
        raise Conflict(
            f"material {code} already has lots stored with {current} decimals; its precision cannot change",
            field="decimals",
        )
    rate = data.daily_consumption_per_person
    if rate is not None and (not rate.is_finite() or rate <= 0 or rate >= 10**12):
        raise Invalid.field("daily_consumption_per_person", "must be a positive finite number")
    return {
        "name": data.name, "category": data.category, "unit": data.unit, "decimals": data.decimals,
        "shelf_life_days": data.shelf_life_days, "storage_class": data.storage_class,
        "substitution_group": data.substitution_group,
        "daily_consumption_per_person": data.daily_consumption_per_person,
    }


async def get(pg: asyncpg.Connection, kind: str, code: str, principal: Principal) -> asyncpg.Record:
    """One object by code; warehouses are limited to ``principal``'s scope, the rest is national
    reference data."""
    row = await store.get(pg, kind, code, principal.warehouse_filter)
    if row is None:
        raise NotFound(f"no {kind[:-1] if kind != 'parties' else 'party'} with code {code!r}")
    return row


async def page(pg: asyncpg.Connection, kind: str, principal: Principal, *, after: str | None,
               limit: int) -> list[asyncpg.Record]:
    """Objects by code, as ``get`` limits them."""
    return await store.page(pg, kind, after, limit, principal.warehouse_filter)

"""Parties, regions, warehouses, materials: upsert by code, read by code."""

from __future__ import annotations

from typing import Any

import asyncpg

PARTY = """
SELECT p.code, p.name, p.sector, parent.code AS parent
  FROM parties p LEFT JOIN parties parent ON parent.id = p.parent_id"""
REGION = """
SELECT r.code, r.name, parent.code AS parent
  FROM regions r LEFT JOIN regions parent ON parent.id = r.parent_id"""
WAREHOUSE = """
SELECT w.code, w.name, o.code AS operator, r.code AS region, w.kind,
       w.latitude, w.longitude, w.status, w.capacity
  FROM warehouses w JOIN parties o ON o.id = w.operator_id JOIN regions r ON r.id = w.region_id"""
MATERIAL = """
SELECT m.code, m.name, m.category, m.unit, m.decimals, m.shelf_life_days, m.storage_class,
       m.substitution_group, m.daily_consumption_per_person
  FROM materials m"""

READS = {"parties": (PARTY, "p"), "regions": (REGION, "r"), "warehouses": (WAREHOUSE, "w"), "materials": (MATERIAL, "m")}


def _scope(kind: str, param: str) -> str:
    """Warehouses are limited to the reader's scope (``None`` = all); other master data is national
    reference data (the parameter is still named, so every statement takes the same arguments)."""
    return f"({param}::bigint[] IS NULL OR w.id = ANY({param}))" if kind == "warehouses" else f"({param}::bigint[] IS NULL OR TRUE)"


async def get(pg: asyncpg.Connection, kind: str, code: str, warehouse_ids: list[int] | None = None) -> asyncpg.Record | None:
    sql, alias = READS[kind]
    return await pg.fetchrow(f"{sql} WHERE {alias}.code = $1 AND {_scope(kind, '$2')}", code, warehouse_ids)


async def page(pg: asyncpg.Connection, kind: str, after: str | None, limit: int,
               warehouse_ids: list[int] | None = None) -> list[asyncpg.Record]:
    sql, alias = READS[kind]
    return await pg.fetch(
        f"""{sql} WHERE ($1::text IS NULL OR {alias}.code > $1) AND {_scope(kind, '$3')}
            ORDER BY {alias}.code LIMIT $2""",
        after, limit, warehouse_ids,
    )


async def any_party(pg: asyncpg.Connection) -> bool:
    """Whether any party exists: the mark of a database that already holds data."""
    return await pg.fetchval("SELECT EXISTS (SELECT 1 FROM parties)")


async def ids_by_code(pg: asyncpg.Connection, table: str, codes: list[str]) -> dict[str, int]:
    rows = await pg.fetch(f"SELECT code, id FROM {table} WHERE code = ANY($1::text[])", codes)
    return {r["code"]: r["id"] for r in rows}


async def codes_by_id(pg: asyncpg.Connection, table: str, ids: list[int] | None) -> dict[int, str]:
    """The code of each of the rows ``ids`` of ``table`` (every row's when ``ids`` is None), by id:
    a use case that works on ids names things by code in what it answers or writes next."""
    rows = await pg.fetch(f"SELECT id, code FROM {table} WHERE $1::bigint[] IS NULL OR id = ANY($1::bigint[])", ids)
    return {r["id"]: r["code"] for r in rows}


async def party_by_code(pg: asyncpg.Connection, code: str) -> asyncpg.Record | None:
    """The party's ``id`` and ``sector``, or None for an unknown code."""
    return await pg.fetchrow("SELECT id, sector FROM parties WHERE code = $1", code)


async def warehouse_by_code(pg: asyncpg.Connection, code: str) -> asyncpg.Record | None:
    """The warehouse's ``id``, ``region_id`` and ``status``, or None for an unknown code."""
    return await pg.fetchrow("SELECT id, region_id, status FROM warehouses WHERE code = $1", code)


async def warehouse_place(pg: asyncpg.Connection, warehouse_id: int) -> asyncpg.Record | None:
    """The warehouse's ``code`` and its ``latitude`` and ``longitude`` as floats (distances are
    computed in floating point), or None for an unknown id."""
    return await pg.fetchrow("SELECT code, latitude::float8 AS latitude, longitude::float8 AS longitude "
                             "FROM warehouses WHERE id = $1", warehouse_id)


async def materials_with_code(pg: asyncpg.Connection, code: str) -> list[asyncpg.Record]:
    """The material of that code (a list of none or one) with its ``id``, ``category`` and ``decimals``."""
    return await pg.fetch("SELECT id, category, decimals FROM materials WHERE code = $1", code)


async def materials_in_group(pg: asyncpg.Connection, group: str) -> list[asyncpg.Record]:
    """Every material of the substitution group, each with its ``id``, ``category`` and ``decimals``."""
    return await pg.fetch("SELECT id, category, decimals FROM materials WHERE substitution_group = $1", group)


async def material_codes(pg: asyncpg.Connection, material_ids: list[int]) -> dict[int, tuple[str, int]]:
    """The ``(code, decimals)`` of each material, by id: how a posting's material is shown."""
    rows = await pg.fetch("SELECT id, code, decimals FROM materials WHERE id = ANY($1::bigint[])", material_ids)
    return {r["id"]: (r["code"], r["decimals"]) for r in rows}


async def ancestors_include(pg: asyncpg.Connection, table: str, start_id: int, target_id: int) -> bool:
    """Whether ``target_id`` is ``start_id`` or one of its ancestors (a parent cycle check)."""
    return await pg.fetchval(
        f"""
        WITH RECURSIVE up(id, parent_id) AS (
            SELECT id, parent_id FROM {table} WHERE id = $1
            UNION SELECT t.id, t.parent_id FROM {table} t JOIN up ON t.id = up.parent_id)
        SELECT EXISTS (SELECT 1 FROM up WHERE id = $2)""",
        start_id, target_id,
    )


async def upsert(pg: asyncpg.Connection, table: str, code: str, values: dict[str, Any]) -> bool:
    """Insert or replace the row with this code; returns True when it was created."""
    columns = ["code", *values]
    params = [code, *values.values()]
    placeholders = ", ".join(f"${i}" for i in range(1, len(params) + 1))
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in values)
    return await pg.fetchval(
        f"""INSERT INTO {table} ({", ".join(columns)}) VALUES ({placeholders})
            ON CONFLICT (code) DO UPDATE SET {updates}, updated_at = now()
            RETURNING xmax = 0""",
        *params,
    )


async def material_has_lots(pg: asyncpg.Connection, code: str) -> bool:
    return await pg.fetchval(
        "SELECT EXISTS (SELECT 1 FROM lots l JOIN materials m ON m.id = l.material_id WHERE m.code = $1)", code
    )


async def material_decimals(pg: asyncpg.Connection, code: str) -> int | None:
    return await pg.fetchval("SELECT decimals FROM materials WHERE code = $1", code)


async def party_sector_by_code(pg: asyncpg.Connection, code: str) -> str | None:
    """The party's sector, its row locked (a write judges the party as it is); None if new."""
    return await pg.fetchval("SELECT sector FROM parties WHERE code = $1 FOR UPDATE", code)


async def root_region_ids(pg: asyncpg.Connection) -> list[int]:
    """The regions at the top of the hierarchy (the nation, or nations)."""
    return [r["id"] for r in await pg.fetch("SELECT id FROM regions WHERE parent_id IS NULL ORDER BY id")]

"""Principals and their bearer tokens (stored as SHA-256 hashes, never in clear)."""

from __future__ import annotations

import hashlib
import secrets

import asyncpg

from stockpile.domain.access import Principal

TOKEN_PREFIX = "sp_"


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


async def upsert_principal(pg: asyncpg.Connection, name: str, roles: list[str], clearance: str | None) -> int:
    """The principal with this name, created if new; its roles are extended, its clearance set if given."""
    return await pg.fetchval(
        """INSERT INTO principals (name, roles, clearance) VALUES ($1, $2::text[], $3)
           ON CONFLICT (name) DO UPDATE
              SET roles = ARRAY(SELECT DISTINCT r FROM unnest(principals.roles || EXCLUDED.roles) r ORDER BY r),
                  clearance = coalesce(EXCLUDED.clearance, principals.clearance)
           RETURNING id""",
        name, roles, clearance,
    )


async def grant(pg: asyncpg.Connection, principal_id: int, warehouses: list[str], regions: list[str]) -> list[str]:
    """Grant warehouse and region scopes by code; returns the codes that do not exist."""
    found_w = await pg.fetch("SELECT id, code FROM warehouses WHERE code = ANY($1::text[])", warehouses)
    found_r = await pg.fetch("SELECT id, code FROM regions WHERE code = ANY($1::text[])", regions)
    missing = sorted(set(warehouses) - {r["code"] for r in found_w}) + sorted(set(regions) - {r["code"] for r in found_r})
    if missing:
        return missing
    await pg.executemany(
        "INSERT INTO principal_grants (principal_id, warehouse_id, region_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        [(principal_id, r["id"], None) for r in found_w] + [(principal_id, None, r["id"]) for r in found_r],
    )
    return []


async def issue_token(pg: asyncpg.Connection, principal_id: int, label: str | None) -> str:
    token = new_token()
    await pg.execute(
        "INSERT INTO api_tokens (principal_id, token_hash, label) VALUES ($1, $2, $3)",
        principal_id, hash_token(token), label,
    )
    return token


async def principal_for_token(pg: asyncpg.Connection, token: str) -> Principal | None:
    """The principal a live token belongs to (not revoked, not expired, principal not disabled)."""
    row = await pg.fetchrow(
        """SELECT p.id, p.name, p.roles, p.clearance,
                  coalesce(array_agg(g.warehouse_id) FILTER (WHERE g.warehouse_id IS NOT NULL), '{}') AS warehouse_ids,
                  coalesce(array_agg(g.region_id) FILTER (WHERE g.region_id IS NOT NULL), '{}') AS region_ids
             FROM api_tokens t JOIN principals p ON p.id = t.principal_id
             LEFT JOIN principal_grants g ON g.principal_id = p.id
            WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
              AND p.disabled_at IS NULL
            GROUP BY p.id""",
        hash_token(token),
    )
    if row is None:
        return None
    return Principal(
        id=row["id"], name=row["name"], roles=frozenset(row["roles"]), clearance=row["clearance"],
        warehouse_ids=frozenset(row["warehouse_ids"]), region_ids=frozenset(row["region_ids"]),
    )

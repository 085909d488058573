"""Principals and their bearer tokens (stored as SHA-256 hashes, never in clear)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

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


async def issue_token(pg: asyncpg.Connection, principal_id: int, label: str | None,
                      expires_at: datetime | None = None) -> str:
    """A new token for the principal; only its hash is stored, the token is returned once."""
    token = new_token()
    await pg.execute(
        "INSERT INTO api_tokens (principal_id, token_hash, label, expires_at) VALUES ($1, $2, $3, $4)",
        principal_id, hash_token(token), label, expires_at,
    )
    return token


async def principal_for_token(pg: asyncpg.Connection, token: str) -> Principal | None:
    """The principal a live token belongs to (not revoked, not expired, principal not disabled),
    with its grants expanded: granted regions' whole subtrees and every warehouse in them."""
    row = await pg.fetchrow(
        """WITH RECURSIVE who AS (
               SELECT p.id, p.name, p.roles, p.clearance
                 FROM api_tokens t JOIN principals p ON p.id = t.principal_id
                WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
                  AND p.disabled_at IS NULL),
           tree(id) AS (
               SELECT g.region_id FROM principal_grants g JOIN who ON g.principal_id = who.id WHERE g.region_id IS NOT NULL
               UNION SELECT r.id FROM regions r JOIN tree ON r.parent_id = tree.id)
           SELECT who.*,
                  ARRAY(SELECT id FROM tree) AS region_ids,
                  ARRAY(SELECT w.id FROM warehouses w WHERE w.region_id IN (SELECT id FROM tree)
                        UNION
                        SELECT g.warehouse_id FROM principal_grants g JOIN who ON g.principal_id = who.id
                         WHERE g.warehouse_id IS NOT NULL) AS warehouse_ids
             FROM who""",
        hash_token(token),
    )
    if row is None:
        return None
    return Principal(
        id=row["id"], name=row["name"], roles=frozenset(row["roles"]), clearance=row["clearance"],
        warehouse_ids=frozenset(row["warehouse_ids"]), region_ids=frozenset(row["region_ids"]),
    )


async def revoke(pg: asyncpg.Connection, *, token: str | None = None, token_id: int | None = None,
                 principal: str | None = None, by: str | None = None) -> int:
    """Revoke one token (by value or id) or every live token of a principal; returns how many."""
    return len(await pg.fetch(
        """UPDATE api_tokens t SET revoked_at = now(), revoked_by = $4
             FROM principals p
            WHERE p.id = t.principal_id AND t.revoked_at IS NULL
              AND ($1::bytea IS NULL OR t.token_hash = $1)
              AND ($2::bigint IS NULL OR t.id = $2)
              AND ($3::text IS NULL OR p.name = $3)
              AND ($1::bytea IS NOT NULL OR $2::bigint IS NOT NULL OR $3::text IS NOT NULL)
        RETURNING t.id""",
        hash_token(token) if token else None, token_id, principal, by,
    ))


TOKEN_COLUMNS = """t.id, p.name AS principal, p.roles, p.clearance, t.label, t.created_at, t.expires_at, t.revoked_at
                   FROM api_tokens t JOIN principals p ON p.id = t.principal_id"""


async def token_by_hash(pg: asyncpg.Connection, token_hash: bytes) -> asyncpg.Record | None:
    return await pg.fetchrow(f"SELECT {TOKEN_COLUMNS} WHERE t.token_hash = $1", token_hash)


async def token_by_id(pg: asyncpg.Connection, token_id: int) -> asyncpg.Record | None:
    return await pg.fetchrow(f"SELECT {TOKEN_COLUMNS} WHERE t.id = $1", token_id)


async def list_tokens(pg: asyncpg.Connection, *, principal: str | None, after: int | None, limit: int) -> list[asyncpg.Record]:
    return await pg.fetch(
        f"""SELECT {TOKEN_COLUMNS} WHERE ($1::text IS NULL OR p.name = $1) AND ($2::bigint IS NULL OR t.id > $2)
            ORDER BY t.id LIMIT $3""",
        principal, after, limit,
    )

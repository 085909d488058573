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
    """The principal with this name, created if new; its roles are extended, its clearance set if given.

    It widens an existing principal without asking: only for a database being built (test fixtures,
    benchmarks). Tokens are issued through ``services.principals.issue_token``."""
    return await pg.fetchval(
        """INSERT INTO principals (name, roles, clearance) VALUES ($1, $2::text[], $3)
           ON CONFLICT (name) DO UPDATE
              SET roles = ARRAY(SELECT DISTINCT r FROM unnest(principals.roles || EXCLUDED.roles) r ORDER BY r),
                  clearance = coalesce(EXCLUDED.clearance, principals.clearance)
           RETURNING id""",
        name, roles, clearance,
    )


async def grant(pg: asyncpg.Connection, principal_id: int, warehouses: list[str], regions: list[str]) -> list[str]:
    """Grant warehouse and region scopes by code; returns the codes that do not exist (and then
    grants nothing)."""
    missing = await unknown_codes(pg, warehouses, regions)
    if not missing:
        await add_grants(pg, principal_id, warehouses, regions)
    return missing


async def add_grants(pg: asyncpg.Connection, principal_id: int, warehouses: list[str], regions: list[str]) -> None:
    """Grant warehouse and region scopes by codes the caller has found to exist (``unknown_codes``),
    in one statement; a grant held already is left as it is."""
    await pg.execute(
        """INSERT INTO principal_grants (principal_id, warehouse_id, region_id)
           SELECT $1::bigint, id, NULL::bigint FROM warehouses WHERE code = ANY($2::text[])
           UNION ALL
           SELECT $1::bigint, NULL::bigint, id FROM regions WHERE code = ANY($3::text[])
           ON CONFLICT DO NOTHING""",
        principal_id, warehouses, regions,
    )


async def issue_token(pg: asyncpg.Connection, principal_id: int, label: str | None,
                      expires_at: datetime | None = None) -> str:
    """A new token for the principal; only its hash is stored, the token is returned once."""
    token = new_token()
    await pg.execute(
        "INSERT INTO api_tokens (principal_id, token_hash, label, expires_at) VALUES ($1, $2, $3, $4)",
        principal_id, hash_token(token), label, expires_at,
    )
    return token


# The principal in ``who`` with its grants expanded: granted regions' whole subtrees and every
# warehouse in them, plus the warehouses granted directly.
_EXPANDED = """WITH RECURSIVE who AS ({who}),
           tree(id) AS (
               SELECT g.region_id FROM principal_grants g JOIN who ON g.principal_id = who.id WHERE g.region_id IS NOT NULL
               UNION SELECT r.id FROM regions r JOIN tree ON r.parent_id = tree.id)
           SELECT who.*,
                  ARRAY(SELECT id FROM tree) AS region_ids,
                  ARRAY(SELECT w.id FROM warehouses w WHERE w.region_id IN (SELECT id FROM tree)
                        UNION
                        SELECT g.warehouse_id FROM principal_grants g JOIN who ON g.principal_id = who.id
                         WHERE g.warehouse_id IS NOT NULL) AS warehouse_ids
             FROM who"""


def _principal(row: asyncpg.Record) -> Principal:
    return Principal(
        id=row["id"], name=row["name"], roles=frozenset(row["roles"]), clearance=row["clearance"],
        warehouse_ids=frozenset(row["warehouse_ids"]), region_ids=frozenset(row["region_ids"]),
    )


async def principal_for_token(pg: asyncpg.Connection, token: str) -> Principal | None:
    """The principal a live token belongs to (not revoked, not expired, principal not disabled),
    with its grants expanded."""
    row = await pg.fetchrow(
        _EXPANDED.format(who="""SELECT p.id, p.name, p.roles, p.clearance
                 FROM api_tokens t JOIN principals p ON p.id = t.principal_id
                WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
                  AND p.disabled_at IS NULL"""),
        hash_token(token),
    )
    return None if row is None else _principal(row)


async def principal_by_name(pg: asyncpg.Connection, name: str) -> tuple[Principal, datetime | None] | None:
    """The named principal with its grants expanded, and when it was disabled (``None``: enabled)."""
    row = await pg.fetchrow(
        _EXPANDED.format(who="SELECT p.id, p.name, p.roles, p.clearance, p.disabled_at FROM principals p WHERE p.name = $1"),
        name,
    )
    return None if row is None else (_principal(row), row["disabled_at"])


async def principal_record(pg: asyncpg.Connection, name: str, *, for_update: bool = False) -> asyncpg.Record | None:
    """The principal as written down: id, roles, clearance, disabled_at, created_at, and its grants by
    code (``warehouses``, ``regions``, direct grants only). ``for_update`` locks the principal's row,
    so changes to one principal's rights are made one at a time."""
    return await pg.fetchrow(
        f"""SELECT p.id, p.name, p.roles, p.clearance, p.created_at, p.disabled_at,
                   ARRAY(SELECT w.code FROM principal_grants g JOIN warehouses w ON w.id = g.warehouse_id
                          WHERE g.principal_id = p.id ORDER BY w.code) AS warehouses,
                   ARRAY(SELECT r.code FROM principal_grants g JOIN regions r ON r.id = g.region_id
                          WHERE g.principal_id = p.id ORDER BY r.code) AS regions
              FROM principals p WHERE p.name = $1 {"FOR UPDATE OF p" if for_update else ""}""",
        name,
    )


async def create_principal(pg: asyncpg.Connection, name: str, roles: list[str], clearance: str | None) -> int | None:
    """A new principal; ``None`` if one of that name exists (nothing is changed then)."""
    return await pg.fetchval(
        """INSERT INTO principals (name, roles, clearance) VALUES ($1, $2::text[], $3)
           ON CONFLICT (name) DO NOTHING RETURNING id""",
        name, sorted(set(roles)), clearance,
    )


async def add_rights(pg: asyncpg.Connection, principal_id: int, roles: list[str], clearance: str | None) -> None:
    """Add roles (and set a clearance, if given) to a principal; nothing is removed."""
    await pg.execute(
        """UPDATE principals
              SET roles = ARRAY(SELECT DISTINCT r FROM unnest(roles || $2::text[]) r ORDER BY r),
                  clearance = coalesce($3, clearance)
            WHERE id = $1""",
        principal_id, roles, clearance,
    )


async def remove_role(pg: asyncpg.Connection, principal_id: int, role: str) -> bool:
    """Take one role from a principal; whether it held it."""
    return await pg.fetchval(
        """UPDATE principals SET roles = array_remove(roles, $2) WHERE id = $1 AND $2 = ANY(roles)
           RETURNING true""",
        principal_id, role,
    ) is not None


async def set_clearance(pg: asyncpg.Connection, principal_id: int, clearance: str | None) -> None:
    await pg.execute("UPDATE principals SET clearance = $2 WHERE id = $1", principal_id, clearance)


async def unknown_codes(pg: asyncpg.Connection, warehouses: list[str], regions: list[str]) -> list[str]:
    """The warehouse and region codes that do not exist."""
    found_w = await pg.fetch("SELECT code FROM warehouses WHERE code = ANY($1::text[])", warehouses)
    found_r = await pg.fetch("SELECT code FROM regions WHERE code = ANY($1::text[])", regions)
    return sorted(set(warehouses) - {r["code"] for r in found_w}) + sorted(set(regions) - {r["code"] for r in found_r})


async def ungrant(pg: asyncpg.Connection, principal_id: int, warehouses: list[str], regions: list[str]) -> list[str]:
    """Remove warehouse and region grants by code; returns the codes that were granted (and are no more)."""
    rows = await pg.fetch(
        """DELETE FROM principal_grants g
            USING principal_grants x
             LEFT JOIN warehouses w ON w.id = x.warehouse_id
             LEFT JOIN regions r ON r.id = x.region_id
            WHERE g.id = x.id AND g.principal_id = $1
              AND (w.code = ANY($2::text[]) OR r.code = ANY($3::text[]))
        RETURNING coalesce(w.code, r.code) AS code""",
        principal_id, warehouses, regions,
    )
    return sorted(r["code"] for r in rows)


async def set_disabled(pg: asyncpg.Connection, principal_id: int, disabled: bool) -> bool:
    """Disable (no token of it authenticates any more) or enable a principal; whether it changed."""
    return await pg.fetchval(
        """UPDATE principals SET disabled_at = CASE WHEN $2 THEN now() END
            WHERE id = $1 AND (disabled_at IS NULL) = $2 RETURNING true""",
        principal_id, disabled,
    ) is not None


async def attribution_principal(pg: asyncpg.Connection, name: str) -> int:
    """The principal the command line's actions are attributed to: disabled, no roles, no clearance,
    no grants (so no token can ever act as it). One left with rights by an older version is
    stripped of them here."""
    principal_id = await pg.fetchval(
        """INSERT INTO principals (name, roles, clearance, disabled_at) VALUES ($1, '{}', NULL, now())
           ON CONFLICT (name) DO UPDATE
              SET roles = '{}', clearance = NULL, disabled_at = coalesce(principals.disabled_at, now())
           RETURNING id""",
        name,
    )
    await pg.execute("DELETE FROM principal_grants WHERE principal_id = $1", principal_id)
    return principal_id


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


TOKEN_COLUMNS = """t.id, p.name AS principal, p.roles, p.clearance, t.label, t.created_at, t.expires_at, t.revoked_at,
                   p.disabled_at AS principal_disabled_at
                   FROM api_tokens t JOIN principals p ON p.id = t.principal_id"""


async def token_by_hash(pg: asyncpg.Connection, token_hash: bytes) -> asyncpg.Record | None:
    return await pg.fetchrow(f"SELECT {TOKEN_COLUMNS} WHERE t.token_hash = $1", token_hash)


async def token_by_id(pg: asyncpg.Connection, token_id: int) -> asyncpg.Record | None:
    return await pg.fetchrow(f"SELECT {TOKEN_COLUMNS} WHERE t.id = $1", token_id)


async def list_tokens(pg: asyncpg.Connection, *, principal: str | None, after: int | None, limit: int | None,
                      live_only: bool = False) -> list[asyncpg.Record]:
    """Tokens in id order; ``live_only``: neither revoked nor expired (the principal may be disabled)."""
    return await pg.fetch(
        f"""SELECT {TOKEN_COLUMNS} WHERE ($1::text IS NULL OR p.name = $1) AND ($2::bigint IS NULL OR t.id > $2)
              AND (NOT $4 OR (t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())))
            ORDER BY t.id LIMIT $3""",
        principal, after, limit, live_only,
    )

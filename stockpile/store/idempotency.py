"""Idempotency keys' SQL (guarantee 5; the rule is ``services.idempotency``).

A key is claimed by inserting its row in the request's own transaction. A concurrent duplicate
blocks on the primary key until the first transaction ends: if it committed, the duplicate finds
the stored response and replays it; if it rolled back, the duplicate proceeds as the first.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class Stored:
    request_hash: bytes
    status_code: int
    body: bytes


async def record(pg: asyncpg.Connection, principal_id: int, key: str, status_code: int, body: bytes) -> None:
    """Store the response that a replay of this key will return."""
    await pg.execute(
        "UPDATE idempotency_keys SET status_code = $3, response = $4 WHERE principal_id = $1 AND key = $2",
        principal_id, key, status_code, body,
    )


async def claim_many(pg: asyncpg.Connection, claims: list[tuple[int, str, bytes]]) -> set[tuple[int, str]]:
    """Claim several keys at once; returns the (principal, key) pairs that were free."""
    rows = await pg.fetch(
        """INSERT INTO idempotency_keys (principal_id, key, request_hash)
           SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[])
           ON CONFLICT (principal_id, key) DO NOTHING RETURNING principal_id, key""",
        [c[0] for c in claims], [c[1] for c in claims], [c[2] for c in claims],
    )
    return {(r["principal_id"], r["key"]) for r in rows}


async def stored_many(pg: asyncpg.Connection, keys: list[tuple[int, str]]) -> dict[tuple[int, str], Stored]:
    """What was stored for keys used before (no round trip when there are none)."""
    if not keys:
        return {}
    rows = await pg.fetch(
        """SELECT k.principal_id, k.key, k.request_hash, k.status_code, k.response FROM idempotency_keys k
             JOIN unnest($1::bigint[], $2::text[]) AS u(principal_id, key) USING (principal_id, key)""",
        [k[0] for k in keys], [k[1] for k in keys],
    )
    return {(r["principal_id"], r["key"]): Stored(bytes(r["request_hash"]), r["status_code"], bytes(r["response"]))
            for r in rows}


async def release_many(pg: asyncpg.Connection, keys: list[tuple[int, str]]) -> None:
    """Free claimed keys whose requests were refused (they leave no trace)."""
    if keys:
        await pg.execute(
            """DELETE FROM idempotency_keys k USING unnest($1::bigint[], $2::text[]) AS u(principal_id, key)
                WHERE k.principal_id = u.principal_id AND k.key = u.key""",
            [k[0] for k in keys], [k[1] for k in keys],
        )

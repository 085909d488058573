"""The audit trail's SQL: append events, seal them into the hash chain, read them back.

Writers never wait for each other: an event is inserted with its content hash in the writer's own
transaction. ``seal`` later chains, under an advisory lock (one sealer at a time: no forks), every
committed event not yet chained, giving each the next chain position. The chain's order is the
order of sealing: an event whose transaction commits after a round is chained in the next one, so
none is skipped (no gaps), and nothing uncommitted is ever chained. A round that sealed anything
ends with a checkpoint of the head it reached, signed when the sealer holds the audit key.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg

from stockpile.domain import audit as rules
from stockpile.store.db import Statement

CONTENT_COLUMNS = "at, actor, roles, action, target, outcome, status, client, request_id, details"
SEAL_LOCK = 0x5710C9A1  # pg_advisory_xact_lock key of the sealer

log = logging.getLogger("stockpile.audit")


def content_of(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    details = row["details"]
    return {
        "at": row["at"], "actor": row["actor"], "roles": list(row["roles"] or []), "action": row["action"],
        "target": row["target"], "outcome": row["outcome"], "status": row["status"], "client": row["client"],
        "request_id": row["request_id"], "details": json.loads(details) if isinstance(details, str) else details,
    }


def event_values(
    *, at: datetime, actor: str | None, roles: list[str], action: str, target: str | None, outcome: str,
    status: int | None, client: str | None, request_id: str | None, details: dict[str, Any] | None = None,
) -> list[Any]:
    """The INSERT parameters of one event (content columns, then its content hash)."""
    content = {"at": at, "actor": actor, "roles": sorted(roles), "action": action, "target": target,
               "outcome": outcome, "status": status, "client": client, "request_id": request_id,
               "details": details or {}}
    return [at, actor, content["roles"], action, target, outcome, status, client, request_id,
            json.dumps(content["details"]), rules.content_hash(content)]


def insert_sql(first: int, *, restricted: bool = False) -> str:
    """``INSERT INTO audit_events …`` taking ``event_values`` from parameter ``$first`` on.

    ``restricted`` marks the event need-to-know; the database also marks every event whose actor is
    a principal with military clearance (trigger ``audit_events_need_to_know``)."""
    p = [f"${first + i}" for i in range(11)]
    return (f"INSERT INTO audit_events ({CONTENT_COLUMNS}, content_hash, restricted) VALUES "
            f"({p[0]}, {p[1]}, {p[2]}::text[], {p[3]}, {p[4]}, {p[5]}, {p[6]}, {p[7]}, {p[8]}, {p[9]}::jsonb, {p[10]}, "
            f"{'true' if restricted else 'false'})")


async def append(pg: asyncpg.Connection, *, restricted: bool = False, **event: Any) -> None:
    """Record one event in the caller's transaction (it commits or vanishes with the change it records)."""
    await insert_event(pg, event_values(**event), restricted=restricted)


async def insert_event(pg: asyncpg.Connection, values: list[Any], *, restricted: bool = False) -> None:
    """Record one event given as its ``event_values``, in the caller's transaction."""
    await pg.execute(insert_sql(1, restricted=restricted), *values)


async def seal(pg: asyncpg.Connection, key: bytes | None = None, batch: int = 5000) -> int:
    """Chain every committed event not yet chained, then checkpoint the head (signed with ``key``
    when given); returns how many were sealed."""
    await pg.execute("SELECT pg_advisory_xact_lock($1)", SEAL_LOCK)
    head = await pg.fetchrow(
        "SELECT chain_seq, chain_hash FROM audit_events WHERE chain_seq IS NOT NULL ORDER BY chain_seq DESC LIMIT 1"
    )
    seq, prev = (head["chain_seq"], bytes(head["chain_hash"])) if head else (0, rules.GENESIS)
    sealed = 0
    while True:
        rows = await pg.fetch(
            """SELECT id, content_hash, restricted, chain_version FROM audit_events WHERE chain_seq IS NULL
                ORDER BY id LIMIT $1""",
            batch,
        )
        if not rows:
            await _checkpoint(pg, key, seq, prev, sealed)
            return sealed
        ids, seqs, prevs, hashes = [], [], [], []
        for row in rows:
            seq += 1
            digest = rules.link_hash(prev, bytes(row["content_hash"]), row["chain_version"], row["restricted"])
            ids.append(row["id"]), seqs.append(seq), prevs.append(prev), hashes.append(digest)
            prev = digest
        await pg.execute(
            """UPDATE audit_events e SET chain_seq = s.seq, prev_hash = s.prev, chain_hash = s.hash
                 FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[]) AS s(id, seq, prev, hash)
                WHERE e.id = s.id""",
            ids, seqs, prevs, hashes,
        )
        sealed += len(rows)


async def _checkpoint(pg: asyncpg.Connection, key: bytes | None, seq: int, head: bytes, sealed: int) -> None:
    """Record the head this round reached — when it sealed anything, or when the head is beyond the
    latest checkpoint (events sealed before checkpoints existed, or a checkpoint removed)."""
    last = await pg.fetchrow(
        """SELECT clock_timestamp() AS now, c.counter, c.chain_seq
             FROM (SELECT 1) AS one
             LEFT JOIN LATERAL (SELECT counter, chain_seq FROM audit_checkpoints ORDER BY counter DESC LIMIT 1) c ON true"""
    )
    last_seq = last["chain_seq"] or 0
    if seq == 0 or seq == last_seq or (not sealed and seq < last_seq):
        return
    if seq < last_seq:
        # Sealing goes on (events must be chained), but the chain now ends before a checkpoint:
        # its newest events were removed. ``stockpile audit verify`` names it.
        log.error("audit chain head %s is behind checkpoint #%s at %s: the trail was truncated; run stockpile audit verify",
                  seq, last["counter"], last_seq)
        return
    counter, at = (last["counter"] or 0) + 1, last["now"]
    mac = rules.sign_checkpoint(key, counter, seq, head, at) if key else None
    await pg.execute("INSERT INTO audit_checkpoints (counter, chain_seq, head_hash, at, hmac) VALUES ($1, $2, $3, $4, $5)",
                     counter, seq, head, at, mac)


async def checkpoints(pg: asyncpg.Connection) -> list[rules.Checkpoint]:
    """Every checkpoint, in counter order."""
    rows = await pg.fetch("SELECT counter, chain_seq, head_hash, at, hmac FROM audit_checkpoints ORDER BY counter")
    return [rules.Checkpoint(r["counter"], r["chain_seq"], bytes(r["head_hash"]), r["at"],
                             bytes(r["hmac"]) if r["hmac"] is not None else None) for r in rows]


async def sealed_events(pg: asyncpg.Connection, batch: int = 5000) -> AsyncIterator[rules.SealedEvent]:
    """Every sealed event in chain order (keyset-paged, so memory stays flat)."""
    after = 0
    while True:
        rows = await pg.fetch(
            f"""SELECT id, chain_seq, {CONTENT_COLUMNS}, content_hash, prev_hash, chain_hash, restricted, chain_version
                  FROM audit_events
                 WHERE chain_seq > $1 ORDER BY chain_seq LIMIT $2""",
            after, batch,
        )
        if not rows:
            return
        for row in rows:
            yield rules.SealedEvent(
                id=row["id"], chain_seq=row["chain_seq"], content=content_of(row),
                content_hash=bytes(row["content_hash"]), prev_hash=bytes(row["prev_hash"]),
                chain_hash=bytes(row["chain_hash"]), restricted=row["restricted"], chain_version=row["chain_version"],
            )
        after = rows[-1]["chain_seq"]


async def unsealed_count(pg: asyncpg.Connection) -> int:
    return await pg.fetchval("SELECT count(*) FROM audit_events WHERE chain_seq IS NULL")


# An action's route template, as ``domain.audit.route_of`` reads it: what follows the method when it is
# a path (``PUT /api/v1/reserve-targets/{code}``), else nothing (a job's or the command line's action).
ROUTE_OF = """CASE WHEN strpos(action, ' ') > 0 AND substr(action, strpos(action, ' ') + 1) LIKE '/%'
                   THEN substr(action, strpos(action, ' ') + 1) END"""


def events(*, since: datetime | None, until: datetime | None, actor: str | None, target: str | None,
           action: str | None, before_id: int | None, limit: int | None, reader_cleared: bool) -> Statement:
    """Events newest first (``limit`` None: every one). A reader without military clearance filters
    by target only on the target it is shown (``domain.audit.visible_event``): never a restricted
    event's, and an unsuccessful event's route template — else the filter would answer whether a
    hidden path was tried."""
    return Statement(
        f"""SELECT id, chain_seq, {CONTENT_COLUMNS}, restricted, encode(content_hash, 'hex') AS content_hash,
                   encode(chain_hash, 'hex') AS chain_hash
              FROM audit_events
             WHERE ($1::timestamptz IS NULL OR at >= $1) AND ($2::timestamptz IS NULL OR at < $2)
               AND ($3::text IS NULL OR actor = $3)
               AND ($4::text IS NULL OR (CASE WHEN $8::boolean OR (NOT restricted AND outcome = 'ok') THEN target
                                              WHEN restricted THEN NULL
                                              ELSE {ROUTE_OF} END) LIKE $4 || '%')
               AND ($5::text IS NULL OR action = $5) AND ($6::bigint IS NULL OR id < $6)
             ORDER BY id DESC LIMIT $7""",
        (since, until, actor, target, action, before_id, limit, reader_cleared),
    )


# Denied requests (401, 403, 429) are counted, not recorded one by one: see ``audit_denials`` (0013).

async def add_denials(pg: asyncpg.Connection, counts: list[tuple[datetime, str, str, str, int, int]]) -> None:
    """Add ``(minute, actor_kind, actor, action, status, count)`` to the denial counts (one upsert,
    rows in key order so concurrent processes lock them in the same order)."""
    counts = sorted(counts)
    await pg.execute(
        """INSERT INTO audit_denials (minute, actor_kind, actor, action, status, count)
           SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::smallint[], $6::bigint[])
           ON CONFLICT (minute, actor_kind, actor, action, status)
           DO UPDATE SET count = audit_denials.count + EXCLUDED.count""",
        *([c[i] for c in counts] for i in range(6)),
    )


async def denials(pg: asyncpg.Connection, *, since: datetime | None, actor: str | None, before_id: int | None,
                  limit: int) -> list[asyncpg.Record]:
    return await pg.fetch(
        """SELECT id, minute, actor_kind, actor, action, status, count FROM audit_denials
            WHERE ($1::timestamptz IS NULL OR minute >= date_trunc('minute', $1::timestamptz))
              AND ($2::text IS NULL OR actor = $2) AND ($3::bigint IS NULL OR id < $3)
            ORDER BY id DESC LIMIT $4""",
        since, actor, before_id, limit,
    )

"""Alerts' SQL: the conditions that call for alerts, the alerts open now, changes with their
history and outbox messages (same transaction), and the reads."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import asyncpg

from stockpile.domain.alerts import Open, Wanted

EVALUATION_LOCK = 0x5710C9A2


async def lock_evaluation(pg: asyncpg.Connection) -> None:
    """One evaluation at a time (a manual `job run` may overlap the scheduled one)."""
    await pg.execute("SELECT pg_advisory_xact_lock($1)", EVALUATION_LOCK)


async def lots_near_expiry(pg: asyncpg.Connection, today: date, within_days: int) -> list[asyncpg.Record]:
    """Lots holding stock that are expired or expire within ``within_days``."""
    return await pg.fetch(
        """SELECT l.id::text AS lot_id, l.code, l.expires_on, w.id AS warehouse_id, w.code AS warehouse, w.region_id,
                  m.code AS material, m.decimals, m.unit, sum(a.balance)::bigint AS balance,
                  bool_or(o.sector = 'military') AS military
             FROM lots l
             JOIN accounts a ON a.lot_id = l.id AND a.type = 'stock' AND a.balance > 0
             JOIN parties o ON o.id = a.owner_id
             JOIN warehouses w ON w.id = l.warehouse_id
             JOIN materials m ON m.id = l.material_id
            WHERE l.expires_on IS NOT NULL AND l.expires_on <= $1::date + $2::int
            GROUP BY l.id, w.id, m.id""",
        today, within_days,
    )


async def overdue_transfers(pg: asyncpg.Connection, now: datetime) -> list[asyncpg.Record]:
    return await pg.fetch(
        """SELECT t.id::text AS id, t.expected_at, fw.code AS from_warehouse, tw.id AS warehouse_id,
                  tw.code AS to_warehouse, tw.region_id,
                  EXISTS (SELECT 1 FROM transfer_lines tl JOIN parties o ON o.id = tl.owner_id
                           WHERE tl.transfer_id = t.id AND o.sector = 'military') AS military
             FROM transfers t JOIN warehouses fw ON fw.id = t.from_warehouse_id JOIN warehouses tw ON tw.id = t.to_warehouse_id
            WHERE t.state = 'in_transit' AND t.expected_at < $1""",
        now,
    )


async def unresolved(pg: asyncpg.Connection, kinds: list[str]) -> list[Open]:
    rows = await pg.fetch(
        "SELECT id::text AS id, kind, subject, severity FROM alerts WHERE state <> 'resolved' AND kind = ANY($1::text[])",
        kinds,
    )
    return [Open(r["id"], r["kind"], r["subject"], r["severity"]) for r in rows]


PAYLOAD = """jsonb_build_object('event', $1, 'alert', jsonb_build_object(
    'id', a.id, 'kind', a.kind, 'subject', a.subject, 'severity', a.severity, 'state', a.state,
    'title', a.title, 'details', a.details, 'opened_at', a.opened_at, 'resolved_at', a.resolved_at))"""


async def _history(pg: asyncpg.Connection, alert_id: str, event: str, severity: str, actor: str | None = None,
                   note: str | None = None) -> None:
    await pg.execute("INSERT INTO alert_events (alert_id, event, severity, actor, note) VALUES ($1::uuid, $2, $3, $4, $5)",
                     alert_id, event, severity, actor, note)


async def acknowledge(pg: asyncpg.Connection, alert_id: str, actor: str, note: str | None) -> str | None:
    """Acknowledge an open alert; returns its state before (None when it does not exist)."""
    row = await pg.fetchrow("SELECT state, severity FROM alerts WHERE id = $1::uuid FOR UPDATE", alert_id)
    if row is None:
        return None
    if row["state"] == "open":
        await pg.execute("UPDATE alerts SET state = 'acknowledged', acknowledged_at = now(), acknowledged_by = $2 "
                         "WHERE id = $1::uuid", alert_id, actor)
        await _history(pg, alert_id, "acknowledged", row["severity"], actor, note)
    return row["state"]


VISIBLE = """($1::bigint[] IS NULL OR a.warehouse_id = ANY($1) OR a.region_id = ANY($2)
             OR (a.warehouse_id IS NULL AND a.region_id IS NULL)) AND ($3 OR NOT a.military)"""

ALERT = """SELECT a.id::text AS id, a.kind, a.subject, a.severity, a.state, a.title, a.details, a.opened_at,
                  a.last_seen_at, a.acknowledged_at, a.acknowledged_by, a.resolved_at, w.code AS warehouse,
                  r.code AS region
             FROM alerts a LEFT JOIN warehouses w ON w.id = a.warehouse_id LEFT JOIN regions r ON r.id = a.region_id"""


async def alerts(pg: asyncpg.Connection, *, state: str | None, kind: str | None, after: str | None, limit: int,
                 visibility: dict[str, Any]) -> list[asyncpg.Record]:
    return await pg.fetch(
        f"""{ALERT} WHERE {VISIBLE} AND ($4::text IS NULL OR a.state = $4) AND ($5::text IS NULL OR a.kind = $5)
              AND ($6::timestamptz IS NULL OR a.opened_at < $6::timestamptz)
            ORDER BY a.opened_at DESC LIMIT $7""",
        visibility["warehouse_ids"], visibility["region_ids"], visibility["cleared"], state, kind,
        datetime.fromisoformat(after) if after else None, limit,
    )


async def alert(pg: asyncpg.Connection, alert_id: str, visibility: dict[str, Any]) -> tuple[asyncpg.Record | None, list]:
    row = await pg.fetchrow(f"{ALERT} WHERE a.id = $4::uuid AND {VISIBLE}", visibility["warehouse_ids"],
                            visibility["region_ids"], visibility["cleared"], alert_id)
    if row is None:
        return None, []
    history = await pg.fetch("SELECT event, severity, actor, note, at FROM alert_events WHERE alert_id = $1::uuid ORDER BY id",
                             alert_id)
    return row, history


async def open_many(pg: asyncpg.Connection, wanted: list[Wanted]) -> int:
    """Open alerts in one statement (ones another evaluation opened meanwhile are skipped), with
    their history and outbox messages."""
    if not wanted:
        return 0
    rows = await pg.fetch(
        """WITH opened AS (
               INSERT INTO alerts (kind, subject, severity, title, details, warehouse_id, region_id, military)
               SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::bigint[],
                                    $7::bigint[], $8::boolean[])
               ON CONFLICT (kind, subject) WHERE state <> 'resolved' DO NOTHING
               RETURNING id, severity)
           SELECT id::text AS id, severity FROM opened""",
        [w.kind for w in wanted], [w.subject for w in wanted], [w.severity for w in wanted], [w.title for w in wanted],
        [json.dumps(w.details, default=str) for w in wanted], [w.warehouse_id for w in wanted],
        [w.region_id for w in wanted], [w.military for w in wanted],
    )
    await _history_many(pg, [r["id"] for r in rows], "opened", [r["severity"] for r in rows])
    await _announce_many(pg, "opened", [r["id"] for r in rows])
    return len(rows)


async def refresh_many(pg: asyncpg.Connection, pairs: list[tuple[Open, Wanted]], event: str | None) -> None:
    """Refresh alerts that stay open (new severity, title, details, last seen) in one statement."""
    if not pairs:
        return
    ids = [a.id for a, _ in pairs]
    await pg.execute(
        """UPDATE alerts a SET severity = u.severity, title = u.title, details = u.details, last_seen_at = now()
             FROM unnest($1::uuid[], $2::text[], $3::text[], $4::jsonb[]) AS u(id, severity, title, details)
            WHERE a.id = u.id""",
        ids, [w.severity for _, w in pairs], [w.title for _, w in pairs],
        [json.dumps(w.details, default=str) for _, w in pairs],
    )
    if event is not None:
        await _history_many(pg, ids, event, [w.severity for _, w in pairs])
        if event == "escalated":
            await _announce_many(pg, "escalated", ids)


async def resolve_many(pg: asyncpg.Connection, gone: list[Open]) -> None:
    if not gone:
        return
    ids = [a.id for a in gone]
    await pg.execute("UPDATE alerts SET state = 'resolved', resolved_at = now() WHERE id = ANY($1::uuid[])", ids)
    await _history_many(pg, ids, "resolved", [a.severity for a in gone])
    await _announce_many(pg, "resolved", ids)


async def _history_many(pg: asyncpg.Connection, ids: list[str], event: str, severities: list[str]) -> None:
    if ids:
        await pg.execute(
            """INSERT INTO alert_events (alert_id, event, severity)
               SELECT id, $2, severity FROM unnest($1::uuid[], $3::text[]) AS u(id, severity)""",
            ids, event, severities,
        )


async def _announce_many(pg: asyncpg.Connection, event: str, ids: list[str]) -> None:
    if ids:
        await pg.execute(
            f"""INSERT INTO outbox (topic, payload)
                SELECT 'alert.' || $1, {PAYLOAD} FROM alerts a WHERE a.id = ANY($2::uuid[])""",
            event, ids,
        )

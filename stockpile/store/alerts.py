"""Alerts' SQL, set-wise: what the reserve calls for (staged in the temporary table
``alert_wanted``, plus the expiry alerts of the stock ``take_stock`` took) is reconciled with the
unresolved alerts in one statement — open, escalate, ease, refresh, resolve — writing each change's
history and outbox message in the same transaction. A steady-state evaluation (nothing changed)
writes one row per alert kind: the time it was evaluated (an unresolved alert's "last seen")."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import asyncpg

from stockpile.domain.alerts import Wanted
from stockpile.store.db import Statement
from stockpile.store.visibility import ALERTS, TARGET_COUNTS_EVERY_OWNER

EVALUATION_LOCK = 0x5710C9A2


async def lock_evaluation(pg: asyncpg.Connection) -> None:
    """One evaluation at a time (a manual `job run` may overlap the scheduled one)."""
    await pg.execute("SELECT pg_advisory_xact_lock($1)", EVALUATION_LOCK)


WANTED_COLUMNS = ("kind", "subject", "severity", "title", "details", "warehouse_id", "region_id", "military")


async def begin_wanted(pg: asyncpg.Connection) -> None:
    """Stage area for the alerts the reserve calls for now; gone at commit."""
    await pg.execute(
        """CREATE TEMPORARY TABLE alert_wanted (
               kind text NOT NULL, subject text NOT NULL, severity text NOT NULL, title text NOT NULL,
               details jsonb NOT NULL, warehouse_id bigint, region_id bigint, military boolean NOT NULL)
           ON COMMIT DROP""")


async def want(pg: asyncpg.Connection, wanted: list[Wanted]) -> None:
    """Stage alerts computed by the service (binary COPY)."""
    if wanted:
        await pg.copy_records_to_table("alert_wanted", columns=WANTED_COLUMNS, records=[
            (w.kind, w.subject, w.severity, w.title, json.dumps(w.details, default=str), w.warehouse_id, w.region_id,
             w.military) for w in wanted])


# The expiry rule of ``stockpile.domain.alerts.expiry_alert``, for every lot ``take_stock`` found
# expiring within the alert window: ``expired_on_hand`` (critical) past its expiry, else ``expiring``
# (critical within $3 days). $2 is today. Read by the reconciliation directly, not staged, and in the
# shape of ``STAGED_WANTED``: no title or details yet, but what they are made of (the ``x_`` columns).
TAKEN_EXPIRY_WANTED = """
    SELECT CASE WHEN h.expires_on <= $2::date THEN 'expired_on_hand' ELSE 'expiring' END AS kind,
           'lot:' || h.lot_id AS subject,
           CASE WHEN h.expires_on - $2::date <= $3::int THEN 'critical' ELSE 'warning' END AS severity,
           NULL::text AS title, NULL::jsonb AS details, w.id AS warehouse_id, w.region_id, h.military,
           h.lot_id AS x_lot_id, h.lot_code AS x_lot_code, m.code AS x_material, w.code AS x_warehouse,
           to_char(h.expires_on, 'YYYY-MM-DD') AS x_expires_on,
           round(h.on_hand / 10::numeric ^ m.decimals, m.decimals)::text AS x_on_hand, m.unit AS x_unit
      FROM taken_stock h
      JOIN warehouses w ON w.id = h.warehouse_id
      JOIN materials m ON m.id = h.material_id
     WHERE h.lot_id IS NOT NULL"""

# Alerts the service staged in ``alert_wanted``, with their title and details made.
STAGED_WANTED = """
    SELECT *, NULL::uuid AS x_lot_id, NULL::text AS x_lot_code, NULL::text AS x_material, NULL::text AS x_warehouse,
           NULL::text AS x_expires_on, NULL::text AS x_on_hand, NULL::text AS x_unit
      FROM alert_wanted"""

# An expiry alert's title and details, from the ``x_`` columns of ``d`` — made only for the alerts
# that open or change: tens of thousands of unchanged expiry alerts are compared by what changes
# (expiry, quantity on hand, unit), never rebuilt.
EXPIRY_TITLE = """format('lot %s of %s at %s %s on %s with %s %s on hand', d.x_lot_code, d.x_material, d.x_warehouse,
                         CASE d.kind WHEN 'expired_on_hand' THEN 'expired' ELSE 'expires' END, d.x_expires_on,
                         d.x_on_hand, d.x_unit)"""
EXPIRY_DETAILS = """jsonb_build_object('lot_id', d.x_lot_id, 'lot_code', d.x_lot_code, 'material', d.x_material,
                                      'warehouse', d.x_warehouse, 'expires_on', d.x_expires_on,
                                      'on_hand', d.x_on_hand, 'unit', d.x_unit)"""


async def want_overdue_transfers(pg: asyncpg.Connection, now: datetime) -> None:
    """Stage ``transfer_overdue`` for transfers still in transit after their expected time."""
    await pg.execute(
        """INSERT INTO alert_wanted
           SELECT 'transfer_overdue', 'transfer:' || t.id, 'warning',
                  format('transfer %s → %s was expected %s', fw.code, tw.code,
                         to_char(t.expected_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')),
                  jsonb_build_object('transfer_id', t.id, 'expected_at', t.expected_at),
                  tw.id, tw.region_id,
                  EXISTS (SELECT 1 FROM transfer_lines tl JOIN parties o ON o.id = tl.owner_id
                           WHERE tl.transfer_id = t.id AND o.sector = 'military')
             FROM transfers t
             JOIN warehouses fw ON fw.id = t.from_warehouse_id
             JOIN warehouses tw ON tw.id = t.to_warehouse_id
            WHERE t.state = 'in_transit' AND t.expected_at < $1""",
        now,
    )


PAYLOAD = """jsonb_build_object('event', {event}, 'alert', jsonb_build_object(
    'id', a.id, 'kind', a.kind, 'subject', a.subject, 'severity', a.severity, 'state', a.state,
    'title', a.title, 'details', a.details, 'opened_at', a.opened_at, 'resolved_at', a.resolved_at))"""

async def _history(pg: asyncpg.Connection, alert_id: str, event: str, severity: str, actor: str | None = None,
                   note: str | None = None) -> None:
    await pg.execute("INSERT INTO alert_events (alert_id, event, severity, actor, note) VALUES ($1::uuid, $2, $3, $4, $5)",
                     alert_id, event, severity, actor, note)


OPENED_PAYLOAD = PAYLOAD.format(event="'opened'")


async def raise_one(pg: asyncpg.Connection, w: Wanted) -> bool:
    """Open an alert an event calls for (not an evaluation), or refresh its title and details when
    one of its (kind, subject) is already unresolved; announced in the outbox when opened. Returns
    True when it was opened."""
    row = await pg.fetchrow(
        """INSERT INTO alerts (kind, subject, severity, title, details, warehouse_id, region_id, military)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7, $8)
           ON CONFLICT (kind, subject) WHERE state <> 'resolved'
           DO UPDATE SET title = EXCLUDED.title, details = EXCLUDED.details, last_seen_at = now()
           RETURNING id::text AS id, xmax = 0 AS opened""",
        w.kind, w.subject, w.severity, w.title, json.dumps(w.details, default=str), w.warehouse_id, w.region_id,
        w.military,
    )
    if row["opened"]:
        await _history(pg, row["id"], "opened", w.severity)
        await pg.execute(
            f"INSERT INTO outbox (topic, payload, military) SELECT 'alert.opened', {OPENED_PAYLOAD}, a.military FROM alerts a "
            "WHERE a.id = $1::uuid", row["id"])
    return row["opened"]


VISIBLE = ALERTS.format(warehouses="$1", regions="$2", cleared="$3")


async def acknowledge(pg: asyncpg.Connection, alert_id: str, actor: str, note: str | None,
                      visibility: dict[str, Any]) -> str | None:
    """Acknowledge an open alert the reader may see (``visibility``, judged under the row's lock);
    returns its state before (None when it does not exist for that reader)."""
    row = await pg.fetchrow(
        f"SELECT a.state, a.severity FROM alerts a WHERE a.id = $4::uuid AND {VISIBLE} FOR UPDATE OF a",
        visibility["warehouse_ids"], visibility["region_ids"], visibility["cleared"], alert_id)
    if row is None:
        return None
    if row["state"] == "open":
        await pg.execute("UPDATE alerts SET state = 'acknowledged', acknowledged_at = now(), acknowledged_by = $2 "
                         "WHERE id = $1::uuid", alert_id, actor)
        await _history(pg, alert_id, "acknowledged", row["severity"], actor, note)
    return row["state"]


# An unresolved alert was seen by the last evaluation of its kind (see migration 0008).
ALERT = """SELECT a.id::text AS id, a.kind, a.subject, a.severity, a.state, a.title, a.details, a.opened_at,
                  CASE WHEN a.state <> 'resolved' THEN greatest(a.last_seen_at, e.evaluated_at)
                       ELSE a.last_seen_at END AS last_seen_at,
                  a.acknowledged_at, a.acknowledged_by, a.resolved_at, w.code AS warehouse, r.code AS region,
                  a.kind = 'shortfall' AND EXISTS (
                      SELECT 1 FROM reserve_targets t WHERE t.code = substr(a.subject, 8)  -- 'target:CODE'
                         AND """ + TARGET_COUNTS_EVERY_OWNER + """) AS counts_every_owner
             FROM alerts a LEFT JOIN warehouses w ON w.id = a.warehouse_id LEFT JOIN regions r ON r.id = a.region_id
             LEFT JOIN alert_evaluations e ON e.kind = a.kind"""


def alerts(*, state: str | None, kind: str | None, after: str | None, limit: int | None,
           visibility: dict[str, Any]) -> Statement:
    """Alerts the reader (``visibility``) may see, newest first; ``limit`` None: every one."""
    return Statement(
        f"""{ALERT} WHERE {VISIBLE} AND ($4::text IS NULL OR a.state = $4) AND ($5::text IS NULL OR a.kind = $5)
              AND ($6::timestamptz IS NULL OR a.opened_at < $6::timestamptz)
            ORDER BY a.opened_at DESC LIMIT $7""",
        (visibility["warehouse_ids"], visibility["region_ids"], visibility["cleared"], state, kind,
         datetime.fromisoformat(after) if after else None, limit),
    )


async def alert(pg: asyncpg.Connection, alert_id: str, visibility: dict[str, Any]) -> tuple[asyncpg.Record | None, list]:
    row = await pg.fetchrow(f"{ALERT} WHERE a.id = $4::uuid AND {VISIBLE}", visibility["warehouse_ids"],
                            visibility["region_ids"], visibility["cleared"], alert_id)
    if row is None:
        return None, []
    history = await pg.fetch("SELECT event, severity, actor, note, at FROM alert_events WHERE alert_id = $1::uuid ORDER BY id",
                             alert_id)
    return row, history


RANK = "CASE {} WHEN 'critical' THEN 2 ELSE 1 END"

def _reconcile_sql(wanted: str) -> str:
    return f"""
WITH diff AS MATERIALIZED (  -- wanted vs unresolved, in one hash join; unchanged pairs are only counted
    SELECT o.id, o.severity AS was, w.*,
           CASE WHEN o.id IS NULL THEN 'open' WHEN w.kind IS NULL THEN 'resolve'
                WHEN {RANK.format("w.severity")} > {RANK.format("o.severity")} THEN 'escalate'
                WHEN {RANK.format("w.severity")} < {RANK.format("o.severity")} THEN 'ease'
                WHEN w.x_lot_id IS NULL AND (o.title, o.details) IS DISTINCT FROM (w.title, w.details) THEN 'refresh'
                WHEN w.x_lot_id IS NOT NULL
                 AND (o.details->>'expires_on', o.details->>'on_hand', o.details->>'unit')
                     IS DISTINCT FROM (w.x_expires_on, w.x_on_hand, w.x_unit) THEN 'refresh'
                ELSE 'keep' END AS change
      FROM (SELECT * FROM alerts WHERE state <> 'resolved' AND kind = ANY($1::text[])) o
      FULL JOIN (SELECT * FROM ({wanted}) wanted WHERE kind = ANY($1::text[])) w
        ON w.kind = o.kind AND w.subject = o.subject),
todo AS MATERIALIZED (  -- what changes, with its title and details made
    SELECT d.id, d.was, d.kind, d.subject, d.severity, d.warehouse_id, d.region_id, d.military, d.change,
           CASE WHEN d.x_lot_id IS NULL THEN d.title ELSE {EXPIRY_TITLE} END AS title,
           CASE WHEN d.x_lot_id IS NULL THEN d.details ELSE {EXPIRY_DETAILS} END AS details
      FROM diff d WHERE d.change <> 'keep'),
gone AS (
    UPDATE alerts a
       SET state = 'resolved', resolved_at = now(),
           last_seen_at = greatest(a.last_seen_at, (SELECT e.evaluated_at FROM alert_evaluations e WHERE e.kind = a.kind))
      FROM todo d
     WHERE d.change = 'resolve' AND a.id = d.id AND a.state <> 'resolved'
 RETURNING a.*),
changed AS (
    UPDATE alerts a
       SET severity = d.severity, title = d.title, details = d.details, last_seen_at = now()
      FROM todo d
     WHERE d.change IN ('escalate', 'ease', 'refresh') AND a.id = d.id
 RETURNING a.*, d.change),
opened AS (
    INSERT INTO alerts (kind, subject, severity, title, details, warehouse_id, region_id, military)
    SELECT kind, subject, severity, title, details, warehouse_id, region_id, military FROM todo WHERE change = 'open'
        ON CONFLICT (kind, subject) WHERE state <> 'resolved' DO NOTHING
 RETURNING *),
history AS (
    INSERT INTO alert_events (alert_id, event, severity)
    SELECT id, 'resolved', severity FROM gone
     UNION ALL
    SELECT id, CASE change WHEN 'escalate' THEN 'escalated' ELSE 'eased' END, severity FROM changed
     WHERE change <> 'refresh'
     UNION ALL
    SELECT id, 'opened', severity FROM opened),
announced AS (
    INSERT INTO outbox (topic, payload, military)  -- military: for cleared webhook endpoints only
    SELECT 'alert.resolved', {PAYLOAD.format(event="'resolved'")}, a.military FROM gone a
     UNION ALL
    SELECT 'alert.escalated', {PAYLOAD.format(event="'escalated'")}, a.military FROM changed a WHERE a.change = 'escalate'
     UNION ALL
    SELECT 'alert.opened', {PAYLOAD.format(event="'opened'")}, a.military FROM opened a),
evaluated AS (
    INSERT INTO alert_evaluations (kind, evaluated_at) SELECT unnest($1::text[]), now()
        ON CONFLICT (kind) DO UPDATE SET evaluated_at = EXCLUDED.evaluated_at)
SELECT (SELECT count(*) FROM opened) AS opened,
       (SELECT count(*) FROM changed WHERE change = 'escalate') AS escalated,
       (SELECT count(*) FROM changed WHERE change = 'ease') AS eased,
       (SELECT count(*) FROM diff WHERE change IN ('keep', 'refresh')) AS still_open,
       (SELECT count(*) FROM gone) AS resolved"""


RECONCILE = _reconcile_sql(STAGED_WANTED)
RECONCILE_WITH_TAKEN_EXPIRY = _reconcile_sql(f"{STAGED_WANTED} UNION ALL {TAKEN_EXPIRY_WANTED}")


async def reconcile(pg: asyncpg.Connection, kinds: list[str], *,
                    taken_expiry: tuple[date, int] | None = None) -> dict[str, int]:
    """Make the unresolved alerts of ``kinds`` match ``alert_wanted`` (the rule of
    ``stockpile.domain.alerts.reconcile``, set-wise, in one statement): resolve the ones no longer
    called for, escalate or ease the ones whose severity changed, refresh title and details, open
    the new ones (one unresolved alert per (kind, subject): one another evaluation opened meanwhile
    is skipped). Opened, escalated and resolved alerts are announced in the outbox; every change of
    state or severity is in the history. Unchanged alerts are not written: their last seen is the
    evaluation time recorded per kind (``alert_evaluations``). ``taken_expiry=(today,
    critical_within_days)`` adds the expiry alerts of the stock ``take_stock`` took to the wanted ones."""
    await lock_evaluation(pg)
    if taken_expiry is None:
        return dict(await pg.fetchrow(RECONCILE, kinds))
    return dict(await pg.fetchrow(RECONCILE_WITH_TAKEN_EXPIRY, kinds, *taken_expiry))

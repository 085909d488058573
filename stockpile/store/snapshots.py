"""Aggregates for dashboards, computed by the worker, stored as one snapshot row, read by the API."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import asyncpg

from stockpile.domain.coverage import coverage_state
from stockpile.store import coverage
from stockpile.store import rotation_plan
from stockpile.store import sensors


ALL, CLEARED, UNCLEARED = "all", "cleared", "uncleared"


def _by_sector(sector: str) -> str:
    """A series of one owner sector: the military sector's is for cleared tokens only."""
    return CLEARED if sector == "military" else ALL


async def aggregate(pg: asyncpg.Connection, today: date, max_targets: int = 100,
                    job_intervals: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """Every business gauge, aggregated (never per lot). Series are bounded: provinces (top-level
    regions) × categories × sectors × units for stock, categories × sectors × units for expiring stock,
    the ``max_targets`` worst-covered targets (with counts by state for all of them), kinds ×
    severities for alerts.

    Need-to-know: each sample names its ``audience`` — ``all``, ``cleared`` (it counts military
    stock: only a token cleared for it is shown it) or ``uncleared`` (the same gauge counted on the
    stock an uncleared reader may see, as ``GET /coverage`` counts it for them)."""
    samples: list[dict[str, Any]] = []

    def add(metric: str, value: float, audience: str = ALL, **labels: str) -> None:
        samples.append({"metric": metric, "labels": labels, "value": float(value), "audience": audience})

    expiring: dict[tuple[str, str, str], list] = {}

    for row in await pg.fetch(
        """WITH RECURSIVE chain(region_id, ancestor_id, depth) AS (
               SELECT id, id, 0 FROM regions
               UNION ALL
               SELECT c.region_id, r.parent_id, c.depth + 1 FROM chain c JOIN regions r ON r.id = c.ancestor_id
                WHERE r.parent_id IS NOT NULL),
           ranked AS (
               SELECT region_id, ancestor_id, row_number() OVER (PARTITION BY region_id ORDER BY depth DESC) AS rn
                 FROM chain),
           province AS (  -- the region's top-level division under the nation (the nation itself for the root)
               SELECT region_id, coalesce(max(ancestor_id) FILTER (WHERE rn = 2), max(ancestor_id)) AS province_id
                 FROM ranked GROUP BY region_id)
           SELECT m.category, r.code AS region, o.sector, m.unit,
                  sum(a.balance::numeric / (10::numeric ^ m.decimals)) AS on_hand,
                  sum(CASE WHEN l.expires_on <= $1::date + 30 THEN a.balance ELSE 0 END::numeric / (10::numeric ^ m.decimals)) AS d30,
                  sum(CASE WHEN l.expires_on <= $1::date + 90 THEN a.balance ELSE 0 END::numeric / (10::numeric ^ m.decimals)) AS d90
             FROM accounts a JOIN lots l ON l.id = a.lot_id JOIN materials m ON m.id = a.material_id
             JOIN warehouses w ON w.id = l.warehouse_id
             JOIN province p ON p.region_id = w.region_id JOIN regions r ON r.id = p.province_id
             JOIN parties o ON o.id = a.owner_id
            WHERE a.type = 'stock' AND a.balance > 0
            GROUP BY 1, 2, 3, 4""",
        today,
    ):
        labels = {"category": row["category"], "region": row["region"], "sector": row["sector"], "unit": row["unit"]}
        add("stockpile_stock_quantity", row["on_hand"], _by_sector(row["sector"]), **labels)
        national = (row["category"], row["sector"], row["unit"])
        expiring[national] = [a + b for a, b in zip(expiring.get(national, (0, 0)), (row["d30"], row["d90"]))]
    # Expiring stock is a national figure per category, sector and unit: by province it would
    # triple the stock series for a number nobody reads by province.
    for (category, sector, unit), (d30, d90) in sorted(expiring.items()):
        audience = _by_sector(sector)
        add("stockpile_expiring_quantity", d30, audience, within="30d", category=category, sector=sector, unit=unit)
        add("stockpile_expiring_quantity", d90, audience, within="90d", category=category, sector=sector, unit=unit)
    for audience, cleared in ((CLEARED, True), (UNCLEARED, False)):
        rows = await coverage.coverage(pg, today=today, region=None, category=None, cleared=cleared)
        states: dict[str, int] = {"ok": 0, "warning": 0, "critical": 0}
        for row in rows:
            states[coverage_state(row["usable"] / row["quantity"], row["warning_ratio"], row["critical_ratio"])] += 1
        for state, n in states.items():
            add("stockpile_targets", n, audience, state=state)
        for row in sorted(rows, key=lambda r: r["usable"] / r["quantity"])[:max_targets]:
            labels = {"target": row["code"]}
            add("stockpile_coverage_ratio", row["usable"] / row["quantity"], audience, **labels)
            add("stockpile_coverage_usable_quantity", row["usable"], audience, **labels)
            add("stockpile_coverage_required_quantity", row["quantity"], audience, **labels)
    for row in await pg.fetch("SELECT kind, severity, count(*) AS n FROM alerts WHERE state <> 'resolved' GROUP BY 1, 2"):
        add("stockpile_alerts_open", row["n"], kind=row["kind"], severity=row["severity"])
    for row in await pg.fetch("SELECT kind, count(*) AS n FROM movements GROUP BY 1"):
        add("stockpile_ledger_movements", row["n"], kind=row["kind"])
    for row in await pg.fetch(
        """SELECT job, extract(epoch FROM max(finished_at)) AS at FROM job_runs WHERE outcome = 'ok' GROUP BY job"""):
        add("stockpile_job_last_success_timestamp_seconds", row["at"], job_name=row["job"])
    for job, seconds in sorted((job_intervals or {}).items()):
        add("stockpile_job_interval_seconds", seconds, job_name=job)
    await _webhook_backlog(pg, add)
    states, overdue = await rotation_plan.rotation_gauges(pg, today)
    by_state = {row["state"]: row["n"] for row in states}
    for state in ("planned", "in_progress", "completed", "cancelled"):
        add("stockpile_rotation_orders", by_state.get(state, 0), state=state)
    totals: dict[tuple[str, str], dict[str, Any]] = {}
    for row in overdue:
        total = totals.setdefault((row["category"], row["unit"]), {CLEARED: 0, UNCLEARED: 0})
        total[CLEARED] += row["quantity"]
        if not row["military"]:
            total[UNCLEARED] += row["quantity"]
    for (category, unit), by_audience in sorted(totals.items()):
        for audience, quantity in by_audience.items():
            add("stockpile_rotation_overdue_quantity", quantity, audience, category=category, unit=unit)
    # Nothing overdue is a figure too (0), for every category and unit the reserve holds materials in.
    for row in await pg.fetch("SELECT DISTINCT category, unit FROM materials ORDER BY 1, 2"):
        if (row["category"], row["unit"]) not in totals:
            add("stockpile_rotation_overdue_quantity", 0, category=row["category"], unit=row["unit"])
    requests = {(r["state"], r["priority"]): r["n"] for r in await pg.fetch(
        "SELECT state, priority, count(*) AS n FROM allocation_requests GROUP BY 1, 2")}
    for state in ("pending", "allocated", "cancelled"):
        for priority in ("flash", "immediate", "priority", "routine"):
            add("stockpile_allocation_requests", requests.get((state, priority), 0), state=state, priority=priority)
    plans = {r["state"]: r["n"] for r in await pg.fetch("SELECT state, count(*) AS n FROM allocation_plans GROUP BY 1")}
    for state in ("proposed", "approved", "dispatched", "cancelled", "expired"):
        add("stockpile_allocation_plans", plans.get(state, 0), state=state)
    for row in await sensors.sensor_counts(pg):  # counts of sensors, no reading: shown to every audience
        where = {"warehouse_kind": row["warehouse_kind"], "storage_class": row["storage_class"]}
        add("stockpile_sensors", row["n"], state=row["state"], **where)
        if row["state"] == "excursion":
            add("stockpile_sensor_excursions_open", row["n"], **where)
    return samples


async def _webhook_backlog(pg: asyncpg.Connection, add) -> None:
    """Deliveries not yet made and the oldest one's age, by the endpoints' clearance: those to
    cleared endpoints may be about military stock, so only a cleared scrape sees their figures."""
    rows = {r["cleared"]: r for r in await pg.fetch(
        """SELECT d.cleared, count(*) AS n, extract(epoch FROM now() - min(o.created_at)) AS oldest
             FROM outbox_deliveries d JOIN outbox o ON o.id = d.message_id
            WHERE d.delivered_at IS NULL GROUP BY 1""")}
    for cleared, clearance, audience in ((False, "uncleared", ALL), (True, "military", CLEARED)):
        row = rows.get(cleared)
        add("stockpile_webhook_deliveries_pending", row["n"] if row else 0, audience, clearance=clearance)
        add("stockpile_webhook_oldest_pending_seconds", row["oldest"] if row else 0, audience, clearance=clearance)


async def store(pg: asyncpg.Connection, name: str, samples: list[dict[str, Any]]) -> None:
    await pg.execute(
        """INSERT INTO metric_snapshots (name, samples) VALUES ($1, $2::jsonb)
           ON CONFLICT (name) DO UPDATE SET samples = EXCLUDED.samples, taken_at = now()""",
        name, json.dumps(samples),
    )


async def load(pg: asyncpg.Connection, name: str) -> tuple[float, list[dict[str, Any]]] | None:
    row = await pg.fetchrow("SELECT extract(epoch FROM taken_at) AS at, samples::text AS samples FROM metric_snapshots "
                            "WHERE name = $1", name)
    return None if row is None else (float(row["at"]), json.loads(row["samples"]))

"""Drills: the planner on a consistent snapshot of the live reserve, with what-if overrides —
readiness levels, synthetic requests, warehouses lost — that posts nothing and reserves nothing.

The report is the mobilisation-potential assessment: fill rate by priority, unmet quantity by
material and region, the floors that bound the result, and days of supply after the drill."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg

from stockpile.domain.allocation import PRIORITIES
from stockpile.domain.coverage import days_of_supply
from stockpile.domain.errors import Invalid
from stockpile.domain.quantities import format_quantity
from stockpile.services import commands as c
from stockpile.services import planning
from stockpile.services.allocation import request_values
from stockpile.store import allocation as store
from stockpile.store import coverage, masterdata
from stockpile.store.db import Database


async def _ids(pg: asyncpg.Connection, table: str, codes: list[str], field: str) -> dict[str, int]:
    found = await masterdata.ids_by_code(pg, table, codes)
    missing = [code for code in codes if code not in found]
    if missing:
        raise Invalid([{"field": f"{field}.{code}" if field == "readiness" else field, "message": f"unknown code {code!r}"}
                       for code in missing])
    return found


async def _synthetic(pg: asyncpg.Connection, data: c.DrillIn, today: date) -> list[dict[str, Any]]:
    requests, errors = [], []
    for i, r in enumerate(data.requests):
        try:
            values = await request_values(pg, r, today, field=f"requests[{i}].")
        except Invalid as exc:
            errors += exc.errors
            continue
        place = await pg.fetchrow("SELECT code, latitude::float8 AS latitude, longitude::float8 AS longitude "
                                  "FROM warehouses WHERE id = $1", values["destination_id"])
        requests.append({**values, "id": f"drill-{i + 1}", "requester_sector": values["_sector"],
                         "destination_region_id": values["_region_id"], "destination": place["code"],
                         "latitude": place["latitude"], "longitude": place["longitude"],
                         "material": r.material, "requester": r.requester})
    if errors:
        raise Invalid(errors)
    return requests


async def on_snapshot(db: Database, data: c.DrillIn, today: date, limits: planning.Limits) -> dict[str, Any]:
    """Plan the scenario on one read-only snapshot of the reserve: it can post and reserve nothing."""
    async with db.transaction() as tx:
        await tx.pg.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        return await run(tx.pg, data, today, limits)


async def record(pg: asyncpg.Connection, data: c.DrillIn, report: dict[str, Any], principal_id: int) -> dict[str, Any]:
    """Store a drill (the only thing a drill writes) and answer it with its id."""
    scenario = {"name": data.name, "readiness": data.readiness, "lost_warehouses": data.lost_warehouses,
                "requests": len(data.requests), "include_pending": data.include_pending}
    drill_id = await store.insert_drill(pg, data.name, scenario, report, principal_id)
    return {"id": drill_id, "name": data.name, **report}


async def run(pg: asyncpg.Connection, data: c.DrillIn, today: date, limits: planning.Limits) -> dict[str, Any]:
    """Plan the scenario inside the caller's (repeatable-read) transaction and report; writes nothing."""
    overrides = await _ids(pg, "regions", sorted(data.readiness), "readiness")
    lost = await _ids(pg, "warehouses", sorted(set(data.lost_warehouses)), "lost_warehouses")
    requests = await _synthetic(pg, data, today)
    if data.include_pending:
        requests += [dict(r) for r in await store.pending_requests(pg, region_id=None, request_ids=None)]
    if not requests:
        raise Invalid.field("requests", "a drill needs synthetic requests or include_pending with pending requests")
    planned = await planning.plan(pg, requests, today=today, limits=limits,
                                  level_overrides={overrides[code]: level for code, level in data.readiness.items()},
                                  lost_warehouse_ids=lost.values())
    return await _report(pg, planned, today)


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 1.0


async def _report(pg: asyncpg.Connection, planned: planning.Planned, today: date) -> dict[str, Any]:
    s = planned.solution
    requested, served = defaultdict(int), defaultdict(int)
    unmet: dict[tuple[str, str], list] = {}
    regions = {r["id"]: r["code"] for r in await pg.fetch("SELECT id, code FROM regions")}
    for rid, r in planned.requests.items():
        requested[r["priority"]] += r["quantity"]
        served[r["priority"]] += s.planned[rid]
        if s.unfilled[rid]:
            key = (r.get("material") or r["substitution_group"], regions.get(r["destination_region_id"], "?"))
            entry = unmet.setdefault(key, [0, r["decimals"]])
            entry[0] += s.unfilled[rid]
    lines = []
    for line in s.lines:
        p = planned.positions[line.supply_key]
        lines.append({"request_id": line.request_id, "lot_id": p["lot_id"], "lot_code": p["lot_code"], "owner": p["owner"],
                      "owner_sector": p["owner_sector"],
                      "warehouse": p["warehouse"], "material": p["material"],
                      "quantity": format_quantity(line.quantity, p["decimals"]), "distance_km": round(line.distance_km, 1),
                      "rule": line.rule, "expires_on": None if p["expires_on"] is None else p["expires_on"].isoformat()})
    supply_days = []
    for t in await coverage.coverage(pg, today=today, region=None, category=None):
        before = days_of_supply(t["usable"], t["population"], t["daily_consumption_per_person"])
        if before is None:
            continue
        after = days_of_supply(t["usable"] - Decimal(planned.drawn.get(t["id"], 0)) / 1000, t["population"],
                               t["daily_consumption_per_person"])
        supply_days.append({"target": t["code"], "before": float(before), "after": float(after)})
    return {
        "rule_version": planned.rule_version,
        "levels": planned.levels,
        "fill_rate": {p: _ratio(served[p], requested[p]) for p in PRIORITIES if requested[p]},
        "requests": [{"id": rid, "priority": r["priority"], "destination": r.get("destination"),
                      "requested": format_quantity(r["quantity"], r["decimals"]),
                      "planned": format_quantity(s.planned[rid], r["decimals"]),
                      "unfilled": format_quantity(s.unfilled[rid], r["decimals"]), "reasons": s.reasons.get(rid, [])}
                     for rid, r in planned.requests.items()],
        "unmet": [{"material": m, "region": g, "quantity": format_quantity(q, d)} for (m, g), (q, d) in sorted(unmet.items())],
        "floors_bounding": planned.bound,
        "days_of_supply": supply_days,
        "lines": lines,
        "solver": {"objective": s.objective, "build_ms": round(s.build_ms, 3), "solve_ms": round(s.solve_ms, 3),
                   "arcs": s.arcs},
    }


def readable(report: dict[str, Any]) -> str:
    """The drill report as an operator reads it on a terminal."""
    out = [f"Drill under rule version {report['rule_version']}", "", "Fill rate by priority:"]
    out += [f"  {p:<10} {rate:>7.1%}" for p, rate in report["fill_rate"].items()]
    out += ["", "Requests:"]
    out += [f"  {r['id']:<38} {r['priority']:<10} planned {r['planned']:>12} of {r['requested']:>12}"
            + (f"  short: {', '.join(r['reasons'])}" if r["reasons"] else "") for r in report["requests"]]
    if report["unmet"]:
        out += ["", "Unmet by material and region:"]
        out += [f"  {u['material']:<20} {u['region']:<16} {u['quantity']:>12}" for u in report["unmet"]]
    if report["floors_bounding"]:
        out += ["", "Protected floors that bound the result:"]
        out += [f"  {f['target']:<24} protected {f['protected']:>12}  headroom {f['headroom']:>12}" for f in report["floors_bounding"]]
    if report["days_of_supply"]:
        out += ["", "Days of supply (before → after):"]
        out += [f"  {d['target']:<24} {d['before']:>8} → {d['after']}" for d in report["days_of_supply"]]
    out += ["", f"{len(report['lines'])} plan line(s); solved in {report['solver']['solve_ms']} ms"]
    return "\n".join(out)

"""Drills: the planner on a consistent snapshot of the live reserve, with what-if overrides —
readiness levels, synthetic requests, warehouses lost — that posts nothing and reserves nothing.

The report is the mobilisation-potential assessment: fill rate by priority, unmet quantity by
material and region, the floors that bound the result, days of supply after the drill without and
with capacity mobilised, and which capacities would have to be tasked on which day (capacity is a
source of the solve, after stock within a priority)."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg

from stockpile.domain.access import (
    MILITARY, Principal, require_request_writable, require_visible, sees_full_drill,
)
from stockpile.domain.allocation import PRIORITIES
from stockpile.domain.coverage import days_of_supply
from stockpile.domain.potential import Output, days_with_capacity
from stockpile.domain.errors import Invalid
from stockpile.domain.quantities import format_quantity
from stockpile.services import commands as c
from stockpile.services import planning
from stockpile.services.allocation import request_place, request_values
from stockpile.store import allocation as store
from stockpile.store import capacities, coverage, masterdata
from stockpile.store.db import Database, repeatable_read


async def _ids(pg: asyncpg.Connection, table: str, codes: list[str], field: str) -> dict[str, int]:
    found = await masterdata.ids_by_code(pg, table, codes)
    missing = [code for code in codes if code not in found]
    if missing:
        raise Invalid([{"field": f"{field}.{code}" if field == "readiness" else field, "message": f"unknown code {code!r}"}
                       for code in missing])
    return found


async def _synthetic(pg: asyncpg.Connection, data: c.DrillIn, today: date,
                     principal: Principal | None) -> list[dict[str, Any]]:
    checked, errors = [], []
    for i, r in enumerate(data.requests):
        try:
            values = await request_values(pg, r, today, field=f"requests[{i}].")
        except Invalid as exc:
            errors += exc.errors
            continue
        if principal is not None:
            require_request_writable(principal, request_place(values["destination_id"], values["_region_id"],
                                                              values["_sector"]), exists=False)
        checked.append((i, r, values))
    if errors:
        raise Invalid(errors)
    places = await store.destinations(pg, sorted({values["destination_id"] for _, _, values in checked}))
    requests = []
    for i, r, values in checked:
        place = places[values["destination_id"]]
        requests.append({**values, "id": f"drill-{i + 1}", "requester_sector": values["_sector"],
                         "destination_region_id": values["_region_id"], "destination": place["code"],
                         "latitude": place["latitude"], "longitude": place["longitude"],
                         "material": r.material, "requester": r.requester})
    return requests


async def on_snapshot(db: Database, data: c.DrillIn, today: date, limits: planning.Limits,
                      principal: Principal | None = None) -> dict[str, Any]:
    """Plan the scenario on one read-only snapshot of the reserve: it can post and reserve nothing.
    ``principal``: who runs it (None: the trusted command line, which plans every request)."""
    async with db.transaction() as tx:
        await repeatable_read(tx.pg, read_only=True)
        return await run(tx.pg, data, today, limits, principal)


async def record(pg: asyncpg.Connection, data: c.DrillIn, reports: dict[str, Any], principal_id: int,
                 principal: Principal | None = None) -> dict[str, Any]:
    """Store a drill (the only thing a drill writes) with both its reports, and answer it with its id
    and the report ``principal`` may see (None: as computed)."""
    scenario = {"name": data.name, "readiness": data.readiness, "lost_warehouses": data.lost_warehouses,
                "requests": len(data.requests), "include_pending": data.include_pending,
                "destinations": reports["destinations"]}
    drill_id = await store.insert_drill(pg, data.name, scenario,
                                        {**reports["report"], "restricted": reports["restricted"]}, principal_id)
    shown = reports["report"] if principal is None or sees_full_drill(principal) else reports["restricted"]
    if principal is not None:
        shown = await _in_scope(pg, shown, principal)
    return {"id": drill_id, "name": data.name, **shown}


async def show(pg: asyncpg.Connection, drill_id: str, principal: Principal) -> dict[str, Any]:
    """A stored drill as the reader may see it (404 when it may not see the drill)."""
    row = await store.drill(pg, drill_id, **principal.visibility.ledger)
    require_visible(row is not None, f"drill {drill_id}")
    scenario = json.loads(row["scenario"])
    report = await _in_scope(pg, json.loads(row["report"]), principal)
    return {"id": row["id"], "name": row["name"], "created_at": row["created_at"].isoformat(),
            "scenario": scenario, **report}


async def listing(pg: asyncpg.Connection, principal: Principal, *, after: str | None, limit: int) -> list[dict]:
    rows = await store.drills(pg, after=after, limit=limit, **principal.visibility.ledger)
    return [{"id": r["id"], "name": r["name"], "created_at": r["created_at"].isoformat(),
             "fill_rate": json.loads(r["fill_rate"] or "{}")} for r in rows]


async def _in_scope(pg: asyncpg.Connection, report: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """A report's target figures (floors that bound it, days of supply) limited to the targets the
    reader may see."""
    if principal.national:
        return report
    codes = sorted({f["target"] for f in report["floors_bounding"]} | {d["target"] for d in report["days_of_supply"]})
    seen = await store.visible_targets(pg, codes, **principal.visibility.params())
    return {**report, "floors_bounding": [f for f in report["floors_bounding"] if f["target"] in seen],
            "days_of_supply": [d for d in report["days_of_supply"] if d["target"] in seen]}


async def run(pg: asyncpg.Connection, data: c.DrillIn, today: date, limits: planning.Limits,
              principal: Principal | None = None) -> dict[str, Any]:
    """Plan the scenario inside the caller's (repeatable-read) transaction and report, twice: as
    computed, and solved again with no military stock and no military requester for readers not
    cleared for them. Writes nothing.

    A drill plans the synthetic requests its runner could file itself (destinations in its scope, a
    military requester only with clearance) and, with ``include_pending``, the pending requests it
    may see."""
    overrides = await _ids(pg, "regions", sorted(data.readiness), "readiness")
    lost = await _ids(pg, "warehouses", sorted(set(data.lost_warehouses)), "lost_warehouses")
    requests = await _synthetic(pg, data, today, principal)
    if data.include_pending:
        seen = {} if principal is None else principal.visibility.ledger
        requests += [dict(r) for r in await store.pending_requests(pg, region_id=None, request_ids=None, **seen)]
    if not requests:
        raise Invalid.field("requests", "a drill needs synthetic requests or include_pending with pending requests")
    in_force = await planning.InForce.read(pg, {overrides[code]: level for code, level in data.readiness.items()})
    options = {"today": today, "limits": limits, "lost_warehouse_ids": list(lost.values()), "in_force": in_force}
    planned = await planning.plan(pg, requests, **options)
    civilian = [r for r in requests if r["requester_sector"] != MILITARY]
    military_in_it = len(civilian) < len(requests) or any(
        p["owner_sector"] == MILITARY for p in planned.positions.values()) or any(
        planned.capacities[t.capacity]["military"] for t in planned.taskings)
    if not military_in_it:
        restricted = planned
    elif civilian:
        restricted = await planning.plan(pg, civilian, **options, cleared=False)
    else:
        restricted = None
    # the national coverage, military stock counted: read once for both reports
    counted = await coverage.coverage(pg, today=today, region=None, category=None)
    return {"report": await _report(pg, planned, counted),
            "restricted": await _restricted_report(pg, restricted, today, counted),
            "destinations": sorted({r["destination"] for r in requests})}


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 1.0


async def _report(pg: asyncpg.Connection, planned: planning.Planned, counted: list[asyncpg.Record]) -> dict[str, Any]:
    """The drill as computed: every figure, military stock and requesters included (``counted``: the
    national coverage, military stock counted)."""
    outputs = await _outputs(pg, counted, cleared=True)
    return await _summary(pg, planned, _days_of_supply(counted, planned.drawn, outputs), planned.bound)


async def _restricted_report(pg: asyncpg.Connection, planned: planning.Planned | None, today: date,
                             counted: list[asyncpg.Record]) -> dict[str, Any]:
    """The drill for readers not cleared for military stock, from its solve without military stock
    or requesters (``planned``; None when every request was a military party's): days of supply on
    the stock such a reader may see, of the targets it may see, and only the bounding floors whose
    figures count no military stock (the others' headroom would include it: a target's usable
    quantity differs from ``counted``, the national coverage with military stock)."""
    seen = await coverage.coverage(pg, today=today, region=None, category=None, cleared=False)
    outputs = await _outputs(pg, seen, cleared=False)
    if planned is None:
        return {"rule_version": None, "levels": {}, "fill_rate": {}, "fill_rate_with_capacity": {}, "requests": [],
                "unmet": [], "floors_bounding": [], "days_of_supply": _days_of_supply(seen, {}, outputs), "lines": [],
                "taskings": [], "solver": None}
    usable = {t["code"]: t["usable"] for t in counted}
    civilian = {t["code"] for t in seen if usable.get(t["code"]) == t["usable"]}
    bound = [f for f in planned.bound if f["target"] in civilian]
    return await _summary(pg, planned, _days_of_supply(seen, planned.drawn, outputs), bound)


async def _outputs(pg: asyncpg.Connection, targets: list[asyncpg.Record], *, cleared: bool) -> dict[int, list[Output]]:
    """The capacity that could be mobilised into each target's scope (of those that say whom they
    serve), per lead day; unless ``cleared``, no military capacity."""
    served = [t["id"] for t in targets if t["population"] and t["daily_consumption_per_person"]]
    outputs: dict[int, list[Output]] = defaultdict(list)
    for row in await capacities.outputs_of_targets(pg, served, cleared=cleared) if served else []:
        outputs[row["target_id"]].append(Output(row["lead_days"], row["daily"]))
    return outputs


def _days_of_supply(targets: list[asyncpg.Record], drawn: dict[int, int],
                    outputs: dict[int, list[Output]]) -> list[dict[str, Any]]:
    """Days of supply of each target before and after the drill's draws, and after them with the
    capacity delivering into its scope mobilised from its lead day (``with_capacity``; None with
    ``sustained`` when that capacity keeps up for good). Targets that declare no population are left out."""
    supply_days = []
    for t in targets:
        before = days_of_supply(t["usable"], t["population"], t["daily_consumption_per_person"])
        if before is None:
            continue
        left = t["usable"] - Decimal(drawn.get(t["id"], 0)) / 1000
        after = days_of_supply(left, t["population"], t["daily_consumption_per_person"])
        entry = {"target": t["code"], "before": float(before), "after": float(after)}
        mobilised = days_with_capacity(left, t["population"] * t["daily_consumption_per_person"],
                                       outputs.get(t["id"], []))
        entry["with_capacity"] = None if mobilised.sustained else float(mobilised.with_capacity)
        entry["sustained"] = mobilised.sustained
        supply_days.append(entry)
    return supply_days


async def _summary(pg: asyncpg.Connection, planned: planning.Planned, supply_days: list[dict[str, Any]],
                   bound: list[dict[str, Any]]) -> dict[str, Any]:
    s = planned.solution
    requested, served, mobilised = defaultdict(int), defaultdict(int), defaultdict(int)
    tasked: dict[str, int] = defaultdict(int)
    for t in planned.taskings:
        tasked[t.request_id] += t.quantity
    unmet: dict[tuple[str, str], list] = {}
    regions = await masterdata.codes_by_id(pg, "regions", None)
    for rid, r in planned.requests.items():
        requested[r["priority"]] += r["quantity"]
        served[r["priority"]] += s.planned[rid]
        mobilised[r["priority"]] += s.planned[rid] + tasked[rid]
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
    return {
        "rule_version": planned.rule_version,
        "levels": planned.levels,
        "fill_rate": {p: _ratio(served[p], requested[p]) for p in PRIORITIES if requested[p]},
        "fill_rate_with_capacity": {p: _ratio(mobilised[p], requested[p]) for p in PRIORITIES if requested[p]},
        "requests": [{"id": rid, "priority": r["priority"], "destination": r.get("destination"),
                      "requested": format_quantity(r["quantity"], r["decimals"]),
                      "planned": format_quantity(s.planned[rid], r["decimals"]),
                      "unfilled": format_quantity(s.unfilled[rid], r["decimals"]), "reasons": s.reasons.get(rid, []),
                      "tasked": format_quantity(tasked[rid], r["decimals"]),
                      "unfilled_with_capacity": format_quantity(s.unfilled[rid] - tasked[rid], r["decimals"])}
                     for rid, r in planned.requests.items()],
        "unmet": [{"material": m, "region": g, "quantity": format_quantity(q, d)} for (m, g), (q, d) in sorted(unmet.items())],
        "floors_bounding": bound,
        "days_of_supply": supply_days,
        "lines": lines,
        "taskings": _taskings(planned),
        "solver": {"objective": s.objective, "build_ms": round(s.build_ms, 3), "solve_ms": round(s.solve_ms, 3),
                   "arcs": s.arcs},
    }


def _taskings(planned: planning.Planned) -> list[dict[str, Any]]:
    """Which capacities would have to be tasked, on which day, for which request."""
    out = []
    for t in planned.taskings:
        k = planned.capacities[t.capacity]
        out.append({"request_id": t.request_id, "capacity": k["code"], "party": k["party"], "material": k["material"],
                    "quantity": format_quantity(t.quantity, k["decimals"]), "lead_days": k["lead_days"],
                    "start_on": t.start_on.isoformat(), "ready_on": t.ready_on.isoformat(),
                    "due_on": t.due_on.isoformat()})
    return out


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
        out += ["", "Days of supply (before → after; after with capacity mobilised):"]
        out += [f"  {d['target']:<24} {d['before']:>8} → {d['after']}; "
                + ("sustained" if d.get("sustained") else str(d.get("with_capacity", d["after"])))
                for d in report["days_of_supply"]]
    if report.get("taskings"):
        out += ["", "Capacity to task:"]
        out += [f"  {t['capacity']:<24} {t['quantity']:>12} {t['material']:<16} task by {t['start_on']}, "
                f"ready {t['ready_on']}, due {t['due_on']}" for t in report["taskings"]]
    out += ["", f"{len(report['lines'])} plan line(s)"
            + (f"; solved in {report['solver']['solve_ms']} ms" if report["solver"] else "")]
    return "\n".join(out)

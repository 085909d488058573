"""The planner's console: coverage by region (drilling region → warehouse → lot), stock expiring
per month, allocation requests and plans (file, propose, read the evidence, approve, dispatch) and
drills — through the same use cases as the API, with its guards."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.response import Redirect

from stockpile.api.auth import can_read, requires
from stockpile.api.presenters.stock import present_position
from stockpile.api.presenters.allocation import present_plan, present_request
from stockpile.api.presenters.masterdata import present_master
from stockpile.api.presenters.targets import present_coverage
from stockpile.console import charts, exports
from stockpile.console.web import (
    Failure, Form, apply, attempt, command_of, day_field, decimal_field, done, read_form, render, signed_in, speaker,
)
from stockpile.domain.access import PLANNERS
from stockpile.domain.errors import Invalid
from stockpile.domain.moments import Clock
from stockpile.services import allocation, drills, lots, masterdata, targets
from stockpile.services import commands as c
from stockpile.services.planning import Limits

STATE_ORDER = {"ok": 0, "warning": 1, "critical": 2}
PRIORITIES = ("flash", "immediate", "priority", "routine")
CATEGORIES = ("fuel", "food", "medical")
MONTHS = 12
SYNTHETIC_ROWS = 3  # synthetic request rows the drill form offers
ROWS = 5000
can_plan = requires(*PLANNERS)
can_file = requires("planner", "admin")
can_dispatch = requires("planner", "operator", "admin")


async def coverage_rows(pg, principal, region: str | None = None) -> list[dict]:
    """Coverage of every target the reader may see, each with the region it lies in."""
    regions = {w["code"]: w["region"] for w in await masterdata.page(pg, "warehouses", principal, after=None, limit=ROWS)}
    items = [present_coverage(i) for i in await targets.coverage(pg, principal, today=Clock.utc().today,
                                                                  region=region, category=None, state=None)]
    for item in items:
        item["in_region"] = item["scope"].get("region") or regions.get(item["scope"].get("warehouse"), "")
    return items


def by_region(rows: list[dict]) -> list[dict]:
    """Per region: its targets, their worst state and lowest ratio."""
    grouped: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        grouped[row["in_region"]].append(row)
    summary = []
    for region, items in sorted(grouped.items()):
        worst = max(items, key=lambda i: (STATE_ORDER[i["state"]], -i["ratio"]))
        summary.append({"region": region, "targets": len(items), "state": worst["state"],
                        "lowest": min(i["ratio"] for i in items),
                        "states": {s: sum(1 for i in items if i["state"] == s) for s in STATE_ORDER}})
    return summary


def region_chart(request: Request, regions: list[dict]) -> Any:
    voice = speaker(request)
    return charts.bars(voice.gettext("Lowest coverage per region"), [
        charts.Bar(r["region"], r["lowest"], f"{voice.number(r['lowest'] * 100, 0)}% · {voice.gettext(r['state'])}",
                   r["state"], href=f"/console/coverage?region={r['region']}") for r in regions
    ], maximum=max([1.2] + [min(r["lowest"], 2.0) for r in regions]), mark=1.0, mark_label="100%")


async def expiring_by_month(pg, principal, region: str | None, today: date) -> tuple[list[str], dict[str, list[float]]]:
    """Positions expiring in each of the next months, by category (counts of lot × owner positions:
    categories are held in different units)."""
    months = [(today.year + (today.month - 1 + i) // 12, (today.month - 1 + i) % 12 + 1) for i in range(MONTHS + 1)]
    rows = await lots.positions(pg, principal, warehouse=None, material=None, owner=None, region=region, category=None,
                                expiring_before=date(*months.pop(), 1), status=None, after=None, limit=ROWS)
    counts = {cat: [0.0] * MONTHS for cat in CATEGORIES}
    for r in rows:
        expires = r["expires_on"]
        if expires is None or expires < today:
            continue
        key = (expires.year, expires.month)
        if key in months:
            counts[r["category"]][months.index(key)] += 1
    return [f"{y}-{m:02d}" for y, m in months], counts


def _within(region: str, ancestor: str, parents: dict[str, str | None]) -> bool:
    seen = set()
    while region and region not in seen:
        if region == ancestor:
            return True
        seen.add(region)
        region = parents.get(region)
    return False


@get("/coverage", guards=[signed_in, can_read])
async def coverage(request: Request, region: str | None = None) -> Response:
    principal, today = request.user, Clock.utc().today
    voice = speaker(request)
    async with request.app.state.db.transaction() as tx:
        rows = await coverage_rows(tx.pg, principal)
        columns, series = await expiring_by_month(tx.pg, principal, region, today)
        parents = {r["code"]: r["parent"] for r in await masterdata.page(tx.pg, "regions", principal, after=None,
                                                                          limit=ROWS)}
        warehouses = [w for w in await masterdata.page(tx.pg, "warehouses", principal, after=None, limit=ROWS)
                      if region is None or _within(w["region"], region, parents)]
    regions = by_region(rows)
    targets = sorted((r for r in rows if region is None or r["in_region"] == region),
                     key=lambda r: (-STATE_ORDER[r["state"]], r["ratio"]))
    target_chart = charts.bars(voice.gettext("Coverage per reserve target"), [
        charts.Bar(t["target"], min(t["ratio"], 2.0), f"{voice.number(t['ratio'] * 100, 0)}% · {voice.gettext(t['state'])}",
                   t["state"]) for t in targets[:40]], maximum=max([1.2] + [min(t["ratio"], 2.0) for t in targets[:40]]),
        mark=1.0, mark_label="100%")
    expiry_chart = charts.stacked(voice.gettext("Stock positions expiring per month, by category"), columns,
                                  {voice.gettext(k): v for k, v in series.items()})
    return render(request, "coverage.html", regions=regions, region=region, targets=targets, warehouses=warehouses,
                  region_chart=region_chart(request, regions), target_chart=target_chart, expiry_chart=expiry_chart)


# -- allocation -----------------------------------------------------------------------------------

async def _allocation_page(request: Request, failure: Failure | None = None, values: Form | None = None) -> Response:
    principal = request.user
    async with request.app.state.db.transaction() as tx:
        requests = [present_request(r) for r in await allocation.list_requests(
            tx.pg, principal, state=None, priority=None, after=None, limit=200)]
        views, _ = await allocation.list_plans(tx.pg, principal, state=None, after=None, size=50)
        plans = [present_plan(view) for view in views]
        materials = await masterdata.page(tx.pg, "materials", principal, after=None, limit=ROWS)
        parties = [p for p in await masterdata.page(tx.pg, "parties", principal, after=None, limit=ROWS)
                   if principal.may_see_owner(p["sector"])]
        warehouses = [present_master("warehouses", w)
                      for w in await masterdata.page(tx.pg, "warehouses", principal, after=None, limit=ROWS)]
    requests.sort(key=lambda r: (r["state"] != "pending", PRIORITIES.index(r["priority"]), r["needed_by"]))
    return render(request, "allocation.html", status=failure.status if failure else 200, failure=failure,
                  values=values or {}, requests=requests, plans=plans, materials=materials, parties=parties,
                  warehouses=warehouses, priorities=PRIORITIES, done_message=request.query_params.get("done"),
                  may_plan=principal.has_any(PLANNERS), may_file=principal.has_any({"planner", "admin"}))


@get("/allocation", guards=[signed_in, can_read])
async def allocation_page(request: Request) -> Response:
    return await _allocation_page(request)


@post("/allocation/requests", guards=[signed_in, can_file])
async def file_request(request: Request) -> Response:
    form = await read_form(request)

    async def action() -> Response:
        command = command_of(c.AllocationRequestIn, {
            "requester": form.text("requester"), "destination": form.text("destination"),
            "material": form.text("material"), "quantity": decimal_field(form, "quantity"),
            "priority": form.text("priority"), "needed_by": day_field(form, "needed_by"), "purpose": form.text("purpose") or "",
        })

        async def run(tx):
            return 201, present_request(await allocation.file_request(tx.pg, command, request.user, Clock.utc().today))

        filed = await apply(request, form, run)
        return done(request, "/console/allocation", f"request {filed['id']}")

    return await attempt(request, "file", action, lambda failure: _allocation_page(request, failure, form))


@post("/allocation/plans", guards=[signed_in, can_plan])
async def propose(request: Request) -> Response:
    form = await read_form(request)

    async def action() -> Response:
        chosen = form.all("request_id")
        command = command_of(c.PlanIn, {"region": form.text("region"), "request_ids": chosen or None})
        limits = Limits.of(request.app.state.settings)

        async def run(tx):
            return 201, present_plan(await allocation.propose(tx.pg, command, request.user, Clock.utc().today, limits))

        plan = await apply(request, form, run)
        return Redirect(f"/console/allocation/plans/{plan['id']}", status_code=303)

    return await attempt(request, "propose", action, lambda failure: _allocation_page(request, failure, form))


async def _plan_page(request: Request, plan_id: str, failure: Failure | None = None) -> Response:
    async with request.app.state.db.transaction() as tx:
        plan = present_plan(await allocation.show(tx.pg, plan_id, request.user))
    principal = request.user
    return render(request, "plan.html", status=failure.status if failure else 200, failure=failure, plan=plan,
                  done_message=request.query_params.get("done"),
                  may_plan=principal.has_any(PLANNERS), may_dispatch=principal.has_any({"planner", "operator", "admin"}))


@get("/allocation/plans/{plan_id:uuid}", guards=[signed_in, can_read])
async def plan_page(request: Request, plan_id: UUID) -> Response:
    return await _plan_page(request, str(plan_id))


def _plan_action(name: str, guard, step):
    async def handler(request: Request, plan_id: UUID) -> Response:
        form = await read_form(request)
        plan = str(plan_id)

        async def action() -> Response:
            async def run(tx):
                return 200, present_plan(await step(request, tx.pg, plan, form))

            changed = await apply(request, form, run)
            return done(request, f"/console/allocation/plans/{plan}", f"{name}: {changed['state']}")

        return await attempt(request, name, action, lambda failure: _plan_page(request, plan, failure))

    handler.__name__ = f"plan_{name}"
    return post(f"/allocation/plans/{{plan_id:uuid}}/{name}", guards=[signed_in, guard])(handler)


async def _approve(request, pg, plan_id, form):
    clock = Clock.utc()
    return await allocation.approve(pg, plan_id, request.user, clock.now, clock.today,
                                    request.app.state.settings.reservation_hours)


async def _dispatch(request, pg, plan_id, form):
    return await allocation.dispatch(pg, plan_id, request.user, Clock.utc())


async def _cancel(request, pg, plan_id, form):
    return await allocation.cancel(pg, plan_id, form.text("reason") or "", Clock.utc().now, request.user)


approve = _plan_action("approve", can_plan, _approve)
dispatch = _plan_action("dispatch", can_dispatch, _dispatch)
cancel = _plan_action("cancel", can_plan, _cancel)


# -- drills ---------------------------------------------------------------------------------------

async def _drills_page(request: Request, failure: Failure | None = None, values: Form | None = None) -> Response:
    principal = request.user
    async with request.app.state.db.transaction() as tx:
        listed = await drills.listing(tx.pg, principal, after=None, limit=50)
        regions = await masterdata.page(tx.pg, "regions", principal, after=None, limit=ROWS)
        warehouses = await masterdata.page(tx.pg, "warehouses", principal, after=None, limit=ROWS)
        materials = await masterdata.page(tx.pg, "materials", principal, after=None, limit=ROWS)
        parties = [p for p in await masterdata.page(tx.pg, "parties", principal, after=None, limit=ROWS)
                   if principal.may_see_owner(p["sector"])]
    return render(request, "drills.html", status=failure.status if failure else 200, failure=failure,
                  values=values or {}, drills=listed, regions=regions, warehouses=warehouses, materials=materials,
                  parties=parties, priorities=PRIORITIES, synthetic_rows=SYNTHETIC_ROWS,
                  may_plan=principal.has_any(PLANNERS))


@get("/drills", guards=[signed_in, can_read])
async def drills_page(request: Request) -> Response:
    return await _drills_page(request)


@post("/drills", guards=[signed_in, can_plan])
async def run_drill(request: Request) -> Response:
    form = await read_form(request)

    async def action() -> Response:
        level, region = form.text("level"), form.text("region")
        command = command_of(c.DrillIn, {
            "name": form.text("name") or "", "include_pending": form.text("include_pending") == "yes",
            "readiness": {region: level} if region and level else {},
            "requests": _synthetic_requests(form),
            "lost_warehouses": [w for w in form.all("lost") if w],
        })
        settings = request.app.state.settings

        async def run(tx):
            reports = await drills.on_snapshot(request.app.state.db, command, Clock.utc().today, Limits.of(settings),
                                               request.user)
            return 201, await drills.record(tx.pg, command, reports, request.user.id, request.user)

        drill = await apply(request, form, run)
        return Redirect(f"/console/drills/{drill['id']}", status_code=303)

    return await attempt(request, "drill", action, lambda failure: _drills_page(request, failure, form))


SYNTHETIC_FIELDS = ("requester", "destination", "material", "quantity", "priority", "needed_by")


def _synthetic_requests(form: Form) -> list[dict]:
    """The drill form's synthetic requests: one per row with a quantity (a row without one is left
    out, whatever its chosen priority); a partly filled row is refused at its field
    (``requests[i].…``)."""
    columns = {name: form.all(f"req_{name}") for name in SYNTHETIC_FIELDS}
    requests = []
    for i, row in enumerate(zip(*columns.values())):
        values = dict(zip(SYNTHETIC_FIELDS, row))
        if not values["quantity"]:
            continue
        for name in ("requester", "destination", "material", "needed_by"):
            if not values[name]:
                raise Invalid.field(f"requests[{i}].{name}", "is required")
        named = Form({f"requests[{i}].{name}": value for name, value in values.items()}, {})
        requests.append({**values, "quantity": decimal_field(named, f"requests[{i}].quantity"),
                         "needed_by": day_field(named, f"requests[{i}].needed_by"), "purpose": "drill"})
    return requests


@get("/drills/{drill_id:uuid}", guards=[signed_in, can_read])
async def drill_page(request: Request, drill_id: UUID) -> Response:
    voice = speaker(request)
    async with request.app.state.db.transaction() as tx:
        drill = await drills.show(tx.pg, str(drill_id), request.user)
    fill = drill.get("fill_rate", {})
    fill_chart = charts.bars(voice.gettext("Fill rate by priority"), [
        charts.Bar(voice.gettext(p), fill[p], f"{voice.number(fill[p] * 100, 1)}%",
                   "ok" if fill[p] >= 0.999 else "warning" if fill[p] >= 0.5 else "critical")
        for p in PRIORITIES if p in fill], maximum=1.0)
    return render(request, "drill.html", drill=drill, fill_chart=fill_chart)


# -- exports --------------------------------------------------------------------------------------

@get("/export/coverage.csv", guards=[signed_in, can_read])
async def export_coverage(request: Request, region: str | None = None) -> Response:
    async with request.app.state.db.transaction() as tx:
        rows = [r for r in await coverage_rows(tx.pg, request.user) if region is None or r["in_region"] == region]
    return exports.csv_response("coverage", rows)


@get("/export/requests.csv", guards=[signed_in, can_read])
async def export_requests(request: Request) -> Response:
    async with request.app.state.db.transaction() as tx:
        rows = [present_request(r) for r in await allocation.list_requests(
            tx.pg, request.user, state=None, priority=None, after=None, limit=ROWS)]
    return exports.csv_response("allocation-requests", rows)


@get("/export/stock.csv", guards=[signed_in, can_read])
async def export_stock(request: Request, warehouse: str | None = None, region: str | None = None) -> Response:
    today = Clock.utc().today
    async with request.app.state.db.transaction() as tx:
        rows = [present_position(r, today) for r in await lots.positions(
            tx.pg, request.user, warehouse=warehouse, material=None, owner=None, region=region, category=None,
            expiring_before=None, status=None, after=None, limit=ROWS * 20)]
    return exports.csv_response("stock", rows)


HANDLERS = [coverage, allocation_page, file_request, propose, plan_page, approve, dispatch, cancel, drills_page,
            run_drill, drill_page, export_coverage, export_requests, export_stock]

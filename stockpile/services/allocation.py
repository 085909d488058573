"""Allocation: file requests, propose an optimal plan, approve it (reservations re-checked under
lock), dispatch it (title changes and obligations under the rules, transfers into transit), cancel
it, and let forgotten reservations lapse.

Guarantee 8 (floors) under concurrency: approval takes an advisory lock per reserve target its
lines draw on (in id order), then re-reads the targets' usable stock — which every earlier
approval's reservations already reduce — before reserving. Two approvals drawing on one floor
queue; the second sees the first.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from stockpile.domain import floors, rules as rules_
from stockpile.domain.access import (
    MILITARY, PlanPlace, Principal, RequestPlace, line_shown, require_plan_decidable, require_plan_dispatchable,
    require_request_writable, require_visible,
)
from stockpile.domain.allocation import Line
from stockpile.domain.errors import Conflict, FloorProtected, Forbidden, InsufficientStock, Invalid
from stockpile.domain.moments import Clock
from stockpile.domain.quantities import format_quantity, parse_quantity
from stockpile.domain.refs import LotRef, MaterialRef, PartyRef, WarehouseRef
from stockpile.services import commands as c
from stockpile.services import movements, planning, taskings, transfers
from stockpile.services.workspace import Pending, Workspace
from stockpile.store import allocation as store
from stockpile.store import masterdata, obligations, readiness, rules
from stockpile.store.db import as_uuid


async def request_values(pg: asyncpg.Connection, data: c.AllocationRequestIn, today: date, field: str = "") -> dict[str, Any]:
    """Check a request's codes and amounts; the values of its allocation_requests row (ids resolved)."""
    errors = []
    if (data.material is None) == (data.substitution_group is None):
        errors.append({"field": f"{field}material", "message": "give exactly one of material or substitution_group"})
    if data.needed_by < today:
        errors.append({"field": f"{field}needed_by", "message": "must not be in the past"})
    party = await masterdata.party_by_code(pg, data.requester)
    if party is None:
        errors.append({"field": f"{field}requester", "message": f"unknown code {data.requester!r}"})
    destination = await masterdata.warehouse_by_code(pg, data.destination)
    if destination is None:
        errors.append({"field": f"{field}destination", "message": f"unknown code {data.destination!r}"})
    elif destination["status"] == "lost":
        errors.append({"field": f"{field}destination", "message": f"warehouse {data.destination} is lost"})
    materials = []
    if data.material is not None:
        materials = await masterdata.materials_with_code(pg, data.material)
        if not materials:
            errors.append({"field": f"{field}material", "message": f"unknown code {data.material!r}"})
    elif data.substitution_group is not None:
        materials = await masterdata.materials_in_group(pg, data.substitution_group)
        if not materials:
            errors.append({"field": f"{field}substitution_group", "message": f"no material in group {data.substitution_group!r}"})
        elif len({(m["category"], m["decimals"]) for m in materials}) > 1:
            errors.append({"field": f"{field}substitution_group",
                           "message": "its materials differ in category or precision; request a material instead"})
    if errors:
        raise Invalid(errors)
    decimals = materials[0]["decimals"]
    return {
        "requester_id": party["id"], "destination_id": destination["id"],
        "material_id": materials[0]["id"] if data.material is not None else None,
        "substitution_group": data.substitution_group, "category": materials[0]["category"], "decimals": decimals,
        "quantity": parse_quantity(data.quantity, decimals, field=f"{field}quantity"), "priority": data.priority,
        "needed_by": data.needed_by, "purpose": data.purpose,
        "_sector": party["sector"], "_region_id": destination["region_id"],
    }


def request_place(destination_id: int, destination_region_id: int, requester_sector: str) -> RequestPlace:
    return RequestPlace(destination_id, destination_region_id, requester_sector == MILITARY)


async def file_request(pg: asyncpg.Connection, data: c.AllocationRequestIn, principal: Principal, today: date) -> asyncpg.Record:
    values = await request_values(pg, data, today)
    require_request_writable(principal, request_place(values["destination_id"], values.pop("_region_id"),
                                                      values.pop("_sector")), exists=False)
    request_id = await store.insert_request(pg, {**values, "principal_id": principal.id})
    return await store.request(pg, request_id)


async def get_request(pg: asyncpg.Connection, request_id: str, principal: Principal) -> asyncpg.Record:
    row = await store.request(pg, request_id, **principal.visibility.ledger)
    require_visible(row is not None, f"allocation request {request_id}")
    return row


async def list_requests(pg: asyncpg.Connection, principal: Principal, *, state: str | None, priority: str | None,
                        after: str | None, limit: int) -> list[asyncpg.Record]:
    return await store.requests(state=state, priority=priority, after=after, limit=limit,
                                **principal.visibility.ledger).fetch(pg)


def every_request(pg: asyncpg.Connection, principal: Principal, *, state: str | None,
                  priority: str | None) -> AsyncIterator[asyncpg.Record]:
    """Every request ``list_requests`` pages through, streamed (an export)."""
    return store.requests(state=state, priority=priority, after=None, limit=None,
                          **principal.visibility.ledger).stream(pg)


async def cancel_request(pg: asyncpg.Connection, request_id: str, principal: Principal) -> asyncpg.Record:
    """Cancel a pending request, judged as it is now: seen by the caller (else 404) and its to act on
    (else 403)."""
    row = await store.request(pg, request_id, for_update=True)
    require_visible(row is not None, f"allocation request {request_id}")
    require_request_writable(principal, request_place(row["destination_id"], row["destination_region_id"],
                                                      row["requester_sector"]), name=f"allocation request {request_id}")
    if row["state"] != "pending":
        raise Conflict(f"the request is {row['state']}; cancel its plan first")
    await store.set_requests_state(pg, [request_id], "cancelled")
    return await store.request(pg, request_id)


async def propose(pg: asyncpg.Connection, data: c.PlanIn, principal: Principal, today: date,
                  limits: planning.Limits) -> PlanView:
    region_id = None
    if data.region is not None:
        region_id = (await masterdata.ids_by_code(pg, "regions", [data.region])).get(data.region)
        if region_id is None:
            raise Invalid.field("region", f"unknown code {data.region!r}")
        if not principal.covers_region(region_id):
            raise Forbidden(f"{principal.name} may not plan in {data.region}")
    ids = None
    if data.request_ids is not None:
        ids = sorted(set(data.request_ids))
        bad = [i for i in ids if as_uuid(i) is None]
        if bad:
            raise Invalid.field("request_ids", f"not request ids: {', '.join(bad[:10])}")
    requests = [dict(r) for r in await store.pending_requests(pg, region_id=region_id, request_ids=ids,
                                                                 **principal.visibility.ledger)]
    if ids is not None and len(requests) != len(ids):
        missing = sorted(set(ids) - {r["id"] for r in requests})
        seen = await store.requests_seen(pg, missing, **principal.visibility.ledger)
        for request_id in missing:  # a request the caller may not see does not exist for it
            require_visible(request_id in seen, f"allocation request {request_id}")
        raise Invalid.field("request_ids", f"not pending requests: {', '.join(missing[:10])}")
    if not requests:
        raise Invalid.field("region" if ids is None else "request_ids", "no pending requests to plan")
    if not principal.national:
        outside = [r["destination"] for r in requests if not principal.covers_warehouse(r["destination_id"])]
        if outside:
            raise Forbidden(f"{principal.name} may not plan for {', '.join(sorted(set(outside))[:10])}")
    # a planner plans on the stock it may see: what it proposes never shows military stock's share
    planned = await planning.plan(pg, requests, today=today, limits=limits, cleared=principal.cleared_military)
    plan_id = await _store(pg, planned, region_id, principal)
    await taskings.store_proposed(pg, plan_id, planned)
    return await show(pg, plan_id, principal)


async def _store(pg: asyncpg.Connection, planned: planning.Planned, region_id: int | None, principal: Principal) -> str:
    s = planned.solution
    lines = []
    for line in s.lines:
        position = planned.positions[line.supply_key]
        rule = planned.rules[line.rule]
        lines.append((line.request_id, line.supply_key, position["lot_id"], position["owner_id"], position["warehouse_id"],
                      line.quantity, round(line.distance_km, 1), line.rule, rule.obligation))
    reqs = [(rid, r["quantity"], s.planned[rid], s.reasons.get(rid, [])) for rid, r in planned.requests.items()]
    return await store.insert_plan(pg, {
        "region_id": region_id, "rule_version": planned.rule_version, "levels": planned.levels,
        "objective": s.objective, "build_ms": s.build_ms, "solve_ms": s.solve_ms, "arcs": s.arcs,
        "created_by": principal.id}, reqs, lines)


@dataclass(frozen=True)
class PlanView:
    """A plan as one reader may see it (``api.presenters.allocation.present_plan`` shows it): its
    row, the ``lines`` the reader may see and whether others were ``withheld``, and its requests.
    A line drawing on military stock is withheld from a reader not cleared for it — not masked,
    since its quantity and distance would place the stock; each request keeps its planned and
    unfilled totals (the requester receives them), military stock's share included."""

    plan: asyncpg.Record
    lines: list[asyncpg.Record]
    withheld: bool
    requests: list[asyncpg.Record]
    tasked: list[asyncpg.Record] = ()

    @classmethod
    def of(cls, plan: asyncpg.Record, lines: list[asyncpg.Record], requests: list[asyncpg.Record],
           principal: Principal, tasked: list[asyncpg.Record] = ()) -> PlanView:
        """``tasked``: the plan's tasking lines (``services.taskings.of_plans``); a military
        capacity's are withheld from an uncleared reader as lines on military stock are."""
        shown = [line for line in lines if line_shown(principal, line["owner_sector"])]
        shown_tasked = taskings.shown(principal, list(tasked))
        return cls(plan, shown, len(shown) < len(lines) or len(shown_tasked) < len(tasked), requests, shown_tasked)


async def show(pg: asyncpg.Connection, plan_id: str, principal: Principal) -> PlanView:
    """One plan as the reader may see it (404 when it may not see the plan)."""
    plan = await store.plan(pg, plan_id, **principal.visibility.ledger)
    require_visible(plan is not None, f"allocation plan {plan_id}")
    return PlanView.of(plan, await store.plan_lines(pg, plan_id), await store.plan_requests(pg, plan_id), principal,
                       (await taskings.of_plans(pg, [plan_id])).get(plan_id, []))


async def list_plans(pg: asyncpg.Connection, principal: Principal, *, state: str | None, after: str | None,
                     size: int) -> tuple[list[PlanView], bool]:
    """A page of the plans the reader may see, their lines and requests read in one statement each,
    and whether more follow (the look-ahead plan is read, not shown)."""
    plans = await store.plans(pg, state=state, after=after, limit=size + 1, **principal.visibility.ledger)
    more, plans = len(plans) > size, plans[:size]
    ids = [plan["id"] for plan in plans]
    lines, requests = await store.plan_lines_of(pg, ids), await store.plan_requests_of(pg, ids)
    tasked = await taskings.of_plans(pg, ids)
    return [PlanView.of(plan, lines.get(plan["id"], []), requests.get(plan["id"], []), principal,
                        tasked.get(plan["id"], [])) for plan in plans], more


async def plan_place(pg: asyncpg.Connection, plan_id: str) -> PlanPlace:
    """The plan as it is now, as the policy judges it."""
    requests, sources = await store.plan_place(pg, plan_id)
    return PlanPlace(
        requests=tuple(request_place(r["destination_id"], r["destination_region_id"], r["requester_sector"])
                       for r in requests),
        source_warehouse_ids=frozenset(s["warehouse_id"] for s in sources),
        draws_military_stock=any(s["owner_sector"] == MILITARY for s in sources))


async def _locked_plan(pg: asyncpg.Connection, plan_id: str, principal: Principal, action: str,
                       *states: str) -> asyncpg.Record:
    """Lock the plan and judge it as it is now: 404 when the caller may not see it, 403 when it may
    not ``action`` it (approve, cancel, dispatch), then 409 when its state does not allow that."""
    plan = await store.plan(pg, plan_id, for_update=True)
    require_visible(plan is not None, f"allocation plan {plan_id}")
    place = await plan_place(pg, plan_id)
    name = f"allocation plan {plan_id}"  # as a missing plan's problem names it
    if action == "dispatch":
        require_plan_dispatchable(principal, place, name=name)
    else:  # approving reserves military stock, cancelling an approved plan releases it
        require_plan_decidable(principal, place, touches_military_stock=place.draws_military_stock and (
            action == "approve" or plan["state"] == "approved"), name=name)
    if plan["state"] not in states:
        raise Conflict(f"the plan is {plan['state']}; this needs a plan that is {' or '.join(states)}", state=plan["state"])
    return plan


async def approve(pg: asyncpg.Connection, plan_id: str, principal: Principal, now: datetime, today: date,
                  reservation_hours: int) -> PlanView:
    """Reserve every line, after checking again under lock that the stock, the rules and the floors still
    allow it. A line that no longer fits fails the approval and is reported; nothing is shrunk silently."""
    await _locked_plan(pg, plan_id, principal, "approve", "proposed")
    await taskings.require_orderable(pg, plan_id, principal)
    lines = await store.plan_lines(pg, plan_id)
    request_ids = sorted({line["request_id"] for line in lines} | {r["request_id"] for r in await store.plan_requests(pg, plan_id)})
    requests = {r["id"]: r for r in await store.pending_requests(pg, region_id=None, request_ids=request_ids, for_update=True)}
    taken = sorted(set(request_ids) - set(requests))
    if taken:
        raise Conflict("some requests of this plan are no longer pending (another plan holds them, or they were "
                       "cancelled); propose a new plan", requests=taken)
    version, ruleset = await rules.ruleset(pg)
    levels = await readiness.effective_levels(pg)
    failures = []
    needs_approval = set()
    for i, line in enumerate(lines):
        request = requests[line["request_id"]]
        rule = rules_.permits(ruleset, levels.get(request["destination_region_id"], "peacetime"),
                              request["category"], request["requester_sector"], line["owner_sector"])
        if rule is None:
            failures.append(_failure(i, line, "rule", "the rules in force no longer allow this draw"))
        elif rule.approval_required:
            needs_approval.add(rule.code)
    if needs_approval and not principal.has_any(("commander", "admin")):
        raise Forbidden(f"rules {', '.join(sorted(needs_approval))} need a commander's approval")

    account_ids = [line["account_id"] for line in lines]
    members: dict[int, list[int]] = defaultdict(list)
    for m in await store.memberships(pg, account_ids, today):
        members[m["account_id"]].extend(m["target_ids"])
    target_ids = {t for ts in members.values() for t in ts}
    await store.lock_floors(pg, list(target_ids))
    accounts = await store.lock_accounts(pg, account_ids)
    target_floors = await planning.load_floors(pg, today, ruleset, target_ids)
    want: dict[int, int] = defaultdict(int)
    for i, line in enumerate(lines):
        account = accounts[line["account_id"]]
        want[line["account_id"]] += line["quantity"]
        needed_by = requests[line["request_id"]]["needed_by"]
        if account["status"] != "available" or (account["expires_on"] is not None and account["expires_on"] <= needed_by):
            failures.append(_failure(i, line, "unusable", f"lot {line['lot_code']} is {account['status']}"
                                     f"{'' if account['expires_on'] is None else ', expires ' + account['expires_on'].isoformat()}"))
        elif account["balance"] - account["reserved"] < want[line["account_id"]]:
            failures.append(_failure(i, line, "stock", "available " + format_quantity(
                account["balance"] - account["reserved"], line["decimals"]) + " no longer covers the plan"))
    scale = {line["account_id"]: 10 ** (3 - line["decimals"]) for line in lines}
    as_lines = [_as_solver_line(line) for line in lines]
    breached = floors.breaches(as_lines, members, target_floors, scale)
    for target_id, excess in sorted(breached.items()):
        f = target_floors[target_id]
        failures.append({"target": f.code, "reason": "floor",
                         "message": f"the plan would draw {planning.thousandths(excess)} below the protected floor of {f.code}"})
    if failures:
        kinds = {f["reason"] for f in failures}
        error = FloorProtected if kinds == {"floor"} else InsufficientStock if kinds == {"stock"} else Conflict
        raise error(f"{len(failures)} line(s) of the plan no longer fit; propose a new plan", failures=failures)
    await store.reserve(pg, dict(want))
    # a plan that only tasks capacity reserves nothing, so nothing of it lapses
    await store.set_plan_state(pg, plan_id, "approved", approved_by=principal.id, approved_at=now,
                               reserved_until=now + timedelta(hours=reservation_hours) if lines else None)
    await store.set_requests_state(pg, request_ids, "allocated")
    await taskings.order(pg, plan_id, now)
    return await show(pg, plan_id, principal)


def _failure(index: int, line: asyncpg.Record, reason: str, message: str) -> dict:
    return {"line": index, "request_id": line["request_id"], "lot_id": line["lot_id"], "owner": line["owner"],
            "reason": reason, "message": message}


def _as_solver_line(line: asyncpg.Record) -> Line:
    return Line(line["request_id"], line["account_id"], line["quantity"], float(line["distance_km"]), line["rule_code"])


async def _release(pg: asyncpg.Connection, lines: list[asyncpg.Record]) -> None:
    amounts: dict[int, int] = defaultdict(int)
    for line in lines:
        amounts[line["account_id"]] -= line["quantity"]
    await store.lock_accounts(pg, list(amounts))
    await store.reserve(pg, dict(amounts))


async def dispatch(pg: asyncpg.Connection, plan_id: str, principal: Principal, clock: Clock) -> PlanView:
    """Post the plan: reservations are consumed; where the owner is not the requester the title moves
    first (an ownership_transfer, with the obligation its rule creates); then one transfer per
    (source, destination) carries the lines into transit. Receiving a transfer closes its lines."""
    plan = await _locked_plan(pg, plan_id, principal, "dispatch", "approved")
    if plan["reserved_until"] is not None and plan["reserved_until"] <= clock.now:
        raise Conflict("the plan's reservations have lapsed; propose and approve a new plan")
    lines = await store.plan_lines(pg, plan_id)
    await _release(pg, lines)
    ws = Workspace(pg)
    carried: dict[tuple[WarehouseRef, WarehouseRef], dict[tuple[LotRef, PartyRef], int]] = \
        defaultdict(lambda: defaultdict(int))
    for line in lines:
        source = WarehouseRef(line["warehouse_id"], line["warehouse"])
        lot = LotRef(line["lot_id"], line["lot_code"], source,
                     MaterialRef(line["material_id"], line["material"], line["decimals"]))
        owner = PartyRef(line["owner_id"], line["owner"], line["owner_sector"])
        if line["owner_id"] != line["requester_id"]:
            requester = PartyRef(line["requester_id"], line["requester"], line["requester_sector"])
            moved = await movements.transfer_ownership(
                ws, lot, owner, requester, line["quantity"], principal, clock,
                reason=f"allocation plan {plan_id} under rule {line['rule_code']}")
            ws.append(Pending(moved, principal.id))
            await ws.flush()
            if line["obligation"] is not None:
                obligation_id = await obligations.record(
                    pg, kind=line["obligation"], rule_code=line["rule_code"], rule_version=plan["rule_version"],
                    movement_id=moved.id, lot_id=line["lot_id"], material_id=line["material_id"],
                    creditor_id=line["owner_id"], debtor_id=line["requester_id"], quantity=line["quantity"])
                await store.mark_line(pg, line["id"], obligation_id=obligation_id)
            owner = requester
        carried[(source, WarehouseRef(line["destination_id"], line["destination"]))][(lot, owner)] += line["quantity"]
    for (source, destination), positions in sorted(carried.items(), key=lambda item: (item[0][0].id, item[0][1].id)):
        transfer_id, _ = await transfers.send(
            pg, source, destination,
            [transfers.Line(lot, owner, q) for (lot, owner), q in sorted(positions.items(), key=lambda i: (i[0][0].id, i[0][1].code))],
            principal, clock, note=f"allocation plan {plan_id}")
        for line in lines:
            if (line["warehouse_id"], line["destination_id"]) == (source.id, destination.id):
                await store.mark_line(pg, line["id"], transfer_id=transfer_id)
    await store.set_plan_state(pg, plan_id, "dispatched", dispatched_at=clock.now)
    return await show(pg, plan_id, principal)


async def cancel(pg: asyncpg.Connection, plan_id: str, reason: str, now: datetime, principal: Principal) -> PlanView:
    """Void a proposed or approved plan: reservations are released, its requests wait for a new plan."""
    plan = await _locked_plan(pg, plan_id, principal, "cancel", "proposed", "approved")
    await _end(pg, plan, "cancelled", reason or "cancelled", now)
    return await show(pg, plan_id, principal)


async def _end(pg: asyncpg.Connection, plan: asyncpg.Record, state: str, reason: str, now: datetime) -> None:
    lines = await store.plan_lines(pg, plan["id"])
    if plan["state"] == "approved":
        await _release(pg, lines)
        requests = [r["request_id"] for r in await store.plan_requests(pg, plan["id"])]
        await store.set_requests_state(pg, requests, "pending")
    await store.set_plan_state(pg, plan["id"], state, ended_at=now, end_reason=reason)
    await taskings.cancel(pg, plan["id"])


async def expire_reservations(pg: asyncpg.Connection, now: datetime) -> list[str]:
    """Approved plans not dispatched in time lose their reservations (their requests wait again)."""
    lapsed = await store.lapsed_plans(pg, now)
    for plan_id in lapsed:
        await _end(pg, await store.plan(pg, plan_id), "expired", "reservations lapsed before dispatch", now)
    return lapsed

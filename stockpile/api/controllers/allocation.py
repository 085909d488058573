"""Allocation requests, plans (propose → approve → dispatch, or cancel) and drills."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import Parameter

from stockpile.api import exports
from stockpile.api.audit import write_transaction
from stockpile.api.auth import can_read, requires
from stockpile.api.common import (
    IDEMPOTENCY_HEADER, Cursor, Limit, decode_cursor, encode_cursor, idempotent, json_response, page, page_limit,
)
from stockpile.api.presenters.allocation import present_plan, present_request
from stockpile.api.schemas.planning import (
    AllocationRequest, AllocationRequestPage, Drill, DrillSummaryPage, Plan, PlanPage,
)
from stockpile.api.schemas.problems import problem_answers
from stockpile.domain.access import PLANNERS
from stockpile.domain.moments import Clock
from stockpile.services import allocation, drills
from stockpile.services import commands as c
from stockpile.services.planning import Limits


class RequestController(Controller):
    path = "/api/v1/allocation-requests"
    tags = ["allocation"]

    @post("/", guards=[requires("planner", "admin")], status_code=201, summary="File an allocation request",
          responses=problem_answers(409))
    async def create(self, request: Request, state: State, data: c.AllocationRequestIn) -> Response[AllocationRequest]:
        async with write_transaction(request, state.db) as (tx, note):
            body = present_request(await allocation.file_request(tx.pg, data, request.user, Clock.utc().today))
            note.status, note.details["id"] = 201, body["id"]
        return json_response(body, 201)

    @get("/", guards=[can_read], summary="Allocation requests")
    async def listing(self, request: Request, state: State,
                      state_: Annotated[Literal["pending", "allocated", "cancelled"] | None,
                                        Parameter(query="state")] = None,
                      priority: Literal["flash", "immediate", "priority", "routine"] | None = None,
                      limit: Limit = None, cursor: Cursor = None) -> Response[AllocationRequestPage]:
        if exports.wants_csv(request):
            return await exports.respond(request, state, "allocation-requests")
        size = page_limit(limit)
        after = decode_cursor(cursor, UUID)
        async with state.db.transaction() as tx:
            rows = await allocation.list_requests(tx.pg, request.user, state=state_, priority=priority,
                                                  after=None if after is None else str(after), limit=size + 1)
        return json_response(page([present_request(r) for r in rows], size, lambda item: item["id"]))

    @get("/{request_id:uuid}", guards=[can_read], summary="One allocation request",
         responses=problem_answers(404))
    async def read(self, request: Request, state: State, request_id: UUID) -> Response[AllocationRequest]:
        async with state.db.transaction() as tx:
            return json_response(present_request(await allocation.get_request(tx.pg, str(request_id), request.user)))

    @post("/{request_id:uuid}/cancel", guards=[requires("planner", "admin")], status_code=200,
          summary="Cancel a pending request",
          responses=problem_answers(404, 409))
    async def cancel(self, request: Request, state: State, request_id: UUID) -> Response[AllocationRequest]:
        async with write_transaction(request, state.db) as (tx, note):
            body = present_request(await allocation.cancel_request(tx.pg, str(request_id), request.user))
            note.details["id"] = body["id"]
        return json_response(body)


class PlanController(Controller):
    path = "/api/v1/allocation-plans"
    tags = ["allocation"]

    @post("/", guards=[requires(*PLANNERS)], status_code=201,
          summary="Propose an optimal plan for the pending requests in scope",
          responses=problem_answers(404, 409))
    async def propose(self, request: Request, state: State, data: c.PlanIn) -> Response[Plan]:
        async with write_transaction(request, state.db) as (tx, note):
            body = present_plan(await allocation.propose(tx.pg, data, request.user, Clock.utc().today,
                                                         Limits.of(state.settings)))
            note.status, note.details["id"] = 201, body["id"]
        return json_response(body, 201)

    @get("/", guards=[can_read], summary="Allocation plans")
    async def listing(self, request: Request, state: State,
                      state_: Annotated[Literal["proposed", "approved", "dispatched", "cancelled", "expired"] | None,
                                        Parameter(query="state")] = None,
                      limit: Limit = None, cursor: Cursor = None) -> Response[PlanPage]:
        size = page_limit(limit)
        after = decode_cursor(cursor, UUID)
        async with state.db.transaction() as tx:
            views, more = await allocation.list_plans(tx.pg, request.user, state=state_,
                                                      after=None if after is None else str(after), size=size)
        items = [present_plan(view) for view in views]
        return json_response({"items": items, "next_cursor": encode_cursor(items[-1]["id"]) if more else None})

    @get("/{plan_id:uuid}", guards=[can_read], summary="One plan with its lines and per-request outcome",
         responses=problem_answers(404))
    async def read(self, request: Request, state: State, plan_id: UUID) -> Response[Plan]:
        async with state.db.transaction() as tx:
            view = await allocation.show(tx.pg, str(plan_id), request.user)
        return json_response(present_plan(view))

    @post("/{plan_id:uuid}/approve", guards=[requires(*PLANNERS)], status_code=200,
          summary="Approve: reserve every line after re-checking stock, rules and floors under lock",
          responses=problem_answers(404, 409, 503))
    async def approve(self, request: Request, state: State, plan_id: UUID) -> Response[Plan]:
        clock = Clock.utc()
        async with write_transaction(request, state.db) as (tx, note):
            body = present_plan(await allocation.approve(tx.pg, str(plan_id), request.user, clock.now, clock.today,
                                                         state.settings.reservation_hours))
            note.details["id"] = body["id"]
        return json_response(body)

    @post("/{plan_id:uuid}/dispatch", guards=[requires("planner", "operator", "admin")], status_code=200,
          summary="Dispatch an approved plan: title changes, obligations and transfers into transit",
          responses=problem_answers(404, 409, 503))
    async def dispatch(self, request: Request, state: State, plan_id: UUID,
                       idempotency_key: Annotated[str, IDEMPOTENCY_HEADER]) -> Response[Plan]:
        async def run(tx):
            return 200, present_plan(await allocation.dispatch(tx.pg, str(plan_id), request.user, Clock.utc()))

        return await idempotent(request, state.db, run)

    @post("/{plan_id:uuid}/cancel", guards=[requires(*PLANNERS)], status_code=200,
          summary="Cancel a proposed or approved plan (reservations are released)",
          responses=problem_answers(404, 409))
    async def cancel(self, request: Request, state: State, plan_id: UUID,
                     data: c.CancelIn | None = None) -> Response[Plan]:
        async with write_transaction(request, state.db) as (tx, note):
            body = present_plan(await allocation.cancel(tx.pg, str(plan_id), (data or c.CancelIn()).reason,
                                                        Clock.utc().now, request.user))
            note.details["id"] = body["id"]
        return json_response(body)


class DrillController(Controller):
    path = "/api/v1/drills"
    tags = ["allocation"]

    @post("/", guards=[requires(*PLANNERS)], status_code=201,
          summary="Run a drill on a snapshot of the reserve: plans, posts and reserves nothing",
          responses=problem_answers(404, 409))
    async def run(self, request: Request, state: State, data: c.DrillIn) -> Response[Drill]:
        reports = await drills.on_snapshot(state.db, data, Clock.utc().today, Limits.of(state.settings), request.user)
        async with write_transaction(request, state.db) as (tx, note):
            body = await drills.record(tx.pg, data, reports, request.user.id, request.user)
            note.status, note.details["id"] = 201, body["id"]
        return json_response(body, 201)

    @get("/", guards=[can_read], summary="Drills run so far")
    async def listing(self, request: Request, state: State, limit: Limit = None,
                      cursor: Cursor = None) -> Response[DrillSummaryPage]:
        size = page_limit(limit)
        after = decode_cursor(cursor, UUID)
        async with state.db.transaction() as tx:
            items = await drills.listing(tx.pg, request.user, after=None if after is None else str(after),
                                         limit=size + 1)
        return json_response(page(items, size, lambda item: item["id"]))

    @get("/{drill_id:uuid}", guards=[can_read], summary="One drill with its scenario and report",
         responses=problem_answers(404))
    async def read(self, request: Request, state: State, drill_id: UUID) -> Response[Drill]:
        async with state.db.transaction() as tx:
            return json_response(await drills.show(tx.pg, str(drill_id), request.user))

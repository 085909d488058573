"""Mobilisation potential: capacities (planners in scope and admins survey them), the potential
view, and tasking orders."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from litestar import Controller, Request, Response, get, post, put
from litestar.datastructures import State
from litestar.params import Parameter

from stockpile.api.audit import write_transaction
from stockpile.api.auth import can_read, requires
from stockpile.api.common import Cursor, Limit, decode_cursor, json_response, page, page_limit
from stockpile.api.presenters.capacities import (
    present_capacity, present_capacity_with_surveys, present_order, present_potential,
)
from stockpile.api.schemas import created
from stockpile.api.schemas.potential import (
    CapacityPage, CapacityWithSurveys, PotentialPage, TaskingOrder, TaskingOrderPage,
)
from stockpile.api.schemas.problems import problem_answers
from stockpile.domain.access import CAPACITY_SURVEYORS
from stockpile.domain.moments import Clock
from stockpile.services import capacities, taskings
from stockpile.services import commands as c


class CapacityController(Controller):
    path = "/api/v1/capacities"
    tags = ["potential"]

    @put("/{code:str}", guards=[requires(*CAPACITY_SURVEYORS)],
         summary="Create or replace a capacity as surveyed (a new surveyed_on is a new survey)",
         responses={**created(CapacityWithSurveys), **problem_answers(409)})
    async def upsert(self, request: Request, state: State, code: str,
                     data: c.CapacityIn) -> Response[CapacityWithSurveys]:
        today = Clock.utc().today
        async with write_transaction(request, state.db) as (tx, note):
            created, row, surveys = await capacities.upsert(tx.pg, code, data, request.user, today)
            body = present_capacity_with_surveys(row, surveys, today)
            note.status = 201 if created else 200
        return json_response(body, 201 if created else 200)

    @get("/{code:str}", guards=[can_read], summary="One capacity with its survey history",
         responses=problem_answers(404))
    async def read(self, request: Request, state: State, code: str) -> Response[CapacityWithSurveys]:
        async with state.db.transaction() as tx:
            row, surveys = await capacities.get(tx.pg, code, request.user)
        return json_response(present_capacity_with_surveys(row, surveys, Clock.utc().today))

    @get("/", guards=[can_read], summary="Capacities by code")
    async def listing(self, request: Request, state: State, region: str | None = None, material: str | None = None,
                      limit: Limit = None, cursor: Cursor = None) -> Response[CapacityPage]:
        size, today = page_limit(limit), Clock.utc().today
        async with state.db.transaction() as tx:
            rows = await capacities.listing(tx.pg, request.user, region=region, material=material,
                                            after=decode_cursor(cursor, str), limit=size + 1)
        return json_response(page([present_capacity(r, today) for r in rows], size, lambda item: item["code"]))


class PotentialController(Controller):
    path = "/api/v1/potential"
    tags = ["potential"]

    @get("/", guards=[can_read], summary="Stock and capacity per region and material, days of supply with and without")
    async def potential(self, request: Request, state: State, region: str | None = None,
                        category: Literal["fuel", "food", "medical"] | None = None) -> Response[PotentialPage]:
        async with state.db.transaction() as tx:
            items = await capacities.potential(tx.pg, request.user, today=Clock.utc().today, region=region,
                                               category=category)
        return json_response({"items": [present_potential(i) for i in items], "next_cursor": None})


class TaskingController(Controller):
    path = "/api/v1/taskings"
    tags = ["potential"]

    @get("/", guards=[can_read], summary="Tasking orders made by approved plans, tracked until their receipts arrive")
    async def listing(self, request: Request, state: State,
                      state_: Annotated[Literal["open", "completed", "cancelled"] | None, Parameter(query="state")] = None,
                      capacity: str | None = None, limit: Limit = None,
                      cursor: Cursor = None) -> Response[TaskingOrderPage]:
        size, today = page_limit(limit), Clock.utc().today
        after = decode_cursor(cursor, UUID)
        async with state.db.transaction() as tx:
            rows = await taskings.listing(tx.pg, request.user, state=state_, capacity=capacity,
                                          after=None if after is None else str(after), limit=size + 1)
        return json_response(page([present_order(r, today) for r in rows], size, lambda item: item["id"]))

    @get("/{tasking_id:uuid}", guards=[can_read], summary="One tasking order", responses=problem_answers(404))
    async def read(self, request: Request, state: State, tasking_id: UUID) -> Response[TaskingOrder]:
        async with state.db.transaction() as tx:
            row = await taskings.get(tx.pg, str(tasking_id), request.user)
        return json_response(present_order(row, Clock.utc().today))

    @post("/{tasking_id:uuid}/receipts", guards=[requires("operator", "admin")], status_code=200,
          summary="Count a receipt movement of the tasked output toward the order",
          responses=problem_answers(404, 409))
    async def receipt(self, request: Request, state: State, tasking_id: UUID,
                      data: c.TaskingReceiptIn) -> Response[TaskingOrder]:
        clock = Clock.utc()
        async with write_transaction(request, state.db) as (tx, note):
            row = await taskings.record_receipt(tx.pg, str(tasking_id), data.movement_id, request.user, clock.now)
            note.details["id"] = row["id"]
        return json_response(present_order(row, clock.today))

"""Rotation: policies (planners and admins write, every reader reads), rotation orders (read within
scope and clearance; planners and admins cancel) and shelf-life tests of lots."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Literal

from litestar import Controller, Request, Response, get, post, put
from litestar.datastructures import State
from litestar.params import Parameter

from stockpile.api import exports
from stockpile.api.audit import write_transaction
from stockpile.api.auth import can_read, requires
from stockpile.api.common import Cursor, Limit, decode_cursor, encode_cursor, json_response, page, page_limit
from stockpile.api.presenters.rotation import present_order, present_policy, present_shelf_life_test
from stockpile.api.schemas import created
from stockpile.api.schemas.ledger import ShelfLifeTest
from stockpile.api.schemas.planning import RotationOrder, RotationOrderPage, RotationPolicy, RotationPolicyPage
from stockpile.api.schemas.problems import problem_answers
from stockpile.domain.moments import Clock
from stockpile.services import commands as c
from stockpile.services import rotation

OrderState = Literal["planned", "in_progress", "completed", "cancelled"]


class RotationPolicyController(Controller):
    path = "/api/v1/rotation-policies"
    tags = ["rotation"]

    @put("/{code:str}", guards=[requires("planner", "admin")], summary="Create or replace a rotation policy",
         responses={**created(RotationPolicy), **problem_answers(404, 409)})
    async def upsert(self, request: Request, state: State, code: str,
                     data: c.RotationPolicyIn) -> Response[RotationPolicy]:
        async with write_transaction(request, state.db) as (tx, note):
            created, stored = await rotation.upsert_policy(tx.pg, code, data, request.user)
            note.status = 201 if created else 200
        return json_response(present_policy(stored), 201 if created else 200)

    @get("/{code:str}", guards=[can_read], summary="One rotation policy",
         responses=problem_answers(404))
    async def read(self, state: State, code: str) -> Response[RotationPolicy]:
        async with state.db.transaction() as tx:
            return json_response(present_policy(await rotation.get_policy(tx.pg, code)))

    @get("/", guards=[can_read], summary="Rotation policies by code")
    async def listing(self, state: State, limit: Limit = None, cursor: Cursor = None) -> Response[RotationPolicyPage]:
        size = page_limit(limit)
        async with state.db.transaction() as tx:
            rows = await rotation.policies(tx.pg, after=decode_cursor(cursor, str), limit=size + 1)
        return json_response(page([present_policy(r) for r in rows], size, lambda item: item["code"]))


class RotationOrderController(Controller):
    path = "/api/v1/rotation-orders"
    tags = ["rotation"]

    @get("/", guards=[can_read], summary="Rotation orders by out-by date")
    async def listing(
        self, request: Request, state: State,
        state_: Annotated[OrderState | None, Parameter(query="state")] = None,
        warehouse: str | None = None, material: str | None = None, due_before: date | None = None,
        limit: Limit = None, cursor: Cursor = None,
    ) -> Response[RotationOrderPage]:
        if exports.wants_csv(request):
            return await exports.respond(request, state, "rotation-orders")
        size = page_limit(limit)
        principal = request.user
        today = Clock.utc().today
        async with state.db.transaction() as tx:
            rows = await rotation.orders(
                tx.pg, principal, state=state_, warehouse=warehouse, material=material, due_before=due_before,
                after=decode_cursor(cursor, tuple[date, uuid.UUID]), limit=size + 1,
            )
        more = len(rows) > size
        rows = rows[:size]
        last = rows[-1] if more and rows else None
        return json_response({
            "items": [present_order(r, today, principal) for r in rows],
            "next_cursor": encode_cursor([last["out_by"].isoformat(), last["id"]]) if last else None,
        })

    @get("/{order_id:str}", guards=[can_read], summary="One rotation order",
         responses=problem_answers(404))
    async def read(self, request: Request, state: State, order_id: str) -> Response[RotationOrder]:
        async with state.db.transaction() as tx:
            row = await rotation.get_order(tx.pg, order_id, request.user)
        return json_response(present_order(row, Clock.utc().today, request.user))

    @post("/{order_id:str}/cancel", guards=[requires("planner", "admin")], status_code=200,
          summary="Cancel an open rotation order",
          responses=problem_answers(404, 409))
    async def cancel(self, request: Request, state: State, order_id: str,
                     data: c.RotationCancelIn) -> Response[RotationOrder]:
        async with write_transaction(request, state.db) as (tx, note):
            row = await rotation.cancel_order(tx.pg, order_id, data.reason, request.user)
            note.details = {"reason": data.reason}
        return json_response(present_order(row, Clock.utc().today, request.user))


class ShelfLifeController(Controller):
    path = "/api/v1/lots"
    tags = ["stock"]

    @post("/{lot_id:str}/shelf-life-extensions", guards=[requires("operator", "planner", "admin")], status_code=201,
          summary="Record a shelf-life test: pass re-dates the lot, fail quarantines it",
          responses=problem_answers(404, 409))
    async def record(self, request: Request, state: State, lot_id: str,
                     data: c.ShelfLifeExtensionIn) -> Response[ShelfLifeTest]:
        async with write_transaction(request, state.db) as (tx, note):
            body = present_shelf_life_test(
                await rotation.record_shelf_life_test(tx.pg, lot_id, data, request.user, Clock.utc().today))
            note.status = 201
            note.details = {"result": data.result, "test_reference": data.test_reference}
        return json_response(body, 201)

"""Reserve targets (planners and admins write, in their regions) and coverage (every reader)."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, Request, Response, get, put
from litestar.datastructures import State
from litestar.params import Parameter

from stockpile.api import exports
from stockpile.api.audit import write_transaction
from stockpile.api.auth import can_read, requires
from stockpile.api.common import Cursor, Limit, decode_cursor, json_response, page, page_limit
from stockpile.api.presenters.targets import present_coverage, present_target
from stockpile.api.schemas import created
from stockpile.api.schemas.planning import CoveragePage, Target, TargetPage
from stockpile.api.schemas.problems import problem_answers
from stockpile.domain.moments import Clock
from stockpile.services import commands as c
from stockpile.services import targets


class TargetController(Controller):
    path = "/api/v1/reserve-targets"
    tags = ["targets"]

    @put("/{code:str}", guards=[requires("planner", "admin")], summary="Create or replace a reserve target",
         responses={**created(Target), **problem_answers(404, 409)})
    async def upsert(self, request: Request, state: State, code: str, data: c.TargetIn) -> Response[Target]:
        async with write_transaction(request, state.db) as (tx, note):
            created, stored = await targets.upsert(tx.pg, code, data, request.user)
            note.status = 201 if created else 200
        return json_response(present_target(stored), 201 if created else 200)

    @get("/{code:str}", guards=[can_read], summary="One reserve target",
         responses=problem_answers(404))
    async def read(self, request: Request, state: State, code: str) -> Response[Target]:
        async with state.db.transaction() as tx:
            return json_response(present_target(await targets.get(tx.pg, code, request.user)))

    @get("/", guards=[can_read], summary="Reserve targets by code")
    async def listing(self, request: Request, state: State, limit: Limit = None,
                      cursor: Cursor = None) -> Response[TargetPage]:
        size = page_limit(limit)
        async with state.db.transaction() as tx:
            rows = await targets.listing(tx.pg, request.user, after=decode_cursor(cursor), limit=size + 1)
        return json_response(page([present_target(r) for r in rows], size, lambda item: item["code"]))


class CoverageController(Controller):
    path = "/api/v1/coverage"
    tags = ["targets"]

    @get("/", guards=[can_read], summary="Usable stock against every reserve target")
    async def coverage(
        self, request: Request, state: State, region: str | None = None,
        category: Literal["fuel", "food", "medical"] | None = None,
        state_: Annotated[Literal["ok", "warning", "critical"] | None, Parameter(query="state")] = None,
    ) -> Response[CoveragePage]:
        if exports.wants_csv(request):
            return await exports.respond(request, state, "coverage")
        async with state.db.transaction() as tx:
            items = await targets.coverage(tx.pg, request.user, today=Clock.utc().today, region=region,
                                           category=category, state=state_)
        return json_response({"items": [present_coverage(i) for i in items], "next_cursor": None})

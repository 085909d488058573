"""Readiness levels (commanders declare; everyone reads), the allocation rule table (admins write)
and obligations (settled by planners, admins and, for loans repaid in kind, operators)."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from litestar import Controller, Request, Response, get, post, put
from litestar.datastructures import State
from litestar.params import Parameter

from stockpile.api.audit import write_transaction
from stockpile.api.auth import can_read, requires
from stockpile.api.common import Cursor, Limit, decode_cursor, json_response, page, page_limit
from stockpile.api.presenters.obligations import present_obligation, present_with_settlements
from stockpile.api.presenters.readiness import present_declaration, present_level, present_rule, present_rule_table
from stockpile.api.schemas import created
from stockpile.api.schemas.planning import (
    Declaration, DeclarationPage, Obligation, ObligationPage, RegionLevelPage, RuleTable, VersionedRule,
)
from stockpile.api.schemas.problems import problem_answers
from stockpile.domain.errors import Invalid
from stockpile.domain.moments import Clock
from stockpile.services import commands as c
from stockpile.services import obligations, readiness


class ReadinessController(Controller):
    path = "/api/v1/readiness"
    tags = ["readiness"]

    @get("/", guards=[can_read], summary="The effective readiness level of every region")
    async def levels(self, state: State) -> Response[RegionLevelPage]:
        async with state.db.transaction() as tx:
            items = await readiness.levels(tx.pg)
        return json_response({"items": [present_level(item) for item in items], "next_cursor": None})

    @post("/declarations", guards=[requires("commander")], status_code=201,
          summary="Declare a readiness level on a region (wartime waits for a second commander)",
          responses=problem_answers(404, 409))
    async def declare(self, request: Request, state: State, data: c.DeclarationIn) -> Response[Declaration]:
        async with write_transaction(request, state.db) as (tx, note):
            body = present_declaration(await readiness.declare(tx.pg, data, request.user, Clock.utc().now))
            note.status, note.details["id"] = 201, body["id"]
        return json_response(body, 201)

    @post("/declarations/{declaration_id:uuid}/confirm", guards=[requires("commander")], status_code=200,
          summary="Confirm a pending wartime declaration (a different commander)",
          responses=problem_answers(404, 409))
    async def confirm(self, request: Request, state: State, declaration_id: UUID) -> Response[Declaration]:
        async with write_transaction(request, state.db) as (tx, note):
            body = present_declaration(await readiness.confirm(tx.pg, str(declaration_id), request.user))
            note.details["id"] = body["id"]
        return json_response(body)

    @post("/declarations/{declaration_id:uuid}/withdraw", guards=[requires("commander")], status_code=200,
          summary="Withdraw a pending wartime declaration",
          responses=problem_answers(404, 409))
    async def withdraw(self, request: Request, state: State, declaration_id: UUID) -> Response[Declaration]:
        async with write_transaction(request, state.db) as (tx, note):
            body = present_declaration(await readiness.withdraw(tx.pg, str(declaration_id), request.user))
            note.details["id"] = body["id"]
        return json_response(body)

    @get("/declarations", guards=[can_read], summary="Readiness declarations, newest first")
    async def declarations(
        self, state: State, region: str | None = None,
        state_: Annotated[Literal["pending_confirmation", "effective", "superseded", "withdrawn"] | None,
                          Parameter(query="state")] = None,
        limit: Limit = None, cursor: Cursor = None,
    ) -> Response[DeclarationPage]:
        size = page_limit(limit)
        before = decode_cursor(cursor, tuple[c.Moment, UUID])
        async with state.db.transaction() as tx:
            rows = await readiness.declarations(tx.pg, region=region, state=state_,
                                                before=(before[0], str(before[1])) if before else None, limit=size + 1)
        items = [present_declaration(r) for r in rows]
        return json_response(page(items, size, lambda item: [item["declared_at"], item["id"]]))

    @get("/declarations/{declaration_id:uuid}", guards=[can_read], summary="One readiness declaration",
         responses=problem_answers(404))
    async def declaration(self, state: State, declaration_id: UUID) -> Response[Declaration]:
        async with state.db.transaction() as tx:
            row = await readiness.declaration(tx.pg, str(declaration_id))
        return json_response(present_declaration(row))


class RuleController(Controller):
    path = "/api/v1/allocation-rules"
    tags = ["allocation"]

    @get("/", guards=[can_read], summary="The allocation rules in force (or at an earlier version)")
    async def listing(self, state: State, version: Annotated[int | None, Parameter(
            ge=1, le=2**31 - 1, description="A rule version, 1 to the current one (default: the one in force)",
    )] = None) -> Response[RuleTable]:
        async with state.db.transaction() as tx:
            body = present_rule_table(await readiness.rule_table(tx.pg, version))
        return json_response({**body, "next_cursor": None})

    @put("/{code:str}", guards=[requires("admin")], summary="Create or replace a rule (opens a new rule version)",
         responses={**created(VersionedRule), **problem_answers(409)})
    async def upsert(self, request: Request, state: State, code: str, data: c.RuleIn) -> Response[VersionedRule]:
        if not code or len(code) > 64 or not code.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise Invalid.field("code", "letters, digits, '.', '-' or '_', at most 64")
        async with write_transaction(request, state.db) as (tx, note):
            created, rule, version = await readiness.put_rule(tx.pg, code, data, request.user)
            note.status = 201 if created else 200
        return json_response({**present_rule(rule), "version": version}, 201 if created else 200)


class ObligationController(Controller):
    path = "/api/v1/obligations"
    tags = ["allocation"]

    @get("/", guards=[can_read], summary="Obligations (loans and requisitions) from draws across owners")
    async def listing(self, request: Request, state: State,
                      state_: Annotated[Literal["open", "settled"] | None, Parameter(query="state")] = None,
                      party: str | None = None, limit: Limit = None, cursor: Cursor = None) -> Response[ObligationPage]:
        size = page_limit(limit)
        after = decode_cursor(cursor, UUID)
        async with state.db.transaction() as tx:
            rows = await obligations.listing(tx.pg, request.user, state=state_, party=party,
                                             after=None if after is None else str(after), limit=size + 1)
        return json_response(page([present_obligation(r) for r in rows], size, lambda item: item["id"]))

    @get("/{obligation_id:uuid}", guards=[can_read], summary="One obligation with its settlements",
         responses=problem_answers(404))
    async def read(self, request: Request, state: State, obligation_id: UUID) -> Response[Obligation]:
        async with state.db.transaction() as tx:
            return json_response(present_with_settlements(await obligations.obligation(tx.pg, str(obligation_id), request.user)))

    @post("/{obligation_id:uuid}/settlements", guards=[requires("operator", "planner", "admin")], status_code=200,
          summary="Settle part or all of an obligation",
          responses=problem_answers(404, 409))
    async def settle(self, request: Request, state: State, obligation_id: UUID,
                     data: c.SettlementIn) -> Response[Obligation]:
        async with write_transaction(request, state.db) as (tx, note):
            settled = await obligations.settle(tx.pg, str(obligation_id), data, request.user)
            note.details["id"] = str(settled.row["id"])
        return json_response(present_with_settlements(settled))

"""Parties, regions, warehouses, materials: upsert by code (admin), read (any reader)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, Response, get, put
from litestar.datastructures import State
from litestar.params import Parameter

from stockpile.api.audit import write_transaction
from stockpile.api.auth import can_read, can_write_master_data
from stockpile.api.common import Cursor, Limit, json_response, page, page_limit, decode_cursor
from stockpile.api.presenters.masterdata import present_master
from stockpile.api.schemas import created
from stockpile.api.schemas import reference as shown
from stockpile.api.schemas.problems import problem_answers
from stockpile.services import commands as c
from stockpile.services import masterdata

# A code written here is one movements can name later: the same shape as ``commands.Code``.
PathCode = Annotated[str, Parameter(min_length=1, max_length=64, pattern=c.CODE_PATTERN)]


def _controller(kind: str, schema: type, shown: type, page_shown: type) -> type[Controller]:
    """The four master-data resources behave alike; each gets its own controller and OpenAPI tag."""

    async def upsert(self, request: Request, state: State, code: PathCode, data: schema) -> Response:  # type: ignore[valid-type]
        async with write_transaction(request, state.db) as (tx, note):
            created, stored = await masterdata.upsert(tx.pg, kind, code, data, request.user)
            note.status, note.details = (201 if created else 200), {"created": created}
        return json_response(present_master(kind, stored), 201 if created else 200)

    async def read(self, request: Request, state: State, code: str) -> Response:
        async with state.db.transaction() as tx:
            return json_response(present_master(kind, await masterdata.get(tx.pg, kind, code, request.user)))

    async def listing(self, request: Request, state: State, limit: Limit = None, cursor: Cursor = None) -> Response:
        size = page_limit(limit)
        async with state.db.transaction() as tx:
            rows = await masterdata.page(tx.pg, kind, request.user, after=decode_cursor(cursor, str), limit=size + 1)
        return json_response(page([present_master(kind, r) for r in rows], size, lambda item: item["code"]))

    upsert.__annotations__["data"] = schema
    upsert.__annotations__["return"] = read.__annotations__["return"] = Response[shown]
    listing.__annotations__["return"] = Response[page_shown]
    return type(
        f"{kind.title()}Controller",
        (Controller,),
        {
            "path": f"/api/v1/{kind.replace('_', '-')}",
            "tags": ["master data"],
            "upsert": put("/{code:str}", guards=[can_write_master_data], summary=f"Create or replace one of the {kind}",
                          responses={**created(shown), **problem_answers(409)})(upsert),
            "read": get("/{code:str}", guards=[can_read], summary=f"Read one of the {kind} by code",
                        responses=problem_answers(404))(read),
            "listing": get("/", guards=[can_read], summary=f"List {kind} by code")(listing),
        },
    )


CONTROLLERS = [
    _controller("parties", c.PartyIn, shown.Party, shown.PartyPage),
    _controller("regions", c.RegionIn, shown.Region, shown.RegionPage),
    _controller("warehouses", c.WarehouseIn, shown.Warehouse, shown.WarehousePage),
    _controller("materials", c.MaterialIn, shown.Material, shown.MaterialPage),
]

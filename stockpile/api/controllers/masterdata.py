"""Parties, regions, warehouses, materials: upsert by code (admin), read (any reader)."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Request, Response, get, put
from litestar.datastructures import State
from litestar.params import Parameter

from stockpile.api.audit import write_transaction
from stockpile.api.auth import can_read, can_write_master_data
from stockpile.api.common import json_response, page, page_limit, decode_cursor
from stockpile.api.presenters.masterdata import present_master
from stockpile.services import commands as c
from stockpile.services import masterdata

# A code written here is one movements can name later: the same shape as ``commands.Code``.
PathCode = Annotated[str, Parameter(min_length=1, max_length=64, pattern=c.CODE_PATTERN)]


def _controller(kind: str, schema: type) -> type[Controller]:
    """The four master-data resources behave alike; each gets its own controller and OpenAPI tag."""

    async def upsert(self, request: Request, state: State, code: PathCode, data: schema) -> Response:  # type: ignore[valid-type]
        async with write_transaction(request, state.db) as (tx, note):
            created, stored = await masterdata.upsert(tx.pg, kind, code, data, request.user)
            note.status, note.details = (201 if created else 200), {"created": created}
        return json_response(present_master(kind, stored), 201 if created else 200)

    async def read(self, request: Request, state: State, code: str) -> Response:
        async with state.db.transaction() as tx:
            return json_response(present_master(kind, await masterdata.get(tx.pg, kind, code, request.user)))

    async def listing(self, request: Request, state: State, limit: int | None = None, cursor: str | None = None) -> Response:
        size = page_limit(limit)
        async with state.db.transaction() as tx:
            rows = await masterdata.page(tx.pg, kind, request.user, after=decode_cursor(cursor, str), limit=size + 1)
        return json_response(page([present_master(kind, r) for r in rows], size, lambda item: item["code"]))

    upsert.__annotations__["data"] = schema
    return type(
        f"{kind.title()}Controller",
        (Controller,),
        {
            "path": f"/api/v1/{kind.replace('_', '-')}",
            "tags": ["master data"],
            "upsert": put("/{code:str}", guards=[can_write_master_data], summary=f"Create or replace one of the {kind}")(upsert),
            "read": get("/{code:str}", guards=[can_read], summary=f"Read one of the {kind} by code")(read),
            "listing": get("/", guards=[can_read], summary=f"List {kind} by code")(listing),
        },
    )


CONTROLLERS = [
    _controller("parties", c.PartyIn),
    _controller("regions", c.RegionIn),
    _controller("warehouses", c.WarehouseIn),
    _controller("materials", c.MaterialIn),
]

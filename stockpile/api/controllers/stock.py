"""Stock positions and lots."""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State

from stockpile.api import exports
from stockpile.api.audit import write_transaction
from stockpile.api.auth import can_post_movements, can_read
from stockpile.api.common import Cursor, Limit, RowCursor, decode_cursor, json_response, page, page_limit
from stockpile.api.presenters.stock import present_lot, present_lot_head, present_position
from stockpile.api.schemas.ledger import Lot, LotPage, PositionPage
from stockpile.api.schemas.problems import problem_answers
from stockpile.domain.moments import Clock
from stockpile.services import commands as c
from stockpile.services import lots, rotation

Category = Literal["fuel", "food", "medical"]
LotStatus = Literal["available", "quarantine", "recalled"]


class StockController(Controller):
    path = "/api/v1/stock"
    tags = ["stock"]

    @get("/", guards=[can_read], summary="Stock positions (lot × owner) holding stock")
    async def listing(
        self, request: Request, state: State, warehouse: str | None = None, material: str | None = None, owner: str | None = None,
        region: str | None = None, category: Category | None = None, expiring_before: date | None = None,
        status: LotStatus | None = None, limit: Limit = None, cursor: Cursor = None,
    ) -> Response[PositionPage]:
        if exports.wants_csv(request):
            return await exports.respond(request, state, "stock")
        size = page_limit(limit)
        today = Clock.utc().today
        async with state.db.transaction() as tx:
            rows = await lots.positions(
                tx.pg, request.user, warehouse=warehouse, material=material, owner=owner, region=region,
                category=category, expiring_before=expiring_before, status=status,
                after=decode_cursor(cursor, RowCursor), limit=size + 1,
            )
        items = [(row["account_id"], present_position(row, today)) for row in rows]
        body = page(items, size, lambda item: item[0])
        body["items"] = [item for _, item in body["items"]]
        return json_response(body)


class LotController(Controller):
    path = "/api/v1/lots"
    tags = ["stock"]

    @get("/", guards=[can_read], summary="Lots by id, emptied ones too, each with the balance the reader may see")
    async def listing(
        self, request: Request, state: State, warehouse: str | None = None, material: str | None = None,
        status: LotStatus | None = None, expiring_before: date | None = None, limit: Limit = None,
        cursor: Cursor = None,
    ) -> Response[LotPage]:
        if exports.wants_csv(request):
            return await exports.respond(request, state, "lots")
        size = page_limit(limit)
        after = decode_cursor(cursor, UUID)
        today = Clock.utc().today
        async with state.db.transaction() as tx:
            rows = await lots.lots(tx.pg, request.user, warehouse=warehouse, material=material, status=status,
                                   expiring_before=expiring_before, after=None if after is None else str(after),
                                   limit=size + 1)
        return json_response(page([present_lot_head(r, today) for r in rows], size, lambda item: item["id"]))

    @get("/{lot_id:str}", guards=[can_read], summary="One lot: its owners' shares and its history",
         responses=problem_answers(404))
    async def read(self, request: Request, state: State, lot_id: str) -> Response[Lot]:
        async with state.db.transaction() as tx:
            return json_response(await _lot(tx.pg, lot_id, request.user))

    @post("/{lot_id:str}/status", guards=[can_post_movements], status_code=200,
          summary="Quarantine, recall or release a lot",
          responses=problem_answers(404, 409))
    async def set_status(self, request: Request, state: State, lot_id: str, data: c.LotStatusIn) -> Response[Lot]:
        async with write_transaction(request, state.db) as (tx, note):
            previous = await lots.change_status(tx.pg, lot_id, data.status, data.reason, request.user)
            note.details = {"from": previous, "to": data.status}
            body = await _lot(tx.pg, lot_id, request.user)
        return json_response(body)


async def _lot(pg, lot_id: str, principal) -> dict:
    head, positions, events = await lots.lot(pg, lot_id, principal)
    return present_lot(head, positions, events, await rotation.extension_history(pg, head["id"]), Clock.utc().today)

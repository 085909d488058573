"""Stock positions and lots."""

from __future__ import annotations

from datetime import date
from typing import Literal

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State

from stockpile.api.audit import write_transaction
from stockpile.api.auth import can_post_movements, can_read
from stockpile.api.common import Cursor, Limit, RowCursor, decode_cursor, json_response, page, page_limit
from stockpile.api.presenters.rotation import present_extension
from stockpile.api.schemas.ledger import Lot, PositionPage
from stockpile.api.schemas.problems import problem_answers
from stockpile.domain.lots import is_expired
from stockpile.domain.moments import Clock, rfc3339
from stockpile.domain.quantities import format_quantity
from stockpile.services import commands as c
from stockpile.services import lots, rotation

Category = Literal["fuel", "food", "medical"]
LotStatus = Literal["available", "quarantine", "recalled"]


def present_position(row, today: date) -> dict:
    d = row["decimals"]
    return {
        "lot_id": row["lot_id"], "lot_code": row["lot_code"], "warehouse": row["warehouse"], "region": row["region"],
        "material": row["material"], "category": row["category"], "unit": row["unit"], "owner": row["owner"],
        "owner_sector": row["owner_sector"],
        "balance": format_quantity(row["balance"], d), "reserved": format_quantity(row["reserved"], d),
        "available": format_quantity(row["balance"] - row["reserved"], d),
        "expires_on": row["expires_on"].isoformat() if row["expires_on"] else None,
        "expired": is_expired(row["expires_on"], today), "status": row["status"],
    }


class StockController(Controller):
    path = "/api/v1/stock"
    tags = ["stock"]

    @get("/", guards=[can_read], summary="Stock positions (lot × owner) holding stock")
    async def listing(
        self, request: Request, state: State, warehouse: str | None = None, material: str | None = None, owner: str | None = None,
        region: str | None = None, category: Category | None = None, expiring_before: date | None = None,
        status: LotStatus | None = None, limit: Limit = None, cursor: Cursor = None,
    ) -> Response[PositionPage]:
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
    d = head["decimals"]
    today = Clock.utc().today
    return {
        "id": head["id"], "code": head["code"], "warehouse": head["warehouse"], "material": head["material"],
        "unit": head["unit"],
        "manufactured_on": head["manufactured_on"].isoformat() if head["manufactured_on"] else None,
        "expires_on": head["expires_on"].isoformat() if head["expires_on"] else None,
        "expired": is_expired(head["expires_on"], today), "status": head["status"],
        "origin_lot_id": head["origin_lot_id"],
        "balance": format_quantity(sum(p["balance"] for p in positions), d),
        "owners": [{
            "owner": p["owner"], "sector": p["sector"], "balance": format_quantity(p["balance"], d),
            "reserved": format_quantity(p["reserved"], d), "available": format_quantity(p["balance"] - p["reserved"], d),
        } for p in positions],
        "history": [{
            "kind": e["kind"], "from": e["from_value"], "to": e["to_value"], "reason": e["reason"],
            "by": e["actor"], "at": rfc3339(e["at"]),
        } for e in events],
        "shelf_life_extensions": [present_extension(r) for r in await rotation.extension_history(pg, head["id"])],
    }

"""Movements (single and batch) and transfers: every POST here posts to the ledger, so every POST
needs an ``Idempotency-Key``; reads of the ledger are newest first."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import Parameter

from stockpile.api import exports
from stockpile.api.audit import AuditNote
from stockpile.api.auth import can_post_movements, can_read
from stockpile.api.common import (
    IDEMPOTENCY_HEADER, Cursor, Limit,
    RowCursor, decode_cursor, encode_cursor, idempotent, json_response, page, page_limit, replayed, request_fingerprint,
)
from stockpile.api.presenters.movements import present_movement, present_posted
from stockpile.api.schemas.ledger import (
    BatchAnswer, Movement, MovementPage, PostedMovement, Transfer, TransferPage, TransferStep,
)
from stockpile.api.schemas.problems import problem_answers
from stockpile.domain.errors import Invalid
from stockpile.domain.moments import Clock
from stockpile.metrics import MOVEMENTS_POSTED
from stockpile.services import commands as c
from stockpile.services import ledger, transfers
from stockpile.services.posting import LedgerRequest


MovementKind = Literal["receipt", "issue", "transfer_dispatch", "transfer_receipt", "adjustment", "write_off",
                       "ownership_transfer", "rotation_out", "rotation_in", "reversal"]


class MovementController(Controller):
    path = "/api/v1/movements"
    tags = ["ledger"]

    @post("/", guards=[can_post_movements], summary="Post one movement to the ledger",
          responses=problem_answers(404, 409, 503))
    async def create(
        self, request: Request, state: State, data: c.Movement,
        idempotency_key: Annotated[str, IDEMPOTENCY_HEADER],
    ) -> Response[PostedMovement]:
        return await _commit(request, state, data)

    @post("/batch", guards=[can_post_movements], summary="Post up to 1000 movements, atomically or one by one",
          responses=problem_answers(404, 409, 503))
    async def batch(
        self, request: Request, state: State, data: c.Batch,
        idempotency_key: Annotated[str, IDEMPOTENCY_HEADER],
    ) -> Response[BatchAnswer]:
        if len(data.movements) > state.settings.max_batch:
            raise Invalid.field("movements", f"at most {state.settings.max_batch} movements per batch")
        return await _commit(request, state, data)

    @get("/", guards=[can_read], summary="The ledger, newest first")
    async def listing(
        self, request: Request, state: State, warehouse: str | None = None, material: str | None = None,
        owner: str | None = None, kind: MovementKind | None = None, since: datetime | None = None,
        until: datetime | None = None, limit: Limit = None, cursor: Cursor = None,
    ) -> Response[MovementPage]:
        if exports.wants_csv(request):
            return await exports.respond(request, state, "movements")
        size = page_limit(limit)
        async with state.db.transaction() as tx:
            rows = await ledger.movements(
                tx.pg, request.user, warehouse=warehouse, material=material, owner=owner, kind=kind, since=since,
                until=until, before_seq=decode_cursor(cursor, RowCursor), limit=size + 1,
            )
        items = [(row["seq"], present_movement(row)) for row in rows]
        body = page(items, size, lambda item: item[0])
        body["items"] = [item for _, item in body["items"]]
        return json_response(body)

    @get("/{movement_id:str}", guards=[can_read], summary="One movement with its postings",
         responses=problem_answers(404))
    async def read(self, request: Request, state: State, movement_id: str) -> Response[Movement]:
        async with state.db.transaction() as tx:
            row = await ledger.movement(tx.pg, movement_id, request.user)
        return json_response(present_movement(row))


async def _commit(request: Request, state: State, data: c.Movement | c.Batch) -> Response:
    """Post a movement or a batch (``services.posting``: group-committed with concurrent ones)."""
    key, fingerprint = await request_fingerprint(request)
    note = AuditNote(request, target=request.url.path, details={"idempotency_key": key})
    answer = await state.ledger.post(LedgerRequest(data, request.user, key, fingerprint, note, Clock.utc()))
    if answer.replayed:
        return replayed(answer.body, answer.status)
    for kind in answer.kinds:
        MOVEMENTS_POSTED.labels(kind).inc()
    return json_response(answer.body, answer.status)


async def _transfer_step(request: Request, state: State, step) -> Response:
    """Dispatch or receive a transfer as an idempotent ledger POST answering the transfer and its movement."""
    kinds: list[str] = []

    async def run(tx):
        transfer, posted = await step(tx.pg, Clock.utc())
        kinds.append(posted.kind)
        return 201, {**transfer, "movement": present_posted(posted)}

    response = await idempotent(request, state.db, run)
    for kind in kinds:
        MOVEMENTS_POSTED.labels(kind).inc()
    return response


class TransferController(Controller):
    path = "/api/v1/transfers"
    tags = ["ledger"]

    @post("/", guards=[can_post_movements], summary="Dispatch a transfer: stock moves into transit",
          responses=problem_answers(404, 409, 503))
    async def create(
        self, request: Request, state: State, data: c.TransferIn,
        idempotency_key: Annotated[str, IDEMPOTENCY_HEADER],
    ) -> Response[TransferStep]:
        return await _transfer_step(request, state, lambda pg, clock: transfers.dispatch(pg, data, request.user, clock))

    @post("/{transfer_id:str}/receipt", guards=[can_post_movements], summary="Receive a transfer at its destination",
          responses=problem_answers(404, 409, 503))
    async def receive(
        self, request: Request, state: State, transfer_id: str, data: c.TransferReceiptIn,
        idempotency_key: Annotated[str, IDEMPOTENCY_HEADER],
    ) -> Response[TransferStep]:
        return await _transfer_step(
            request, state, lambda pg, clock: transfers.receive(pg, transfer_id, data, request.user, clock))

    @get("/{transfer_id:str}", guards=[can_read], summary="One transfer",
         responses=problem_answers(404))
    async def read(self, request: Request, state: State, transfer_id: str) -> Response[Transfer]:
        async with state.db.transaction() as tx:
            return json_response(await transfers.get(tx.pg, transfer_id, request.user))

    @get("/", guards=[can_read], summary="Transfers, newest first")
    async def listing(
        self, request: Request, state: State,
        state_: Annotated[Literal["in_transit", "received"] | None, Parameter(query="state")] = None,
        warehouse: str | None = None, limit: Limit = None, cursor: Cursor = None,
    ) -> Response[TransferPage]:
        if exports.wants_csv(request):
            return await exports.respond(request, state, "transfers")
        size = page_limit(limit)
        async with state.db.transaction() as tx:
            items, last = await transfers.listing(tx.pg, request.user, state=state_, warehouse=warehouse,
                                                  after=decode_cursor(cursor, tuple[c.Moment, uuid.UUID]), size=size)
        return json_response({
            "items": items,
            "next_cursor": encode_cursor([last["dispatched_at"].isoformat(), last["id"]]) if last else None,
        })

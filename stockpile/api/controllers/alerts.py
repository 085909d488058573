"""Alerts: read (every reader, within scope and clearance) and acknowledge."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State
from litestar.params import Parameter

from stockpile.api import exports
from stockpile.api.audit import write_transaction
from stockpile.api.auth import can_read, requires
from stockpile.api.common import Cursor, Limit, decode_cursor, encode_cursor, json_response, page_limit
from stockpile.api.schemas.planning import Alert, AlertPage
from stockpile.api.schemas.problems import problem_answers
from stockpile.api.presenters.alerts import present_alert
from stockpile.services import alerts
from stockpile.services.commands import Strict

AlertState = Literal["open", "acknowledged", "resolved"]
AlertKind = Literal["shortfall", "expiring", "expired_on_hand", "rotation_overdue", "rotation_blocked",
                    "transfer_overdue", "allocation_unfilled", "count_discrepancy", "ledger_invariant",
                    "shelf_life_failed", "survey_overdue", "tasking_overdue",
                    "cold_chain_excursion", "stock_variance", "sensor_offline"]


class AcknowledgeIn(Strict):
    note: Annotated[str, msgspec.Meta(max_length=2000)] | None = None


class AlertController(Controller):
    path = "/api/v1/alerts"
    tags = ["alerts"]

    @get("/", guards=[can_read], summary="Alerts, newest first")
    async def listing(
        self, request: Request, state: State,
        state_: Annotated[AlertState | None, Parameter(query="state")] = None, kind: AlertKind | None = None,
        limit: Limit = None, cursor: Cursor = None,
    ) -> Response[AlertPage]:
        if exports.wants_csv(request):
            return await exports.respond(request, state, "alerts")
        size = page_limit(limit)
        async with state.db.transaction() as tx:
            rows = await alerts.listing(tx.pg, request.user, state=state_, kind=kind, after=decode_cursor(cursor),
                                        limit=size + 1)
        more = len(rows) > size
        rows = rows[:size]
        return json_response({"items": [present_alert(r, request.user) for r in rows],
                              "next_cursor": encode_cursor(rows[-1]["opened_at"].isoformat()) if more else None})

    @get("/{alert_id:uuid}", guards=[can_read], summary="One alert with its history",
         responses=problem_answers(404))
    async def read(self, request: Request, state: State, alert_id: UUID) -> Response[Alert]:
        async with state.db.transaction() as tx:
            row, history = await alerts.get(tx.pg, str(alert_id), request.user)
        return json_response(present_alert(row, request.user, history))

    @post("/{alert_id:uuid}/acknowledge", guards=[requires("operator", "planner", "commander", "admin")],
          status_code=200, summary="Acknowledge an open alert",
          responses=problem_answers(404, 409))
    async def acknowledge(self, request: Request, state: State, alert_id: UUID,
                          data: AcknowledgeIn | None = None) -> Response[Alert]:
        async with write_transaction(request, state.db) as (tx, note):
            row, history, before = await alerts.acknowledge(tx.pg, str(alert_id), request.user,
                                                            data.note if data else None)
            note.details = {"was": before}
        return json_response(present_alert(row, request.user, history))

"""Liveness and readiness."""

from __future__ import annotations

from litestar import Controller, Response, get
from litestar.datastructures import State

from stockpile.api.common import json_response
from stockpile.api.problems import problem_response
from stockpile.api.schemas.reference import Live, Ready
from stockpile.api.schemas.problems import problem_answers
from stockpile.services import health


class HealthController(Controller):
    path = "/health"
    tags = ["operations"]

    @get("/live", summary="The process is up")
    async def live(self) -> Response[Live]:
        return json_response({"status": "ok"})

    @get("/ready", summary="The database answers and its schema is at the latest migration",
         responses=problem_answers(503))
    async def ready(self, state: State) -> Response[Ready]:
        try:
            current, head = await health.schema_revisions(state.db)
        except Exception as exc:  # noqa: BLE001 - any failure to reach the database means not ready
            return problem_response(503, "not-ready", "Not ready", f"database unreachable: {type(exc).__name__}")
        if current != head:
            return problem_response(503, "not-ready", "Not ready", f"schema at {current}, latest is {head}",
                                    schema=current, latest=head)
        return json_response({"status": "ok", "schema": current})

"""Sensors (admin registers, readers read) and their readings (devices post, readers read)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated

from litestar import Controller, Request, Response, get, post, put
from litestar.datastructures import State
from litestar.params import Parameter

from stockpile.api.audit import write_transaction
from stockpile.api.auth import can_post_readings, can_read, can_write_master_data
from stockpile.api.common import Cursor, Limit, decode_cursor, encode_cursor, json_response, page, page_limit
from stockpile.api.presenters.sensors import present_average, present_reading, present_refusal, present_sensor
from stockpile.api.schemas import created
from stockpile.api.schemas.problems import problem_answers
from stockpile.api.schemas.sensors import ReadingPage, ReadingsAnswer, Sensor, SensorPage
from stockpile.domain.sensors import FUTURE_SKEW, MAX_STEP
from stockpile.metrics import READINGS_INGESTED
from stockpile.services import commands as c
from stockpile.services import sensors

PathCode = Annotated[str, Parameter(min_length=1, max_length=64, pattern=c.CODE_PATTERN)]
Step = Annotated[int | None, Parameter(ge=1, le=MAX_STEP, description="Seconds per step: averaged readings")]


class SensorController(Controller):
    path = "/api/v1/sensors"
    tags = ["sensors"]

    @put("/{code:str}", guards=[can_write_master_data], summary="Register or replace a sensor",
         responses=created(Sensor))
    async def upsert(self, request: Request, state: State, code: PathCode, data: c.SensorIn) -> Response[Sensor]:
        async with write_transaction(request, state.db) as (tx, note):
            created, row = await sensors.upsert(tx.pg, code, data, request.user)
            note.status, note.details = (201 if created else 200), {"created": created}
        return json_response(present_sensor(row), 201 if created else 200)

    @get("/", guards=[can_read], summary="Sensors by code, each with its last reading")
    async def listing(self, request: Request, state: State, warehouse: str | None = None, limit: Limit = None,
                      cursor: Cursor = None) -> Response[SensorPage]:
        size = page_limit(limit)
        async with state.db.transaction() as tx:
            rows = await sensors.listing(tx.pg, request.user, warehouse=warehouse, after=decode_cursor(cursor, str),
                                         limit=size + 1)
        return json_response(page([present_sensor(r) for r in rows], size, lambda item: item["code"]))

    @get("/{code:str}", guards=[can_read], summary="One sensor with its last reading",
         responses=problem_answers(404))
    async def read(self, request: Request, state: State, code: str) -> Response[Sensor]:
        async with state.db.transaction() as tx:
            return json_response(present_sensor(await sensors.get(tx.pg, code, request.user)))

    @get("/{code:str}/readings", guards=[can_read],
         summary="A sensor's readings, oldest first: raw, or per step seconds (mean, min, max, count)",
         responses=problem_answers(404))
    async def readings(self, request: Request, state: State, code: str, since: datetime | None = None,
                       until: datetime | None = None, step: Step = None, limit: Limit = None,
                       cursor: Cursor = None) -> Response[ReadingPage]:
        size = page_limit(limit)
        until = until or datetime.now(timezone.utc) + FUTURE_SKEW
        since = since or until - timedelta(days=1)
        after = decode_cursor(cursor, datetime)
        async with state.db.transaction() as tx:
            _sensor, rows = await sensors.readings(tx.pg, code, request.user, since=since, until=until, step=step,
                                                   after=after, limit=size + 1)
        present = present_reading if step is None else present_average
        more = len(rows) > size
        rows = rows[:size]
        return json_response({"items": [present(r) for r in rows],
                              "next_cursor": encode_cursor(rows[-1]["at"].isoformat()) if more else None})


class ReadingController(Controller):
    path = "/api/v1/sensor-readings"
    tags = ["sensors"]

    @post("/", guards=[can_post_readings], status_code=200,
          summary="Post up to 10,000 readings; each bad one is refused on its own, a resent one changes nothing")
    async def ingest(self, request: Request, state: State, data: c.ReadingsIn) -> Response[ReadingsAnswer]:
        async with write_transaction(request, state.db) as (tx, note):
            done = await sensors.ingest(tx.pg, data.readings, request.user, now=datetime.now(timezone.utc),
                                        retention_days=state.settings.readings_retention_days)
            note.details = {"accepted": done.accepted, "duplicates": done.duplicates, "refused": len(done.refused)}
        for (warehouse_kind, storage_class), n in done.by_class.items():
            READINGS_INGESTED.labels(warehouse_kind, storage_class).inc(n)
        return json_response({"accepted": done.accepted, "duplicates": done.duplicates,
                              "refused": [present_refusal(*r) for r in done.refused]})

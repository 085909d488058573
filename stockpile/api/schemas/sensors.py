"""Sensors, their readings and what a post of readings answers."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from stockpile.api.schemas import Code, Moment, Schema, page_of
from stockpile.api.schemas.problems import Problem

Measured = Annotated[str, msgspec.Meta(description="A measured value as a decimal string, as written.",
                                       examples=["4.5"])]


class Band(Schema):
    """A probe's allowed range; either bound may be open (null)."""

    min: Measured | None
    max: Measured | None


class LastReading(Schema):
    at: Moment
    value: Measured


class Sensor(Schema):
    code: Code
    warehouse: Code
    kind: Literal["temperature", "humidity", "tank_level"]
    storage_class: str | None
    material: Code | None
    unit: str
    band: Band | None
    tolerance_minutes: int
    last_reading: LastReading | None


SensorPage = page_of(Sensor)


class Reading(Schema):
    """A reading; with ``step``, one step of readings: its start, mean (``value``), extremes and count."""

    at: Moment
    value: Measured
    min: Annotated[Measured | None, msgspec.Meta(description="With `step`: the lowest reading of the step.")] = None
    max: Annotated[Measured | None, msgspec.Meta(description="With `step`: the highest reading of the step.")] = None
    readings: Annotated[int | None, msgspec.Meta(description="With `step`: how many readings the step holds.")] = None


ReadingPage = page_of(Reading)


class RefusedReading(Schema):
    index: Annotated[int, msgspec.Meta(description="The reading's place in the posted list (0-based).")]
    sensor: str
    status: int
    problem: Problem


class ReadingsAnswer(Schema):
    """Each reading is judged on its own: stored, already stored (a resent one), or refused with its problem."""

    accepted: int
    duplicates: int
    refused: list[RefusedReading]

"""Capacities, the mobilisation potential and tasking orders as the API answers them."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

import msgspec

from stockpile.api.schemas import Code, Day, Moment, Quantity, Schema, page_of

Sector = Literal["military", "civilian", "enterprise"]
TaskingState = Literal["proposed", "open", "completed", "cancelled"]


class Capacity(Schema):
    """A capacity outside the reserve that can be mobilised, as last surveyed."""

    code: Code
    party: Code
    material: Code
    unit: str
    daily_quantity: Annotated[Quantity, msgspec.Meta(description="What it delivers per day once mobilised.")]
    lead_days: Annotated[int, msgspec.Meta(description="Days from tasking to the first day of output.")]
    region: Code
    warehouse: Code | None
    held_for: Annotated[Sector | None, msgspec.Meta(description="The sector its output is earmarked for.")]
    surveyed_on: Day
    survey_interval_days: int
    survey_due_on: Day
    survey_overdue: bool
    note: str
    updated_at: Moment


CapacityPage = page_of(Capacity)


class Survey(Schema):
    surveyed_on: Day
    daily_quantity: Quantity
    lead_days: int
    note: str
    recorded_at: Moment
    recorded_by: str | None


class CapacityWithSurveys(Capacity, kw_only=True):
    """A capacity with its survey history (surveys are never deleted)."""

    surveys: list[Survey]


class LeadDayCapacity(Schema):
    lead_days: int
    daily_quantity: Quantity


class Potential(Schema):
    """Usable stock and capacity of one material in one region, and the days of supply with and without."""

    region: Code
    material: Code
    category: Literal["fuel", "food", "medical"]
    unit: str
    usable: Quantity
    capacity_per_day: Quantity
    capacity_by_lead_day: list[LeadDayCapacity]
    population: int | None
    daily_need: Annotated[str | None, msgspec.Meta(
        description="A decimal string: what the region's targets consume per day; null when none says whom it serves.")]
    days_of_supply: float | None
    days_of_supply_with_capacity: Annotated[float | None, msgspec.Meta(
        description="Null with `sustained` true when capacity keeps up with the need for good.")]
    sustained: bool


PotentialPage = page_of(Potential)


class TaskingOrder(Schema):
    """A tasking order made by an approved plan; ``overdue`` while open past its due date."""

    id: UUID
    plan_id: UUID
    request_id: UUID
    capacity: Code
    party: Code
    material: Code
    unit: str
    destination: Code
    quantity: Quantity
    received: Quantity
    start_on: Annotated[Day, msgspec.Meta(description="The latest day to task the capacity to deliver by `due_on`.")]
    ready_on: Annotated[Day, msgspec.Meta(description="The first day of output when tasked on `start_on`.")]
    due_on: Day
    state: TaskingState
    overdue: bool
    ordered_at: Moment | None
    completed_at: Moment | None


TaskingOrderPage = page_of(TaskingOrder)

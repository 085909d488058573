"""Targets and coverage, alerts, readiness and rules, obligations, allocation, drills and rotation
as the API answers them."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from stockpile.api.schemas import Code, Day, Moment, Quantity, Schema, page_of

Level = Literal["peacetime", "emergency", "wartime"]
Priority = Literal["flash", "immediate", "priority", "routine"]


class Scope(Schema):
    """A target's scope: one warehouse, or a region with its sub-regions."""

    warehouse: Code | None = None
    region: Code | None = None


class Target(Schema):
    code: Code
    scope: Scope
    material: Code | None
    category: str | None
    substitution_group: str | None
    owner: Code | None
    sector: str | None
    quantity: Annotated[str, msgspec.Meta(description="Required quantity (a decimal string).")]
    warning_ratio: float
    critical_ratio: float
    floor_ratio: float
    horizon_days: int
    population: int | None


TargetPage = page_of(Target)


class Coverage(Target, kw_only=True):
    """A target with the usable stock that covers it."""

    target: Code
    required: str
    usable: str
    floor: str
    ratio: float
    state: Literal["ok", "warning", "critical"]
    days_of_supply: float | None
    unit: str | None


CoveragePage = page_of(Coverage)


class AlertEvent(Schema):
    event: str
    severity: str | None
    by: str | None
    note: str | None
    at: Moment


class Alert(Schema):
    id: UUID
    kind: str
    subject: str
    severity: str
    state: Literal["open", "acknowledged", "resolved"]
    title: str
    details: dict[str, Any]
    warehouse: Code | None
    region: Code | None
    opened_at: Moment
    last_seen_at: Moment
    acknowledged_at: Moment | None
    acknowledged_by: str | None
    resolved_at: Moment | None
    history: Annotated[list[AlertEvent] | None, msgspec.Meta(description="When one alert is read.")] = None


AlertPage = page_of(Alert)


class RegionLevel(Schema):
    region: Code
    name: str
    parent: Code | None
    level: Level
    declared_level: Level
    source_region: Annotated[Code | None, msgspec.Meta(description="The region whose declaration sets the level.")]
    declaration_id: UUID | None
    since: Moment | None
    pending_confirmations: int


RegionLevelPage = page_of(RegionLevel)


class Declaration(Schema):
    id: UUID
    region: Code
    level: Level
    reason: str | None
    state: Literal["pending_confirmation", "effective", "superseded", "withdrawn"]
    declared_by: str | None
    declared_at: Moment
    confirmed_by: str | None
    confirmed_at: Moment | None
    effective_at: Moment | None
    ends_at: Moment | None
    ended_at: Moment | None


DeclarationPage = page_of(Declaration)


class Rule(Schema):
    code: str
    level: Level
    category: str | None
    requester_sector: str | None
    owner_sector: str | None
    allowed: bool
    floor_ratio: float | None
    preference_cost: int
    approval_required: bool
    obligation: Literal["loan", "requisition"] | None
    note: str | None


class VersionedRule(Rule, kw_only=True):
    version: Annotated[int, msgspec.Meta(description="The rule version this change opened.")]


class RuleTable(Schema):
    version: Annotated[int, msgspec.Meta(description="The version shown.")]
    current_version: int
    items: list[Rule]
    next_cursor: None


class Settlement(Schema):
    movement_id: UUID | None
    quantity: Quantity
    note: str | None
    recorded_by: str | None
    recorded_at: Moment


class Obligation(Schema):
    id: UUID
    kind: Literal["loan", "requisition"]
    rule: str
    rule_version: int
    movement_id: UUID
    lot_id: UUID
    material: Code
    creditor: Code
    debtor: Code
    quantity: Quantity
    settled: Quantity
    outstanding: Quantity
    state: Literal["open", "settled"]
    created_at: Moment
    settled_at: Moment | None
    settlements: Annotated[list[Settlement] | None, msgspec.Meta(description="When one obligation is read.")] = None


ObligationPage = page_of(Obligation)


class AllocationRequest(Schema):
    id: UUID
    requester: Code
    destination: Code
    material: Code | None
    substitution_group: str | None
    category: str
    quantity: Quantity
    priority: Priority
    needed_by: Day
    purpose: str | None
    state: Literal["pending", "allocated", "cancelled"]
    created_at: Moment


AllocationRequestPage = page_of(AllocationRequest)


class PlanLine(Schema, tag_field="kind", tag="stock"):
    """A plan's line drawing on stock (``kind`` stock)."""

    request_id: UUID
    lot_id: UUID
    lot_code: str
    owner: Code
    warehouse: Code
    material: Code
    quantity: Quantity
    distance_km: float
    rule: Annotated[str, msgspec.Meta(description="The allocation rule that allows drawing this owner's stock.")]
    obligation: str | None
    expires_on: Day | None
    destination: Code
    state: Literal["proposed", "reserved", "in_transit", "received", "void"]
    transfer_id: UUID | None
    obligation_id: UUID | None


class TaskingLine(Schema, tag_field="kind", tag="tasking"):
    """A plan's tasking line (``kind`` tasking), after its lines on stock: output a capacity must be
    tasked for, by ``start_on``; once the plan is approved, the tasking order ``tasking_id``."""

    request_id: UUID
    capacity: Code
    party: Code
    material: Code
    destination: Code
    quantity: Quantity
    lead_days: int
    start_on: Day
    ready_on: Day
    due_on: Day
    state: Literal["proposed", "open", "completed", "cancelled"]
    tasking_id: Annotated[UUID | None, msgspec.Meta(description="The tasking order, once the plan is approved.")]


class PlanRequest(Schema):
    id: UUID
    priority: Priority
    needed_by: Day
    requested: Quantity
    planned: Quantity
    unfilled: Quantity
    reasons: Annotated[list[str], msgspec.Meta(description="Why part stays unfilled (no stock, floor, rule, expiry).")]


class Solver(Schema):
    objective: float
    solve_ms: float
    build_ms: float
    arcs: int


class Plan(Schema):
    id: UUID
    state: Literal["proposed", "approved", "dispatched", "cancelled", "expired"]
    rule_version: int
    lines: Annotated[list[PlanLine | TaskingLine], msgspec.Meta(
        description="Its lines on stock (`kind` stock), then its tasking lines (`kind` tasking).")]
    lines_withheld: Annotated[bool, msgspec.Meta(
        description="Lines drawing on stock the reader may not see are withheld (true when any was).")]
    requests: list[PlanRequest]
    solver: Solver
    created_at: Moment
    approved_at: Moment | None
    reserved_until: Moment | None
    dispatched_at: Moment | None
    ended_at: Moment | None
    end_reason: str | None


PlanPage = page_of(Plan)


class DrillRequest(Schema):
    id: str
    priority: Priority
    destination: Code | None
    requested: Quantity
    planned: Quantity
    unfilled: Quantity
    reasons: list[str]
    tasked: Annotated[Quantity, msgspec.Meta(description="What capacity tasked in the drill would deliver.")]
    unfilled_with_capacity: Quantity


class Unmet(Schema):
    material: str
    region: Code
    quantity: Quantity


class FloorBounding(Schema):
    target: Code
    protected: str
    headroom: str
    drawn: str


class SupplyDays(Schema):
    target: Code
    before: float
    after: float
    with_capacity: Annotated[float | None, msgspec.Meta(
        description="After the draws, with the capacity delivering into its scope mobilised; null when `sustained`.")]
    sustained: Annotated[bool, msgspec.Meta(description="Capacity keeps up with the need for good.")]


class DrillLine(Schema):
    request_id: str
    lot_id: UUID
    lot_code: str
    owner: Code
    owner_sector: str
    warehouse: Code
    material: Code
    quantity: Quantity
    distance_km: float
    rule: str
    expires_on: Day | None


class DrillTasking(Schema):
    """A capacity that would have to be tasked, on which day, for what stock leaves unmet."""

    request_id: str
    capacity: Code
    party: Code
    material: Code
    quantity: Quantity
    lead_days: int
    start_on: Day
    ready_on: Day
    due_on: Day


class Drill(Schema):
    """A drill's report: fill rate by priority, unmet demand by material and region, the floors
    that bound it and days of supply before and after."""

    id: UUID
    name: str
    rule_version: int | None
    levels: Annotated[dict[str, str], msgspec.Meta(description="Readiness level each request was planned under.")]
    fill_rate: Annotated[dict[str, float], msgspec.Meta(description="Share of the requested quantity planned, per priority.")]
    fill_rate_with_capacity: Annotated[dict[str, float], msgspec.Meta(
        description="Share planned from stock or delivered by tasked capacity, per priority.")]
    requests: list[DrillRequest]
    unmet: list[Unmet]
    floors_bounding: list[FloorBounding]
    days_of_supply: list[SupplyDays]
    lines: list[DrillLine]
    taskings: list[DrillTasking]
    solver: Solver | None
    created_at: Annotated[Moment | None, msgspec.Meta(description="When a stored drill is read.")] = None
    scenario: Annotated[dict[str, Any] | None, msgspec.Meta(description="When a stored drill is read.")] = None


class DrillSummary(Schema):
    id: UUID
    name: str
    created_at: Moment
    fill_rate: dict[str, float]


DrillSummaryPage = page_of(DrillSummary)


class RotationPolicy(Schema):
    code: Code
    material: Code | None
    category: str | None
    trigger_days_before_expiry: int | None
    trigger_fraction_remaining: float | None
    max_out_share: float
    max_gap_days: int
    outlet: Literal["sale", "consumption", "donation", "exchange"]
    lead_days: int
    max_extension_days: int | None
    updated_at: Moment


RotationPolicyPage = page_of(RotationPolicy)


class RotationOrder(Schema):
    id: UUID
    lot_id: UUID
    lot_code: str
    owner: Code
    warehouse: Code
    material: Code
    unit: str
    policy: Code | None
    quantity: Quantity
    out_quantity: Quantity
    in_quantity: Quantity
    out_by: Day
    in_by: Day
    outlet: str
    state: Literal["planned", "in_progress", "completed", "cancelled"]
    overdue: bool
    explanation: Annotated[str | None, msgspec.Meta(description="Why the planner chose it (public wording without clearance).")]
    cancel_reason: str | None
    created_at: Moment
    updated_at: Moment


RotationOrderPage = page_of(RotationOrder)

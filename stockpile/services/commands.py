"""The inputs of the use cases, as typed structs (decoded and shape-checked at the edge)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Union

import msgspec

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._\-]*$"
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=CODE_PATTERN)]
Text = Annotated[str, msgspec.Meta(max_length=2000)]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Moment = Annotated[datetime, msgspec.Meta(tz=True)]
Amount = Decimal


class Strict(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=False):
    pass


class LotIn(Strict):
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    manufactured_on: date | None = None
    expires_on: date | None = None


class Receipt(Strict, tag="receipt", tag_field="kind"):
    warehouse: Code
    material: Code
    owner: Code
    quantity: Amount
    lot: LotIn
    occurred_at: Moment | None = None
    reason: Text | None = None
    note: Text | None = None


class Issue(Strict, tag="issue", tag_field="kind"):
    owner: Code
    quantity: Amount
    warehouse: Code | None = None
    material: Code | None = None
    lot_id: Id | None = None
    occurred_at: Moment | None = None
    reason: Text | None = None
    note: Text | None = None


class Adjustment(Strict, tag="adjustment", tag_field="kind"):
    lot_id: Id
    owner: Code
    counted: Amount
    occurred_at: Moment | None = None
    reason: Text | None = None
    note: Text | None = None


class WriteOff(Strict, tag="write_off", tag_field="kind"):
    lot_id: Id
    owner: Code
    quantity: Amount
    occurred_at: Moment | None = None
    reason: Text | None = None
    note: Text | None = None


class OwnershipTransfer(Strict, tag="ownership_transfer", tag_field="kind"):
    lot_id: Id
    from_owner: Code
    to_owner: Code
    quantity: Amount
    occurred_at: Moment | None = None
    reason: Text | None = None
    note: Text | None = None


class Reversal(Strict, tag="reversal", tag_field="kind"):
    movement_id: Id
    occurred_at: Moment | None = None
    reason: Text | None = None
    note: Text | None = None


class RotationOut(Strict, tag="rotation_out", tag_field="kind"):
    """Old stock of a rotation order leaves the reserve (like an issue of that lot); allowed on expired lots."""

    lot_id: Id
    owner: Code
    quantity: Amount
    rotation_order_id: Id
    warehouse: Code | None = None
    material: Code | None = None
    occurred_at: Moment | None = None
    reason: Text | None = None
    note: Text | None = None


class RotationIn(Strict, tag="rotation_in", tag_field="kind"):
    """Fresh stock replacing what a rotation order took out arrives (like a receipt)."""

    warehouse: Code
    material: Code
    owner: Code
    quantity: Amount
    lot: LotIn
    rotation_order_id: Id
    occurred_at: Moment | None = None
    reason: Text | None = None
    note: Text | None = None


Movement = Union[Receipt, Issue, Adjustment, WriteOff, OwnershipTransfer, Reversal, RotationOut, RotationIn]


class Batch(Strict):
    movements: Annotated[list[Movement], msgspec.Meta(min_length=1)]
    atomic: bool = True


class TransferLineIn(Strict):
    lot_id: Id
    owner: Code
    quantity: Amount


class TransferIn(Strict):
    from_warehouse: Code
    to_warehouse: Code
    lines: Annotated[list[TransferLineIn], msgspec.Meta(min_length=1, max_length=1000)]
    expected_at: Moment | None = None
    note: Text | None = None


class ReceivedLineIn(Strict):
    lot_id: Id
    owner: Code
    received: Amount


class TransferReceiptIn(Strict):
    lines: list[ReceivedLineIn] | None = None
    occurred_at: Moment | None = None
    note: Text | None = None


class LotStatusIn(Strict):
    status: Literal["available", "quarantine", "recalled"]
    reason: Text | None = None


class PartyIn(Strict):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    sector: Literal["military", "civilian", "enterprise"]
    parent: Code | None = None


class RegionIn(Strict):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    parent: Code | None = None


class WarehouseIn(Strict):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    operator: Code
    region: Code
    kind: Literal["military", "civilian", "joint"]
    latitude: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    longitude: Annotated[float, msgspec.Meta(ge=-180, le=180)]
    status: Literal["active", "suspended", "lost"] = "active"
    capacity: dict[str, Amount] = {}


class MaterialIn(Strict):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    category: Literal["fuel", "food", "medical"]
    unit: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    decimals: Annotated[int, msgspec.Meta(ge=0, le=3)]
    storage_class: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] = "ambient"
    shelf_life_days: Annotated[int, msgspec.Meta(gt=0, le=36500)] | None = None
    substitution_group: Code | None = None
    daily_consumption_per_person: Decimal | None = None


class TargetScope(Strict):
    warehouse: Code | None = None
    region: Code | None = None


class TargetIn(Strict):
    """A reserve target. Defaults: warning 0.9, critical 0.7, protected floor 0.5, horizon 30 days."""

    scope: TargetScope
    quantity: Decimal
    material: Code | None = None
    category: Literal["fuel", "food", "medical"] | None = None
    substitution_group: Code | None = None
    owner: Code | None = None
    sector: Literal["military", "civilian", "enterprise"] | None = None
    warning_ratio: Decimal = Decimal("0.9")
    critical_ratio: Decimal = Decimal("0.7")
    floor_ratio: Decimal = Decimal("0.5")
    horizon_days: Annotated[int, msgspec.Meta(ge=0, le=3650)] = 30
    population: Annotated[int, msgspec.Meta(gt=0)] | None = None


Level = Literal["peacetime", "emergency", "wartime"]
Sector = Literal["military", "civilian", "enterprise"]


class DeclarationIn(Strict):
    """A readiness declaration on a region; ``ends_at`` is an optional planned end."""

    region: Code
    level: Level
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
    ends_at: Moment | None = None


class RuleIn(Strict):
    """An allocation rule; omitted members match any category or sector."""

    level: Level
    allowed: bool
    category: Literal["fuel", "food", "medical"] | None = None
    requester_sector: Sector | None = None
    owner_sector: Sector | None = None
    floor_ratio: Decimal | None = None
    preference_cost: Annotated[int, msgspec.Meta(ge=0, le=1_000_000)] = 0
    approval_required: bool = False
    obligation: Literal["loan", "requisition"] | None = None
    note: Text = ""


class SettlementIn(Strict):
    """Part or all of an obligation settled: a loan by the movement that repaid it in kind, a requisition by compensation."""

    quantity: Decimal
    movement_id: Id | None = None
    note: Text = ""


class RotationPolicyIn(Strict):
    """A rotation policy for one material or one category. Defaults: at most 25 % of a target out
    at once, 30 days from out to in, sold on, orders planned 14 days ahead."""

    material: Code | None = None
    category: Literal["fuel", "food", "medical"] | None = None
    trigger_days_before_expiry: Annotated[int, msgspec.Meta(ge=0, le=36500)] | None = None
    trigger_fraction_remaining: Decimal | None = None
    max_out_share: Decimal = Decimal("0.25")
    max_gap_days: Annotated[int, msgspec.Meta(gt=0, le=3650)] = 30
    outlet: Literal["sale", "consumption", "donation", "exchange"] = "sale"
    lead_days: Annotated[int, msgspec.Meta(ge=0, le=3650)] = 14
    max_extension_days: Annotated[int, msgspec.Meta(gt=0, le=36500)] | None = None


class RotationCancelIn(Strict):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class ShelfLifeExtensionIn(Strict):
    """A quality test of a lot: ``pass`` re-dates it to ``new_expires_on``, ``fail`` quarantines it."""

    test_reference: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    result: Literal["pass", "fail"]
    new_expires_on: date | None = None


Priority = Literal["flash", "immediate", "priority", "routine"]


class AllocationRequestIn(Strict):
    """A request for stock at a destination: a material, or any material of a substitution group."""

    requester: Code
    destination: Code
    quantity: Amount
    priority: Priority
    needed_by: date
    material: Code | None = None
    substitution_group: Code | None = None
    purpose: Text = ""


class PlanIn(Strict):
    """Plan every pending request in a region's subtree (or nationally), or just the ones named."""

    region: Code | None = None
    request_ids: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=5000)] | None = None


class CancelIn(Strict):
    reason: Text = ""


class DrillIn(Strict):
    """A what-if: readiness overrides per region, synthetic requests, warehouses marked lost."""

    name: Text = ""
    readiness: dict[Code, Level] = {}
    requests: Annotated[list[AllocationRequestIn], msgspec.Meta(max_length=5000)] = []
    lost_warehouses: list[Code] = []
    include_pending: bool = False


class CapacityIn(Strict):
    """A capacity outside the reserve that can be mobilised, as last surveyed: a party's daily output
    of a material, delivered to a region (and optionally a warehouse) from ``lead_days`` after tasking.
    ``held_for``: the sector its output is earmarked for (a capacity held for the military is military)."""

    party: Code
    material: Code
    daily_quantity: Amount
    lead_days: Annotated[int, msgspec.Meta(ge=0, le=3650)]
    region: Code
    surveyed_on: date
    survey_interval_days: Annotated[int, msgspec.Meta(ge=1, le=3650)]
    warehouse: Code | None = None
    held_for: Sector | None = None
    note: Text = ""


class TaskingReceiptIn(Strict):
    """A receipt movement that delivered (part of) a tasking order's output."""

    movement_id: Id
class BandIn(Strict):
    """A probe's allowed range; either bound may be left open."""

    min: Decimal | None = None
    max: Decimal | None = None


class SensorIn(Strict):
    warehouse: Code
    kind: Literal["temperature", "humidity", "tank_level"]
    unit: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    tolerance_minutes: int
    storage_class: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    material: Code | None = None
    band: BandIn | None = None


class ReadingIn(Strict):
    """One reading. ``value`` is taken as sent (a number or a decimal string) and judged on its own
    (``domain.sensors.reading_value``), so one bad value refuses that reading, not the batch."""

    sensor: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    at: Moment
    value: Any


class ReadingsIn(Strict):
    readings: Annotated[list[ReadingIn], msgspec.Meta(max_length=10_000)]

"""Movements, batches, transfers, stock positions and lots as the API answers them."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

import msgspec

from stockpile.api.schemas import Code, Day, Moment, Quantity, Schema, page_of
from stockpile.api.schemas.problems import Problem

AccountType = Literal["stock", "transit", "supply", "consumption", "loss", "adjustment"]


class Account(Schema):
    """A posting's account: a stock position (``lot_id`` × ``owner``), stock in transit (also
    ``transfer_id``), or an external account of a material (``material``)."""

    type: AccountType
    lot_id: UUID | None = None
    owner: Code | None = None
    transfer_id: UUID | None = None
    material: Code | None = None


class Posting(Schema):
    account: Account
    material: Code
    delta: Annotated[Quantity, msgspec.Meta(description="Signed: what the account gained (+) or gave (−).")]


class Balance(Schema):
    """A stock position after the movement."""

    lot_id: UUID
    owner: Code
    balance: Quantity
    reserved: Quantity
    available: Quantity


class MovementBase(Schema):
    id: UUID
    kind: str
    occurred_at: Moment
    recorded_at: Moment
    reason: str | None
    note: str | None
    reverses: Annotated[UUID | None, msgspec.Meta(description="The movement a reversal reverses.")]
    transfer_id: UUID | None
    postings: list[Posting]
    rotation_order_id: Annotated[UUID | None, msgspec.Meta(
        description="Present on rotation movements: the order they work.")] = None


class PostedMovement(MovementBase, kw_only=True):
    """A movement as the POST that made it answers: its postings and each stock position's new balance."""

    balances: list[Balance]


class Movement(MovementBase, kw_only=True):
    """A movement read back from the ledger."""

    recorded_by: str | None


MovementPage = page_of(Movement)


class BatchResult(Schema):
    index: int
    status: int
    movement: PostedMovement | None = None
    problem: Problem | None = None


class BatchAnswer(Schema):
    atomic: bool
    results: list[BatchResult]


class TransferLine(Schema):
    lot_id: UUID
    lot_code: str
    owner: Code
    material: Code
    quantity: Quantity
    received: Quantity | None
    destination_lot_id: UUID | None


class Transfer(Schema):
    id: UUID
    from_warehouse: Code
    to_warehouse: Code
    state: Literal["in_transit", "received"]
    expected_at: Moment | None
    dispatched_at: Moment
    received_at: Moment | None
    overdue: bool
    lines: list[TransferLine]


class TransferStep(Transfer, kw_only=True):
    """A transfer after its dispatch or receipt, with the movement that posted it."""

    movement: PostedMovement


TransferPage = page_of(Transfer)


class Position(Schema):
    """A stock position: one owner's share of one lot."""

    lot_id: UUID
    lot_code: str
    warehouse: Code
    region: Code
    material: Code
    category: Literal["fuel", "food", "medical"]
    unit: str
    owner: Code
    owner_sector: Literal["military", "civilian", "enterprise"]
    balance: Quantity
    reserved: Quantity
    available: Quantity
    expires_on: Day | None
    expired: bool
    status: str


PositionPage = page_of(Position)


class LotOwner(Schema):
    owner: Code
    sector: str
    balance: Quantity
    reserved: Quantity
    available: Quantity


class LotEvent(Schema):
    kind: str
    from_: str | None = msgspec.field(name="from")
    to: str | None
    reason: str | None
    by: str | None
    at: Moment


class ShelfLifeExtension(Schema):
    id: int
    lot_id: UUID
    previous_expires_on: Day | None
    new_expires_on: Day | None
    test_reference: str
    result: Literal["pass", "fail"]
    recorded_by: str | None
    recorded_at: Moment


class LotHead(Schema):
    """A lot as the list of lots shows it: its balance over every owner the reader may see."""

    id: UUID
    code: str
    warehouse: Code
    material: Code
    unit: str
    manufactured_on: Day | None
    expires_on: Day | None
    expired: bool
    status: str
    origin_lot_id: Annotated[UUID | None, msgspec.Meta(description="The lot it came from by transfer.")]
    balance: Quantity


LotPage = page_of(LotHead, "LotPage")


class Lot(LotHead, kw_only=True):
    """A lot with its owners' shares, its status history and its shelf-life extensions."""

    owners: list[LotOwner]
    history: list[LotEvent]
    shelf_life_extensions: list[ShelfLifeExtension]


class LotAfterTest(Schema):
    id: UUID
    code: str
    expires_on: Day | None
    expired: bool
    status: str


class ShelfLifeTest(ShelfLifeExtension, kw_only=True):
    """A recorded shelf-life test and the lot as it stands after it."""

    lot: LotAfterTest

"""Movements: one function per kind, from a decoded command to its postings.

``prepare_movement`` reads and locks what a movement touches (through the ``Workspace``), checks
scope and need-to-know, turns its amounts into integer units and lets ``domain.ledger`` build the
postings; it appends no movement itself. ``services.posting`` (the movement routes) and ``post_movement``
(imports, the demo) queue the result and append it. ``transfer_ownership`` is the entry point for a
use case that already holds the lot and parties (a plan's dispatch).
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from stockpile.domain import ledger as rules
from stockpile.domain.access import (
    MILITARY, Principal, lot_disclosed, movement_disclosed, require_cleared, require_warehouse,
)
from stockpile.domain.errors import Conflict, Invalid, InsufficientStock, NotFound
from stockpile.domain.ledger import Position, Posting
from stockpile.domain.lots import is_expired, receipt_expiry
from stockpile.domain.moments import Clock
from stockpile.domain.quantities import format_quantity, parse_quantity
from stockpile.domain.readiness import CRISIS_LEVELS
from stockpile.domain.refs import LotRef, MaterialRef, PartyRef, WarehouseRef
from stockpile.services import commands as c
from stockpile.services import rotation
from stockpile.services.workspace import Pending, Workspace
from stockpile.store import ledger as store
from stockpile.store import masterdata as masterdata_store
from stockpile.store import readiness


@dataclass
class Posted:
    """What a movement did: postings with their accounts' positions (``api.presenters.movements`` shows it)."""

    id: str
    kind: str
    occurred_at: datetime
    recorded_at: datetime
    postings: list[Posting]
    positions: dict[int, Position]
    materials: dict[int, tuple[str, int]]
    reason: str | None = None
    note: str | None = None
    reverses: str | None = None
    transfer_id: str | None = None
    transit_of: dict[int, str] = field(default_factory=dict)
    rotation_order_id: str | None = None


def _unknown_lot(lot_id: str) -> Invalid:
    return Invalid.field("lot_id", f"unknown lot {lot_id!r}")


async def _lot(pg: asyncpg.Connection, lot_id: str, principal: Principal) -> LotRef:
    """The lot a movement names by id; one the principal may not know of is as unknown as a missing one."""
    lot = await store.lot_facts(pg, lot_id)
    if lot is None or not lot_disclosed(principal, lot["military_only"]):
        raise _unknown_lot(lot_id)
    return LotRef(lot["id"], lot["code"], WarehouseRef(lot["warehouse_id"], lot["warehouse"]),
                  MaterialRef(lot["material_id"], lot["material"], lot["decimals"]))


def _holds_nothing(owner: PartyRef, lot: LotRef) -> InsufficientStock:
    return InsufficientStock(f"{owner.code} holds no stock in lot {lot.code}",
                             available=format_quantity(0, lot.material.decimals), lot_id=lot.id, owner=owner.code)


async def _owner_position(pg: asyncpg.Connection, lot: LotRef, owner: PartyRef, *, open_: bool) -> Position:
    """Lock the (lot, owner) position; open it first when ``open_`` (else no position → no stock)."""
    if open_:
        ids = await store.open_stock_accounts(pg, [(lot.id, owner.id, lot.material.id)])
        account_id = ids[(lot.id, owner.id)]
    else:
        account_id = await store.find_stock_account(pg, lot.id, owner.id)
        if account_id is None:
            raise _holds_nothing(owner, lot)
    return (await store.lock_accounts(pg, [account_id]))[account_id]


def _authorize(principal: Principal, warehouse: WarehouseRef, *owners: PartyRef) -> None:
    """Scope and need-to-know for a write: the warehouse must be in the principal's scope and every
    owner one it is cleared to act for."""
    require_warehouse(principal, warehouse.id, warehouse.code)
    for owner in owners:
        require_cleared(principal, owner.sector)


def _materials(material: MaterialRef) -> dict[int, tuple[str, int]]:
    return {material.id: (material.code, material.decimals)}


def _posted(kind: str, clock: Clock, postings: list[Posting], positions: dict[int, Position],
            materials: dict[int, tuple[str, int]], *, occurred_at: datetime | None = None, reason: str | None = None,
            note: str | None = None, **extra) -> Posted:
    rules.assert_balanced(postings)
    return Posted(
        id=str(uuid.uuid4()), kind=kind, occurred_at=occurred_at or clock.now, recorded_at=clock.now,
        postings=postings, positions=positions, materials=materials, reason=reason, note=note, **extra,
    )


def _said(cmd) -> dict:
    """What a command says about itself: when it happened, why, and a note."""
    return {"occurred_at": cmd.occurred_at, "reason": cmd.reason, "note": cmd.note}


async def _receipt(ws: Workspace, cmd: c.Receipt, clock: Clock, principal: Principal) -> Posted:
    ref = await ws.known(warehouse=cmd.warehouse, material=cmd.material, owner=cmd.owner)
    warehouse, material, owner = ref["warehouse"], ref["material"], ref["owner"]
    _authorize(principal, warehouse, owner)
    quantity = parse_quantity(cmd.quantity, material.decimals)
    expires_on = receipt_expiry(cmd.lot.manufactured_on, cmd.lot.expires_on, material.shelf_life_days)
    position, stored_expiry = await ws.receipt_position(
        warehouse_id=warehouse.id, material_id=material.id, owner_id=owner.id, code=cmd.lot.code,
        manufactured_on=cmd.lot.manufactured_on, expires_on=expires_on,
    )
    if cmd.lot.expires_on is not None and stored_expiry != cmd.lot.expires_on:
        raise Conflict(
            f"lot {cmd.lot.code} at {cmd.warehouse} expires on {stored_expiry}, not {cmd.lot.expires_on}; "
            "use a new lot code for a different batch",
            lot_id=position.lot_id,
        )
    postings = rules.receipt_postings(position, quantity)
    return _posted("receipt", clock, postings, {position.account_id: position}, _materials(material), **_said(cmd))


def _check_named_lot(cmd: c.Issue | c.RotationOut, position: Position, row: asyncpg.Record, principal: Principal) -> None:
    """A movement naming a lot: the warehouse and material it also names (if any) must be the lot's,
    and the principal may act there and on that owner's stock."""
    mismatch = [
        {"field": f, "message": f"lot {position.lot_code} is {f} {stored!r}, not {given!r}"}
        for f, given, stored in (("warehouse", cmd.warehouse, row["warehouse"]),
                                 ("material", cmd.material, row["material_code"]))
        if given is not None and given != stored
    ]
    if mismatch:
        raise Invalid(mismatch)
    _authorize(principal, WarehouseRef(row["warehouse_id"], row["warehouse"]),
               PartyRef(position.owner_id, position.owner_code, row["sector"]))


async def _named_lot(ws: Workspace, cmd: c.Issue | c.RotationOut, position: Position, row: asyncpg.Record,
                     principal: Principal) -> None:
    """``_check_named_lot``, after making sure the lot is one the principal may know of."""
    if row["sector"] == MILITARY and not principal.cleared_military and not lot_disclosed(
            principal, await store.military_only(await ws.flushed_connection(), position.lot_id)):
        raise _unknown_lot(position.lot_id)
    _check_named_lot(cmd, position, row, principal)


async def _issue(ws: Workspace, cmd: c.Issue, clock: Clock, principal: Principal) -> Posted:
    if cmd.lot_id is not None and (found := await ws.lot_position(cmd.lot_id, cmd.owner)) is not None:
        position, row = found
        await _named_lot(ws, cmd, position, row, principal)
        picks = [(position, parse_quantity(cmd.quantity, position.decimals))]
        material = MaterialRef(position.material_id, row["material_code"], position.decimals)
    elif cmd.lot_id is not None:
        pg = await ws.flushed_connection()
        lot = await _lot(pg, cmd.lot_id, principal)
        mismatch = [
            {"field": f, "message": f"lot {lot.code} is {f} {stored!r}, not {given!r}"}
            for f, given, stored in (("warehouse", cmd.warehouse, lot.warehouse.code),
                                     ("material", cmd.material, lot.material.code))
            if given is not None and given != stored
        ]
        if mismatch:
            raise Invalid(mismatch)
        owner = (await ws.known(owner=cmd.owner))["owner"]
        _authorize(principal, lot.warehouse, owner)
        quantity = parse_quantity(cmd.quantity, lot.material.decimals)
        position = await _owner_position(pg, lot, owner, open_=False)
        picks = [(position, quantity)]
        material = lot.material
    else:
        missing = [{"field": f, "message": "is required when lot_id is not given"}
                   for f in ("warehouse", "material") if getattr(cmd, f) is None]
        if missing:
            raise Invalid(missing)
        ref = await ws.known(warehouse=cmd.warehouse, material=cmd.material, owner=cmd.owner)
        warehouse, material, owner = ref["warehouse"], ref["material"], ref["owner"]
        _authorize(principal, warehouse, owner)
        quantity = parse_quantity(cmd.quantity, material.decimals)
        candidates = await ws.owner_positions(warehouse.id, material.id, owner.id)
        if not candidates:
            raise InsufficientStock(
                f"{cmd.owner} holds no {cmd.material} at {cmd.warehouse}",
                available=format_quantity(0, material.decimals), requested=format_quantity(quantity, material.decimals),
            )
        picks = rules.pick_first_expiring(candidates, quantity, clock.today)
    postings = rules.issue_postings(picks, clock.today)
    positions = {p.account_id: p for p, _ in picks}
    return _posted("issue", clock, postings, positions, _materials(material), **_said(cmd))


async def _one_position(ws: Workspace, cmd, principal: Principal, *, amount: str,
                        open_: bool) -> tuple[LotRef, Position, int]:
    """The lot, the owner's locked position in it and the parsed amount, for kinds that touch one
    position named by ``lot_id`` and ``owner``."""
    pg = await ws.flushed_connection()
    lot = await _lot(pg, cmd.lot_id, principal)
    owner = (await ws.known(owner=cmd.owner))["owner"]
    _authorize(principal, lot.warehouse, owner)
    units = parse_quantity(getattr(cmd, amount), lot.material.decimals, field=amount, allow_zero=amount == "counted")
    position = await _owner_position(pg, lot, owner, open_=open_)
    return lot, position, units


async def _adjustment(ws: Workspace, cmd: c.Adjustment, clock: Clock, principal: Principal) -> Posted:
    lot, position, counted = await _one_position(ws, cmd, principal, amount="counted", open_=True)
    return _posted("adjustment", clock, rules.adjustment_postings(position, counted),
                   {position.account_id: position}, _materials(lot.material), **_said(cmd))


async def _write_off(ws: Workspace, cmd: c.WriteOff, clock: Clock, principal: Principal) -> Posted:
    lot, position, quantity = await _one_position(ws, cmd, principal, amount="quantity", open_=False)
    return _posted("write_off", clock, rules.write_off_postings(position, quantity),
                   {position.account_id: position}, _materials(lot.material), **_said(cmd))


async def _ownership_transfer(ws: Workspace, cmd: c.OwnershipTransfer, clock: Clock, principal: Principal) -> Posted:
    lot = await _lot(await ws.flushed_connection(), cmd.lot_id, principal)
    ref = await ws.known(from_owner=cmd.from_owner, to_owner=cmd.to_owner)
    _authorize(principal, lot.warehouse, ref["from_owner"], ref["to_owner"])
    if cmd.from_owner == cmd.to_owner:
        raise Invalid.field("to_owner", "must differ from from_owner")
    quantity = parse_quantity(cmd.quantity, lot.material.decimals)
    return await transfer_ownership(ws, lot, ref["from_owner"], ref["to_owner"], quantity, principal, clock,
                                    **_said(cmd))


async def transfer_ownership(ws: Workspace, lot: LotRef, source: PartyRef, target: PartyRef, quantity: int,
                             principal: Principal, clock: Clock, **said) -> Posted:
    """Prepare an ownership transfer of ``quantity`` units of ``lot`` from ``source`` to ``target``
    (the title moves, the stock stays): the internal entry point, for a caller holding the lot and
    parties already (``reason``, ``note`` and ``occurred_at`` may be given)."""
    _authorize(principal, lot.warehouse, source, target)
    pg = await ws.flushed_connection()
    source_id = await store.find_stock_account(pg, lot.id, source.id)
    if source_id is None:
        raise _holds_nothing(source, lot)
    target_id = (await store.open_stock_accounts(pg, [(lot.id, target.id, lot.material.id)]))[(lot.id, target.id)]
    positions = await store.lock_accounts(pg, [source_id, target_id])
    postings = rules.ownership_transfer_postings(positions[source_id], positions[target_id], quantity)
    return _posted("ownership_transfer", clock, postings, positions, _materials(lot.material), **said)


async def _rotation_out(ws: Workspace, cmd: c.RotationOut, clock: Clock, principal: Principal) -> Posted:
    """Old stock of a rotation order leaves into civilian use: an issue of the named lot that an
    expired lot may make too (guarantee 7), bounded by what is left of the order."""
    found = await ws.lot_position(cmd.lot_id, cmd.owner)
    if found is None:
        pg = await ws.flushed_connection()
        lot = await _lot(pg, cmd.lot_id, principal)
        owner = (await ws.known(owner=cmd.owner))["owner"]
        _authorize(principal, lot.warehouse, owner)
        parse_quantity(cmd.quantity, lot.material.decimals)
        await _owner_position(pg, lot, owner, open_=False)  # raises: the owner holds nothing in the lot
        found = await ws.lot_position(cmd.lot_id, cmd.owner)
        if found is None:
            raise _holds_nothing(owner, lot)
    position, row = found
    await _named_lot(ws, cmd, position, row, principal)
    quantity = parse_quantity(cmd.quantity, position.decimals)
    pg = await ws.connection()
    await _rotation_not_suspended(pg, position, row, clock)
    postings = rules.rotation_out_postings(position, quantity)
    order = await rotation.claim_order(pg, cmd.rotation_order_id, principal, direction="out", quantity=quantity,
                                       lot_id=position.lot_id, warehouse_id=row["warehouse_id"],
                                       owner_id=position.owner_id,
                                       material_id=position.material_id, decimals=position.decimals)
    await rotation.save_progress(pg, order)
    return _posted("rotation_out", clock, postings, {position.account_id: position},
                   _materials(MaterialRef(position.material_id, row["material_code"], position.decimals)),
                   rotation_order_id=order.id, **_said(cmd))


async def _rotation_not_suspended(pg: asyncpg.Connection, position: Position, row: asyncpg.Record, clock: Clock) -> None:
    """Reserves are not sold off during a crisis: rotation out of a warehouse whose region is at
    emergency or wartime is refused — except for expired stock, which may always be rotated out."""
    if is_expired(position.expires_on, clock.today):
        return
    level = await readiness.level_of_warehouse(pg, row["warehouse_id"])
    if level in CRISIS_LEVELS:
        raise Conflict(f"rotation out of {row['warehouse']} is suspended: its region is at {level}", level=level)


async def _rotation_in(ws: Workspace, cmd: c.RotationIn, clock: Clock, principal: Principal) -> Posted:
    """Fresh stock replacing what a rotation order took out arrives: a receipt, bounded by what is
    left of the order. The order is checked before the receipt opens a lot, so a refusal leaves none."""
    ref = await ws.known(warehouse=cmd.warehouse, material=cmd.material, owner=cmd.owner)
    warehouse, material, owner = ref["warehouse"], ref["material"], ref["owner"]
    _authorize(principal, warehouse, owner)
    order = await rotation.claim_order(await ws.connection(), cmd.rotation_order_id, principal, direction="in",
                                       quantity=parse_quantity(cmd.quantity, material.decimals), lot_id=None,
                                       warehouse_id=warehouse.id, owner_id=owner.id, material_id=material.id,
                                       decimals=material.decimals)
    posted = await _receipt(ws, cmd, clock, principal)
    await rotation.save_progress(await ws.connection(), order)
    return dataclasses.replace(posted, kind="rotation_in", rotation_order_id=order.id)


NOT_REVERSIBLE = {"reversal", "transfer_dispatch", "transfer_receipt"}


async def _reversal(ws: Workspace, cmd: c.Reversal, clock: Clock, principal: Principal) -> Posted:
    pg = await ws.flushed_connection()
    head, original = await store.movement_for_reversal(pg, cmd.movement_id)
    if head is None:
        raise NotFound(f"movement {cmd.movement_id} does not exist")
    account_ids = sorted({p.account_id for p in original if p.account_id is not None})
    places = await store.places_of_accounts(pg, account_ids)
    if not movement_disclosed(principal, {place["sector"] for place in places}):
        raise NotFound(f"movement {cmd.movement_id} does not exist")
    if head["kind"] in NOT_REVERSIBLE:
        raise Conflict(f"a {head['kind']} movement cannot be reversed"
                       + (": receive or count the transfer instead" if head["kind"].startswith("transfer") else ""))
    if head["reversed_by"] is not None:
        raise Conflict(f"movement {cmd.movement_id} was already reversed by {head['reversed_by']}",
                       reversed_by=head["reversed_by"])
    for place in places:
        _authorize(principal, WarehouseRef(place["warehouse_id"], place["warehouse"]),
                   PartyRef(place["owner_id"], place["owner"], place["sector"]))
    positions = await store.lock_accounts(pg, account_ids)
    postings = rules.reversal_postings(original, positions)
    if head["kind"] in ("rotation_out", "rotation_in"):
        await rotation.undo_progress(pg, cmd.movement_id, head["kind"],
                                     sum(p.delta for p in original if p.account_id is not None))
    materials = await masterdata_store.material_codes(pg, list({p.material_id for p in original}))
    return _posted("reversal", clock, postings, positions, materials, reverses=cmd.movement_id, **_said(cmd))


HANDLERS = {
    c.Receipt: _receipt, c.Issue: _issue, c.Adjustment: _adjustment, c.WriteOff: _write_off,
    c.OwnershipTransfer: _ownership_transfer, c.Reversal: _reversal,
    c.RotationOut: _rotation_out, c.RotationIn: _rotation_in,
}


async def prepare_movement(ws: Workspace, cmd: c.Movement, principal: Principal, clock: Clock) -> Posted:
    """Read and lock what the movement touches and build its postings; writes nothing yet.
    Raises a ``DomainError`` when the rules refuse it."""
    return await HANDLERS[type(cmd)](ws, cmd, clock, principal)


async def post_movement(ws: Workspace, cmd: c.Movement, principal: Principal, clock: Clock, *,
                        idempotency: tuple | None = None, audit_event: list | None = None,
                        flush: bool = True) -> Posted:
    """Apply one movement (with the request's idempotency record and audit event, when given).
    Raises a ``DomainError`` (nothing written by this call) when refused. With ``flush=False``
    the movement is queued in the workspace and appended with the next flush."""
    posted = await prepare_movement(ws, cmd, principal, clock)
    ws.append(Pending(posted, principal.id, idempotency, audit_event))
    if flush:
        await ws.flush()
    return posted

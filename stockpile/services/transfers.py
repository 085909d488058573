"""Transfers between warehouses: dispatch moves stock into transit, receipt moves it into a lot at
the destination that remembers its origin; a short receipt posts the difference to loss."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg

from stockpile.domain import ledger as rules
from stockpile.domain.access import MILITARY, Principal, require_cleared, require_warehouse
from stockpile.domain.errors import Conflict, Invalid, NotFound
from stockpile.domain.moments import Clock, rfc3339
from stockpile.domain.quantities import format_quantity, parse_quantity
from stockpile.domain.refs import LotRef, MaterialRef, PartyRef, WarehouseRef
from stockpile.services import commands as c
from stockpile.services.movements import Posted
from stockpile.services.workspace import Pending, Workspace
from stockpile.store import ledger as store
from stockpile.store import transfers as transfer_store
from stockpile.store.db import STREAM_BATCH


@dataclass(frozen=True)
class Line:
    """One line of a transfer to send: this many units of one owner's stock in one lot."""

    lot: LotRef
    owner: PartyRef
    quantity: int


async def dispatch(pg: asyncpg.Connection, cmd: c.TransferIn, principal: Principal, clock: Clock) -> tuple[dict, Posted]:
    """``POST /transfers``: check the request's codes, scope, clearance and amounts, then ``send``."""
    if cmd.from_warehouse == cmd.to_warehouse:
        raise Invalid.field("to_warehouse", "must differ from from_warehouse")
    ref = await Workspace(pg).known(from_warehouse=cmd.from_warehouse, to_warehouse=cmd.to_warehouse)
    source, target = ref["from_warehouse"], ref["to_warehouse"]
    require_warehouse(principal, source.id, source.code)
    owners = await transfer_store.parties(pg, [line.owner for line in cmd.lines])
    for owner in owners.values():
        require_cleared(principal, owner.sector)
    lots = await transfer_store.lots_by_id(pg, [line.lot_id for line in cmd.lines])
    errors, lines = [], []
    for i, line in enumerate(cmd.lines):
        lot = lots.get(line.lot_id)
        if lot is None:
            errors.append({"field": f"lines[{i}].lot_id", "message": f"unknown lot {line.lot_id!r}"})
            continue
        if lot["warehouse_id"] != source.id:
            errors.append({"field": f"lines[{i}].lot_id", "message": f"lot {lot['code']} is not at {cmd.from_warehouse}"})
        if line.owner not in owners:
            errors.append({"field": f"lines[{i}].owner", "message": f"unknown owner code {line.owner!r}"})
            continue
        try:
            quantity = parse_quantity(line.quantity, lot["decimals"], field=f"lines[{i}].quantity")
        except Invalid as exc:
            errors += exc.errors
            continue
        lines.append(Line(LotRef(line.lot_id, lot["code"], source,
                                 MaterialRef(lot["material_id"], lot["material"], lot["decimals"])),
                          owners[line.owner], quantity))
    if len({(x.lot.id, x.owner.id) for x in lines}) != len(lines):
        errors.append({"field": "lines", "message": "each (lot_id, owner) may appear once"})
    if errors:
        raise Invalid(errors)
    transfer_id, posted = await send(pg, source, target, lines, principal, clock,
                                     expected_at=cmd.expected_at, note=cmd.note)
    return await show(pg, transfer_id), posted


async def send(pg: asyncpg.Connection, source: WarehouseRef, target: WarehouseRef, lines: list[Line],
               principal: Principal, clock: Clock, *, expected_at: datetime | None = None,
               note: str | None = None) -> tuple[str, Posted]:
    """Move the lines' stock from ``source`` into transit to ``target``: the internal entry point,
    for a caller that has checked the lines (each lot at ``source``, each (lot, owner) once). Returns
    the transfer's id and its ``transfer_dispatch`` movement."""
    require_warehouse(principal, source.id, source.code)
    for line in lines:
        require_cleared(principal, line.owner.sector)
    specs = [(x.lot.id, x.owner.id, x.lot.material.id) for x in lines]
    source_ids = await transfer_store.stock_account_ids(pg, specs)
    for line, account_id in zip(lines, source_ids):
        if account_id is None:
            raise rules.InsufficientStock(
                f"{line.owner.code} holds no stock in lot {line.lot.code}",
                available=format_quantity(0, line.lot.material.decimals), lot_id=line.lot.id, owner=line.owner.code,
            )
    transfer_id = str(uuid.uuid4())
    await transfer_store.insert_transfer(pg, transfer_id, source.id, target.id, expected_at, clock.now, principal.id)
    transit_ids = await store.open_transit_accounts(pg, transfer_id, specs)
    positions = await store.lock_accounts(pg, source_ids + transit_ids)
    quantities = [x.quantity for x in lines]
    postings = rules.dispatch_postings(
        [(positions[s], positions[t], q) for s, t, q in zip(source_ids, transit_ids, quantities)], clock.today)
    await transfer_store.insert_lines(pg, transfer_id, specs, quantities, transit_ids)
    materials = {x.lot.material.id: (x.lot.material.code, x.lot.material.decimals) for x in lines}
    posted = Posted(
        id=str(uuid.uuid4()), kind="transfer_dispatch", occurred_at=clock.now, recorded_at=clock.now,
        postings=postings, positions=positions, materials=materials, note=note, transfer_id=transfer_id,
        transit_of={t: transfer_id for t in transit_ids},
    )
    await _append(pg, posted, principal)
    return transfer_id, posted


async def receive(pg: asyncpg.Connection, transfer_id: str, cmd: c.TransferReceiptIn, principal: Principal,
                  clock: Clock) -> tuple[dict, Posted]:
    head = await transfer_store.lock_transfer(pg, transfer_id)
    if head is None:
        raise NotFound(f"transfer {transfer_id} does not exist")
    lines = await transfer_store.lines(pg, transfer_id)
    if not principal.cleared_military and any(line["owner_sector"] == MILITARY for line in lines):
        # a transfer carrying military stock does not exist for this reader (guarantee of need-to-know)
        raise NotFound(f"transfer {transfer_id} does not exist")
    if head["state"] != "in_transit":
        raise Conflict(f"transfer {transfer_id} was already received at {rfc3339(head['received_at'])}")
    require_warehouse(principal, head["to_warehouse_id"], head["to_warehouse"])
    received = _received_per_line(lines, cmd)
    # Destination lots, then positions, are opened in one sorted order whatever the order of the
    # lines, so concurrent receipts opening the same new lots queue instead of deadlocking.
    dest_lots: dict[tuple[int, str], str] = {}
    for line in sorted(lines, key=lambda line: (line["material_id"], line["lot_code"])):
        if (line["material_id"], line["lot_code"]) in dest_lots:
            continue
        lot = await store.upsert_lot(
            pg, warehouse_id=head["to_warehouse_id"], material_id=line["material_id"], code=line["lot_code"],
            manufactured_on=line["manufactured_on"], expires_on=line["expires_on"], origin_lot_id=line["source_lot_id"],
        )
        if lot["expires_on"] != line["expires_on"]:
            raise Conflict(f"lot {line['lot_code']} already exists at the destination with another expiry "
                           f"({lot['expires_on']}); it cannot be merged", lot_id=lot["id"])
        dest_lots[(line["material_id"], line["lot_code"])] = lot["id"]
    specs = [(dest_lots[(line["material_id"], line["lot_code"])], line["owner_id"], line["material_id"]) for line in lines]
    accounts = await store.open_stock_accounts(pg, sorted(set(specs)))
    dest_ids = [accounts[(lot_id, owner_id)] for lot_id, owner_id, _ in specs]
    transit_ids = [line["transit_account_id"] for line in lines]
    positions = await store.lock_accounts(pg, transit_ids + dest_ids)
    postings = rules.transfer_receipt_postings(
        [(positions[t], positions[d], r) for t, d, r in zip(transit_ids, dest_ids, received)]
    )
    await transfer_store.mark_received(pg, transfer_id, [positions[d].lot_id for d in dest_ids], received, clock.now)
    materials = {line["material_id"]: (line["material"], line["decimals"]) for line in lines}
    posted = Posted(
        id=str(uuid.uuid4()), kind="transfer_receipt", occurred_at=cmd.occurred_at or clock.now,
        recorded_at=clock.now, postings=postings, positions=positions, materials=materials, note=cmd.note,
        transfer_id=transfer_id, transit_of={t: transfer_id for t in transit_ids},
    )
    await _append(pg, posted, principal)
    return await show(pg, transfer_id), posted


def _received_per_line(lines: list[asyncpg.Record], cmd: c.TransferReceiptIn) -> list[int]:
    """Received quantity per dispatched line: all of it when no lines are given; otherwise every
    dispatched line must be listed exactly once."""
    if not cmd.lines:
        return [line["quantity"] for line in lines]
    given: dict[tuple[str, str], tuple[int, c.ReceivedLineIn]] = {}
    errors = []
    for i, item in enumerate(cmd.lines):
        key = (item.lot_id, item.owner)
        if key in given:
            errors.append({"field": f"lines[{i}]", "message": "listed twice"})
        given[key] = (i, item)
    received = []
    for line in lines:
        found = given.pop((line["source_lot_id"], line["owner"]), None)
        if found is None:
            errors.append({"field": "lines", "message": f"dispatched line lot {line['source_lot_id']} / {line['owner']} is missing"})
            continue
        i, item = found
        try:
            quantity = parse_quantity(item.received, line["decimals"], field=f"lines[{i}].received", allow_zero=True)
        except Invalid as exc:
            errors += exc.errors
            continue
        if quantity > line["quantity"]:
            errors.append({"field": f"lines[{i}].received",
                           "message": f"more than the {format_quantity(line['quantity'], line['decimals'])} dispatched"})
        received.append(quantity)
    for i, _ in given.values():
        errors.append({"field": f"lines[{i}]", "message": "was not dispatched on this transfer"})
    if errors:
        raise Invalid(errors)
    return received


async def _append(pg: asyncpg.Connection, posted: Posted, principal: Principal) -> None:
    rules.assert_balanced(posted.postings)
    await store.insert_movements(pg, [Pending(posted, principal.id)])


async def show(pg: asyncpg.Connection, transfer_id: str, *, warehouse_ids: list[int] | None = None,
               cleared: bool = True) -> dict:
    """One transfer as a reader limited to ``warehouse_ids`` and ``cleared`` may see it (by default
    any transfer, as after its own dispatch or receipt); one they may not see is missing."""
    head = await transfer_store.get(pg, transfer_id, warehouse_ids=warehouse_ids, cleared=cleared)
    if head is None:
        raise NotFound(f"transfer {transfer_id} does not exist")
    lines = await transfer_store.lines_of(pg, [head["id"]])
    return _present(head, lines.get(head["id"], []))


async def get(pg: asyncpg.Connection, transfer_id: str, principal: Principal) -> dict:
    """One transfer; one ``principal`` may not see answers as a missing one."""
    return await show(pg, transfer_id, **principal.visibility.ledger)


async def listing(pg: asyncpg.Connection, principal: Principal, *, state: str | None, warehouse: str | None,
                  after: tuple[datetime, uuid.UUID] | None, size: int) -> tuple[list[dict], asyncpg.Record | None]:
    """A page of the transfers ``principal`` may see, newest first, each as ``show`` presents it (the
    lines of the whole page read in one statement), and the last row when more follow."""
    heads = await transfer_store.heads(state=state, warehouse=warehouse, after=after, limit=size + 1,
                                       **principal.visibility.ledger).fetch(pg)
    more, heads = len(heads) > size, heads[:size]
    return await _with_lines(pg, heads), heads[-1] if more and heads else None


async def every_transfer(pg: asyncpg.Connection, principal: Principal, *, state: str | None,
                         warehouse: str | None) -> AsyncIterator[dict]:
    """Every transfer ``listing`` pages through, streamed (an export): heads through a cursor, the
    lines of each batch of heads in one statement."""
    batch: list[asyncpg.Record] = []
    async for head in transfer_store.heads(state=state, warehouse=warehouse, after=None, limit=None,
                                           **principal.visibility.ledger).stream(pg):
        batch.append(head)
        if len(batch) == STREAM_BATCH:
            for transfer in await _with_lines(pg, batch):
                yield transfer
            batch = []
    for transfer in await _with_lines(pg, batch):
        yield transfer


async def _with_lines(pg: asyncpg.Connection, heads: list[asyncpg.Record]) -> list[dict]:
    lines = await transfer_store.lines_of(pg, [head["id"] for head in heads]) if heads else {}
    return [_present(head, lines.get(head["id"], [])) for head in heads]


def _present(head, lines) -> dict:
    return {
        "id": head["id"], "from_warehouse": head["from_warehouse"], "to_warehouse": head["to_warehouse"],
        "state": head["state"], "expected_at": rfc3339(head["expected_at"]) if head["expected_at"] else None,
        "dispatched_at": rfc3339(head["dispatched_at"]),
        "received_at": rfc3339(head["received_at"]) if head["received_at"] else None,
        "overdue": bool(head["state"] == "in_transit" and head["expected_at"] and head["expected_at"] < datetime.now(head["expected_at"].tzinfo)),
        "lines": [{
            "lot_id": line["source_lot_id"], "lot_code": line["lot_code"], "owner": line["owner"],
            "material": line["material"],
            "quantity": format_quantity(line["quantity"], line["decimals"]),
            "received": None if line["received"] is None else format_quantity(line["received"], line["decimals"]),
            "destination_lot_id": line["destination_lot_id"],
        } for line in lines],
    }

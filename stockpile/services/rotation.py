"""Rotation use cases: policies (upsert by code), rotation orders as operators see and work them,
and shelf-life extensions of lots.

The planner that creates orders lives in ``stockpile.services.rotation_plan``; this module only
reads, advances and cancels them.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date

import asyncpg

from stockpile.domain import rotation_orders as rules
from stockpile.domain.access import (
    Principal, order_visible, require_lot_writable, require_national_remit, require_warehouse,
)
from stockpile.domain.alerts import Wanted
from stockpile.domain.errors import Conflict, Invalid, NotFound
from stockpile.domain.lots import is_expired
from stockpile.domain.moments import iso_day
from stockpile.domain.quantities import format_quantity
from stockpile.services import alerts, lots
from stockpile.services import commands as c
from stockpile.store import ledger as store_ledger
from stockpile.store import lots as store_lots
from stockpile.store import masterdata
from stockpile.store import rotation as store


# -- policies ------------------------------------------------------------------------------------

async def upsert_policy(pg: asyncpg.Connection, code: str, data: c.RotationPolicyIn,
                        principal: Principal | None = None) -> tuple[bool, asyncpg.Record]:
    """Create or replace the policy with this code; returns (created, stored policy).

    A policy applies to its material or category across the nation, so only a principal whose remit
    is the whole nation sets one (``principal`` None: the trusted demo loader)."""
    if principal is not None:
        require_national_remit(principal, await masterdata.root_region_ids(pg), "rotation policies")
    if len(code) > 64 or not re.match(c.CODE_PATTERN, code):
        raise Invalid.field("code", "must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    errors = rules.policy_errors(
        material=data.material, category=data.category, trigger_days_before_expiry=data.trigger_days_before_expiry,
        trigger_fraction_remaining=data.trigger_fraction_remaining, max_out_share=data.max_out_share,
    )
    material_id = None
    if data.material is not None:
        material_id = (await masterdata.ids_by_code(pg, "materials", [data.material])).get(data.material)
        if material_id is None:
            errors.append({"field": "material", "message": f"unknown material code {data.material!r}"})
    if errors:
        raise Invalid(errors)
    created = await store.upsert_policy(pg, code, {
        "material_id": material_id, "category": data.category,
        "trigger_days_before_expiry": data.trigger_days_before_expiry,
        "trigger_fraction_remaining": data.trigger_fraction_remaining, "max_out_share": data.max_out_share,
        "max_gap_days": data.max_gap_days, "outlet": data.outlet, "lead_days": data.lead_days,
        "max_extension_days": data.max_extension_days,
    })
    return created, await store.policy(pg, code)


async def get_policy(pg: asyncpg.Connection, code: str) -> asyncpg.Record:
    row = await store.policy(pg, code)
    if row is None:
        raise NotFound(f"no rotation policy with code {code!r}")
    return row


async def policies(pg: asyncpg.Connection, *, after: str | None, limit: int) -> list[asyncpg.Record]:
    """Rotation policies by code (national rules, read by every reader)."""
    return await store.policies(pg, after=after, limit=limit)


# -- orders --------------------------------------------------------------------------------------

async def orders(pg: asyncpg.Connection, principal: Principal, *, state: str | None, warehouse: str | None,
                 material: str | None, due_before: date | None, after: tuple[date, str] | None,
                 limit: int) -> list[asyncpg.Record]:
    """The orders ``principal`` may see (of its warehouses; none of a military position without
    clearance), by out-by date."""
    return await store.orders(state=state, warehouse=warehouse, material=material, due_before=due_before,
                              after=after, limit=limit, **principal.visibility.ledger).fetch(pg)


def every_order(pg: asyncpg.Connection, principal: Principal, **filters) -> AsyncIterator[asyncpg.Record]:
    """Every order ``orders`` pages through with these filters, streamed (an export)."""
    return store.orders(**filters, after=None, limit=None, **principal.visibility.ledger).stream(pg)


async def get_order(pg: asyncpg.Connection, order_id: str, principal: Principal) -> asyncpg.Record:
    row = await store.order(pg, order_id, **principal.visibility.ledger)
    if row is None:
        raise NotFound(f"rotation order {order_id} does not exist")
    return row


async def cancel_order(pg: asyncpg.Connection, order_id: str, reason: str, principal: Principal) -> asyncpg.Record:
    """Cancel an open order (what it already moved stays moved); a closed one is a conflict."""
    row = await store.order(pg, order_id, **principal.visibility.ledger, for_update=True)
    if row is None:
        raise NotFound(f"rotation order {order_id} does not exist")
    require_warehouse(principal, row["warehouse_id"], row["warehouse"])
    if row["state"] not in rules.OPEN_STATES:
        raise Conflict(f"rotation order {order_id} is already {row['state']}", state=row["state"])
    await store.cancel(pg, row["id"], reason)
    return await get_order(pg, row["id"], principal)


async def claim_order(pg: asyncpg.Connection, order_id: str, principal: Principal, *, direction: str, quantity: int,
                      lot_id: str | None, warehouse_id: int, owner_id: int, material_id: int,
                      decimals: int) -> rules.OrderProgress:
    """Lock a rotation order and check that a ``rotation_out`` (``direction="out"``, of ``lot_id``)
    or ``rotation_in`` (``"in"``) of ``quantity`` may work it; returns the order as it will be after
    the movement, for ``save_progress``. Writes nothing. An order ``principal`` may not see is unknown.

    The row lock (``SELECT … FOR UPDATE``) makes concurrent movements on one order queue, so
    together they cannot go past its quantity. Refusals: unknown order → 422; another lot, owner or
    material, a closed order, or more than is left of the order → 409 conflict."""
    row = await store.lock_order(pg, order_id)
    if row is None or not order_visible(principal, row["warehouse_id"], row["owner_sector"]):
        # an order the caller may not see does not exist for it: no refusal that confirms it
        raise Invalid.field("rotation_order_id", f"unknown rotation order {order_id!r}")
    mismatch = []
    if row["warehouse_id"] != warehouse_id:
        mismatch.append("it rotates stock of another warehouse")
    if direction == "out" and row["lot_id"] != lot_id:
        mismatch.append("it rotates another lot")
    if row["owner_id"] != owner_id:
        mismatch.append("it is another owner's")
    if row["material_id"] != material_id:
        mismatch.append("it rotates another material")
    if mismatch:
        raise Conflict(f"this movement does not work rotation order {row['id']}: {', '.join(mismatch)}",
                       rotation_order_id=row["id"])
    progress = rules.OrderProgress(row["id"], row["quantity"], row["out_quantity"], row["in_quantity"], row["state"])
    fmt = lambda units: format_quantity(units, decimals)  # noqa: E731
    return rules.record_out(progress, quantity, fmt) if direction == "out" else rules.record_in(progress, quantity, fmt)


async def save_progress(pg: asyncpg.Connection, order: rules.OrderProgress) -> None:
    """Store what ``claim_order`` allowed; called once the movement is otherwise accepted, so a
    refused movement leaves the order as it was."""
    await store.set_progress(pg, order.id, order.out_quantity, order.in_quantity, order.state)


async def undo_progress(pg: asyncpg.Connection, movement_id: str, kind: str, stock_delta: int) -> None:
    """A reversal of a ``rotation_out`` / ``rotation_in`` takes its quantity back off the order it
    worked. A completed order is reopened, unless the planner has since opened another order for the
    same position (two open orders on one position are never allowed): then the reversal is a conflict."""
    row = await store.lock_order_of_movement(pg, movement_id)
    if row is None:
        return
    if row["state"] == "completed" and row["superseded"]:
        raise Conflict(f"movement {movement_id} completed rotation order {row['id']}, and another order is now open "
                       "for the same lot and owner; cancel that order first", rotation_order_id=row["id"])
    progress = rules.OrderProgress(row["id"], row["quantity"], row["out_quantity"], row["in_quantity"], row["state"])
    direction = "out" if kind == "rotation_out" else "in"
    await save_progress(pg, rules.undo(progress, direction, abs(stock_delta)))


# -- shelf-life extensions -----------------------------------------------------------------------

@dataclass(frozen=True)
class ShelfLifeTest:
    """A recorded shelf-life test and the lot as it stands after it."""

    extension: asyncpg.Record
    lot: asyncpg.Record
    expired: bool


async def extension_history(pg: asyncpg.Connection, lot_id: str) -> list[asyncpg.Record]:
    return await store.extensions(pg, lot_id)


async def record_shelf_life_test(pg: asyncpg.Connection, lot_id: str, data: c.ShelfLifeExtensionIn,
                                 principal: Principal, today: date) -> ShelfLifeTest:
    """Keep a shelf-life test of a lot. ``pass`` re-dates the lot (later, within the cap);
    ``fail`` quarantines it, as ``POST /lots/{id}/status`` does, and raises a critical
    ``shelf_life_failed`` alert that stays open until someone deals with it."""
    lot = await store.lot_for_extension(pg, lot_id)
    if lot is None:
        raise NotFound(f"lot {lot_id} does not exist")
    sectors = set(lot["holder_sectors"])
    require_lot_writable(principal, lot_id, lot["warehouse_id"], lot["warehouse"], sectors, lot["military_only"])
    previous = lot["expires_on"]
    if data.result == "pass":
        cap = rules.extension_cap_days(lot["max_extension_days"], lot["shelf_life_days"])
        rules.check_extension(previous, data.new_expires_on, cap)
        await store_lots.redate(pg, lot["id"], previous, data.new_expires_on,
                                f"shelf-life test {data.test_reference} passed", principal.id)
        extension = await store.record_extension(pg, lot["id"], previous, data.new_expires_on, data.test_reference,
                                                 "pass", principal.id)
    else:
        if data.new_expires_on is not None:
            raise Invalid.field("new_expires_on", "must be omitted when the test failed")
        extension = await store.record_extension(pg, lot["id"], previous, None, data.test_reference, "fail",
                                                 principal.id)
        await lots.set_status(pg, lot["id"], "quarantine", f"shelf-life test {data.test_reference} failed", principal)
        await alerts.raise_alert(pg, Wanted(
            "shelf_life_failed", f"lot:{lot['id']}", "critical",
            f"lot {lot['code']} of {lot['material']} at {lot['warehouse']} failed shelf-life test "
            f"{data.test_reference} and is quarantined",
            {"lot_id": lot["id"], "lot_code": lot["code"], "material": lot["material"], "warehouse": lot["warehouse"],
             "test_reference": data.test_reference, "expires_on": iso_day(previous)},
            warehouse_id=lot["warehouse_id"], region_id=lot["region_id"], military="military" in sectors,
        ))
    head = await store_ledger.lot_facts(pg, lot["id"])
    return ShelfLifeTest(extension, head, is_expired(head["expires_on"], today))

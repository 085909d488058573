"""Tasking: a plan's tasking lines (the capacity its solve draws on, after stock within a priority), the
tasking orders its approval makes, and their tracking until the receipts of their output arrive.

A tasking order is seen by readers who may see its capacity or who hold its destination warehouse
(who receive it); a military capacity's (of a military party, or held for the military) only with
clearance — as a plan's line on military stock is withheld, so is a tasking line of a military
capacity."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from stockpile.domain.access import Principal, require_visible, require_warehouse
from stockpile.domain.errors import Conflict, Forbidden, Invalid
from stockpile.services import planning
from stockpile.store import taskings as store
from stockpile.store.db import as_uuid


async def store_proposed(pg: asyncpg.Connection, plan_id: str, planned: planning.Planned) -> None:
    """Keep a proposed plan's tasking lines with it."""
    await store.insert_proposed(pg, plan_id, [
        (t.request_id, t.capacity, planned.requests[t.request_id]["destination_id"],
         planned.capacities[t.capacity]["material_id"], t.quantity, t.start_on, t.ready_on, t.due_on)
        for t in planned.taskings])


async def of_plans(pg: asyncpg.Connection, plan_ids: list[str]) -> dict[str, list[asyncpg.Record]]:
    """The tasking lines of each plan, by plan id."""
    return await store.of_plans(pg, plan_ids)


def shown(principal: Principal, rows: list[asyncpg.Record]) -> list[asyncpg.Record]:
    """The tasking lines the reader may see: a military capacity's only with clearance."""
    return [row for row in rows if principal.cleared_military or not row["military"]]


async def require_orderable(pg: asyncpg.Connection, plan_id: str, principal: Principal) -> None:
    """Approving a plan that tasks a military capacity needs military clearance."""
    rows = (await store.of_plans(pg, [plan_id])).get(plan_id, [])
    if any(row["military"] for row in rows) and not principal.cleared_military:
        raise Forbidden("the plan tasks a military capacity; approving it needs military clearance")


async def order(pg: asyncpg.Connection, plan_id: str, now: datetime) -> None:
    """An approved plan's tasking lines become tasking orders, open until their receipts arrive."""
    await store.order(pg, plan_id, now)


async def cancel(pg: asyncpg.Connection, plan_id: str) -> None:
    """A cancelled or lapsed plan's taskings end with it."""
    await store.cancel(pg, plan_id)


async def listing(pg: asyncpg.Connection, principal: Principal, *, state: str | None, capacity: str | None,
                  after: str | None, limit: int) -> list[asyncpg.Record]:
    """The tasking orders ``principal`` may see, by id."""
    return await store.listing(pg, state=state, capacity=capacity, after=after, limit=limit,
                               **principal.visibility.params())


async def get(pg: asyncpg.Connection, tasking_id: str, principal: Principal) -> asyncpg.Record:
    row = await store.one(pg, tasking_id, **principal.visibility.params())
    require_visible(row is not None, f"tasking order {tasking_id}")
    return row


async def record_receipt(pg: asyncpg.Connection, tasking_id: str, movement_id: str, principal: Principal,
                         now: datetime) -> asyncpg.Record:
    """Count a receipt movement toward an open tasking order: a receipt (not reversed) of the order's
    material at its destination, posted by the receiving depot, counted toward no other order. The
    order completes once its receipts cover its quantity."""
    row = await store.one(pg, tasking_id, **principal.visibility.params(), for_update=True)
    require_visible(row is not None, f"tasking order {tasking_id}")
    require_warehouse(principal, row["destination_id"], row["destination"])
    if row["state"] != "open":
        raise Conflict(f"the tasking order is {row['state']}; receipts count only toward an open one", state=row["state"])
    receipt = None if as_uuid(movement_id) is None else await store.receipt(pg, movement_id)
    if receipt is not None and receipt["military"] and not principal.cleared_military:
        receipt = None  # a movement on military stock does not exist for this reader
    if receipt is None or receipt["warehouse_id"] != row["destination_id"] or receipt["material_id"] != row["material_id"]:
        raise Invalid.field("movement_id", f"not a receipt of {row['material']} at {row['destination']}")
    if receipt["linked_to"] is not None or not await store.link_receipt(
            pg, tasking_id, movement_id, int(receipt["quantity"]), principal.id, now):
        raise Conflict("this receipt already counts toward a tasking order")
    return await store.one(pg, tasking_id)

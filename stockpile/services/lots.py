"""Lot use cases: the stock positions and lots a principal may see, and a lot's status
(available, quarantine, recalled).

Every status change goes through ``change_status`` — the ``POST /lots/{id}/status`` handler and a
failed shelf-life test alike — so the checks and the lot's history are the same whichever way the
change comes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date

import asyncpg

from stockpile.domain.access import Principal, lot_disclosed, require_lot_writable
from stockpile.domain.errors import NotFound
from stockpile.store import ledger as store_ledger
from stockpile.store import lots as store_lots
from stockpile.store import reads


async def change_status(pg: asyncpg.Connection, lot_id: str, status: str, reason: str | None,
                        principal: Principal) -> str | None:
    """Set a lot's status, kept in its history (``lot_events``); returns the status before.

    A lot the principal may not know of answers as a missing one (404), so the answer tells nothing
    of military stock; a lot outside the principal's warehouses is refused (403), and so is one any
    holder of which needs a clearance the principal lacks."""
    lot = await store_ledger.lot_facts(pg, lot_id)
    if lot is None:
        raise NotFound(f"lot {lot_id} does not exist")
    require_lot_writable(principal, lot_id, lot["warehouse_id"], lot["warehouse"], set(lot["holder_sectors"]),
                         lot["military_only"])
    return await set_status(pg, lot_id, status, reason, principal)


async def set_status(pg: asyncpg.Connection, lot_id: str, status: str, reason: str | None,
                     principal: Principal) -> str | None:
    """``change_status`` for a use case that has already judged the lot (``require_lot_writable``)
    under its own lock — a failed shelf-life test — so the checks are not made twice."""
    return await store_lots.set_status(pg, lot_id, status, reason, principal.id)


async def positions(pg: asyncpg.Connection, principal: Principal, *, warehouse: str | None, material: str | None,
                    owner: str | None, region: str | None, category: str | None, expiring_before: date | None,
                    status: str | None, after: int | None, limit: int) -> list[asyncpg.Record]:
    """Stock positions holding stock, as ``principal`` may see them (its warehouses; military-owned
    ones only with clearance), oldest account first."""
    return await reads.stock(
        warehouse=warehouse, material=material, owner=owner, region=region, category=category,
        expiring_before=expiring_before, status=status, after=after, limit=limit, **principal.visibility.ledger,
    ).fetch(pg)


def every_position(pg: asyncpg.Connection, principal: Principal, **filters) -> AsyncIterator[asyncpg.Record]:
    """Every position ``positions`` pages through with these filters, streamed (an export)."""
    return reads.stock(**filters, after=None, limit=None, **principal.visibility.ledger).stream(pg)


async def lots(pg: asyncpg.Connection, principal: Principal, *, warehouse: str | None, material: str | None,
               status: str | None, expiring_before: date | None, after: str | None,
               limit: int) -> list[asyncpg.Record]:
    """The lots ``principal`` may know of (its warehouses; none only a military party holds without
    clearance), by id, each with the balance of the positions it may see."""
    return await reads.lots(
        warehouse=warehouse, material=material, status=status, expiring_before=expiring_before, after=after,
        limit=limit, **principal.visibility.ledger,
    ).fetch(pg)


def every_lot(pg: asyncpg.Connection, principal: Principal, **filters) -> AsyncIterator[asyncpg.Record]:
    """Every lot ``lots`` pages through with these filters, streamed (an export)."""
    return reads.lots(**filters, after=None, limit=None, **principal.visibility.ledger).stream(pg)


async def lot(pg: asyncpg.Connection, lot_id: str, principal: Principal
              ) -> tuple[asyncpg.Record, list[asyncpg.Record], list[asyncpg.Record]]:
    """A lot with the owners' positions ``principal`` may see and its history; a lot it may not see
    answers as a missing one."""
    head, shares, events = await reads.lot(pg, lot_id, **principal.visibility.ledger)
    if head is None or not lot_disclosed(principal, head["military_only"]):
        raise NotFound(f"lot {lot_id} does not exist")
    return head, shares, events

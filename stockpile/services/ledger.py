"""Reading the ledger: movements as a principal may see them (see ``stockpile.domain.access``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg

from stockpile.domain.access import Principal
from stockpile.domain.errors import NotFound
from stockpile.store import reads


async def movements(pg: asyncpg.Connection, principal: Principal, *, warehouse: str | None, material: str | None,
                    owner: str | None, kind: str | None, since: datetime | None, until: datetime | None,
                    before_seq: int | None, limit: int) -> list[asyncpg.Record]:
    """The movements ``principal`` may see (touching its warehouses; none touching military stock
    without clearance), newest first."""
    return await reads.movements(
        warehouse=warehouse, material=material, owner=owner, kind=kind, since=since, until=until,
        before_seq=before_seq, limit=limit, **principal.visibility.ledger,
    ).fetch(pg)


def every_movement(pg: asyncpg.Connection, principal: Principal, **filters) -> AsyncIterator[asyncpg.Record]:
    """Every movement ``movements`` pages through with these filters, streamed (an export)."""
    return reads.movements(**filters, before_seq=None, limit=None, **principal.visibility.ledger).stream(pg)


async def movement(pg: asyncpg.Connection, movement_id: str, principal: Principal) -> asyncpg.Record:
    """One movement; one ``principal`` may not see answers as a missing one."""
    row = await reads.movement(pg, movement_id, **principal.visibility.ledger)
    if row is None:
        raise NotFound(f"movement {movement_id} does not exist")
    return row

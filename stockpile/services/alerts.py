"""Evaluating alerts: what the reserve's state calls for, reconciled with what is open.

The evaluation runs in one transaction under an advisory lock. One pass over the stock
(``take_stock``) yields the coverage of every target — its state by the domain rule gives the
shortfalls — and the lots expiring within the alert window; overdue transfers are one more small
query. The reconciliation (one statement) writes only what changed, each change with its history
and its outbox message, in that same transaction.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from stockpile.domain.access import Principal, target_disclosed
from stockpile.domain.alerts import EXPIRY_CRITICAL_WITHIN_DAYS, Wanted
from stockpile.domain.coverage import coverage_state
from stockpile.domain.errors import Conflict, NotFound
from stockpile.services.targets import place
from stockpile.store import alerts as store
from stockpile.store import capacities as capacity_store
from stockpile.store import taskings as tasking_store
from stockpile.store import coverage as coverage_store

EVALUATED = ("expired_on_hand", "expiring", "shortfall", "transfer_overdue", "survey_overdue", "tasking_overdue")
THOUSANDTH = Decimal("0.001")


def shortfalls(coverage: list[asyncpg.Record]) -> list[Wanted]:
    """A ``shortfall`` alert per target whose coverage is in the warning or critical state."""
    wanted = []
    for row in coverage:
        ratio = row["usable"] / row["quantity"]
        state = coverage_state(ratio, row["warning_ratio"], row["critical_ratio"])
        if state == "ok":
            continue
        military = not target_disclosed(place(row))  # hidden from uncleared readers, as the target is
        wanted.append(Wanted(
            "shortfall", f"target:{row['code']}", state,
            f"reserve target {row['code']} is {state}: {round(float(ratio) * 100, 1)}% usable",
            {"target": row["code"], "required": str(row["quantity"]), "usable": str(row["usable"].quantize(THOUSANDTH)),
             "ratio": round(float(ratio), 4)},
            warehouse_id=row["scope_warehouse_id"], region_id=row["home_region_id"], military=military))
    return wanted


async def evaluate(pg: asyncpg.Connection, *, today: date, now: datetime, expiring_days: int) -> dict[str, Any]:
    """Evaluate ``shortfall``, ``expiring``, ``expired_on_hand``, ``transfer_overdue``, ``survey_overdue``
    (a capacity past its survey interval) and ``tasking_overdue`` (a tasking order open past its due
    date) for the whole reserve and reconcile the open alerts; returns how many were opened, escalated, eased, kept, resolved."""
    await store.lock_evaluation(pg)
    await store.begin_wanted(pg)
    await coverage_store.take_stock(pg, today=today, expiring_within_days=expiring_days)
    await store.want(pg, shortfalls(await coverage_store.taken_coverage(pg)))
    await store.want_overdue_transfers(pg, now)
    await capacity_store.want_overdue_surveys(pg, today)
    await tasking_store.want_overdue_taskings(pg, today)
    return await store.reconcile(pg, list(EVALUATED), taken_expiry=(today, EXPIRY_CRITICAL_WITHIN_DAYS))


async def apply(pg: asyncpg.Connection, wanted: list[Wanted], kinds: set[str]) -> dict[str, int]:
    """Open, escalate, ease, refresh and resolve alerts of ``kinds`` so they match ``wanted``."""
    await store.begin_wanted(pg)
    await store.want(pg, [w for w in wanted if w.kind in kinds])
    return await store.reconcile(pg, sorted(kinds))


async def raise_alert(pg: asyncpg.Connection, wanted: Wanted) -> bool:
    """Open an alert an event calls for (a failed shelf-life test, say), outside any evaluation.
    Its kind must not be one ``evaluate`` owns (``EVALUATED``), or the next evaluation would resolve it."""
    if wanted.kind in EVALUATED:
        raise ValueError(f"{wanted.kind} alerts are opened and resolved by the evaluation only")
    return await store.raise_one(pg, wanted)


async def listing(pg: asyncpg.Connection, principal: Principal, *, state: str | None, kind: str | None,
                  after: str | None, limit: int) -> list[asyncpg.Record]:
    """The alerts ``principal`` may see (of its warehouses and regions, and national ones; none about
    military stock without clearance), newest first."""
    return await store.alerts(state=state, kind=kind, after=after, limit=limit,
                              visibility=principal.visibility.params()).fetch(pg)


def every_alert(pg: asyncpg.Connection, principal: Principal, *, state: str | None,
                kind: str | None) -> AsyncIterator[asyncpg.Record]:
    """Every alert ``listing`` pages through, streamed (an export)."""
    return store.alerts(state=state, kind=kind, after=None, limit=None,
                        visibility=principal.visibility.params()).stream(pg)


async def get(pg: asyncpg.Connection, alert_id: str, principal: Principal) -> tuple[asyncpg.Record, list[asyncpg.Record]]:
    """One alert and its history; one ``principal`` may not see answers as a missing one."""
    row, history = await store.alert(pg, alert_id, principal.visibility.params())
    if row is None:
        raise NotFound(f"alert {alert_id} does not exist")
    return row, history


async def acknowledge(pg: asyncpg.Connection, alert_id: str, principal: Principal,
                      note: str | None) -> tuple[asyncpg.Record, list[asyncpg.Record], str]:
    """Acknowledge an alert the principal may see; returns it, its history and its state before.

    An alert outside the principal's visibility answers as a missing one; acknowledging one already
    acknowledged changes nothing; a resolved one cannot be acknowledged (409)."""
    before = await store.acknowledge(pg, alert_id, principal.name, note, principal.visibility.params())
    if before is None:
        raise NotFound(f"alert {alert_id} does not exist")
    if before == "resolved":
        raise Conflict(f"alert {alert_id} is already resolved")
    row, history = await get(pg, alert_id, principal)
    return row, history, before

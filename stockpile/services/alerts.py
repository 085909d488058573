"""Evaluating alerts: what the reserve's state calls for, reconciled with what is open.

The evaluation runs in one transaction under an advisory lock; every change writes its history and
its outbox message in that same transaction.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import asyncpg

from stockpile.domain.alerts import Changes, Wanted, expiry_severity, reconcile
from stockpile.domain.coverage import coverage_state
from stockpile.domain.quantities import format_quantity
from stockpile.store import alerts as store
from stockpile.store import coverage as coverage_store

EVALUATED = {"shortfall", "expiring", "expired_on_hand", "transfer_overdue"}
NATIONAL = {"warehouse_ids": None, "region_ids": None, "cleared": True}


async def wanted_now(pg: asyncpg.Connection, today: date, now: datetime, expiring_days: int) -> list[Wanted]:
    wanted: list[Wanted] = []
    for row in await coverage_store.coverage(pg, today=today, region=None, category=None, **NATIONAL):
        ratio = row["usable"] / row["quantity"]
        state = coverage_state(ratio, row["warning_ratio"], row["critical_ratio"])
        if state == "ok":
            continue
        military = "military" in (row["owner_sector"], row["sector"]) or (
            row["owner"] is None and row["sector"] is None and row["scope_warehouse_id"] is not None)
        wanted.append(Wanted(
            "shortfall", f"target:{row['code']}", state,
            f"reserve target {row['code']} is {state}: {round(float(ratio) * 100, 1)}% usable",
            {"target": row["code"], "required": str(row["quantity"]), "usable": str(row["usable"].quantize(Decimal("0.001"))),
             "ratio": round(float(ratio), 4)},
            warehouse_id=row["scope_warehouse_id"], region_id=row["home_region_id"], military=military))
    for lot in await store.lots_near_expiry(pg, today, expiring_days):
        expired = lot["expires_on"] <= today
        kind = "expired_on_hand" if expired else "expiring"
        quantity = format_quantity(lot["balance"], lot["decimals"])
        wanted.append(Wanted(
            kind, f"lot:{lot['lot_id']}", "critical" if expired else expiry_severity(lot["expires_on"], today),
            f"lot {lot['code']} of {lot['material']} at {lot['warehouse']} "
            + ("expired" if expired else "expires") + f" on {lot['expires_on']} with {quantity} {lot['unit']} on hand",
            {"lot_id": lot["lot_id"], "lot_code": lot["code"], "material": lot["material"], "warehouse": lot["warehouse"],
             "expires_on": lot["expires_on"].isoformat(), "on_hand": quantity},
            warehouse_id=lot["warehouse_id"], region_id=lot["region_id"], military=lot["military"]))
    for transfer in await store.overdue_transfers(pg, now):
        wanted.append(Wanted(
            "transfer_overdue", f"transfer:{transfer['id']}", "warning",
            f"transfer {transfer['from_warehouse']} → {transfer['to_warehouse']} was expected {transfer['expected_at']:%Y-%m-%d %H:%M}",
            {"transfer_id": transfer["id"], "expected_at": transfer["expected_at"].isoformat()},
            warehouse_id=transfer["warehouse_id"], region_id=transfer["region_id"], military=transfer["military"]))
    return wanted


async def apply(pg: asyncpg.Connection, wanted: list[Wanted], kinds: set[str]) -> Changes:
    """Open, escalate, ease, refresh and resolve alerts of ``kinds`` so they match ``wanted``."""
    changes = reconcile(wanted, await store.unresolved(pg, sorted(kinds)), kinds)
    await store.open_many(pg, changes.opened)
    await store.refresh_many(pg, changes.escalated, "escalated")
    await store.refresh_many(pg, changes.eased, "eased")
    await store.refresh_many(pg, changes.unchanged, None)
    await store.resolve_many(pg, changes.resolved)
    return changes


async def evaluate(pg: asyncpg.Connection, *, today: date, now: datetime, expiring_days: int) -> dict[str, Any]:
    await store.lock_evaluation(pg)
    changes = await apply(pg, await wanted_now(pg, today, now, expiring_days), EVALUATED)
    return summary(changes)


def summary(changes: Changes) -> dict[str, int]:
    return {"opened": len(changes.opened), "escalated": len(changes.escalated), "eased": len(changes.eased),
            "still_open": len(changes.unchanged), "resolved": len(changes.resolved)}

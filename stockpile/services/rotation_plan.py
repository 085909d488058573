"""Planning rotation: the daily run that turns due stock into rotation orders.

One transaction, under an advisory lock: read the due positions (prefiltered in SQL), what the open
orders hold against each target (summed in SQL), every target, the policies, the readiness levels
and the overdue orders, and make the run ready (``stockpile.domain.rotation.RotationRun``); take
the coverage of every target — as the worker runs it, on the first connection while a second reads
and makes ready; plan; insert the new orders (a position with an open order keeps it); raise
``rotation_blocked`` per target that holds due stock back and ``rotation_overdue`` per open order
past its out-by or in-by date, resolving those that cleared.
"""

from __future__ import annotations

import asyncio
import gc
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from functools import cache
from decimal import Decimal
from typing import Any

import asyncpg

from stockpile.domain.alerts import Wanted
from stockpile.domain.coverage import Holding, TargetScope
from stockpile.domain.quantities import format_quantity
from stockpile.domain.rotation import (
    Blocked, OpenOrders, Outstanding, Policy, Position, RotationRun, Target, units_as_quantity,
)
from stockpile.domain.access import target_disclosed
from stockpile.services import alerts
from stockpile.services.targets import place
from stockpile.store import coverage as coverage_store
from stockpile.store import rotation_plan as store
from stockpile.store.db import Database
from stockpile.store.readiness import effective_levels

ALERT_KINDS = {"rotation_blocked", "rotation_overdue"}
SUMMARY_BLOCKED_TARGETS = 100  # the run's summary names this many blocked targets at most


def _holding(row: asyncpg.Record) -> Holding:
    return Holding(row["warehouse"], row["region"], row["material"], row["owner"], row["sector"], row["balance"],
                   row["reserved"], row["status"], row["expires_on"])


def _position(row: asyncpg.Record) -> Position:
    return Position(row["lot_id"], row["lot_code"], _holding(row), row["category"], row["decimals"],
                    row["shelf_life_days"], row["region_id"])


async def open_orders(pg: asyncpg.Connection, today: date, due: list[asyncpg.Record]) -> OpenOrders:
    """The open orders as the planner weighs them: the sums per target (read set-wise), and what the
    open order of each due position still has to take out."""
    out: dict[str, Decimal] = defaultdict(Decimal)
    to_go: dict[str, Decimal] = {}
    for r in await store.open_order_sums(pg, today):
        out[r["code"]] += units_as_quantity(r["out"], r["decimals"])
        if r["to_go"] is not None:
            to_go[r["code"]] = to_go.get(r["code"], Decimal(0)) + units_as_quantity(r["to_go"], r["decimals"])
    return OpenOrders({code: Outstanding(out[code], to_go.get(code, Decimal(0))) for code in out},
                      {(r["lot_id"], r["owner"]): r["ordered"] for r in due if r["ordered"] is not None})


def _policy(row: asyncpg.Record) -> Policy:
    return Policy(row["id"], row["code"], row["material"], row["category"], row["trigger_days_before_expiry"],
                  row["trigger_fraction_remaining"], row["max_out_share"], row["max_gap_days"], row["outlet"],
                  row["lead_days"])


async def target_maker(pg: asyncpg.Connection) -> Callable[[asyncpg.Record], Target]:
    """What makes a reserve target as rotation sees it (what it counts, as coverage counts it) of its
    row (the columns of ``store.coverage.TARGET``); reads the materials and regions it needs."""
    by_selector: dict[tuple[str, str], set[str]] = defaultdict(set)
    for m in await store.materials(pg):
        by_selector["material", m["code"]].add(m["code"])
        by_selector["category", m["category"]].add(m["code"])
        if m["substitution_group"] is not None:
            by_selector["substitution_group", m["substitution_group"]].add(m["code"])
    children: dict[int | None, list[asyncpg.Record]] = defaultdict(list)
    for r in await store.regions(pg):
        children[r["parent_id"]].append(r)

    codes = {r["id"]: r["code"] for rs in children.values() for r in rs}

    @cache
    def subtree(region_id: int) -> frozenset[str]:
        """The region and every region under it."""
        found, stack = [codes[region_id]], [region_id]
        while stack:
            for child in children[stack.pop()]:
                found.append(child["code"])
                stack.append(child["id"])
        return frozenset(found)

    selected = {selector: frozenset(codes) for selector, codes in by_selector.items()}

    def make(row: asyncpg.Record) -> Target:
        selector = next((k, row[k]) for k in ("material", "category", "substitution_group") if row[k] is not None)
        regions = frozenset()
        if row["scope_region_id"] is not None:
            regions = subtree(row["scope_region_id"])
        scope = TargetScope(selected.get(selector, frozenset()), row["horizon_days"], row["warehouse"], regions,
                            row["owner"], row["sector"])
        where = place(row)
        return Target(row["code"], scope, row["quantity"], row["floor_ratio"], disclosed=target_disclosed(where),
                      figures_disclosed=where.figures_disclosed)

    return make


async def targets(pg: asyncpg.Connection) -> tuple[list[Target], list[asyncpg.Record]]:
    """Every reserve target as rotation sees it, by code, and the rows it was made of."""
    make = await target_maker(pg)
    rows = await coverage_store.every_target(pg)
    return [make(r) for r in rows], rows


def blocked_by_target(blocked: list[Blocked], disclosed: dict[str, bool]) -> list[dict[str, Any]]:
    """The blocked positions per target, the target with the most held back first.

    A target an uncleared reader may see (``disclosed``) gets two entries: its non-military
    positions in the public wording, and its military positions apart (``"military": True``), so the
    alert uncleared readers see names no military lot and counts no military quantity."""
    grouped: dict[tuple[str, bool], list[Blocked]] = defaultdict(list)
    for b in blocked:
        military = not disclosed[b.target] or b.position.holding.sector == "military"
        grouped[b.target, military].append(b)
    summary = []
    for (code, military), entries in grouped.items():
        units: dict[int, int] = defaultdict(int)
        for b in entries:
            units[b.position.decimals] += b.quantity
        quantity = sum((units_as_quantity(u, d) for d, u in units.items()), Decimal(0))
        reasons: dict[str, int] = defaultdict(int)
        for b in entries:
            reasons[b.reason] += 1
        first = entries[0]  # first expiring: the planner blocks in that order
        summary.append({"target": code, "positions": len(entries), "quantity": str(quantity),
                        "reasons": dict(reasons), "first_lot": first.position.lot_code,
                        "explanation": first.explanation if military else first.public_explanation,
                        "military": military})
    summary.sort(key=lambda s: (-s["positions"], s["target"]))
    return summary


def blocked_alerts(summary: list[dict[str, Any]], coverage: dict[str, asyncpg.Record]) -> list[Wanted]:
    wanted = []
    for s in summary:
        row = coverage[s["target"]]
        military = s["military"]
        wanted.append(Wanted(
            "rotation_blocked", f"target:{s['target']}" + ("/military" if military and target_disclosed(place(row)) else ""),
            "warning", f"rotation held back by reserve target {s['target']}: {s['positions']} due position(s) wait",
            {k: s[k] for k in ("target", "positions", "reasons", "first_lot", "explanation")},
            warehouse_id=row["scope_warehouse_id"], region_id=row["home_region_id"], military=military))
    return wanted


def overdue_alerts(rows: list[asyncpg.Record]) -> list[Wanted]:
    """Old stock not out by out-by: a warning (it is spoiling on hand); fresh stock not in by in-by:
    critical (the reserve is short of what went out)."""
    wanted = []
    for r in rows:
        late = (f"fresh stock was due by {r['in_by']}" if r["replacement_late"]
                else f"old stock was due out by {r['out_by']}")
        fmt = lambda units: format_quantity(units, r["decimals"])  # noqa: E731
        wanted.append(Wanted(
            "rotation_overdue", f"rotation_order:{r['id']}", "critical" if r["replacement_late"] else "warning",
            f"rotation of lot {r['lot_code']} of {r['material']} at {r['warehouse']} is late: {late}",
            {"rotation_order_id": r["id"], "lot_code": r["lot_code"], "material": r["material"],
             "warehouse": r["warehouse"], "owner": r["owner"], "quantity": fmt(r["quantity"]),
             "out_quantity": fmt(r["out_quantity"]), "in_quantity": fmt(r["in_quantity"]),
             "out_by": r["out_by"].isoformat(), "in_by": r["in_by"].isoformat()},
            warehouse_id=r["warehouse_id"], region_id=r["region_id"], military=r["military"]))
    return wanted


@contextmanager
def collection_paused() -> Iterator[None]:
    """No cyclic garbage collection while a run builds and weighs its hundred thousand objects: the
    collector would walk them again and again for cycles they do not make (measured on the national
    bench: a third of the planner's time). Reference counting frees them as before."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


@dataclass(frozen=True)
class _Reads:
    """What a run reads before the coverage of its targets: the due positions, the open orders, what
    makes a target of its row and every target's row, the policies, the readiness levels and the
    open orders overdue."""

    rows: list[asyncpg.Record]
    open_orders: OpenOrders
    make: Callable[[asyncpg.Record], Target]
    target_rows: list[asyncpg.Record]
    policies: list[Policy]
    levels: dict[int, str]
    overdue: list[asyncpg.Record]

    def ready(self, today: date) -> _Ready:
        """The run made of these reads (the work a run does while its coverage is read)."""
        positions = [_position(r) for r in self.rows]
        targets_ = [self.make(r) for r in self.target_rows]
        return _Ready(self, positions, targets_,
                      RotationRun(positions, targets_, self.policies, self.levels, today))


@dataclass(frozen=True)
class _Ready:
    """A run made ready of its reads: the due positions as the planner sees them, every target, and
    the run (:class:`RotationRun`) that weighs them once the coverage is read."""

    reads: _Reads
    positions: list[Position]
    targets: list[Target]
    run: RotationRun

    def weighing(self, covered: list[asyncpg.Record], today: date) -> tuple[RotationRun, list[Target],
                                                                            list[asyncpg.Record]]:
        """The run, its targets and their rows, to weigh with ``covered`` (the coverage of every
        target): those made ready, or, when a target changed between the two reads, made again of
        the coverage's own rows, so each target is weighed on the coverage of what it is."""
        reads = self.reads
        if len(covered) == len(reads.target_rows) and all(c[:-1] == t for c, t in zip(covered, reads.target_rows)):
            return self.run, self.targets, reads.target_rows
        made = [reads.make(r) for r in covered]
        return RotationRun(self.positions, made, reads.policies, reads.levels, today), made, covered


async def _read(pg: asyncpg.Connection, today: date) -> _Reads:
    rows = await store.due_positions(pg, today)
    open_ = await open_orders(pg, today, rows)
    make = await target_maker(pg)
    target_rows = await coverage_store.every_target(pg)
    policies = [_policy(r) for r in await store.policies(pg)]
    levels = await effective_levels(pg)
    return _Reads(rows, open_, make, target_rows, policies, levels, await store.overdue_orders(pg, today))


async def _ready_apart(reader: Database, today: date) -> _Ready:
    async with reader.transaction() as tx:
        await store.begin_reading_beside(tx.pg)
        reads = await _read(tx.pg, today)
    return reads.ready(today)


async def plan(pg: asyncpg.Connection, *, today: date, reader: Database | None = None) -> dict[str, Any]:
    """Plan rotation for the whole reserve as of ``today`` (see the module's docstring); returns
    how many orders were created, the targets that hold due stock back, how many due positions are
    suspended by readiness, how many open orders are overdue, and the alert changes.

    With a ``reader``, everything but the coverage is read, and the run made ready, on a connection
    of its own while ``pg`` takes the coverage of every target (each statement sees what was
    committed when it began, as it would one after the other): the run takes little longer than
    that coverage. A reader with a single connection would wait for the run's own: it is not used."""
    await store.begin_planning(pg)
    with collection_paused():  # and the run's objects are freed before the collector is back
        return await _plan(pg, today, reader)


async def _plan(pg: asyncpg.Connection, today: date, reader: Database | None) -> dict[str, Any]:
    if reader is None or reader.pool_size < 2:
        ready = (await _read(pg, today)).ready(today)
        covered = await coverage_store.coverage(pg, today=today, region=None, category=None)
    else:
        async with asyncio.TaskGroup() as group:
            apart = group.create_task(_ready_apart(reader, today))
            coverage = group.create_task(coverage_store.coverage(pg, today=today, region=None, category=None))
        ready, covered = apart.result(), coverage.result()
    rows = ready.reads.rows
    run, targets_, target_rows = ready.weighing(covered, today)
    result = run.plan({r["code"]: r["usable"] for r in covered}, ready.reads.open_orders)
    owner_ids = {r["owner"]: r["owner_id"] for r in rows}
    created = await store.insert_orders(pg, [
        (o.lot_id, owner_ids[o.owner], o.policy_id, o.quantity, o.out_by, o.in_by, o.outlet, o.explanation,
         o.public_explanation) for o in result.orders])
    overdue = ready.reads.overdue  # read beside the coverage: an order planned now is not yet due out
    summary = blocked_by_target(result.blocked, {t.code: t.disclosed for t in targets_})
    by_code = {r["code"]: r for r in target_rows}
    changes = await alerts.apply(pg, blocked_alerts(summary, by_code) + overdue_alerts(overdue), ALERT_KINDS)
    return {"created": created, "blocked": summary[:SUMMARY_BLOCKED_TARGETS], "blocked_targets": len(summary),
            "blocked_positions": len(result.blocked), "suspended": len(result.suspended), "overdue": len(overdue),
            "due_positions": len(rows), "alerts": changes}

"""Planning: from pending requests, the stock and the capacity that could be tasked, through the rules
in force and the protected floors, to an optimal plan (stockpile.domain.allocation) — shared by
proposals and drills.

The model and its solve are CPU work of up to seconds: they run in a worker thread, at most
``STOCKPILE_ALLOCATION_SOLVERS`` at once per process (more wait their turn), so a large plan or drill
does not stall the event loop that answers other requests (bench/solver_latency.py measures it)."""

from __future__ import annotations

import asyncio
import functools
import weakref
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import asyncpg

from stockpile.domain import allocation, floors, rules as rules_
from stockpile.domain.allocation import Allowance, Demand, Solution, Supply
from stockpile.domain.potential import Tasked, Tasking
from stockpile.domain.errors import TooLarge
from stockpile.domain.rules import Rule
from stockpile.store import allocation as store
from stockpile.store import coverage, readiness, rules, taskings as tasking_store

THOUSANDTHS = 1000


@dataclass
class Limits:
    """Bounds of one solve (settings STOCKPILE_ALLOCATION_*)."""

    k: int = 50
    max_requests: int = 5000
    max_arcs: int = 500_000
    time_limit_s: float = 10.0
    solvers: int = 1  # solves running at once per process; more wait their turn

    @classmethod
    def of(cls, settings) -> Limits:
        return cls(settings.allocation_k, settings.allocation_max_requests, settings.allocation_max_arcs,
                   float(settings.allocation_time_limit_seconds), max(1, getattr(settings, "allocation_solvers", 1)))


_solvers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, asyncio.Semaphore]] = weakref.WeakKeyDictionary()


async def off_the_loop(limits: Limits, fn, /, *args, **kwargs):
    """Run a solve in a worker thread, at most ``limits.solvers`` at once (per process and event loop)."""
    per_loop = _solvers.setdefault(asyncio.get_running_loop(), {})
    gate = per_loop.setdefault(limits.solvers, asyncio.Semaphore(limits.solvers))
    async with gate:
        return await asyncio.to_thread(functools.partial(fn, *args, **kwargs))


@dataclass
class Planned:
    """A solved plan with everything needed to store, explain or report it."""

    solution: Solution
    requests: dict[str, Mapping[str, Any]]
    positions: dict[int, asyncpg.Record]
    rule_version: int
    rules: dict[str, Rule]
    levels: dict[str, str]                       # request id → readiness level it was planned under
    floors: dict[int, floors.Floor]
    bound: list[dict[str, Any]] = field(default_factory=list)   # targets whose floor limited the plan
    drawn: dict[int, int] = field(default_factory=dict)         # target id → thousandths the plan takes from it
    taskings: list[Tasking] = field(default_factory=list)       # capacity tasked, a source of the solve
    capacities: dict[int, asyncpg.Record] = field(default_factory=dict)  # capacity id → a capacity it could task


def _rule_floors(ruleset: Iterable[Rule]) -> list[Rule]:
    return [r for r in ruleset if r.allowed and r.floor_ratio is not None]


def _floor_ratio(target: asyncpg.Record, rule_floors: list[Rule]) -> Decimal:
    """The target's protected share, raised by any rule in force that keeps more of that stock."""
    sector = target["owner_sector"] or target["sector"]
    ratios = [target["floor_ratio"]] + [
        r.floor_ratio for r in rule_floors
        if (r.owner_sector is None or sector is None or r.owner_sector == sector)
        and (r.category is None or r.category == target["target_category"])]
    return max(ratios)


def thousandths(amount: int) -> str:
    return format((Decimal(amount) / THOUSANDTHS).normalize(), "f")


async def load_floors(pg: asyncpg.Connection, today: date, ruleset: Iterable[Rule],
                      target_ids: set[int] | None = None, *, cleared: bool = True) -> dict[int, floors.Floor]:
    """The usable stock and protected floor of every reserve target (or of ``target_ids``), in
    thousandths of its unit; unless ``cleared``, counting no military stock (a plan for a reader
    without clearance: its headroom depends on no military position, and is never larger)."""
    rule_floors = _rule_floors(ruleset)
    if target_ids is None:
        within = None
        rows = await coverage.coverage(pg, today=today, region=None, category=None, cleared=cleared)
    else:
        within = await coverage.reach(pg, list(target_ids))
        rows = await coverage.coverage_of_targets(pg, today=today, target_ids=list(target_ids), within=within,
                                                  cleared=cleared)
    promised = await _promised_to_rotation(pg, today, target_ids, within, cleared)
    result = {}
    for t in rows:
        usable = int(t["usable"] * THOUSANDTHS) - promised.get(t["id"], 0)
        result[t["id"]] = floors.Floor(t["id"], t["code"], usable, int(t["quantity"] * THOUSANDTHS),
                                       _floor_ratio(t, rule_floors))
    return result


async def _promised_to_rotation(pg: asyncpg.Connection, today: date, target_ids: set[int] | None,
                                within: tuple[list[int], list[int]] | None, cleared: bool = True) -> dict[int, int]:
    """Thousandths of each target's usable stock (of ``target_ids``, whose stock lies ``within``; of
    every target when None) that open rotation orders are still to take out: the rotation planner
    kept them above the floor, so an allocation must count them as gone."""
    outstanding = {r["account_id"]: r["units"] for r in await store.rotation_outstanding(pg, within, cleared=cleared)}
    promised: dict[int, int] = defaultdict(int)
    for m in await store.memberships(pg, list(outstanding), today, target_ids) if outstanding else []:
        for target_id in m["target_ids"]:
            promised[target_id] += outstanding[m["account_id"]] * 10 ** (3 - m["decimals"])
    return promised


def _solve(requests: list[Mapping[str, Any]], positions: list[asyncpg.Record], memberships: dict[int, list[int]],
           scale: dict[int, int], target_floors: dict[int, floors.Floor], ruleset: list[Rule], level_of: dict[str, str],
           limits: Limits, capacities: list[asyncpg.Record], today: date) -> Solution:
    """The model and its solve, in a worker thread: every reserve target a position counts toward is
    one constraint, its headroom and each position's weight in thousandths (as approval checks it);
    ``capacities`` (store.taskings.capacities_for) are sources from their lead day, after stock."""
    supplies = [Supply(key=p["account_id"], lot_id=p["lot_id"], owner_id=p["owner_id"], owner_sector=p["owner_sector"],
                       warehouse_id=p["warehouse_id"], latitude=p["latitude"], longitude=p["longitude"],
                       material_id=p["material_id"], substitution_group=p["substitution_group"], category=p["category"],
                       available=p["available"], expires_on=p["expires_on"],
                       floors=floors.targets_of(memberships, p["account_id"]), floor_unit=scale[p["account_id"]])
                for p in positions]
    demands = [Demand(request_id=r["id"], priority=r["priority"], requester_sector=r["requester_sector"],
                      material_id=r["material_id"], substitution_group=r["substitution_group"], category=r["category"],
                      latitude=r["latitude"], longitude=r["longitude"], quantity=r["quantity"],
                      needed_by=r["needed_by"], destination_warehouse_id=r["destination_id"],
                      destination_region_id=r["destination_region_id"]) for r in requests]
    tasked = [Tasked(k["id"], k["material_id"], k["daily_quantity"], k["lead_days"], frozenset(k["region_ids"]),
                     k["substitution_group"]) for k in capacities]
    decided: dict[tuple, Allowance | None] = {}

    def allowance(demand: Demand, supply: Supply) -> Allowance | None:
        if supply.warehouse_id == demand.destination_warehouse_id:
            return None  # already there: nothing to move
        key = (level_of[demand.request_id], supply.category, demand.requester_sector, supply.owner_sector)
        if key not in decided:
            rule = rules_.permits(ruleset, *key)
            decided[key] = None if rule is None else Allowance(rule.code, rule.preference_cost)
        return decided[key]

    return allocation.solve(demands, supplies, floors.headroom(target_floors), allowance, capacities=tasked, today=today,
                            dearest_preference=max((r.preference_cost for r in ruleset if r.allowed), default=0),
                            k=limits.k, max_requests=limits.max_requests, max_arcs=limits.max_arcs,
                            time_limit_s=limits.time_limit_s)


@dataclass(frozen=True)
class InForce:
    """The rule table in force (its version) and every region's effective readiness level."""

    version: int
    ruleset: list[Rule]
    levels: dict[int, str]

    @classmethod
    async def read(cls, pg: asyncpg.Connection, level_overrides: dict[int, str] | None = None) -> InForce:
        """What is in force now, with a drill's ``level_overrides`` (region id → level) applied."""
        version, ruleset = await rules.ruleset(pg)
        return cls(version, ruleset, await readiness.effective_levels(pg, level_overrides))


async def plan(pg: asyncpg.Connection, requests: list[Mapping[str, Any]], *, today: date, limits: Limits,
               in_force: InForce | None = None, lost_warehouse_ids: Iterable[int] = (),
               cleared: bool = True) -> Planned:
    """Solve ``requests`` (rows of allocation_requests, or a drill's synthetic ones) against the stock now,
    under the rules and levels ``in_force`` (read now when not given).

    Unless ``cleared``, on the stock a reader without military clearance may know of: no military
    position is a candidate, and the floors count no military stock, so no figure of the plan
    depends on a military position."""
    in_force = in_force or await InForce.read(pg)
    version, ruleset, levels = in_force.version, in_force.ruleset, in_force.levels
    level_of = {r["id"]: levels.get(r["destination_region_id"], "peacetime") for r in requests}
    material_ids = sorted({r["material_id"] for r in requests if r["material_id"] is not None})
    groups = sorted({r["substitution_group"] for r in requests if r["substitution_group"] is not None})
    positions = await store.candidate_positions(pg, material_ids=material_ids, groups=groups, today=today,
                                                lost_warehouse_ids=list(lost_warehouse_ids), cleared=cleared)
    # unless cleared, no military capacity is tasked
    capacities = await tasking_store.capacities_for(pg, material_ids, groups,
                                                    lost_warehouse_ids=list(lost_warehouse_ids), cleared=cleared)
    members: dict[int, list[int]] = defaultdict(list)
    for m in await store.memberships(pg, [p["account_id"] for p in positions], today):
        members[m["account_id"]].extend(m["target_ids"])
    target_floors = await load_floors(pg, today, ruleset, {t for ts in members.values() for t in ts},
                                      cleared=cleared)
    scale = {p["account_id"]: 10 ** (3 - p["decimals"]) for p in positions}
    memberships = {p["account_id"]: members.get(p["account_id"], []) for p in positions}
    try:
        solution = await off_the_loop(limits, _solve, requests, positions, memberships, scale, target_floors, ruleset,
                                      level_of, limits, list(capacities), today)
    except allocation.PlanTooLarge as exc:
        raise TooLarge(exc.detail, max_requests=limits.max_requests, max_arcs=limits.max_arcs,
                       time_limit_seconds=limits.time_limit_s) from None
    taken = floors.drawn(solution.lines, memberships, scale)
    bound = [{"target": f.code, "protected": thousandths(f.protected), "headroom": thousandths(f.headroom),
              "drawn": thousandths(taken.get(t, 0))}
             for t, f in sorted(target_floors.items()) if f.headroom - taken.get(t, 0) <= 0]
    return Planned(solution, {r["id"]: r for r in requests}, {p["account_id"]: p for p in positions}, version,
                   {r.code: r for r in ruleset}, level_of, target_floors, bound, dict(taken), solution.taskings,
                   {k["id"]: k for k in capacities})

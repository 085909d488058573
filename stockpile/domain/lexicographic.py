"""The allocation model as a linear programme, solved tier by tier, with integral quantities.

Variables: ``x[a]`` per arc (position → request), ``y[s]`` per position (what it sends). Rows::

    request d:   Σ_a∈d x[a]                ≤ quantity[d]
    position s:  y[s] − Σ_a∈s x[a]          = 0,         0 ≤ y[s] ≤ available[s]
    floor f:     Σ_s∈f weight[f, s] · y[s]  ≤ headroom[f]   (every reserve target the stock counts toward,
                                                          and a capacity's output by each date it serves)
    tier t:      Σ_a into tier t x[a]       ≥ fill[t]       (active once tier t is settled)

Why lexicographic solves and not weights: with every floor a hard constraint the matrix is no longer a
network, and weighted tier penalties stop giving a strict order (an LP traded priority units for
twice as many routine ones). So tier ``t`` is maximised with tiers ``< t`` held at their optimum,
then cost is minimised with every tier held: each level is one LP (GLOP, through pywraplp).

Why integral: position, request and floor rows of two non-nested target families contain odd
cycles (a 3 × 3 submatrix ``[[1,1,0],[1,0,1],[0,1,1]]``), so the matrix is not totally unimodular
and a vertex may be fractional. Each tier is therefore held at ``⌊LP optimum⌋``, an upper bound of
the integral optimum given the (integral) tiers above it. If the final LP vertex is integral and
passes an exact integer check, it attains every bound and is the integral lexicographic optimum.
Otherwise a MIP (SCIP, through pywraplp) restricted to the arcs touching the fractional ones (the
integral rest fixed) looks for integral quantities meeting every tier bound at least cost; failing
that, over every arc; failing that, the tiers are settled one by one as MIPs. Whichever step
succeeds, every tier is at its integral lexicographic optimum; cost is minimal up to the gap
between the MIP over the arcs priced in and the LP (measured by tests and the bench).

Why quantities stay exact: they are integers of each material's smallest unit, and they reach the
solvers as Python integers (``_exact``), which the solvers' doubles hold exactly below 2**53 (checked).
The solvers answer in floating point; their answers are rounded to integers and every plan passes an
exact integer check (``feasible``) before it is used — no quantity of the plan is a float.

Why reach adapts: the arcs are columns. After each LP the caller's ``price`` callback is handed the
duals and returns the arcs, not yet in the model, whose reduced cost would improve the level; they
are added and the level solved again, until none is left. Then the level's optimum is that of the
model with every allowed arc (column generation), however far the stock lies.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

TIERS = 4
EXACT_BELOW = 2 ** 53  # the integers a solver's double holds exactly
INTEGRAL = 1e-6  # an LP value this close to an integer is that integer
IMPROVES = 1e-7  # a reduced cost below −IMPROVES improves the level


def _exact(units: int) -> int:
    """A quantity (or weight) as the solvers take it: a Python integer they hold exactly."""
    units = int(units)
    if not -EXACT_BELOW < units < EXACT_BELOW:
        raise ValueError(f"{units} smallest units is beyond what the allocation solvers hold exactly")
    return units


@dataclass(frozen=True)
class FloorRow:
    """One reserve target as a row: ``Σ weight · y[supply] ≤ headroom`` (weights and headroom reduced
    by their common divisor, the headroom rounded down — exact for integer quantities)."""

    headroom: int
    supplies: np.ndarray  # int64 indices
    weights: np.ndarray  # int64


@dataclass
class Duals:
    """What the LP says one more unit on each row is worth, at the current level (minimisation)."""

    level: int  # 0..TIERS-1: maximising that tier's fill; TIERS: minimising cost
    request: np.ndarray  # per request row
    position: np.ndarray  # per position balance row
    tier: np.ndarray  # per tier row (0 while it is inactive)


@dataclass
class Outcome:
    """Integral quantities per arc and how they were obtained."""

    flows: np.ndarray  # per arc, int64
    fills: list[int]  # per tier, the integral lexicographic optimum
    lp_cost: float  # the cost level's LP optimum (a lower bound of the integral cost)
    integral_by: str  # "lp", "mip-fractional-part", "mip-all-arcs" or "mip-by-tier"
    pricing_rounds: int
    lp_ms: float = 0.0
    mip_ms: float = 0.0


Arcs = tuple[Sequence[int], Sequence[int], Sequence[int]]  # requests, supplies, unit costs
Price = Callable[[Duals], Arcs]


def _pywraplp():
    # Imported here: OR-Tools and HiGHS wheels clash in one process; the model's types are useful
    # without a solver.
    from ortools.linear_solver import pywraplp

    return pywraplp


@dataclass
class Model:
    """The LP, grown column by column; ``arc_*`` lists describe every arc added so far."""

    quantity: Sequence[int]
    tier_of: Sequence[int]
    available: Sequence[int]
    floor_rows: Sequence[FloorRow]
    arc_request: list[int] = field(default_factory=list)
    arc_supply: list[int] = field(default_factory=list)
    arc_cost: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        pywraplp = _pywraplp()
        self.lp = pywraplp.Solver.CreateSolver("GLOP")
        # Without presolve GLOP keeps its basis between the solves of a level and the next level's
        # (added arcs, a new objective): each re-solve starts where the last one ended.
        self.lp.SetSolverSpecificParametersAsString("use_preprocessing: false")
        inf = self.lp.infinity()
        self.all_stock = sum(int(a) for a in self.available)
        self.requests = [self.lp.Constraint(-inf, self.request_bound(d)) for d in range(len(self.quantity))]
        # y[s] and its balance row exist once position s has an arc (pricing a position without
        # them charges it the duals of the floor rows it counts toward, as its y would be charged).
        self.y: dict[int, object] = {}
        self.balances: dict[int, object] = {}
        # A position that cannot send one unit without breaching a floor gets no arc at all; a floor
        # row joins the LP once the positions in the model could breach it together (before the
        # first solve, and whenever pricing adds positions); the others cannot bind, their duals
        # are 0. A row a solution still breaches would be added and the level solved again.
        rows = self.floor_rows
        sizes = [len(f.supplies) for f in rows]
        self.row_of = np.repeat(np.arange(len(rows)), sizes)  # pairs are grouped by row, in row order
        self.row_ends = np.cumsum(sizes, dtype=np.int64)
        self.row_starts = self.row_ends - np.asarray(sizes, dtype=np.int64)
        self.row_supply = np.concatenate([f.supplies for f in rows]) if rows else np.zeros(0, dtype=np.int64)
        self.row_units = np.concatenate([f.weights for f in rows]) if rows else np.zeros(0, dtype=np.int64)
        self.row_limit = np.array([f.headroom for f in rows], dtype=np.int64)
        self.row_active = np.zeros(len(rows), dtype=bool)
        self.row_constraint: dict[int, object] = {}
        by_supply = np.argsort(self.row_supply, kind="stable")
        self.pairs_of_supply = np.split(by_supply, np.searchsorted(self.row_supply[by_supply],
                                                                   np.arange(1, len(self.available))))
        self.frozen = np.zeros(len(self.available), dtype=bool)
        self.frozen[self.row_supply[self.row_units > self.row_limit[self.row_of]]] = True
        self.y_upper = np.where(self.frozen, 0, np.asarray(self.available, dtype=np.int64))  # y's bounds
        self.tiers = [self.lp.Constraint(-inf, inf) for _ in range(TIERS)]
        self.x = []
        self.fills = [0] * TIERS
        self.demanded = [0] * TIERS
        for q, t in zip(self.quantity, self.tier_of):
            self.demanded[t] += q

    def request_bound(self, d: int, used: int = 0) -> int:
        """What request ``d`` may still receive, as a solver bound: never more than all the stock
        there is, so a request larger than any solver holds exactly is still planned exactly."""
        return _exact(min(int(self.quantity[d]) - used, self.all_stock))

    def _position(self, s: int):
        """The balance row of position ``s``, made with its ``y`` on first use."""
        if s not in self.balances:
            y = self.lp.NumVar(0, _exact(self.y_upper[s]), "")
            row = self.lp.Constraint(0.0, 0.0)
            row.SetCoefficient(y, 1.0)
            self.y[s], self.balances[s] = y, row
            for pair in self.pairs_of_supply[s].tolist():
                r = int(self.row_of[pair])
                if self.row_active[r]:
                    self.row_constraint[r].SetCoefficient(y, _exact(self.row_units[pair]))
        return self.balances[s]

    def add_arcs(self, requests: Sequence[int], supplies: Sequence[int], costs: Sequence[int]) -> None:
        inf = self.lp.infinity()
        for d, s, c in zip(requests, supplies, costs):
            x = self.lp.NumVar(0.0, inf, "")
            self.requests[d].SetCoefficient(x, 1.0)
            self._position(s).SetCoefficient(x, -1.0)
            self.tiers[self.tier_of[d]].SetCoefficient(x, 1.0)
            self.x.append(x)
        self.arc_request += list(requests)
        self.arc_supply += list(supplies)
        self.arc_cost += list(costs)

    def _objective(self, level: int, previous: int | None) -> None:
        """Level ``level``'s objective, set over the ``previous`` level's: only the coefficients that
        change are touched (each is a call into the solver)."""
        objective = self.lp.Objective()
        x = self.x
        if level == TIERS:
            for a, c in enumerate(self.arc_cost):
                objective.SetCoefficient(x[a], int(c))
        else:
            arc_tier = np.asarray(self.tier_of, dtype=np.int64)[np.asarray(self.arc_request, dtype=np.int64)]
            if previous is not None:
                for a in np.flatnonzero(arc_tier == previous).tolist():
                    objective.SetCoefficient(x[a], 0.0)
            for a in np.flatnonzero(arc_tier == level).tolist():
                objective.SetCoefficient(x[a], -1.0)
        objective.SetMinimization()

    def _solve(self) -> None:
        status = self.lp.Solve()
        if status != self.lp.OPTIMAL:
            raise RuntimeError(f"the allocation LP ended with status {status}, not OPTIMAL")

    def _add_floors_at_risk(self) -> bool:
        """Add the floor rows the positions in the model could breach together, each sending all it
        may; True when there were any. Every other row holds whatever the LP does (its positions'
        bounds keep it), so it is left out, and no solve has to be repeated for a breached row."""
        if not len(self.floor_rows) or not self.y:
            return False
        present = np.fromiter(self.y, dtype=np.int64, count=len(self.y))
        y = np.zeros(len(self.available), dtype=np.int64)
        y[present] = self.y_upper[present]
        return self._activate(self.drawn(y) > self.row_limit)

    def drawn(self, sent: np.ndarray) -> np.ndarray:
        """What positions sending ``sent`` (integer units per position) draw on each floor row, summed
        exactly in int64 (np.bincount would go through float64). The pairs are grouped by row, so one
        running total, differenced at the rows' bounds, gives every row's sum at once; int64 arithmetic
        wraps modulo 2**64, so each difference is exact whenever the row's own sum fits."""
        weighted = self.row_units * np.asarray(sent, dtype=np.int64)[self.row_supply]
        running = np.concatenate((np.zeros(1, dtype=np.int64), np.cumsum(weighted, dtype=np.int64)))
        return running[self.row_ends] - running[self.row_starts]

    def _add_breached_floors(self) -> bool:
        """Add the floor rows the current solution breaches; True when there were any."""
        if not len(self.floor_rows) or not self.y:
            return False
        answer = np.zeros(len(self.available))  # the LP's answer per position (the solver's doubles)
        answer[list(self.y)] = [v.solution_value() for v in self.y.values()]
        drawn = np.bincount(self.row_of, weights=self.row_units * answer[self.row_supply], minlength=len(self.floor_rows))
        return self._activate(drawn > self.row_limit + INTEGRAL)

    def _activate(self, over: np.ndarray) -> bool:
        """Add the rows not yet in the LP that are ``over`` their headroom; True when there were any."""
        breached = np.flatnonzero(over & ~self.row_active)
        inf = self.lp.infinity()
        for r in breached.tolist():
            f = self.floor_rows[r]
            row = self.row_constraint[r] = self.lp.Constraint(-inf, _exact(f.headroom))
            for s, w in zip(f.supplies.tolist(), f.weights.tolist()):
                if s in self.y:
                    row.SetCoefficient(self.y[s], _exact(w))
        self.row_active[breached] = True
        return bool(breached.size)

    def duals(self, level: int) -> Duals:
        floor_dual = np.zeros(len(self.floor_rows))
        for r, row in self.row_constraint.items():
            floor_dual[r] = row.dual_value()
        position = -np.bincount(self.row_supply, weights=self.row_units * floor_dual[self.row_of],
                                minlength=len(self.available))
        for s, row in self.balances.items():
            position[s] = row.dual_value()
        return Duals(level, np.array([r.dual_value() for r in self.requests]), position,
                     np.array([r.dual_value() for r in self.tiers]))

    def values(self) -> np.ndarray:
        return np.array([x.solution_value() for x in self.x], dtype=np.float64)

    def solve_levels(self, price: Price) -> int:
        """Settle every tier, then the cost, pricing arcs in at each level; returns the pricing rounds."""
        rounds, previous = 0, None
        present = set(self.tier_of)
        self._add_floors_at_risk()
        for level in range(TIERS + 1):
            if level < TIERS and level not in present:
                continue
            self._objective(level, previous)
            previous = level
            while True:
                self._solve()
                rounds += 1
                if self._add_breached_floors():
                    continue
                if level < TIERS and -self.lp.Objective().Value() >= self.demanded[level] - INTEGRAL:
                    break  # every request of the tier is served: no arc can add to it
                new = price(self.duals(level))
                if not new[0]:
                    break
                self.add_arcs(*new)
                self._add_floors_at_risk()
                if level < TIERS:
                    for x, d in zip(self.x[-len(new[0]):], new[0]):
                        self.lp.Objective().SetCoefficient(x, -1.0 if self.tier_of[d] == level else 0.0)
                else:
                    for x, c in zip(self.x[-len(new[0]):], new[2]):
                        self.lp.Objective().SetCoefficient(x, int(c))
            if level < TIERS:
                self.fills[level] = math.floor(-self.lp.Objective().Value() + INTEGRAL)
                self.tiers[level].SetLb(_exact(self.fills[level]))
        return rounds

    def lp_cost(self) -> float:
        return self.lp.Objective().Value()


def _sum_by(index: Sequence[int], values: np.ndarray, n: int) -> np.ndarray:
    """Exact integer sums of ``values`` per ``index`` (np.bincount would go through float64)."""
    total = np.zeros(n, dtype=np.int64)
    np.add.at(total, np.asarray(index, dtype=np.int64), values.astype(np.int64))
    return total


def feasible(flows: np.ndarray, model: Model, fills: Sequence[int]) -> bool:
    """The exact integer check of a plan: stock, requests, every floor and every settled tier."""
    if (flows < 0).any():
        return False
    request = _sum_by(model.arc_request, flows, len(model.quantity))
    sent = _sum_by(model.arc_supply, flows, len(model.available))
    tier = _sum_by(np.asarray(model.tier_of, dtype=np.int64)[model.arc_request], flows, TIERS)
    if (request > np.asarray(model.quantity)).any() or (sent > np.asarray(model.available)).any():
        return False
    if any(int(tier[t]) < fills[t] for t in range(TIERS)):
        return False
    return bool((model.drawn(sent) <= model.row_limit).all())


def _mip(model: Model, fixed: np.ndarray, free: np.ndarray, fills: Sequence[int], settle: int | None,
         time_limit_s: float) -> tuple[np.ndarray, float] | None:
    """Integral quantities on the ``free`` arcs (the others held at ``fixed``), every tier at least
    ``fills``; minimising cost, or maximising tier ``settle`` when given. None when infeasible."""
    pywraplp = _pywraplp()
    solver = pywraplp.Solver.CreateSolver("SCIP")
    solver.SetTimeLimit(int(max(1.0, time_limit_s) * 1000))
    inf = solver.infinity()
    arcs = np.flatnonzero(free).tolist()
    held = np.where(free, 0, fixed).astype(np.int64)
    request_used = _sum_by(model.arc_request, held, len(model.quantity))
    sent = _sum_by(model.arc_supply, held, len(model.available))
    tier_of = np.asarray(model.tier_of, dtype=np.int64)
    tier_held = _sum_by(tier_of[model.arc_request], held, TIERS)
    x = {a: solver.IntVar(0, _exact(min(model.quantity[model.arc_request[a]], model.available[model.arc_supply[a]])), "")
         for a in arcs}
    by_request: dict[int, list[int]] = {}
    by_supply: dict[int, list[int]] = {}
    for a in arcs:
        by_request.setdefault(model.arc_request[a], []).append(a)
        by_supply.setdefault(model.arc_supply[a], []).append(a)
    for d, members in by_request.items():
        row = solver.Constraint(-inf, model.request_bound(d, int(request_used[d])))
        for a in members:
            row.SetCoefficient(x[a], 1.0)
    for s, members in by_supply.items():
        row = solver.Constraint(-inf, _exact(model.available[s] - sent[s]))
        for a in members:
            row.SetCoefficient(x[a], 1.0)
    for f in model.floor_rows:
        free_members = [(s, w) for s, w in zip(f.supplies.tolist(), f.weights.tolist()) if s in by_supply]
        if not free_members:
            continue
        row = solver.Constraint(-inf, _exact(f.headroom - int((f.weights * sent[f.supplies]).sum())))
        for s, w in free_members:
            for a in by_supply[s]:
                row.SetCoefficient(x[a], _exact(w))
    tier_rows = [solver.Constraint(_exact(fills[t] - tier_held[t]), inf) for t in range(TIERS)]
    objective = solver.Objective()
    for a in arcs:
        tier_rows[tier_of[model.arc_request[a]]].SetCoefficient(x[a], 1.0)
        if settle is None:
            objective.SetCoefficient(x[a], int(model.arc_cost[a]))
        elif tier_of[model.arc_request[a]] == settle:
            objective.SetCoefficient(x[a], -1.0)
    objective.SetMinimization()
    status = solver.Solve()
    if status == solver.INFEASIBLE:
        return None
    if status != solver.OPTIMAL:
        raise TimeoutError("the integral allocation was not proven optimal within the time limit")
    flows = held.copy()
    for a in arcs:
        flows[a] = round(x[a].solution_value())
    return flows, objective.Value()


def solve(model: Model, price: Price, time_limit_s: float = 10.0) -> Outcome:
    """The integral lexicographic optimum of ``model`` over every arc ``price`` can add (module docstring)."""
    import time

    started = time.perf_counter()
    rounds = model.solve_levels(price)
    lp_cost = model.lp_cost()
    values = model.values()
    flows = np.rint(values).astype(np.int64)
    fills = list(model.fills)
    lp_done = time.perf_counter()
    outcome = Outcome(flows, fills, lp_cost, "lp", rounds, lp_ms=(lp_done - started) * 1000)
    if np.abs(values - flows).max(initial=0.0) <= INTEGRAL and feasible(flows, model, fills):
        return outcome
    fractional = np.abs(values - flows) > INTEGRAL
    touched_requests = set(np.asarray(model.arc_request)[fractional].tolist())
    touched_supplies = set(np.asarray(model.arc_supply)[fractional].tolist())
    near = np.array([d in touched_requests or s in touched_supplies
                     for d, s in zip(model.arc_request, model.arc_supply)], dtype=bool)
    every = np.ones(len(flows), dtype=bool)
    for free, how in ((near, "mip-fractional-part"), (every, "mip-all-arcs")):
        found = _mip(model, flows, free, fills, None, time_limit_s)
        if found is not None:
            outcome.flows, outcome.integral_by = found[0], how
            break
    else:
        # Some tier's integral optimum lies below ⌊LP⌋: settle the tiers one by one as MIPs.
        fills = [0] * TIERS
        for t in sorted(set(model.tier_of)):
            found = _mip(model, flows, every, fills, t, time_limit_s)
            fills[t] = round(-found[1])
        found = _mip(model, flows, every, fills, None, time_limit_s)
        outcome.flows, outcome.fills, outcome.integral_by = found[0], fills, "mip-by-tier"
    if not feasible(outcome.flows, model, outcome.fills):
        raise RuntimeError("the integral allocation failed its exact check")
    outcome.mip_ms = (time.perf_counter() - lp_done) * 1000
    return outcome

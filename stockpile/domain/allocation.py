"""Allocation planning: which (lot, owner) positions send how much stock to which request.

Planning is one min-cost flow, not a loop over requests (DESIGN "Allocation")::

    source ──(pool headroom)──> pool ──(available)──> position ──(cost/unit)──> request
    source ──(available)──────────────────────────────> position   (positions outside any pool)
    source ──(penalty of the request's tier)────────────────────────────────────> request

Every request absorbs exactly its quantity: what no position sends arrives over its penalised
"unmet" arc. A position is a candidate for a request when it holds the request's material (or a
material of the substitution group the request names), its lot outlives the need date, and the
rules in force allow the draw; only the ``k`` nearest candidate warehouses of each request are
kept. Cost per unit = rounded distance in km + a first-expiry-first term + the rule's preference
cost. The tier penalties make the plan lexicographic: no unit of a lower tier is planned while a
higher-tier request that could have had it goes short (:func:`tier_penalties` proves it).

Guarantees of a :class:`Solution` (checked by tests/unit/test_allocation_solver.py):

1. per position, the quantities planned from it sum to at most its ``available``;
2. per floor pool, the quantities planned from its positions sum to at most ``pools[pool]``,
   so no draw breaches a protected floor;
3. per request, ``planned + unfilled == quantity``; every quantity is an integer;
4. no line exists where the rules refuse the draw or where the lot expires on or before the
   request's need date;
5. the unfilled quantities are lexicographically minimal by tier (flash first), and among those
   plans the total cost is minimal; the output is the same for the same input.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import islice

import numpy as np

PRIORITIES = ("flash", "immediate", "priority", "routine")  # tier 0 is the highest
REASONS = ("no_stock", "rule", "expiry", "floor", "capacity")
EARTH_RADIUS_KM = 6371.0
FEFO_HORIZON_DAYS = 3650
# A lot that never expires costs one step more than any dated lot: use what dies first.
FEFO_NEVER_EXPIRES = FEFO_HORIZON_DAYS // 30 + 1
INT64_GUARD = 2**62


@dataclass(frozen=True)
class Supply:
    """One (lot, owner) position that could send stock; quantities in the material's smallest unit."""

    key: int  # stock account id
    lot_id: str
    owner_id: int
    owner_sector: str
    warehouse_id: int
    latitude: float
    longitude: float
    material_id: int
    substitution_group: str | None
    category: str
    available: int  # balance − reserved, > 0
    expires_on: date | None
    pool: str | None  # floor pool: positions counting toward the same tightest reserve target; None = unprotected


@dataclass(frozen=True)
class Demand:
    """One pending allocation request, delivered to ``destination_warehouse_id``."""

    request_id: str
    priority: str
    requester_sector: str
    material_id: int | None  # exactly one of material_id / substitution_group is given
    substitution_group: str | None
    category: str
    latitude: float
    longitude: float
    quantity: int
    needed_by: date
    destination_warehouse_id: int


@dataclass(frozen=True)
class Allowance:
    """What the rules in force say for one (demand, supply) pair."""

    rule: str  # rule code, shown on the plan line
    preference_cost: int  # added per unit


Rules = Callable[[Demand, Supply], "Allowance | None"]  # None = not allowed


@dataclass(frozen=True)
class Line:
    """One planned shipment: ``quantity`` from position ``supply_key`` to ``request_id``."""

    request_id: str
    supply_key: int
    quantity: int
    distance_km: float
    rule: str
    unit_cost: int = 0  # distance + expiry + preference cost per unit, as the plan weighed it


@dataclass
class Solution:
    """A plan: its lines, and per request what is planned, what is short and why."""

    lines: list[Line]
    planned: dict[str, int]  # every request, 0 included
    unfilled: dict[str, int]  # every request, 0 included
    reasons: dict[str, list[str]]  # requests with unfilled > 0 only; members of REASONS in that order
    objective: int  # total cost, penalties of unmet units included
    build_ms: float
    solve_ms: float
    arcs: int  # candidate (position → request) arcs
    explain_ms: float = 0.0
    penalties: dict[str, int] = field(default_factory=dict)  # cost of one unmet unit per priority


class PlanTooLarge(Exception):
    """The plan exceeds what one solve may take (requests, arcs, int64 range, time)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _unit_vectors(lats: Sequence[float], lons: Sequence[float]) -> np.ndarray:
    """Points on the unit sphere, one row per (lat, lon) in degrees."""
    phi, lam = np.radians(np.asarray(lats, dtype=np.float64)), np.radians(np.asarray(lons, dtype=np.float64))
    return np.column_stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])


def _chord_km(chord_squared: np.ndarray) -> np.ndarray:
    """Great-circle km from the squared chord between unit vectors (the haversine formula's ``4a``)."""
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(chord_squared) / 2))


def outlives(expires_on: date | None, needed_by: date) -> bool:
    """A lot serves a request only if it is still good after the need date."""
    return expires_on is None or expires_on > needed_by


def fefo_costs(days_left: np.ndarray) -> np.ndarray:
    """Per-unit cost that makes lots dying sooner after the need date cheaper: one step per 30 days
    of life left after it (capped at ten years); ``days_left < 0`` means the lot never expires."""
    return np.where(days_left < 0, FEFO_NEVER_EXPIRES, np.minimum(days_left, FEFO_HORIZON_DAYS) // 30)


def tier_penalties(max_path_cost: int) -> dict[str, int]:
    """Cost of one unmet unit per priority: ``P_t = (tiers − t) × (B + 1)`` for a path bound ``B``.

    ``B`` must bound the cost of any simple path of the residual network that avoids the source
    (:func:`_path_bound` gives ``min(#requests, #positions) × max |arc cost|``, one term per sign,
    which is at most #nodes × max arc cost). Then:

    *Everything servable is served.* A residual cycle through the source that adds one unit to a
    short request ``d`` of tier ``t`` enters the source over the reverse of ``d``'s unmet arc
    (cost ``−P_t``). If it leaves over a pool or position arc (fresh stock), its cost is at most
    ``B − P_t < 0``, since ``P_t ≥ P_routine = B + 1``.

    *A higher tier is always served first.* If instead it leaves over the unmet arc of a request
    ``d'`` of tier ``t'`` (taking a unit from ``d'``), its cost is at most ``P_t' − P_t + B``,
    negative whenever ``t' > t`` because ``P_t − P_t+1 = B + 1``. A min-cost flow has no negative
    residual cycle, so in it every cycle that raises a tier-``t`` request's service lowers the
    service of a request of tier ``t`` or higher. Now take any other feasible plan ``f'``; the
    difference ``f' − f`` splits into residual cycles of ``f``, each visiting the source at most once,
    so each moves at most one unit of unmet demand between two requests. Let ``s`` be the highest
    tier whose unmet total differs. Summed over tiers ``≤ s``, no cycle lowers the unmet total
    (a cycle lowering tier ``t ≤ s`` raises some tier ``≤ t``), so ``f'`` cannot have less unmet at
    tier ``s``: ``f`` is lexicographically optimal, and minimal in cost among such plans.
    """
    unit = max_path_cost + 1
    return {priority: (len(PRIORITIES) - tier) * unit for tier, priority in enumerate(PRIORITIES)}


def _path_bound(candidate_costs: np.ndarray, n_demands: int, n_supplies: int) -> int:
    """Upper bound on the cost of a simple residual path avoiding the source.

    Such a path's position → request arcs each enter a distinct request and leave a distinct
    position, so there are at most ``m = min(#requests, #positions)`` forward ones (cost ≤ max cost)
    and as many reversed ones (cost ≤ −min cost); pool and feed arcs cost nothing.
    """
    if candidate_costs.size == 0:
        return 0
    m = min(n_demands, n_supplies)
    return m * (max(0, int(candidate_costs.max())) + max(0, -int(candidate_costs.min())))


@dataclass
class _Group:
    """The positions of one material (or substitution group), by warehouse."""

    warehouse_ids: np.ndarray
    points: np.ndarray  # unit vectors of the warehouses
    members: list[list[int]]  # supply indices per warehouse, in key order


def _index_groups(supplies: Sequence[Supply]) -> dict[tuple[str, object], _Group]:
    by_key: dict[tuple[str, object], dict[int, list[int]]] = {}
    coords: dict[int, tuple[float, float]] = {}
    for i, s in enumerate(supplies):
        coords.setdefault(s.warehouse_id, (s.latitude, s.longitude))
        by_key.setdefault(("material", s.material_id), {}).setdefault(s.warehouse_id, []).append(i)
        if s.substitution_group is not None:
            by_key.setdefault(("group", s.substitution_group), {}).setdefault(s.warehouse_id, []).append(i)
    groups = {}
    for key, per_warehouse in by_key.items():
        ids = sorted(per_warehouse)
        groups[key] = _Group(warehouse_ids=np.array(ids, dtype=np.int64),
                             points=_unit_vectors([coords[w][0] for w in ids], [coords[w][1] for w in ids]),
                             members=[per_warehouse[w] for w in ids])
    return groups


def _group_key(demand: Demand) -> tuple[str, object]:
    if demand.substitution_group is not None:
        return ("group", demand.substitution_group)
    return ("material", demand.material_id)


def _nearest_first(demand: Demand, group: _Group, batch: int) -> Iterator[tuple[int, float]]:
    """The group's warehouses as ``(index, km)``, nearest first, ties by warehouse id.

    Sorts the nearest ``batch`` (and any tied with the last of them) first, the rest only if the
    search goes that far.
    """
    chord_squared = ((group.points - _unit_vectors([demand.latitude], [demand.longitude])) ** 2).sum(axis=1)
    if batch < len(chord_squared):
        bound = np.partition(chord_squared, batch - 1)[batch - 1]
        parts = [np.flatnonzero(chord_squared <= bound), np.flatnonzero(chord_squared > bound)]
    else:
        parts = [np.arange(len(chord_squared))]
    for part in parts:
        part = part[np.lexsort((group.warehouse_ids[part], chord_squared[part]))]
        yield from zip(part.tolist(), _chord_km(chord_squared[part]).tolist())


@dataclass
class _Walk:
    """How far the nearest-first search went for one request (kept to explain a shortfall)."""

    reach: int  # warehouses searched, nearest first
    refused: bool  # the rules refused a position there that outlives the need date
    truncated: bool  # the search stopped at the k-th candidate warehouse with farther ones left


@dataclass
class _Candidates:
    """Candidate arcs as they are found, request by request (so each request's arcs are contiguous)."""

    supply: list[int] = field(default_factory=list)
    km: list[float] = field(default_factory=list)
    allowance: list[Allowance] = field(default_factory=list)
    start: list[int] = field(default_factory=lambda: [0])  # request d's arcs are start[d]:start[d + 1]


def _nearest_candidates(demand: Demand, group: _Group, supplies: Sequence[Supply], rules: Rules, k: int,
                        found: _Candidates) -> _Walk:
    """Add every candidate at the k nearest warehouses that have one, nearest first."""
    needed_by, refused, warehouses = demand.needed_by, False, 0
    for reach, (w, km) in enumerate(_nearest_first(demand, group, 3 * k), start=1):
        before = len(found.supply)
        for i in group.members[w]:
            supply = supplies[i]
            if supply.expires_on is not None and supply.expires_on <= needed_by:
                continue
            allowance = rules(demand, supply)
            if allowance is None:
                refused = True
                continue
            found.supply.append(i)
            found.km.append(km)
            found.allowance.append(allowance)
        if len(found.supply) > before:
            warehouses += 1
            if warehouses == k:
                return _Walk(reach, refused, reach < len(group.members))
    return _Walk(len(group.members), refused, False)


def _validate(demands: Sequence[Demand], supplies: Sequence[Supply], pools: Mapping[str, int]) -> None:
    if len({d.request_id for d in demands}) != len(demands):
        raise ValueError("request ids must be unique")
    if len({s.key for s in supplies}) != len(supplies):
        raise ValueError("supply keys must be unique")
    for d in demands:
        if d.priority not in PRIORITIES:
            raise ValueError(f"request {d.request_id}: unknown priority {d.priority!r}")
        if (d.material_id is None) == (d.substitution_group is None):
            raise ValueError(f"request {d.request_id}: give exactly one of material and substitution group")
        if d.quantity <= 0:
            raise ValueError(f"request {d.request_id}: quantity must be positive")
    for s in supplies:
        if s.available <= 0:
            raise ValueError(f"supply {s.key}: available must be positive")
        if s.pool is not None and s.pool not in pools:
            raise ValueError(f"supply {s.key}: floor pool {s.pool!r} has no headroom given")
    for pool, headroom in pools.items():
        if headroom < 0:
            raise ValueError(f"floor pool {pool!r}: headroom must not be negative")


@dataclass
class Network:
    """The flow network of one plan as arrays (node 0 is the source), ready for any min-cost flow solver.

    Arcs come in this order: candidate arcs (position → request) first, grouped by request, then
    the feed arcs of positions and pools, then one unmet arc per request.
    """

    tails: np.ndarray
    heads: np.ndarray
    capacities: np.ndarray
    unit_costs: np.ndarray
    node_supplies: np.ndarray
    candidates: int  # the first `candidates` arcs are position → request
    arc_start: np.ndarray  # request d's candidate arcs are arc_start[d]:arc_start[d + 1]
    arc_demand: np.ndarray  # per candidate arc: index into `demands`
    arc_supply: np.ndarray  # per candidate arc: index into `supplies`
    arc_km: np.ndarray
    arc_rule: list[str]
    demands: list[Demand]  # in tier, then request id order
    supplies: list[Supply]  # in key order
    supply_node: dict[int, int]  # supply index → node
    pool_node: dict[str, int]
    penalties: dict[str, int]
    walks: list[_Walk | None]  # None: no position of the material or group at all
    groups: dict[tuple[str, object], _Group]


def _select_candidates(demands: list[Demand], supplies: list[Supply], rules: Rules, k: int, max_arcs: int,
                       deadline: float) -> tuple[_Candidates, list[_Walk | None], dict[tuple[str, object], _Group]]:
    groups = _index_groups(supplies)
    found, walks = _Candidates(), []
    for d, demand in enumerate(demands):
        group = groups.get(_group_key(demand))
        walks.append(None if group is None else _nearest_candidates(demand, group, supplies, rules, k, found))
        found.start.append(len(found.supply))
        if len(found.supply) > max_arcs:
            raise PlanTooLarge(f"more than {max_arcs} candidate arcs (after {d + 1} of {len(demands)} requests); "
                               "plan fewer requests at once or lower k")
        if time.perf_counter() > deadline:
            raise PlanTooLarge(f"selecting candidates took too long (after {d + 1} of {len(demands)} requests); "
                               "plan fewer requests at once or lower k")
    return found, walks, groups


def build_network(demands: Sequence[Demand], supplies: Sequence[Supply], pools: Mapping[str, int], rules: Rules,
                  *, k: int = 50, max_requests: int = 5000, max_arcs: int = 500_000,
                  time_limit_s: float = 10.0) -> Network:
    """Select candidates and lay out the network; raises :class:`PlanTooLarge` past the limits."""
    if len(demands) > max_requests:
        raise PlanTooLarge(f"{len(demands)} requests to plan at once; at most {max_requests}")
    if k < 1:
        raise ValueError("k must be at least 1")
    _validate(demands, supplies, pools)
    demands = sorted(demands, key=lambda d: (PRIORITIES.index(d.priority), d.request_id))
    supplies = sorted(supplies, key=lambda s: s.key)
    found, walks, groups = _select_candidates(demands, supplies, rules, k, max_arcs,
                                              time.perf_counter() + time_limit_s)

    arc_start = np.array(found.start, dtype=np.int64)
    arc_demand = np.repeat(np.arange(len(demands), dtype=np.int64), np.diff(arc_start))
    arc_supply = np.array(found.supply, dtype=np.int64)
    arc_km = np.array(found.km, dtype=np.float64)
    available = np.array([s.available for s in supplies], dtype=np.int64)
    expiry_day = np.array([-1 if s.expires_on is None else s.expires_on.toordinal() for s in supplies], dtype=np.int64)
    need_day = np.array([d.needed_by.toordinal() for d in demands], dtype=np.int64)
    quantities = np.array([d.quantity for d in demands], dtype=np.int64)
    days_left = np.where(expiry_day[arc_supply] < 0, -1, expiry_day[arc_supply] - need_day[arc_demand])
    preference = np.fromiter((a.preference_cost for a in found.allowance), dtype=np.int64, count=len(arc_supply))
    # np.rint rounds half to even, as round() does.
    candidate_costs = np.rint(arc_km).astype(np.int64) + fefo_costs(days_left) + preference
    candidate_caps = np.minimum(available[arc_supply], quantities[arc_demand])

    used = np.unique(arc_supply).tolist()
    used_pools = sorted({supplies[i].pool for i in used if supplies[i].pool is not None})
    penalties = tier_penalties(_path_bound(candidate_costs, len(demands), len(used)))
    total_demand = int(quantities.sum())
    if total_demand * penalties["flash"] > INT64_GUARD:
        raise PlanTooLarge(f"total requested quantity {total_demand} × flash penalty {penalties['flash']} "
                           "overflows 64-bit costs; plan fewer or smaller requests at once")

    pool_node = {pool: 1 + n for n, pool in enumerate(used_pools)}
    supply_node = {i: 1 + len(pool_node) + n for n, i in enumerate(used)}
    first_demand_node = 1 + len(pool_node) + len(supply_node)
    pool_draw = dict.fromkeys(used_pools, 0)
    for i in used:
        if supplies[i].pool is not None:
            pool_draw[supplies[i].pool] += supplies[i].available
    # Feed arcs in node order: source → each pool, then (source or pool) → each position.
    feed_tails = [0] * len(used_pools) + [0 if supplies[i].pool is None else pool_node[supplies[i].pool]
                                          for i in used]
    feed_caps = [min(pools[pool], pool_draw[pool]) for pool in used_pools] + [supplies[i].available for i in used]
    node_of_supply = np.zeros(len(supplies), dtype=np.int64)
    node_of_supply[used] = [supply_node[i] for i in used]

    n_nodes = first_demand_node + len(demands)
    tails = np.concatenate([node_of_supply[arc_supply], np.array(feed_tails, dtype=np.int64),
                            np.zeros(len(demands), dtype=np.int64)])
    heads = np.concatenate([arc_demand + first_demand_node, np.arange(1, first_demand_node, dtype=np.int64),
                            np.arange(first_demand_node, n_nodes, dtype=np.int64)])
    capacities = np.concatenate([candidate_caps, np.array(feed_caps, dtype=np.int64), quantities])
    unit_costs = np.concatenate([candidate_costs, np.zeros(len(feed_caps), dtype=np.int64),
                                 np.array([penalties[d.priority] for d in demands], dtype=np.int64)])
    node_supplies = np.zeros(n_nodes, dtype=np.int64)
    node_supplies[0] = total_demand
    node_supplies[first_demand_node:] = -quantities
    return Network(tails=tails, heads=heads, capacities=capacities, unit_costs=unit_costs,
                   node_supplies=node_supplies, candidates=len(arc_supply), arc_start=arc_start,
                   arc_demand=arc_demand, arc_supply=arc_supply, arc_km=arc_km,
                   arc_rule=[a.rule for a in found.allowance], demands=demands, supplies=supplies,
                   supply_node=supply_node, pool_node=pool_node, penalties=penalties, walks=walks, groups=groups)


def _min_cost_flow(network: Network):
    # Imported here: OR-Tools and HiGHS wheels clash in one process, and the plan's types above
    # are useful without a solver (e.g. next to HiGHS in the benchmark).
    from ortools.graph.python import min_cost_flow

    flow = min_cost_flow.SimpleMinCostFlow()
    flow.add_arcs_with_capacity_and_unit_cost(network.tails, network.heads, network.capacities, network.unit_costs)
    flow.set_nodes_supplies(np.arange(len(network.node_supplies)), network.node_supplies)
    return flow


def solve(demands: Sequence[Demand], supplies: Sequence[Supply], pools: dict[str, int], rules: Rules, *,
          k: int = 50, max_requests: int = 5000, max_arcs: int = 500_000, time_limit_s: float = 10.0) -> Solution:
    """Plan ``demands`` from ``supplies``: the lexicographic (by tier) min-cost allocation.

    ``pools[p]`` is how much all positions of floor pool ``p`` may send together (0: fully
    protected). Candidate selection stops with :class:`PlanTooLarge` after ``time_limit_s``; the
    flow solve itself cannot be interrupted (about half a second at the arc limit).
    """
    started = time.perf_counter()
    network = build_network(demands, supplies, pools, rules, k=k, max_requests=max_requests, max_arcs=max_arcs,
                            time_limit_s=time_limit_s)
    flow = _min_cost_flow(network)
    built = time.perf_counter()
    status = flow.solve()
    solved = time.perf_counter()
    if status == flow.BAD_COST_RANGE:
        raise PlanTooLarge("costs out of range for the flow solver; plan fewer or smaller requests at once")
    if status != flow.OPTIMAL:
        raise RuntimeError(f"min-cost flow ended with status {status}, not OPTIMAL")
    flows = flow.flows(np.arange(network.candidates)) if network.candidates else np.zeros(0, dtype=np.int64)
    solution = _read_plan(network, np.asarray(flows, dtype=np.int64), pools, rules)
    solution.objective = int(flow.optimal_cost())
    solution.build_ms = (built - started) * 1000
    solution.solve_ms = (solved - built) * 1000
    solution.explain_ms = (time.perf_counter() - solved) * 1000
    return solution


def _read_plan(network: Network, flows: np.ndarray, pools: Mapping[str, int], rules: Rules) -> Solution:
    demands, supplies = network.demands, network.supplies
    lines = []
    planned = {d.request_id: 0 for d in demands}
    sent = [0] * len(supplies)
    pool_sent: dict[str, int] = {}
    for a in np.flatnonzero(flows).tolist():
        d, i, quantity = int(network.arc_demand[a]), int(network.arc_supply[a]), int(flows[a])
        supply = supplies[i]
        planned[demands[d].request_id] += quantity
        sent[i] += quantity
        if supply.pool is not None:
            pool_sent[supply.pool] = pool_sent.get(supply.pool, 0) + quantity
        lines.append(Line(request_id=demands[d].request_id, supply_key=supply.key, quantity=quantity,
                          distance_km=round(float(network.arc_km[a]), 1), rule=network.arc_rule[a],
                          unit_cost=int(network.unit_costs[a])))
    lines.sort(key=lambda line: (line.request_id, line.supply_key))
    unfilled = {d.request_id: d.quantity - planned[d.request_id] for d in demands}
    exhausted = _Exhausted(supplies, sent, pool_sent, pools)
    reasons = {}
    for d, demand in enumerate(demands):
        if unfilled[demand.request_id] > 0:
            candidates = network.arc_supply[network.arc_start[d]:network.arc_start[d + 1]].tolist()
            reasons[demand.request_id] = _why_short(network, d, candidates, exhausted, rules)
    return Solution(lines=lines, planned=planned, unfilled=unfilled, reasons=dict(sorted(reasons.items())),
                    objective=0, build_ms=0.0, solve_ms=0.0, arcs=network.candidates, penalties=network.penalties)


@dataclass
class _Exhausted:
    """Which positions and floor pools the plan has used up."""

    supplies: list[Supply]
    sent: list[int]
    pool_sent: dict[str, int]
    pools: Mapping[str, int]

    def stock(self, i: int) -> bool:
        return self.sent[i] >= self.supplies[i].available

    def floor(self, i: int) -> bool:
        pool = self.supplies[i].pool
        return pool is not None and self.pool_sent.get(pool, 0) >= self.pools[pool]


def _why_short(network: Network, d: int, candidates: list[int], exhausted: _Exhausted, rules: Rules) -> list[str]:
    """Why request ``d`` is short, as members of :data:`REASONS` (never empty).

    - ``no_stock``: no position of the material (or group) exists at all;
    - ``rule``: the rules refuse positions among the nearest (up to the k-th candidate warehouse);
    - ``expiry``: positions there that the rules allow expire on or before the need date;
    - ``floor``: candidates still hold stock, but their floor pool may send no more;
    - ``capacity``: candidates' stock ran out (to this or other requests), or candidates farther
      than the k nearest warehouses were left out.
    """
    walk = network.walks[d]
    if walk is None:
        return ["no_stock"]
    demand, supplies = network.demands[d], network.supplies
    group = network.groups[_group_key(demand)]
    nearest = (w for w, _ in _nearest_first(demand, group, walk.reach))
    found = {"rule"} if walk.refused else set()
    for w in islice(nearest, walk.reach):
        for i in group.members[w]:
            if outlives(supplies[i].expires_on, demand.needed_by) or {"rule", "expiry"} <= found:
                continue
            found.add("rule" if rules(demand, supplies[i]) is None else "expiry")
    for i in candidates:
        if exhausted.stock(i):
            found.add("capacity")
        elif exhausted.floor(i):
            found.add("floor")
    if walk.truncated and "capacity" not in found and any(
            outlives(supplies[i].expires_on, demand.needed_by) and rules(demand, supplies[i]) is not None
            for w in nearest for i in group.members[w]):
        found.add("capacity")
    return [reason for reason in REASONS if reason in found]

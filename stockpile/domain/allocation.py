"""Allocation planning: which (lot, owner) positions send how much stock to which request.

Planning is one model for every pending request at once, not a loop over requests (DESIGN
"Allocation"), solved by :mod:`stockpile.domain.lexicographic`: an arc per (position, request) the
rules allow; every position sends at most what it has; every reserve target the position counts
toward keeps its protected floor (each target is a constraint of the solve, however the targets
overlap); then the flash fill is maximised, held, then immediate, priority and routine, and last the
cost is minimised. Quantities are integers of each material's smallest unit.

Capacity (``stockpile.domain.potential``) is a source of the same solve: a capacity tasked today
delivers its daily quantity from its lead day on, so what it can send to a request is its output by
the request's need date. Per capacity, the need dates it can reach (lead time fitting) split its
output into one position per date, bounded by the output by that date (daily quantity × usable
days), with a row per later date keeping everything drawn by that date within the output by it
(``Σ_{T' ≤ T} y[c, T'] ≤ output_by(c, T)``, the rows a reserve target's floor uses) — so no
capacity is promised twice (its output serves them earliest need date first). A request reaches the
position of its own need date: one arc per (capacity, request). The tiers' fills count stock and
capacity alike, so the solve moves a higher priority onto capacity when that frees stock for a lower
one that capacity cannot reach in time. A unit from capacity costs more than any unit of stock
(:func:`_potential`), and more for a higher priority, so within a priority stock is used first,
the higher priorities keep the stock where the fills allow either, and among capacities one
delivering to a region holding the destination comes first, then the fastest.

A position is a candidate for a request when it holds the request's material (or a material of the
substitution group the request names), its lot outlives the need date, and the rules in force allow
the draw. The model starts with the positions at each request's ``k`` nearest candidate warehouses;
wherever the LP's duals show that a position beyond them would raise a tier's fill or lower the
cost, its arc is added and the level solved again (the reach widens by pricing, so "higher priority
first" holds nationally). Cost per unit = rounded distance in km + a first-expiry-first term + the
rule's preference cost.

Guarantees of a :class:`Solution` (checked by tests/unit/test_allocation_solver.py and
tests/unit/test_allocation_exact.py, the latter against HiGHS in a separate process):

1. per position, the quantities planned from it sum to at most its ``available``;
2. per reserve target, ``Σ floor_unit × quantity`` over the positions counting toward it is at most
   its ``headroom``, so no draw breaches a protected floor;
3. per request, ``planned + unfilled == quantity``; every quantity is an integer;
4. no line exists where the rules refuse the draw or where the lot expires on or before the
   request's need date;
5. the fill per tier is the integral lexicographic optimum over every allowed arc (flash first,
   whatever ``k``), and among those plans the cost is minimal up to the integral rounding (0 when
   the LP's vertex is integral); the output is the same for the same input.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np

from stockpile.domain import lexicographic
from stockpile.domain.potential import Tasked, Tasking, output_by, schedule

PRIORITIES = ("flash", "immediate", "priority", "routine")  # tier 0 is the highest
REASONS = ("no_stock", "rule", "expiry", "floor", "capacity")
EARTH_RADIUS_KM = 6371.0
FEFO_HORIZON_DAYS = 3650
# A lot that never expires costs one step more than any dated lot: use what dies first.
FEFO_NEVER_EXPIRES = FEFO_HORIZON_DAYS // 30 + 1
FARTHEST_KM = math.ceil(math.pi * EARTH_RADIUS_KM)  # no two points on Earth lie farther apart


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
    floors: tuple[Hashable, ...] = ()  # the reserve targets it counts toward (none: unprotected stock)
    floor_unit: int = 1  # what one smallest unit counts for against those targets' headroom


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
    destination_region_id: int | None = None  # capacity delivering to a region holding it comes first


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
    planned: dict[str, int]  # every request, 0 included: from stock (capacity tasked: ``taskings``)
    unfilled: dict[str, int]  # every request, 0 included
    reasons: dict[str, list[str]]  # requests with unfilled > 0 only; members of REASONS in that order
    objective: int  # total cost of the lines and taskings (Σ quantity × unit cost)
    build_ms: float
    solve_ms: float
    arcs: int  # candidate (position → request) arcs in the final model
    explain_ms: float = 0.0
    fill: dict[str, int] = field(default_factory=dict)  # units planned per priority
    lp_cost: float = 0.0  # the LP's least cost at the fill above: a lower bound of ``objective``
    widened: int = 0  # requests that drew arcs beyond their k nearest warehouses
    priced_in: int = 0  # arcs the duals added beyond the k nearest
    integral_by: str = "lp"  # how the integral quantities were found (stockpile.domain.lexicographic)
    taskings: list[Tasking] = field(default_factory=list)  # capacity tasked, by priority, need date, request
    reach_ms: float = 0.0  # of solve_ms: pricing arcs beyond the k nearest
    lp_ms: float = 0.0  # of solve_ms: the LPs
    pricing_rounds: int = 0


class PlanTooLarge(Exception):
    """The plan exceeds what one solve may take (requests, arcs, time)."""

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


def _expiry_days(supplies: Sequence[Supply]) -> np.ndarray:
    """Per supply, the ordinal of its expiry day; −1 for a lot that never expires."""
    return np.array([-1 if s.expires_on is None else s.expires_on.toordinal() for s in supplies], dtype=np.int64)


def _outlives(expiry: np.ndarray, need_day: int | np.ndarray) -> np.ndarray:
    """A lot serves a request only if it is still good after the need date (``expiry`` as
    :func:`_expiry_days` gives it, ``need_day`` an ordinal)."""
    return (expiry < 0) | (expiry > need_day)


def fefo_costs(days_left: np.ndarray) -> np.ndarray:
    """Per-unit cost that makes lots dying sooner after the need date cheaper: one step per 30 days
    of life left after it (capped at ten years); ``days_left < 0`` means the lot never expires."""
    return np.where(days_left < 0, FEFO_NEVER_EXPIRES, np.minimum(days_left, FEFO_HORIZON_DAYS) // 30)


def _unit_costs(km: np.ndarray, expiry: np.ndarray, need_day: int | np.ndarray) -> np.ndarray:
    """Per-unit cost of an arc before the rule's preference: the rounded km (np.rint rounds half to
    even, as round() does) plus the first-expiry-first term."""
    days_left = np.where(expiry < 0, -1, expiry - need_day)
    return np.rint(km).astype(np.int64) + fefo_costs(days_left)


@dataclass
class _Group:
    """The positions of one material (or substitution group), by warehouse."""

    warehouse_ids: np.ndarray
    points: np.ndarray  # unit vectors of the warehouses
    members: list[list[int]]  # supply indices per warehouse, in key order
    flat: np.ndarray  # every member's supply index, warehouse by warehouse
    flat_warehouse: np.ndarray  # per member of ``flat``: its warehouse's index in ``warehouse_ids``
    start: list[int] = field(default_factory=list)  # warehouse w's members are flat[start[w]:start[w + 1]]


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
        members = [per_warehouse[w] for w in ids]
        groups[key] = _Group(warehouse_ids=np.array(ids, dtype=np.int64),
                             points=_unit_vectors([coords[w][0] for w in ids], [coords[w][1] for w in ids]),
                             members=members,
                             flat=np.array([i for m in members for i in m], dtype=np.int64),
                             flat_warehouse=np.repeat(np.arange(len(ids)), [len(m) for m in members]),
                             start=np.cumsum([0] + [len(m) for m in members]).tolist())
    return groups


def _group_key(demand: Demand) -> tuple[str, object]:
    if demand.substitution_group is not None:
        return ("group", demand.substitution_group)
    return ("material", demand.material_id)


def _nearest_parts(demand: Demand, group: _Group, batch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The group's warehouses as arrays of (index, km), nearest first, ties by warehouse id.

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
        yield part, _chord_km(chord_squared[part])


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
                        found: _Candidates, frozen: np.ndarray, expiry_day: np.ndarray) -> _Walk:
    """Add every candidate at the k nearest warehouses that have one, nearest first (a position a
    floor holds entirely, ``frozen``, is no candidate).

    Frozen and expired positions are masked out with arrays first: the walk only stops at the
    warehouses holding some other position, and asks the rules only about those positions."""
    usable = ~frozen[group.flat] & _outlives(expiry_day[group.flat], demand.needed_by.toordinal())
    at = np.bincount(group.flat_warehouse[usable], minlength=len(group.members))  # usable positions per warehouse
    usable_list, flat, start = usable.tolist(), group.flat.tolist(), group.start
    refused, warehouses, passed = False, 0, 0
    for part, km in _nearest_parts(demand, group, 3 * k):
        hits = np.flatnonzero(at[part] > 0)
        for j, w, w_km in zip(hits.tolist(), part[hits].tolist(), km[hits].tolist()):
            before = len(found.supply)
            for n in range(start[w], start[w + 1]):
                if not usable_list[n]:
                    continue
                i = flat[n]
                allowance = rules(demand, supplies[i])
                if allowance is None:
                    refused = True
                    continue
                found.supply.append(i)
                found.km.append(w_km)
                found.allowance.append(allowance)
            if len(found.supply) > before:
                warehouses += 1
                if warehouses == k:
                    reach = passed + j + 1
                    return _Walk(reach, refused, reach < len(group.members))
        passed += len(part)
    return _Walk(len(group.members), refused, False)


def _validate(demands: Sequence[Demand], supplies: Sequence[Supply], headroom: Mapping[Hashable, int],
              capacities: Sequence[Tasked]) -> None:
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
        if s.floor_unit <= 0:
            raise ValueError(f"supply {s.key}: floor_unit must be positive")
        missing = [f for f in s.floors if f not in headroom]
        if missing:
            raise ValueError(f"supply {s.key}: reserve target {missing[0]!r} has no headroom given")
    for target, room in headroom.items():
        if room < 0:
            raise ValueError(f"reserve target {target!r}: headroom must not be negative")
    if len({c.key for c in capacities}) != len(capacities):
        raise ValueError("capacity keys must be unique")
    for c in capacities:
        if c.daily <= 0 or c.lead_days < 0:
            raise ValueError(f"capacity {c.key}: daily must be positive and lead_days not negative")


def floor_rows(supplies: Sequence[Supply], headroom: Mapping[Hashable, int]) -> list[lexicographic.FloorRow]:
    """Every reserve target that could bind, as a row over the supplies' indices (weights reduced by
    their common divisor and the headroom rounded down, which is exact for integral quantities)."""
    names = sorted(headroom, key=str)
    index = {name: n for n, name in enumerate(names)}
    pair_target = np.fromiter((index[t] for s in supplies for t in s.floors), dtype=np.int64)
    pair_supply = np.repeat(np.arange(len(supplies)), [len(s.floors) for s in supplies])
    if not pair_target.size:
        return []
    order = np.lexsort((pair_supply, pair_target))
    pair_target, pair_supply = pair_target[order], pair_supply[order]
    unit = np.array([s.floor_unit for s in supplies], dtype=np.int64)[pair_supply]
    available = np.array([s.available for s in supplies], dtype=np.int64)[pair_supply]
    room = np.array([headroom[name] for name in names], dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, pair_target[1:] != pair_target[:-1]])
    targets = pair_target[starts]
    stock = np.add.reduceat(unit * available, starts)  # int64: quantities × thousandths stay far below 2**63
    divisor = np.gcd.reduceat(unit, starts)
    ends = np.r_[starts[1:], len(pair_target)]
    rows = []
    for n in np.flatnonzero(stock > room[targets]).tolist():  # the others may send all their stock
        first, last, g = starts[n], ends[n], int(divisor[n])
        rows.append(lexicographic.FloorRow(int(room[targets[n]]) // g, pair_supply[first:last], unit[first:last] // g))
    return rows


def _select_candidates(demands: list[Demand], supplies: list[Supply], rules: Rules, k: int, max_arcs: int,
                       deadline: float, frozen: np.ndarray,
                       expiry_day: np.ndarray) -> tuple[_Candidates, list[_Walk | None], dict[tuple[str, object], _Group]]:
    groups = _index_groups(supplies)
    found, walks = _Candidates(), []
    for d, demand in enumerate(demands):
        group = groups.get(_group_key(demand))
        walks.append(None if group is None else _nearest_candidates(demand, group, supplies, rules, k, found,
                                                                                     frozen, expiry_day))
        found.start.append(len(found.supply))
        if len(found.supply) > max_arcs:
            raise PlanTooLarge(f"more than {max_arcs} candidate arcs (after {d + 1} of {len(demands)} requests); "
                               "plan fewer requests at once or lower k")
        if time.perf_counter() > deadline:
            raise PlanTooLarge(f"selecting candidates took too long (after {d + 1} of {len(demands)} requests); "
                               "plan fewer requests at once or lower k")
    return found, walks, groups


def _km_to(demand: Demand, group: _Group) -> np.ndarray:
    """Great-circle km from the request's destination to each of the group's warehouses."""
    return _chord_km(((group.points - _unit_vectors([demand.latitude], [demand.longitude])) ** 2).sum(axis=1))


@dataclass
class _Arcs:
    """What the plan shows of each arc in the model (the model holds requests, supplies and costs)."""

    km: list[float] = field(default_factory=list)
    rule: list[str] = field(default_factory=list)


class _Pricer:
    """Finds the arcs beyond the model whose reduced cost improves the level (column generation).

    For an arc ``x[d, s]``: ``rc = objective − dual(request d) + dual(position s) − dual(tier of d)``
    (the arc enters request ``d``'s row with +1, position ``s``'s balance row with −1 and its tier's
    row with +1). A request's arcs are priced over every position of its material or group, most
    improving first, at most ``k`` per request and round; and so are its arcs from capacity.
    """

    def __init__(self, demands: list[Demand], supplies: list[Supply], groups: dict[tuple[str, object], _Group],
                 rules: Rules, arcs: _Arcs, model: lexicographic.Model, k: int, max_arcs: int, deadline: float,
                 cheapest_preference: int, expiry_day: np.ndarray, potential: _Potential) -> None:
        self.demands, self.supplies, self.groups, self.rules = demands, supplies, groups, rules
        self.potential = potential
        self.arcs, self.model, self.k, self.max_arcs, self.deadline = arcs, model, k, max_arcs, deadline
        self.cheapest_preference = min(0, cheapest_preference)
        self.expiry_day = expiry_day
        self.tier = np.array([PRIORITIES.index(d.priority) for d in demands], dtype=np.int64)
        # per request, per member of its group: an arc in the model, or refused by the rules
        self.in_model: dict[int, np.ndarray] = {}
        self.km: dict[int, np.ndarray] = {}
        self.widened: set[int] = set()
        self.priced_in = 0
        self.ms = 0.0  # time spent pricing
        self.fresh: dict[int, np.ndarray] = {}
        position = {}
        for d, s in zip(model.arc_request, model.arc_supply):
            position.setdefault(d, set()).add(s)
        for d, demand in enumerate(demands):
            group = groups.get(_group_key(demand))
            if group is not None:  # frozen positions are never priced
                self.in_model[d] = np.isin(group.flat, list(position.get(d, ()))) | model.frozen[group.flat]

    def _costs(self, d: int, group: _Group, members: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(km, cost without the rule's preference) to each of ``members`` (positions in ``group.flat``)."""
        if d not in self.km:
            self.km[d] = _km_to(self.demands[d], group)
        km = self.km[d][group.flat_warehouse[members]]
        return km, _unit_costs(km, self.expiry_day[group.flat[members]], self.demands[d].needed_by.toordinal())

    def __call__(self, duals: lexicographic.Duals) -> lexicographic.Arcs:
        started = time.perf_counter()
        try:
            return self._price(duals)
        finally:
            self.ms += (time.perf_counter() - started) * 1000

    def _price(self, duals: lexicographic.Duals) -> lexicographic.Arcs:
        if time.perf_counter() > self.deadline:
            raise PlanTooLarge("widening the reach took too long; plan fewer requests at once")
        add_d, add_s, add_c = [], [], []
        cost_level = duals.level == lexicographic.TIERS
        eps = lexicographic.IMPROVES
        least_dual: dict[tuple[str, object], float] = {}
        for d, in_model in self.in_model.items():
            if not cost_level and self.tier[d] > duals.level:
                continue  # an arc that only serves a lower tier cannot raise this tier's fill
            key = _group_key(self.demands[d])
            group = self.groups[key]
            if key not in least_dual:
                least_dual[key] = float(duals.position[group.flat].min())
            base = -duals.request[d] - duals.tier[self.tier[d]]
            if cost_level:
                least_objective = float(self.cheapest_preference)  # costs are ≥ 0 besides the preference
            else:
                least_objective = -1.0 if self.tier[d] == duals.level else 0.0
            if least_objective + base + least_dual[key] >= -eps:
                continue
            position_dual = duals.position[group.flat]
            if d not in self.fresh:
                self.fresh[d] = _outlives(self.expiry_day[group.flat], self.demands[d].needed_by.toordinal())
            members = np.flatnonzero(~in_model & self.fresh[d])
            if not members.size:
                continue
            rc = base + position_dual[members]  # the reduced cost, but for the arc's own objective
            if not cost_level:
                keep = rc + least_objective < -eps
                members, rc = members[keep], rc[keep] + least_objective
            km, cost = self._costs(d, group, members)
            if cost_level:
                rc = rc + cost
                keep = rc + self.cheapest_preference < -eps
                members, rc, km, cost = members[keep], rc[keep], km[keep], cost[keep]
            taken = 0
            for j in np.lexsort((cost, rc)).tolist():  # most improving first, then the cheapest
                if taken == self.k:
                    break
                s = int(group.flat[members[j]])
                allowance = self.rules(self.demands[d], self.supplies[s])
                if allowance is None:
                    in_model[members[j]] = True  # refused: never an arc, never priced again
                    continue
                if cost_level and rc[j] + allowance.preference_cost >= -eps:
                    continue
                km_j, cost_j = km[j:j + 1], cost[j:j + 1]
                in_model[members[j]] = True
                add_d.append(d)
                add_s.append(s)
                add_c.append(int(cost_j[0]) + allowance.preference_cost)
                self.arcs.km.append(float(km_j[0]))
                self.arcs.rule.append(allowance.rule)
                self.widened.add(d)
                taken += 1
        self._price_capacity(duals, add_d, add_s, add_c)
        self.priced_in += len(add_d)
        if len(self.model.arc_request) + len(add_d) > self.max_arcs:
            raise PlanTooLarge(f"more than {self.max_arcs} candidate arcs after widening the reach; "
                               "plan fewer requests at once")
        return add_d, add_s, add_c


    def _price_capacity(self, duals: lexicographic.Duals, add_d: list[int], add_s: list[int], add_c: list[int]) -> None:
        """Add the arcs from capacity not yet in the model that improve the level, at most ``k`` per
        request, most improving first (all at once, with arrays)."""
        p = self.potential
        left = np.flatnonzero(~p.in_model)
        if not left.size:
            return
        d = p.arc_demand[left]
        tier = self.tier[d]
        if duals.level == lexicographic.TIERS:
            objective = p.arc_cost[left].astype(np.float64)
        else:  # an arc into a lower tier cannot raise this tier's fill
            keep = tier <= duals.level
            left, d, tier = left[keep], d[keep], tier[keep]
            objective = np.where(tier == duals.level, -1.0, 0.0)
        rc = objective - duals.request[d] + duals.position[p.first + p.arc_position[left]] - duals.tier[tier]
        better = rc < -lexicographic.IMPROVES
        left, d, rc = left[better], d[better], rc[better]
        left = left[np.lexsort((left, rc, d))]  # per request, most improving first
        d = p.arc_demand[left]
        left = left[_rank_within(d) < self.k]
        p.in_model[left] = True
        add_d += p.arc_demand[left].tolist()
        add_s += (p.first + p.arc_position[left]).tolist()
        add_c += p.arc_cost[left].tolist()
        self.arcs.km += [0.0] * len(left)  # capacity delivers to the region: no distance, no rule
        self.arcs.rule += [""] * len(left)


def _rank_within(sorted_keys: np.ndarray) -> np.ndarray:
    """Per element of ``sorted_keys`` (grouped by key), its place among those of its key: 0, 1, …"""
    if not sorted_keys.size:
        return sorted_keys
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    return np.arange(len(sorted_keys)) - np.repeat(starts, np.diff(np.r_[starts, len(sorted_keys)]))


@dataclass
class _Potential:
    """Capacity as positions of the model, after the supplies' (module docstring): one per
    (capacity, need date it reaches), and one arc per (capacity, request) — in the model from the
    start for each request's ``k`` cheapest, priced in for the others (:class:`_Pricer`)."""

    first: int = 0  # the first capacity position's index in the model
    capacity: list[Tasked] = field(default_factory=list)  # per position
    available: list[int] = field(default_factory=list)  # per position: the output by its date
    rows: list[lexicographic.FloorRow] = field(default_factory=list)
    arc_demand: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    arc_position: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # among capacity positions
    arc_cost: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    in_model: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    def nearest(self, k: int) -> np.ndarray:
        """The arcs the model starts with: each request's ``k`` cheapest, and marks them in the model."""
        order = np.lexsort((self.arc_position, self.arc_cost, self.arc_demand))
        start = order[_rank_within(self.arc_demand[order]) < k]
        self.in_model[start] = True
        return start


def _potential(demands: list[Demand], capacities: Sequence[Tasked], today: date | None,
               dearest_preference: int, first: int) -> _Potential:
    """The capacity positions, their rows and arcs for ``demands`` (sorted as the model holds them).

    A unit from capacity costs more than any unit of stock can (the farthest distance, the longest
    life, the dearest rule's preference), plus one step of that and the tie-breakers per priority
    above routine (so a swap putting a higher priority on stock and a lower one on capacity always
    pays); the tie-breakers: a capacity delivering to a region holding the destination first, then
    the shortest lead."""
    found = _Potential(first)
    if not capacities or not demands:
        return found
    if today is None:
        raise ValueError("capacity is planned from a day: give today")
    reached_by: dict[tuple[str, object], list[int]] = {}
    for d, demand in enumerate(demands):
        reached_by.setdefault(_group_key(demand), []).append(d)
    days_left = np.array([(d.needed_by - today).days for d in demands], dtype=np.int64)
    tier = np.array([PRIORITIES.index(d.priority) for d in demands], dtype=np.int64)
    dearest_stock = FARTHEST_KM + FEFO_NEVER_EXPIRES + max(0, dearest_preference)
    slowest = max(c.lead_days for c in capacities)
    step = dearest_stock + 1 + 2 * (slowest + 1)
    arc_demand, arc_position, arc_cost = [], [], []
    for c in capacities:
        reached = np.array(reached_by.get(("material", c.material_id), [])
                           + reached_by.get(("group", c.substitution_group), []), dtype=np.int64)
        fits = days_left[reached] >= c.lead_days  # some output by the need date
        reached = reached[fits]
        if not reached.size:
            continue
        elsewhere = np.array([demands[d].destination_region_id not in c.region_ids for d in reached.tolist()])
        cost = (dearest_stock + 1 + (len(PRIORITIES) - 1 - tier[reached]) * step
                + elsewhere * (slowest + 1) + c.lead_days)
        dates, at = np.unique(days_left[reached], return_inverse=True)
        first = len(found.available)  # among the capacity positions
        for j, days in enumerate(dates.tolist()):
            made = output_by(c, today, today + timedelta(days=days))
            found.capacity.append(c)
            found.available.append(made)
            if j:  # everything drawn by this date within the output by it
                found.rows.append(lexicographic.FloorRow(made, np.arange(first, first + j + 1, dtype=np.int64),
                                                         np.ones(j + 1, dtype=np.int64)))
        arc_demand.append(reached)
        arc_position.append(first + at.reshape(-1))
        arc_cost.append(cost)
    if arc_demand:
        found.arc_demand, found.arc_position, found.arc_cost = (
            np.concatenate(arc_demand), np.concatenate(arc_position), np.concatenate(arc_cost).astype(np.int64))
        found.in_model = np.zeros(len(found.arc_demand), dtype=bool)
    return found


def solve(demands: Sequence[Demand], supplies: Sequence[Supply], headroom: Mapping[Hashable, int], rules: Rules, *,
          capacities: Sequence[Tasked] = (), today: date | None = None, dearest_preference: int = 0,
          k: int = 50, max_requests: int = 5000, max_arcs: int = 500_000, time_limit_s: float = 10.0,
          on_model: Callable[[lexicographic.Model], None] | None = None) -> Solution:
    """Plan ``demands`` from ``supplies`` and ``capacities`` tasked ``today``: the lexicographic (by
    tier) least-cost integral allocation.

    ``headroom[t]`` is how much the positions counting toward reserve target ``t`` may send together,
    in the unit their ``floor_unit`` converts to (0: fully protected). ``dearest_preference`` is at
    least every preference cost the ``rules`` give (capacity must cost more than any stock). Candidate
    selection and widening stop with :class:`PlanTooLarge` after ``time_limit_s``.
    """
    started = time.perf_counter()
    if len(demands) > max_requests:
        raise PlanTooLarge(f"{len(demands)} requests to plan at once; at most {max_requests}")
    if k < 1:
        raise ValueError("k must be at least 1")
    _validate(demands, supplies, headroom, capacities)
    demands = sorted(demands, key=lambda d: (PRIORITIES.index(d.priority), d.request_id))
    supplies = sorted(supplies, key=lambda s: s.key)
    first_capacity = len(supplies)
    potential = _potential(demands, sorted(capacities, key=lambda c: c.key), today, dearest_preference, first_capacity)
    from_capacity = potential.nearest(k)
    deadline = time.perf_counter() + time_limit_s
    stock_rows = floor_rows(supplies, headroom)
    model = lexicographic.Model(
        quantity=[d.quantity for d in demands], tier_of=[PRIORITIES.index(d.priority) for d in demands],
        available=[s.available for s in supplies] + potential.available,
        floor_rows=stock_rows + [lexicographic.FloorRow(r.headroom, r.supplies + first_capacity, r.weights)
                                 for r in potential.rows])
    expiry_day = _expiry_days(supplies)
    found, walks, groups = _select_candidates(demands, supplies, rules, k, max_arcs - len(from_capacity), deadline,
                                              model.frozen, expiry_day)

    arc_start = np.array(found.start, dtype=np.int64)
    arc_demand = np.repeat(np.arange(len(demands), dtype=np.int64), np.diff(arc_start))
    arc_supply = np.array(found.supply, dtype=np.int64)
    need_day = np.array([d.needed_by.toordinal() for d in demands], dtype=np.int64)
    preference = np.fromiter((a.preference_cost for a in found.allowance), dtype=np.int64, count=len(arc_supply))
    costs = _unit_costs(np.array(found.km, dtype=np.float64), expiry_day[arc_supply], need_day[arc_demand]) + preference

    model.add_arcs(arc_demand.tolist(), arc_supply.tolist(), costs.tolist())
    arcs = _Arcs(km=list(found.km), rule=[a.rule for a in found.allowance])
    model.add_arcs(potential.arc_demand[from_capacity].tolist(),
                   (first_capacity + potential.arc_position[from_capacity]).tolist(),
                   potential.arc_cost[from_capacity].tolist())
    arcs.km += [0.0] * len(from_capacity)  # capacity delivers to the region: no distance, no rule
    arcs.rule += [""] * len(from_capacity)
    pricer = _Pricer(demands, supplies, groups, rules, arcs, model, k, max_arcs, deadline,
                     int(preference.min()) if preference.size else 0, expiry_day, potential)
    built = time.perf_counter()
    try:
        outcome = lexicographic.solve(model, pricer, max(1.0, deadline - built))
    except TimeoutError as exc:
        raise PlanTooLarge(f"{exc}; plan fewer requests at once") from None
    solved = time.perf_counter()
    if on_model is not None:  # the benchmark hands the final model to another solver
        on_model(model)
    solution = _read_plan(demands, supplies, rules, model, arcs, outcome.flows, walks, groups, expiry_day)
    solution.taskings = _taskings(demands, potential, model, outcome.flows, first_capacity, today)
    solution.lp_cost = outcome.lp_cost
    solution.widened = len(pricer.widened)
    solution.priced_in = pricer.priced_in
    solution.integral_by = outcome.integral_by
    solution.reach_ms = pricer.ms
    solution.lp_ms = outcome.lp_ms - pricer.ms
    solution.pricing_rounds = outcome.pricing_rounds
    solution.build_ms = (built - started) * 1000
    solution.solve_ms = (solved - built) * 1000
    solution.explain_ms = (time.perf_counter() - solved) * 1000
    return solution


def _read_plan(demands: list[Demand], supplies: list[Supply], rules: Rules, model: lexicographic.Model, arcs: _Arcs,
               flows: np.ndarray, walks: list[_Walk | None], groups: dict[tuple[str, object], _Group],
               expiry_day: np.ndarray) -> Solution:
    lines = []
    planned = {d.request_id: 0 for d in demands}
    sent = np.zeros(len(model.available), dtype=np.int64)
    objective = 0
    for a in np.flatnonzero(flows).tolist():
        d, i, quantity = model.arc_request[a], model.arc_supply[a], int(flows[a])
        sent[i] += quantity
        objective += quantity * model.arc_cost[a]
        if i >= len(supplies):
            continue  # capacity: a tasking (_taskings), not a line on stock
        planned[demands[d].request_id] += quantity
        lines.append(Line(request_id=demands[d].request_id, supply_key=supplies[i].key, quantity=quantity,
                          distance_km=round(arcs.km[a], 1), rule=arcs.rule[a], unit_cost=model.arc_cost[a]))
    lines.sort(key=lambda line: (line.request_id, line.supply_key))
    unfilled = {d.request_id: d.quantity - planned[d.request_id] for d in demands}
    exhausted = _Exhausted.of(model, sent)
    reasons = {}
    for d, demand in enumerate(demands):
        if unfilled[demand.request_id] > 0:
            reasons[demand.request_id] = _why_short(demand, walks[d], groups, supplies, exhausted, rules, expiry_day)
    fill = dict.fromkeys(PRIORITIES, 0)
    for demand in demands:
        fill[demand.priority] += planned[demand.request_id]
    return Solution(lines=lines, planned=planned, unfilled=unfilled, reasons=dict(sorted(reasons.items())),
                    objective=objective, build_ms=0.0, solve_ms=0.0, arcs=len(model.arc_request), fill=fill)


def _taskings(demands: list[Demand], potential: _Potential, model: lexicographic.Model, flows: np.ndarray,
              first_capacity: int, today: date | None) -> list[Tasking]:
    """What the plan draws on each capacity, as taskings (``stockpile.domain.potential.schedule``),
    by priority, need date and request, then as the costs ranked the capacities."""
    draws: dict[int, list[tuple[str, date, int]]] = {}
    cost: dict[tuple[str, int], int] = {}
    capacity: dict[int, Tasked] = {}
    for a in np.flatnonzero(flows).tolist():
        i = model.arc_supply[a]
        if i < first_capacity:
            continue
        c, demand = potential.capacity[i - first_capacity], demands[model.arc_request[a]]
        capacity[c.key] = c
        draws.setdefault(c.key, []).append((demand.request_id, demand.needed_by, int(flows[a])))
        cost[(demand.request_id, c.key)] = model.arc_cost[a]
    order = {d.request_id: (PRIORITIES.index(d.priority), d.needed_by, d.request_id) for d in demands}
    taskings = [t for key, drawn in draws.items() for t in schedule(capacity[key], drawn, today)]
    return sorted(taskings, key=lambda t: (order[t.request_id], cost[(t.request_id, t.capacity)], t.capacity))


@dataclass
class _Exhausted:
    """Which positions the plan has emptied, and which are held back by a reserve target at its floor."""

    stock: np.ndarray  # per supply: nothing left to send
    floor: np.ndarray  # per supply: some target it counts toward has less headroom left than one unit

    @classmethod
    def of(cls, model: lexicographic.Model, sent: np.ndarray) -> _Exhausted:
        """(A target left out of the model for having less stock than headroom cannot hold a unit
        back: its members' stock runs out first.)"""
        floor = np.zeros(len(sent), dtype=bool)
        floor[model.row_supply[model.row_units > (model.row_limit - model.drawn(sent))[model.row_of]]] = True
        return cls(sent >= np.asarray(model.available, dtype=np.int64), floor)  # per model position (capacity last)


def _why_short(demand: Demand, walk: _Walk | None, groups: dict[tuple[str, object], _Group], supplies: list[Supply],
               exhausted: _Exhausted, rules: Rules, expiry_day: np.ndarray) -> list[str]:
    """Why a request is short, as members of :data:`REASONS` (never empty).

    - ``no_stock``: no position of the material (or group) exists at all;
    - ``rule``: the rules refuse positions among the nearest (up to the k-th candidate warehouse);
    - ``expiry``: positions there that the rules allow expire on or before the need date;
    - ``floor``: positions it may draw on, at any distance, still hold stock but a reserve target
      they count toward is at its floor;
    - ``capacity``: the stock of positions it may draw on ran out (to this or other requests).
    """
    if walk is None:
        return ["no_stock"]
    group = groups[_group_key(demand)]
    fresh = _outlives(expiry_day[group.flat], demand.needed_by.toordinal())
    if walk.reach < len(group.members):
        searched = np.zeros(len(group.members), dtype=bool)
        searched[next(_nearest_parts(demand, group, walk.reach))[0][:walk.reach]] = True
        expired = ~fresh & searched[group.flat_warehouse]
    else:
        expired = ~fresh
    found = {"rule"} if walk.refused else set()
    for i in group.flat[expired].tolist():
        if {"rule", "expiry"} <= found:
            break
        found.add("rule" if rules(demand, supplies[i]) is None else "expiry")
    for reason, mask in (("capacity", exhausted.stock), ("floor", exhausted.floor & ~exhausted.stock)):
        for i in group.flat[mask[group.flat] & fresh].tolist():
            if rules(demand, supplies[i]) is not None:
                found.add(reason)
                break
    return [reason for reason in REASONS if reason in found] or ["capacity"]

"""Rotation planning: which stock positions go out into civilian use now, how much, and by when.

The policy is DESIGN.md "Rotation" (and the README's "Rotation"); what follows is how this module
decides it:

- **Due.** A position (lot × owner) of an ``available`` lot is due when its policy (the material's,
  else its category's) triggers: within ``trigger_days_before_expiry`` days of expiry, or at most
  ``trigger_fraction_remaining`` of the shelf life left. No expiry: never; expired: out by today.
  Positions in a region at ``emergency`` or ``wartime`` get no order.
- **Staggered.** For every reserve target counting the position (as coverage matches them,
  :class:`stockpile.domain.coverage.TargetScope`): the quantity out — every open order's
  ``quantity − in_quantity`` plus the new orders — stays within ``max_out_share × target quantity``;
  and usable coverage less what open and new orders still take away of stock the target counts
  (``quantity − out_quantity``) stays at or above ``floor_ratio × target quantity``. A position is
  planned in full, in the part that fits, or *blocked* with the reason in words.
- **First expiring, first out.** Due positions are taken in (expiry, lot, owner) order. Once a target
  has held back a position for lack of *its* headroom, no later-expiring position of that material
  the target counts is planned; a target that had room does not stop (one depot at its floor holds
  back that depot's lots, not its whole region's).
- **Idempotent.** A position with an open order gets no second one (index ``rotation_orders_open``);
  planning again with the orders just planned as open orders plans nothing.

Positions and orders are integers of the material's smallest unit, targets decimals of its unit;
every comparison is exact. Every explanation comes twice: ``explanation`` for cleared readers,
``public_explanation`` naming no target, lot or figure an uncleared reader may not see
(``Target.disclosed``, ``Target.figures_disclosed``).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_FLOOR, Decimal
from functools import cached_property

from stockpile.domain.access import MILITARY
from stockpile.domain.coverage import Holding, TargetScope, outlives_horizon
from stockpile.domain.quantities import format_quantity

SUSPENDING_LEVELS = frozenset({"emergency", "wartime"})


@dataclass(frozen=True)
class Policy:
    """A rotation policy of one material (``material``) or one category (``category``)."""

    id: int
    code: str
    material: str | None = None
    category: str | None = None
    trigger_days_before_expiry: int | None = None
    trigger_fraction_remaining: Decimal | None = None
    max_out_share: Decimal = Decimal("0.25")
    max_gap_days: int = 30
    outlet: str = "sale"
    lead_days: int = 14


@dataclass(frozen=True)
class Position:
    """A stock position (lot × owner) as the planner sees it; ``holding`` in coverage's terms."""

    lot_id: str
    lot_code: str
    holding: Holding
    category: str
    decimals: int
    shelf_life_days: int | None
    region_id: int  # the warehouse's region, for its readiness level

    @property
    def key(self) -> tuple[str, str]:
        return self.lot_id, self.holding.owner

    @property
    def available(self) -> int:
        """What may go out: the balance less what approved plans have reserved."""
        return self.holding.balance - self.holding.reserved

    @property
    def fefo_key(self) -> tuple[date, str, str]:
        return self.holding.expires_on or date.max, self.lot_id, self.holding.owner


@dataclass(frozen=True)
class OpenOrder:
    """A rotation order still being worked (planned or in progress), with the position it rotates."""

    id: str
    lot_id: str
    holding: Holding
    decimals: int
    quantity: int
    out_quantity: int = 0
    in_quantity: int = 0

    @property
    def key(self) -> tuple[str, str]:
        return self.lot_id, self.holding.owner

    @property
    def not_replaced(self) -> int:
        """Out for rotation: gone or going, and not yet replaced."""
        return max(self.quantity - self.in_quantity, 0)

    @property
    def still_to_go(self) -> int:
        """What the order has still to take out of the position."""
        return max(self.quantity - self.out_quantity, 0)


@dataclass(frozen=True)
class Outstanding:
    """What the open orders hold against one target, in its materials' unit: ``out`` — gone or going
    and not yet replaced, of every position the target counts; ``to_go`` — what they still have to
    take out of stock the target counts as usable."""

    out: Decimal = Decimal(0)
    to_go: Decimal = Decimal(0)


@dataclass(frozen=True)
class OpenOrders:
    """The open orders as the planner weighs them: per target code (``Outstanding``), and per position
    key what its order still has to take out (a position in ``by_position`` has an open order)."""

    by_target: Mapping[str, Outstanding] = field(default_factory=dict)
    by_position: Mapping[tuple[str, str], int] = field(default_factory=dict)


@dataclass(frozen=True)
class Target:
    """A reserve target as rotation sees it: what it counts and how much it needs. What it has now,
    its usable coverage, is read apart (``RotationRun.plan``): a run makes ready before it knows it."""

    code: str
    scope: TargetScope
    quantity: Decimal
    floor_ratio: Decimal
    disclosed: bool = True  # an uncleared reader may see it (``stockpile.domain.access.target_visible``)
    figures_disclosed: bool = True  # its figures count no military stock (one non-military owner or sector)

    @property
    def floor(self) -> Decimal:
        return self.quantity * self.floor_ratio

    @property
    def public_name(self) -> str:
        return f"target {self.code}" if self.disclosed else "a protected target"


@dataclass(frozen=True)
class Why:
    """A reason in the two wordings (see the module's docstring)."""

    full: str
    public: str


@dataclass(slots=True)
class Waits:
    """The reason a position waits — ``target`` holds back the earlier-expiring ``lot`` first — in the
    two wordings, as :class:`Why` has them, worded when read."""

    lot: Position
    target: Target

    @property
    def full(self) -> str:
        return f"waits for {self._lot(self.lot)}, which target {self.target.code} holds back first"

    @property
    def public(self) -> str:
        lot = "an earlier-expiring lot" if self.lot.holding.sector == MILITARY else self._lot(self.lot)
        return f"waits for {lot}, which {self.target.public_name} holds back first"

    @staticmethod
    def _lot(lot: Position) -> str:
        return f"lot {lot.lot_code} (expires {lot.holding.expires_on})"


@dataclass(frozen=True)
class PlannedOrder:
    """A new rotation order."""

    lot_id: str
    owner: str
    policy_id: int
    quantity: int
    out_by: date
    in_by: date
    outlet: str
    explanation: str
    position: Position
    held_back_by: tuple[str, ...] = ()  # the targets that let only part of the position go
    public_explanation: str = ""


@dataclass
class Blocked:
    """A due position that got no order: ``target`` has no headroom for it, for ``reason``
    (``floor``, ``out_share``, or ``first_expiring`` — an earlier-expiring position waits).
    ``held_back_by``: every target short of room for all of it (none when it waits). Its
    explanations are worded when first read: a run holds thousands of positions back, and its
    alerts word the first of each target."""

    lot_id: str
    owner: str
    target: str
    reason: str
    quantity: int
    position: Position
    policy: Policy
    today: date
    why: Why | Waits = field(repr=False)
    held_back_by: tuple[str, ...] = ()

    @cached_property
    def _triggered(self) -> str:  # why the position is due, as its policy says
        return _trigger(self.position, self.policy, self.today)

    @property
    def explanation(self) -> str:
        return f"{self._triggered}: {self.why.full}"

    @property
    def public_explanation(self) -> str:
        return f"{self._triggered}: {self.why.public}"


@dataclass
class RotationPlan:
    orders: list[PlannedOrder] = field(default_factory=list)
    blocked: list[Blocked] = field(default_factory=list)
    suspended: list[Position] = field(default_factory=list)


def units_as_quantity(units: int, decimals: int) -> Decimal:
    """Smallest units → a decimal in the material's unit (exact)."""
    return Decimal(units).scaleb(-decimals)


def whole_units(quantity: Decimal, decimals: int) -> int:
    """The whole smallest units within ``quantity`` (rounded down: headroom is never overstated)."""
    return int(quantity.scaleb(decimals).to_integral_value(rounding=ROUND_FLOOR))


def policy_for(material: str, category: str, policies: Iterable[Policy]) -> Policy | None:
    """The material's own policy, else its category's; None when neither exists."""
    by_category = None
    for policy in policies:
        if policy.material == material:
            return policy
        if policy.material is None and policy.category == category:
            by_category = policy
    return by_category


def is_due(expires_on: date | None, shelf_life_days: int | None, policy: Policy, today: date) -> bool:
    """The policy's trigger: within ``trigger_days_before_expiry`` days of expiry, or at most
    ``trigger_fraction_remaining`` of the shelf life left. Expired stock is always due; stock that
    never expires never is."""
    if expires_on is None:
        return False
    days_left = (expires_on - today).days
    if days_left <= 0:
        return True
    if policy.trigger_days_before_expiry is not None and days_left <= policy.trigger_days_before_expiry:
        return True
    return (policy.trigger_fraction_remaining is not None and bool(shelf_life_days)
            and days_left <= policy.trigger_fraction_remaining * shelf_life_days)


def is_expired(expires_on: date | None, today: date) -> bool:
    """A lot is expired from its expiry date on."""
    return expires_on is not None and expires_on <= today


def out_and_in_by(expires_on: date, policy: Policy, today: date) -> tuple[date, date]:
    """Out ``lead_days`` before expiry (today at the latest, and today once expired); fresh stock in
    within ``max_gap_days`` of that."""
    out_by = today if is_expired(expires_on, today) else max(today, expires_on - timedelta(days=policy.lead_days))
    return out_by, out_by + timedelta(days=policy.max_gap_days)


def counts_towards(holding: Holding, target: Target, today: date) -> bool:
    """Whether the target counts this stock as usable (taking it out lowers its coverage)."""
    return holding.status == "available" and outlives_horizon(holding.expires_on, today, target.scope.horizon_days)


class TargetIndex:
    """Which targets count a position (as :meth:`TargetScope.counts` says), found by lookup.

    A target is filed once per material it counts, under its place — its warehouse, or its scope (a
    region with every region under it) — and the material, apart by the owner and sector it names; a
    position looks under its warehouse and each scope holding its region, so it meets only the
    targets of its material at its warehouse and above it. Targets are met in a fixed ``order``:
    warehouse targets before region targets, then those naming no sector before those naming one,
    then likewise for an owner, then as given."""

    def __init__(self, targets: Iterable[Target]) -> None:
        self.targets = list(targets)
        self.filed: dict[tuple, dict[tuple, list[Target]]] = defaultdict(lambda: defaultdict(list))
        self.order: dict[str, tuple[bool, bool, bool, int]] = {}
        self._scopes: dict[str, list[tuple]] = defaultdict(list)  # region → the places of the scopes holding it
        scopes: set[tuple] = set()
        for rank, target in enumerate(self.targets):
            scope = target.scope
            self.order[target.code] = (scope.warehouse is None, scope.sector is not None, scope.owner is not None,
                                       rank)
            place = self.place(target)
            if scope.warehouse is None and place not in scopes:
                scopes.add(place)
                for region in scope.regions:
                    self._scopes[region].append(place)
            for material in scope.materials:
                self.filed[place, material][scope.owner, scope.sector].append(target)

    @staticmethod
    def place(target: Target) -> tuple:
        """Where ``target`` is filed: its warehouse, or its scope."""
        scope = target.scope
        return ("warehouse", scope.warehouse) if scope.warehouse is not None else ("scope", scope.regions)

    def places(self, holding: Holding) -> list[tuple]:
        """Where the targets counting ``holding`` are filed (with its material)."""
        return [("warehouse", holding.warehouse), *self._scopes.get(holding.region, ())]

    def counting(self, holding: Holding) -> list[Target]:
        """The targets counting ``holding``, in ``order``."""
        found = [target for place in self.places(holding)
                 for (owner, sector), targets in self.filed.get((place, holding.material), {}).items()
                 if (owner is None or owner == holding.owner) and (sector is None or sector == holding.sector)
                 for target in targets]
        return sorted(found, key=lambda t: self.order[t.code])


@dataclass
class _Standing:
    """A target's rotation standing while planning: its usable coverage, what is out, and what is
    still to go of stock it counts; ``rooms`` remembers its headroom (``_rooms``) per (out-share cap,
    unit precision) until an order changes it."""

    usable: Decimal = Decimal(0)
    out: Decimal = Decimal(0)
    to_go: Decimal = Decimal(0)
    held: dict[str, Position] = field(default_factory=dict)  # material → first position held back
    rooms: dict[tuple[Decimal, int], tuple[int, int]] = field(default_factory=dict)

    def take(self, quantity: Decimal, counted: bool) -> None:
        """A new order takes ``quantity`` out (of stock the target counts, when ``counted``)."""
        self.out += quantity
        if counted:
            self.to_go += quantity
        self.rooms.clear()


class _Shelf:
    """The targets filed under one place and material naming one owner and sector (``TargetIndex``),
    as planning goes on: ``open``, those not holding the material back yet, each with its standing
    (by code, in filing order); ``first_holding``, the first in ``TargetIndex.order`` that does;
    ``least``, per (out-share cap, unit precision), the least headroom of the open targets and how
    many orders had been planned when it was found (an order can lower it; a target leaving ``open``
    cannot)."""

    __slots__ = ("owner", "sector", "open", "first_holding", "least")

    def __init__(self, owner: str | None, sector: str | None, targets: list[Target],
                 standing: Mapping[str, _Standing]) -> None:
        self.owner, self.sector = owner, sector
        self.open = {t.code: (t, standing[t.code]) for t in targets}
        self.first_holding: Target | None = None
        self.least: dict[tuple[Decimal, int], tuple[int, int]] = {}

    def counts(self, holding: Holding) -> bool:
        return ((self.owner is None or self.owner == holding.owner)
                and (self.sector is None or self.sector == holding.sector))


class _Counting:
    """The targets counting each position while planning, shelf by shelf (:class:`_Shelf`). A
    position skips a shelf whose every open target has room for all of it and never meets a target
    that holds its material back already, so a run costs what the tight targets cost, not what
    every target above each lot would. Ties are broken in ``TargetIndex.order``, as if each position
    met every target counting it in that order."""

    def __init__(self, index: TargetIndex) -> None:
        self.index = index
        self.standing = {t.code: _Standing() for t in index.targets}  # by target code
        self.shelves: dict[tuple, list[_Shelf]] = {}  # (place, material) → its shelves
        self.orders = 0  # orders planned so far

    def _shelves(self, place: tuple, material: str) -> list[_Shelf]:
        found = self.shelves.get((place, material))
        if found is None:
            found = self.shelves[place, material] = [
                _Shelf(owner, sector, targets, self.standing)
                for (owner, sector), targets in self.index.filed.get((place, material), {}).items()]
        return found

    def of(self, holding: Holding) -> list[_Shelf]:
        return [shelf for place in self.index.places(holding) for shelf in self._shelves(place, holding.material)
                if shelf.counts(holding)]

    def hold(self, target: Target, position: Position) -> None:
        """``target`` holds later lots of the position's material back until this one has gone."""
        material = position.holding.material
        held = self.standing[target.code].held
        if material in held:
            return
        held[material] = position
        scope, order = target.scope, self.index.order
        for shelf in self.shelves.get((self.index.place(target), material), ()):
            if shelf.owner == scope.owner and shelf.sector == scope.sector:
                shelf.open.pop(target.code, None)
                first = shelf.first_holding
                if first is None or order[target.code] < order[first.code]:
                    shelf.first_holding = target

    def take(self, position: Position, quantity: int, today: date) -> list[Target]:
        """A new order takes ``quantity`` units of the position out of every target counting it;
        returns those targets, in order."""
        counting = self.index.counting(position.holding)
        amount = units_as_quantity(quantity, position.decimals)
        for target in counting:
            self.standing[target.code].take(amount, counts_towards(position.holding, target, today))
        self.orders += 1
        return counting


def _ratio(value: Decimal) -> str:
    return f"{value:.2f}"


def _figure(quantity: Decimal) -> str:
    """A quantity in words, as exact as it is and no longer: ``11352.8``, not ``11352.8000000000000000``
    (coverage sums come from PostgreSQL with twenty decimal places)."""
    return f"{quantity.normalize():f}"


def _rooms(target: Target, standing: _Standing, cap: tuple[Decimal, int]) -> tuple[int, int]:
    """The whole units the target lets go out under ``cap`` (out-share cap, unit precision): (within
    its out-share cap, within its floor — binding only on stock it counts); remembered in
    ``standing.rooms`` (read there first) until an order changes the target's standing."""
    share, d = cap
    found = standing.rooms[cap] = (whole_units(share * target.quantity - standing.out, d),
                                   whole_units(standing.usable - standing.to_go - target.floor, d))
    return found


def _why(reason: str, policy: Policy, target: Target, standing: _Standing) -> Why:
    """Why ``target`` lets no more go, for ``reason`` (as ``_room`` found it), in both wordings."""
    if reason == "out_share":
        figures = (f" has {_ratio(standing.out / target.quantity)} out for rotation, cap "
                   f"{_ratio(policy.max_out_share)}")
        return Why(f"out-share cap reached: target {target.code}{figures}",
                   f"out-share cap reached: {target.public_name}" + (figures if target.figures_disclosed else ""))
    left = standing.usable - standing.to_go
    figures = (f" at {_ratio(left / target.quantity)}, floor {_ratio(target.floor_ratio)} "
               f"({_figure(left)} of {_figure(target.quantity)} usable once the open orders are out)")
    return Why(f"replacement must arrive before more can go: target {target.code}{figures}",
               f"replacement must arrive before more can go: {target.public_name}"
               + (figures if target.figures_disclosed else " is at its protected floor"))


def _trigger(position: Position, policy: Policy, today: date) -> str:
    expires_on = position.holding.expires_on
    assert expires_on is not None
    days_left = (expires_on - today).days
    where = f"lot {position.lot_code} of {position.holding.material} at {position.holding.warehouse}"
    if days_left <= 0:
        return f"{where} expired on {expires_on}"
    rules = []
    if policy.trigger_days_before_expiry is not None:
        rules.append(f"{policy.trigger_days_before_expiry} days before expiry")
    if policy.trigger_fraction_remaining is not None:
        rules.append(f"{_ratio(policy.trigger_fraction_remaining)} of shelf life left")
    return f"{where} expires on {expires_on} ({days_left} days left; policy {policy.code}: {' or '.join(rules)})"


@dataclass(slots=True)
class _Room:
    """What the targets counting a position let go of it: ``fits`` units; ``binding`` the tightest
    (target, reason, why) when not all of it; ``short`` every target without room for all of it (each
    holds later lots of the material back behind this one); ``waits`` when it waits behind an earlier
    lot (then that lot, not a target, is what holds it back)."""

    fits: int
    binding: tuple[Target, str, Why | Waits] | None = None
    short: tuple[Target, ...] = ()
    waits: bool = False

    @property
    def short_codes(self) -> tuple[str, ...]:
        return tuple(t.code for t in self.short)


def _room(position: Position, amount: int, policy: Policy, shelves: list[_Shelf], counting: _Counting,
          today: date) -> _Room:
    """How much of ``amount`` units of the position the targets counting it (on ``shelves``) let go now."""
    holding, cap, orders = position.holding, (policy.max_out_share, position.decimals), counting.orders
    order = counting.index.order
    first_holding = None  # the first target that holds later lots of the material back already
    fits, tightest, short = amount, None, []
    for shelf in shelves:
        first = shelf.first_holding
        if first is not None and (first_holding is None or order[first.code] < order[first_holding.code]):
            first_holding = first
        least = shelf.least.get(cap)
        if least is not None and least[1] == orders and least[0] >= amount:
            continue  # every open target of the shelf has room for all of it
        lowest = None
        for target, standing in shelf.open.values():
            out_room, floor_room = standing.rooms.get(cap) or _rooms(target, standing, cap)
            least_here = out_room if out_room < floor_room else floor_room
            if lowest is None or least_here < lowest:
                lowest = least_here
            if floor_room < out_room and counts_towards(holding, target, today):
                room, reason = (floor_room if floor_room > 0 else 0), "floor"
            else:
                room, reason = (out_room if out_room > 0 else 0), "out_share"
            if room < amount:
                short.append(target)
            if room < fits or (room == fits and tightest is not None
                               and order[target.code] < order[tightest[0].code]):
                fits, tightest = room, (target, reason)
        if lowest is not None:
            shelf.least[cap] = (lowest, orders)
    if len(short) > 1:
        short.sort(key=lambda t: order[t.code])
    if first_holding is not None:
        # A position waiting behind an earlier lot at one target still holds later lots back at the
        # others short of room for it — as it would if it did not wait (planning again, the earlier
        # lot's remainder may be what waits in its place).
        target = first_holding
        waits = Waits(counting.standing[target.code].held[holding.material], target)
        return _Room(0, (target, "first_expiring", waits), tuple(short), waits=True)
    if tightest is None:
        return _Room(fits, None, tuple(short))
    target, reason = tightest
    return _Room(fits, (target, reason, _why(reason, policy, target, counting.standing[target.code])), tuple(short))


def open_orders_of(orders: Iterable[OpenOrder], targets: Iterable[Target], today: date) -> OpenOrders:
    """The open orders as the planner weighs them (:class:`OpenOrders`): the reference rule, order
    by order. The service reads the same sums set-wise (``stockpile.store.rotation_plan``)."""
    index = TargetIndex(targets)
    out: dict[str, Decimal] = defaultdict(Decimal)
    to_go: dict[str, Decimal] = defaultdict(Decimal)
    by_position: dict[tuple[str, str], int] = {}
    for order in orders:
        by_position[order.key] = by_position.get(order.key, 0) + order.still_to_go
        for target in index.counting(order.holding):
            out[target.code] += units_as_quantity(order.not_replaced, order.decimals)
            if counts_towards(order.holding, target, today):
                to_go[target.code] += units_as_quantity(order.still_to_go, order.decimals)
    return OpenOrders({code: Outstanding(out[code], to_go.get(code, Decimal(0))) for code in out}, by_position)


def _order(position: Position, policy: Policy, room: _Room, counting: list[Target], today: date) -> PlannedOrder:
    out_by, in_by = out_and_in_by(position.holding.expires_on, policy, today)
    amount = format_quantity(room.fits, position.decimals)
    trigger = _trigger(position, policy, today)
    if room.binding is None:
        shown = [t.code for t in counting if t.disclosed]
        explanation = f"{trigger}; all {amount} out" + (
            f", within every target's headroom ({', '.join(t.code for t in counting)})" if counting else
            ", no reserve target counts it")
        public = f"{trigger}; all {amount} out" + (
            f", within every target's headroom ({', '.join(shown)})" if shown else
            ", within every target's headroom" if counting else ", no reserve target counts it")
    else:
        held = format_quantity(position.available - room.fits, position.decimals)
        explanation = f"{trigger}; {amount} out now, {held} held back — {room.binding[2].full}"
        public = f"{trigger}; {amount} out now, {held} held back — {room.binding[2].public}"
    return PlannedOrder(position.lot_id, position.holding.owner, policy.id, room.fits, out_by, in_by, policy.outlet,
                        explanation, position, room.short_codes, public)


class RotationRun:
    """A planning run made ready before the targets' coverage is known: the targets filed
    (:class:`TargetIndex`), and the due positions in first-expiring order, each with its policy and
    the shelves of targets counting it (none for a position its region's readiness suspends:
    ``levels`` maps a region id to its effective readiness level, a region not in it is at peace).
    :meth:`plan` weighs them once the coverage and the open orders are read; a run plans once."""

    def __init__(self, positions: Iterable[Position], targets: Iterable[Target], policies: Iterable[Policy],
                 levels: Mapping[int, str], today: date) -> None:
        policies = list(policies)
        self.today = today
        self.index = TargetIndex(targets)
        self.counting: _Counting | None = _Counting(self.index)
        self.due: list[tuple[Position, Policy, list[_Shelf] | None]] = []
        policy_of: dict[str, Policy | None] = {}  # by material
        for position in sorted(positions, key=lambda p: p.fefo_key):
            if position.holding.status != "available" or position.available <= 0:
                continue
            material = position.holding.material
            if material not in policy_of:
                policy_of[material] = policy_for(material, position.category, policies)
            policy = policy_of[material]
            if policy is None or not is_due(position.holding.expires_on, position.shelf_life_days, policy, today):
                continue
            suspended = levels.get(position.region_id, "peacetime") in SUSPENDING_LEVELS
            self.due.append((position, policy, None if suspended else self.counting.of(position.holding)))

    def plan(self, usable: Mapping[str, Decimal], open_orders: OpenOrders) -> RotationPlan:
        """Plan rotation orders for the due positions, first expiring first, within every target's
        out-share cap and protected floor (see the module's docstring for the rules).

        ``usable``: each target's usable coverage now, by code (a target missing from it has none);
        ``open_orders``: the orders being worked, as sums (:class:`OpenOrders`). Orders come out in
        the order they were planned (first expiring first)."""
        counting, today = self.counting, self.today
        if counting is None:
            raise RuntimeError("a rotation run plans once")
        self.counting = None
        standing = counting.standing
        for code, weighed in standing.items():
            weighed.usable = usable.get(code, Decimal(0))
        for code, outstanding in open_orders.by_target.items():
            if code in standing:
                standing[code].out, standing[code].to_go = outstanding.out, outstanding.to_go
        ordered = dict(open_orders.by_position)
        plan = RotationPlan()
        for position, policy, shelves in self.due:
            if shelves is None:
                if position.key not in ordered:
                    plan.suspended.append(position)
                continue
            # A position with an open order gets no second one; what it holds beyond that order still
            # dies first, so a target without room for it holds later lots back as before.
            key, material = position.key, position.holding.material
            amount = position.available - ordered.get(key, 0)
            if amount <= 0:
                continue
            room = _room(position, amount, policy, shelves, counting, today)
            for target in room.short:  # later lots of the material wait until this one has gone
                if material not in standing[target.code].held:
                    counting.hold(target, position)
            if key in ordered:
                continue
            if room.fits == 0:
                target, reason, why = room.binding
                plan.blocked.append(Blocked(position.lot_id, position.holding.owner, target.code, reason,
                                            position.available, position, policy, today, why,
                                            () if room.waits else room.short_codes))
                continue
            ordered[key] = room.fits
            plan.orders.append(_order(position, policy, room, counting.take(position, room.fits, today), today))
        return plan


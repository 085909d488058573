"""Who is asking, what their roles let them do, where, and what they may see.

Rules:

- Roles gate operations (the README's role matrix); ``admin`` is not implied by anything.
- ``admin``, ``auditor`` and ``commander`` act nationally. An ``operator`` acts only on the
  warehouses granted to it, directly or through a region (sub-regions included); a ``planner`` only
  in the regions granted (and any warehouse granted directly). Outside scope a write is forbidden
  and a read answers as if the object did not exist.
- Need-to-know: stock owned by a ``military`` party is shown in detail only to principals with
  ``military`` clearance; others may not act on it and see it at most as an aggregate.
- A ``sensor`` is a device: it may only post readings, of sensors at the warehouses granted to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stockpile.domain.errors import DomainError, Forbidden, NotFound

ROLES = ("operator", "planner", "commander", "auditor", "admin", "metrics", "sensor")

# Roles that may read reserve data through the API (``metrics`` sees only /metrics aggregates).
READERS = frozenset({"operator", "planner", "commander", "auditor", "admin"})
# Roles an action needs, whether the API's guards or a CLI command's ``--as`` asks (in the order a
# refusal names them): posting movements (and importing them), writing master data (and importing
# it), proposing, deciding and drilling allocation plans.
MOVEMENT_POSTERS = ("operator", "admin")
MASTER_DATA_WRITERS = ("admin",)
PLANNERS = ("planner", "commander", "admin")
CAPACITY_SURVEYORS = ("planner", "admin")  # recording capacities (and importing their surveys)
# Posting sensor readings: a device token (``sensor``: scoped to warehouses, may do nothing else),
# or a person acting for a device.
READING_POSTERS = ("sensor", "operator", "admin")
NATIONAL_ROLES = frozenset({"admin", "auditor", "commander"})
MILITARY = "military"


@dataclass(frozen=True)
class Principal:
    """An authenticated person or system.

    ``warehouse_ids`` and ``region_ids`` are its scope with grants already expanded: every
    warehouse granted directly or lying in a granted region's subtree, and every region in a
    granted subtree.
    """

    id: int
    name: str
    roles: frozenset[str]
    clearance: str | None = None
    warehouse_ids: frozenset[int] = field(default_factory=frozenset)
    region_ids: frozenset[int] = field(default_factory=frozenset)

    def has_any(self, roles: frozenset[str] | set[str] | tuple[str, ...]) -> bool:
        return bool(self.roles & set(roles))

    @property
    def national(self) -> bool:
        """Acts and reads everywhere (no warehouse or region scope applies)."""
        return self.has_any(NATIONAL_ROLES)

    @property
    def cleared_military(self) -> bool:
        return self.clearance == MILITARY

    def covers_warehouse(self, warehouse_id: int) -> bool:
        return self.national or warehouse_id in self.warehouse_ids

    def covers_region(self, region_id: int) -> bool:
        return self.national or region_id in self.region_ids

    def may_see_owner(self, sector: str) -> bool:
        return sector != MILITARY or self.cleared_military

    @property
    def warehouse_filter(self) -> list[int] | None:
        """Warehouse ids a read is limited to, or ``None`` for no limit."""
        return None if self.national else sorted(self.warehouse_ids)

    @property
    def visibility(self) -> Visibility:
        """What this principal's reads are limited to (the one filter every read asks)."""
        return Visibility(
            warehouse_ids=None if self.national else tuple(sorted(self.warehouse_ids)),
            region_ids=None if self.national else tuple(sorted(self.region_ids)),
            cleared=self.cleared_military,
        )


@dataclass(frozen=True)
class Visibility:
    """The limits of a read, as ``stockpile.store.visibility`` applies them in SQL.

    ``warehouse_ids`` / ``region_ids``: the reader's scope (``None``: national, no limit);
    ``cleared``: military-owned stock, military targets and what is derived from them are shown.
    """

    warehouse_ids: tuple[int, ...] | None = None
    region_ids: tuple[int, ...] | None = None
    cleared: bool = True

    def params(self) -> dict[str, list[int] | bool | None]:
        """Keyword arguments of the store's reads (``warehouse_ids``, ``region_ids``, ``cleared``)."""
        return {"warehouse_ids": None if self.warehouse_ids is None else list(self.warehouse_ids),
                "region_ids": None if self.region_ids is None else list(self.region_ids),
                "cleared": self.cleared}

    @property
    def ledger(self) -> dict[str, list[int] | bool | None]:
        """The keyword arguments of the ledger reads (stock, lots, movements, transfers)."""
        params = self.params()
        del params["region_ids"]
        return params


def require_warehouse(principal: Principal, warehouse_id: int, code: str) -> None:
    """Writes only inside the principal's scope."""
    if not principal.covers_warehouse(warehouse_id):
        raise Forbidden(f"{principal.name} may not act on warehouse {code}")


def require_cleared(principal: Principal, sector: str) -> None:
    """Only principals cleared for it act on military-owned stock (the answer names no quantity)."""
    if not principal.may_see_owner(sector):
        raise Forbidden("this stock is owned by the military sector; acting on it needs military clearance")


def require_visible(visible: bool, what: str) -> None:
    """An object the caller may not see answers as if it did not exist."""
    if not visible:
        raise NotFound(f"no {what}")


# Reserve targets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetPlace:
    """Where a reserve target stands and whose stock it counts, as the policy needs to know it.

    ``military``: it counts one military owner's stock or the military sector's.
    ``counts_every_owner``: it names neither an owner nor a sector, so its figures include military
    stock wherever there is some; at one warehouse (``every_owner_at_warehouse``) that would place
    military quantities at a depot, so such a target is an uncleared reader's to see not at all.
    """

    warehouse_id: int | None
    region_id: int | None
    military: bool
    counts_every_owner: bool

    @classmethod
    def of(cls, warehouse_id: int | None, region_id: int | None, *, names_owner: bool, owner_sector: str | None,
           sector: str | None) -> TargetPlace:
        """A target's place from its scope, whether it names an owner (and that owner's sector) and
        the sector it names."""
        return cls(warehouse_id, region_id, military=MILITARY in (owner_sector, sector),
                   counts_every_owner=not names_owner and sector is None)

    @property
    def every_owner_at_warehouse(self) -> bool:
        return self.counts_every_owner and self.warehouse_id is not None

    @property
    def figures_disclosed(self) -> bool:
        """Its figures count no military stock: it names one non-military owner or sector."""
        return not self.military and not self.counts_every_owner


def target_disclosed(target: TargetPlace) -> bool:
    """Whether a reader without military clearance may see the target at all (scope aside)."""
    return not (target.military or target.every_owner_at_warehouse)


def target_visible(principal: Principal, target: TargetPlace) -> bool:
    """A target is seen by readers whose scope holds its scope, and — without military clearance —
    only when it is neither military nor every owner's stock at one warehouse.
    ``stockpile.store.visibility.TARGETS`` is the same rule in SQL."""
    in_scope = principal.national or (
        target.warehouse_id in principal.warehouse_ids if target.warehouse_id is not None
        else target.region_id in principal.region_ids)
    return in_scope and (principal.cleared_military or target_disclosed(target))


def require_target_writable(principal: Principal, now: TargetPlace | None, becomes: TargetPlace) -> None:
    """Writing a target: the caller must see it as it is now (else it does not exist for them),
    and both the target as it is and as it becomes must lie in the caller's scope and clearance —
    nobody replaces a target they could not have set."""
    if now is not None:
        require_visible(target_visible(principal, now), "reserve target with this code")
    if not target_visible(principal, becomes):
        if becomes.military or becomes.every_owner_at_warehouse:
            raise Forbidden("a target counting military stock, or every owner's stock at one warehouse, "
                            "needs military clearance")
        raise Forbidden(f"{principal.name} may not set targets outside its regions")


def shows_figures_of(principal: Principal, *, counts_every_owner: bool) -> bool:
    """An aggregate that counts every owner's stock (coverage of an all-owner target, as an alert
    reports it) includes military stock: an uncleared reader sees its state, not its figures, so no
    military position can be recovered by subtracting what that reader can see."""
    return principal.cleared_military or not counts_every_owner


# Allocation: requests, plans, drills, obligations ------------------------------------------------
#
# Each object is judged as it is now. A request says what a party needs and where: it is seen where
# its destination is, and a military requester's need only with clearance. A plan is seen by whoever
# may see all of its requests (or holds every warehouse it draws from: those who dispatch it); the
# lines it draws on military stock are withheld from uncleared readers. A drill is seen by readers
# holding every destination it planned for; uncleared readers see its variant computed without
# military stock. An obligation is seen where its lot or its debtor's destination is, and never by
# an uncleared reader when either party is military. ``stockpile.store.visibility`` holds the same
# rules in SQL (REQUESTS, PLANS, DRILLS, OBLIGATIONS).


@dataclass(frozen=True)
class RequestPlace:
    """An allocation request as the policy needs it: where the stock goes, who asks."""

    destination_id: int
    destination_region_id: int
    requester_military: bool


def request_visible(principal: Principal, request: RequestPlace) -> bool:
    """Seen by readers whose scope holds the destination warehouse; a military requester's request
    (what the military needs, where) only by readers cleared for it."""
    return principal.covers_warehouse(request.destination_id) and (
        principal.cleared_military or not request.requester_military)


def require_request_writable(principal: Principal, request: RequestPlace, *, exists: bool = True,
                             name: str = "allocation request") -> None:
    """Filing or cancelling a request: an existing one must be seen as it is now (else 404), and its
    destination must be the caller's to act on, a military requester needing clearance (else 403)."""
    if exists:
        require_visible(request_visible(principal, request), name)
    if not principal.covers_warehouse(request.destination_id):
        raise Forbidden(f"{principal.name} may not act on requests for this destination")
    if request.requester_military and not principal.cleared_military:
        raise Forbidden("the requester is a military party; acting for it needs military clearance")


@dataclass(frozen=True)
class PlanPlace:
    """A plan as the policy needs it: its requests, and the warehouses and owners its lines draw on."""

    requests: tuple[RequestPlace, ...]
    source_warehouse_ids: frozenset[int]
    draws_military_stock: bool


def plan_visible(principal: Principal, plan: PlanPlace) -> bool:
    """Seen by readers who may see every request of the plan, or — so the depots that dispatch it can
    — who hold every warehouse it draws from (and may see its requesters). Lines on military stock
    are withheld from uncleared readers (``line_shown``), not the plan."""
    if not principal.cleared_military and any(r.requester_military for r in plan.requests):
        return False
    return (all(principal.covers_warehouse(r.destination_id) for r in plan.requests)
            or (bool(plan.source_warehouse_ids)
                and all(principal.covers_warehouse(w) for w in plan.source_warehouse_ids)))


def line_shown(principal: Principal, owner_sector: str) -> bool:
    """A plan or drill line drawing on military stock is shown only with clearance — not masked
    (its quantity and distance would place the stock), withheld."""
    return principal.may_see_owner(owner_sector)


def require_plan_decidable(principal: Principal, plan: PlanPlace, *, touches_military_stock: bool,
                           name: str = "allocation plan") -> None:
    """Approving or cancelling a plan: seen as it is now (else 404); every request's destination in
    the caller's regions (else 403); and clearance when the decision reserves or releases military
    stock (``touches_military_stock``). ``name``: the plan as a missing one's problem names it."""
    require_visible(plan_visible(principal, plan), name)
    if not all(principal.covers_region(r.destination_region_id) for r in plan.requests):
        raise Forbidden(f"{principal.name} may decide only plans whose every destination lies in its regions")
    if touches_military_stock and not principal.cleared_military:
        raise Forbidden("the plan draws on stock owned by the military sector; this needs military clearance")


def require_plan_dispatchable(principal: Principal, plan: PlanPlace, *, name: str = "allocation plan") -> None:
    """Dispatching a plan: seen as it is now (else 404); every warehouse it draws from in the
    caller's scope, and clearance when it carries military stock (else 403)."""
    require_visible(plan_visible(principal, plan), name)
    if not all(principal.covers_warehouse(w) for w in plan.source_warehouse_ids):
        raise Forbidden(f"{principal.name} may dispatch only plans drawing on its own warehouses")
    if plan.draws_military_stock and not principal.cleared_military:
        raise Forbidden("the plan draws on stock owned by the military sector; this needs military clearance")


def drill_visible(principal: Principal, destination_ids: frozenset[int] | None) -> bool:
    """A drill is seen nationally, or by readers holding every destination it planned for
    (``None``: not known, national readers only)."""
    return principal.national or (destination_ids is not None
                                  and all(principal.covers_warehouse(w) for w in destination_ids))


def sees_full_drill(principal: Principal) -> bool:
    """A drill is stored twice over: as computed (for cleared readers) and solved again without
    military stock or military requesters (for the others: none of its figures depends on a military
    position, so none can be inverted to one)."""
    return principal.cleared_military


@dataclass(frozen=True)
class ObligationPlace:
    """An obligation as the policy needs it: its parties, its lot's warehouse and the destinations
    of the draws that made it."""

    creditor_military: bool
    debtor_military: bool
    lot_warehouse_id: int
    destination_ids: frozenset[int]


def obligation_visible(principal: Principal, obligation: ObligationPlace) -> bool:
    """Seen by readers whose scope holds its lot's warehouse or a destination it was drawn for; never
    by an uncleared reader when the creditor or the debtor is military."""
    if not principal.cleared_military and (obligation.creditor_military or obligation.debtor_military):
        return False
    return principal.covers_warehouse(obligation.lot_warehouse_id) or any(
        principal.covers_warehouse(w) for w in obligation.destination_ids)


def require_party_writable(principal: Principal, sector_now: str | None, sector_becomes: str) -> None:
    """A party's sector decides who sees its stock: turning a military party civilian would show its
    stock to every reader, turning a party military would hide its stock from them. Either, and any
    change to a military party, needs military clearance."""
    if MILITARY in (sector_now, sector_becomes) and not principal.cleared_military:
        raise Forbidden("changing a military party, or making a party military, needs military clearance")


def order_visible(principal: Principal, warehouse_id: int, owner_sector: str) -> bool:
    """A rotation order is seen where its position is: in the reader's warehouses, and — without
    clearance — not of a military owner (``stockpile.store.visibility.ROTATION_ORDERS`` in SQL)."""
    return principal.covers_warehouse(warehouse_id) and principal.may_see_owner(owner_sector)


def require_national_remit(principal: Principal, root_region_ids: list[int], what: str) -> None:
    """Rules that apply across the nation are set by national roles, or by a planner granted a
    top-level region (the nation) — never by one whose remit is a province or a district."""
    if not (principal.national or set(root_region_ids) & principal.region_ids):
        raise Forbidden(f"{what} apply nationally; {principal.name} is granted only part of the nation")


def lot_disclosed(principal: Principal, military_only: bool) -> bool:
    """Need-to-know of a lot (scope aside): a lot a military party holds (or held) a position in and
    no other party holds stock in (``military_only``, ``stockpile.store.visibility.MILITARY_ONLY_LOT``)
    does not exist for a reader without clearance — reads answer 404 and writes naming it by id
    answer exactly as for an unknown lot, so a refusal cannot confirm it."""
    return principal.cleared_military or not military_only


def require_lot_writable(principal: Principal, lot_id: str, warehouse_id: int, warehouse: str,
                         holder_sectors: set[str], military_only: bool) -> None:
    """Changing a lot (its status, its expiry): a lot the principal may not know of is missing (404),
    one outside its warehouses is refused (403), and so is one any holder of which needs a clearance
    it lacks."""
    if not lot_disclosed(principal, military_only):
        raise NotFound(f"lot {lot_id} does not exist")
    require_warehouse(principal, warehouse_id, warehouse)
    for sector in holder_sectors:
        require_cleared(principal, sector)


def movement_disclosed(principal: Principal, touched_sectors: set[str]) -> bool:
    """A movement touching any military position does not exist for a reader without clearance
    (the rule of ``stockpile.store.visibility.MOVEMENTS``)."""
    return principal.cleared_military or MILITARY not in touched_sectors


# Mobilisation potential ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CapacityPlace:
    """A capacity as the policy needs it: the region (and warehouse) it delivers to, and whether it
    is military (a military party's, or held for the military: ``domain.potential.capacity_military``)."""

    region_id: int
    warehouse_id: int | None
    military: bool


def capacity_visible(principal: Principal, capacity: CapacityPlace) -> bool:
    """Seen by readers whose scope holds the region it delivers to (or its warehouse), and — without
    clearance — only when it is not military (``stockpile.store.visibility.CAPACITIES`` in SQL)."""
    in_scope = principal.covers_region(capacity.region_id) or (
        capacity.warehouse_id is not None and principal.covers_warehouse(capacity.warehouse_id))
    return in_scope and (principal.cleared_military or not capacity.military)


def require_capacity_writable(principal: Principal, now: CapacityPlace | None, becomes: CapacityPlace) -> None:
    """Surveying a capacity: the caller must see it as it is now (else it does not exist for it), and
    both as it is and as it becomes it must lie in the caller's regions, a military one needing
    clearance (else 403)."""
    if now is not None:
        require_visible(capacity_visible(principal, now), "capacity with this code")
    for place in (now, becomes):
        if place is None:
            continue
        if place.military and not principal.cleared_military:
            raise Forbidden("a capacity of a military party, or held for the military, needs military clearance")
        if not principal.covers_region(place.region_id):
            raise Forbidden(f"{principal.name} may not survey capacities outside its regions")
# Sensors ------------------------------------------------------------------------------------------


def sensor_disclosed(principal: Principal, military_tank: bool) -> bool:
    """Need-to-know of a sensor (scope aside): a tank gauge measures every owner's stock of its
    material in its tank, so where a military party holds (or held) stock of that material at its
    warehouse (``military_tank``, ``stockpile.store.visibility.MILITARY_TANK``) its readings, last
    reading and variance would place military quantities: it does not exist for a reader without
    clearance. A temperature or humidity probe measures no stock and is disclosed."""
    return principal.cleared_military or not military_tank


def sensor_visible(principal: Principal, warehouse_id: int, military_tank: bool) -> bool:
    """A sensor is seen by readers holding its warehouse, a military tank's gauge only with clearance
    (``stockpile.store.visibility.SENSORS`` in SQL)."""
    return principal.covers_warehouse(warehouse_id) and sensor_disclosed(principal, military_tank)


def reading_refused(principal: Principal, code: str, warehouse_id: int, military_tank: bool) -> DomainError | None:
    """Why ``principal`` may not post a reading of sensor ``code`` (None: it may). A sensor it may not
    know of is refused as an unknown one; one outside its warehouses is forbidden."""
    if not sensor_disclosed(principal, military_tank):
        return unknown_sensor(code)
    if not principal.covers_warehouse(warehouse_id):
        return Forbidden(f"{principal.name} may not post readings of sensors at this warehouse")
    return None


def unknown_sensor(code: str) -> NotFound:
    return NotFound(f"no sensor {code}")

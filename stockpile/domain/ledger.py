"""The double-entry ledger's rules: which postings each kind of movement makes.

Guarantees (enforced again in PostgreSQL, see migration 0001, and checked in tests):

1. A stock account's balance is never negative and ``0 <= reserved <= balance``: no function here
   takes more than a position's *available* quantity (balance − reserved).
2. The postings of a movement sum to zero per material (``assert_balanced``).
4. Corrections are new movements: ``reversal_postings`` negates the original postings.
7. Unusable stock (expired, quarantined, recalled) is never issued or transferred, but may be
   written off, counted, re-titled or reversed; expired stock may be rotated out.

Every function takes positions the store has read *and locked* and returns postings; none of them
performs I/O.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from stockpile.domain.errors import Conflict, InsufficientStock, Invalid, UnusableLot
from stockpile.domain.lots import unusable_reason
from stockpile.domain.quantities import format_quantity

EXTERNAL_ACCOUNTS = ("supply", "consumption", "loss", "adjustment")


@dataclass(frozen=True)
class Position:
    """A stock or transit account as read (and locked) by the store, with its lot's facts."""

    account_id: int
    lot_id: str
    lot_code: str
    owner_id: int
    owner_code: str
    material_id: int
    decimals: int
    balance: int
    reserved: int
    status: str
    expires_on: date | None

    @property
    def available(self) -> int:
        """What may still be taken: balance less what approved plans have reserved."""
        return self.balance - self.reserved

    def moved(self, delta: int) -> Position:
        """The position once a posting of ``delta`` is applied (built field by field: this is on
        every movement's path, where ``dataclasses.replace`` costs several times as much)."""
        return Position(self.account_id, self.lot_id, self.lot_code, self.owner_id, self.owner_code, self.material_id,
                        self.decimals, self.balance + delta, self.reserved, self.status, self.expires_on)

    def fmt(self, units: int) -> str:
        return format_quantity(units, self.decimals)


@dataclass(frozen=True)
class Posting:
    """One signed quantity on one account: a stock/transit account id, or an external account."""

    material_id: int
    delta: int
    account_id: int | None = None
    external: str | None = None

    def __post_init__(self) -> None:
        if (self.account_id is None) == (self.external is None):
            raise ValueError("a posting names exactly one account")
        if self.external is not None and self.external not in EXTERNAL_ACCOUNTS:
            raise ValueError(f"unknown external account {self.external!r}")
        if self.delta == 0:
            raise ValueError("a posting moves a non-zero quantity")


def assert_balanced(postings: Iterable[Posting]) -> None:
    """Guarantee 2: the postings of one movement sum to zero per material."""
    totals: dict[int, int] = defaultdict(int)
    for posting in postings:
        totals[posting.material_id] += posting.delta
    unbalanced = {material: total for material, total in totals.items() if total}
    if unbalanced:
        raise ValueError(f"unbalanced postings: {unbalanced}")


def _stock(position: Position, delta: int) -> Posting:
    return Posting(position.material_id, delta, account_id=position.account_id)


def _external(position: Position, kind: str, delta: int) -> Posting:
    return Posting(position.material_id, delta, external=kind)


def require_usable(position: Position, today: date) -> None:
    """Guarantee 7 for one lot: refuse expired, quarantined or recalled stock."""
    reason = unusable_reason(position.status, position.expires_on, today)
    if reason is not None:
        raise UnusableLot(
            f"lot {position.lot_code} is {reason} and cannot be used",
            lot_id=position.lot_id, reason=reason,
        )


def require_available(position: Position, quantity: int) -> None:
    """Guarantee 1: never take more than balance − reserved."""
    if quantity > position.available:
        raise InsufficientStock(
            f"lot {position.lot_code} holds {position.fmt(position.available)} available for "
            f"{position.owner_code}; {position.fmt(quantity)} requested",
            available=position.fmt(position.available), requested=position.fmt(quantity),
            lot_id=position.lot_id, owner=position.owner_code,
        )


def receipt_postings(position: Position, quantity: int) -> list[Posting]:
    """Stock arrives from supply into the (lot, owner) position."""
    return [_stock(position, quantity), _external(position, "supply", -quantity)]


def pick_first_expiring(positions: Sequence[Position], quantity: int, today: date) -> list[tuple[Position, int]]:
    """Choose which lots an issue draws from: usable lots only, first-expiring first.

    Non-perishable lots (no expiry) come last; ties go to the lot code so the choice is stable.
    Raises ``InsufficientStock`` (with the usable total) when the usable lots cannot cover it.
    """
    usable = [p for p in positions if unusable_reason(p.status, p.expires_on, today) is None and p.available > 0]
    usable.sort(key=lambda p: (p.expires_on is None, p.expires_on or date.max, p.lot_code, p.lot_id))
    picks: list[tuple[Position, int]] = []
    remaining = quantity
    for position in usable:
        if remaining == 0:
            break
        take = min(position.available, remaining)
        picks.append((position, take))
        remaining -= take
    if remaining:
        total = sum(p.available for p in usable)
        decimals = positions[0].decimals if positions else 0
        raise InsufficientStock(
            f"usable stock available is {format_quantity(total, decimals)}; {format_quantity(quantity, decimals)} requested",
            available=format_quantity(total, decimals), requested=format_quantity(quantity, decimals),
        )
    return picks


def issue_postings(picks: Sequence[tuple[Position, int]], today: date, to: str = "consumption") -> list[Posting]:
    """Stock leaves the reserve for use. Each picked lot must be usable and cover its share."""
    postings: list[Posting] = []
    for position, quantity in picks:
        require_usable(position, today)
        require_available(position, quantity)
        postings += [_stock(position, -quantity), _external(position, to, quantity)]
    return postings


def rotation_out_postings(position: Position, quantity: int) -> list[Posting]:
    """Old stock leaves the reserve on a rotation order, into civilian use: the postings of an
    issue. Guarantee 7 lets expired stock be rotated out (that is what rotation is for), but
    quarantined or recalled stock is held for inspection and may not leave this way."""
    if position.status != "available":
        raise UnusableLot(
            f"lot {position.lot_code} is {position.status} and cannot be rotated out",
            lot_id=position.lot_id, reason=position.status,
        )
    require_available(position, quantity)
    return [_stock(position, -quantity), _external(position, "consumption", quantity)]


def adjustment_postings(position: Position, counted: int) -> list[Posting]:
    """A physical count sets the position; the difference goes to loss (short) or adjustment (over)."""
    difference = counted - position.balance
    if counted < position.reserved:
        raise Conflict(
            f"counted {position.fmt(counted)} is below the {position.fmt(position.reserved)} reserved for approved "
            "plans; cancel or amend those plans first",
            reserved=position.fmt(position.reserved),
        )
    if difference == 0:
        return []
    other = "loss" if difference < 0 else "adjustment"
    return [_stock(position, difference), _external(position, other, -difference)]


def write_off_postings(position: Position, quantity: int) -> list[Posting]:
    """Stock is destroyed or lost. Allowed for unusable lots (that is what write-off is for)."""
    require_available(position, quantity)
    return [_stock(position, -quantity), _external(position, "loss", quantity)]


def ownership_transfer_postings(source: Position, target: Position, quantity: int) -> list[Posting]:
    """Title changes, custody does not: same lot, another owner."""
    if source.lot_id != target.lot_id:
        raise ValueError("an ownership transfer stays within one lot")
    if source.owner_id == target.owner_id:
        raise Invalid.field("to_owner", "must differ from from_owner")
    require_available(source, quantity)
    return [_stock(source, -quantity), _stock(target, quantity)]


def dispatch_postings(lines: Sequence[tuple[Position, Position, int]], today: date) -> list[Posting]:
    """A transfer leaves: each (source stock, transit, quantity) line moves stock into transit.

    Lines drawing on the same position are checked together, so two lines cannot overdraw it.
    """
    wanted: dict[int, int] = defaultdict(int)
    postings: list[Posting] = []
    for source, transit, quantity in lines:
        require_usable(source, today)
        wanted[source.account_id] += quantity
        require_available(source, wanted[source.account_id])
        postings += [_stock(source, -quantity), _stock(transit, quantity)]
    return postings


def transfer_receipt_postings(lines: Sequence[tuple[Position, Position, int]]) -> list[Posting]:
    """A transfer arrives: each (transit, destination stock, received) line empties its transit
    account into the destination lot; a short receipt posts the difference to loss."""
    postings: list[Posting] = []
    for transit, destination, received in lines:
        if received > transit.balance:
            raise Invalid.field("received", f"more than the {transit.fmt(transit.balance)} dispatched")
        postings.append(_stock(transit, -transit.balance))
        if received:
            postings.append(_stock(destination, received))
        short = transit.balance - received
        if short:
            postings.append(_external(transit, "loss", short))
    return postings


def reversal_postings(original: Sequence[Posting], positions: dict[int, Position]) -> list[Posting]:
    """Undo a movement by posting its negation. A reversal that takes stock back out of a position
    still may not take more than is available there."""
    reversed_ = [Posting(p.material_id, -p.delta, account_id=p.account_id, external=p.external) for p in original]
    taken: dict[int, int] = defaultdict(int)
    for posting in reversed_:
        if posting.account_id is not None and posting.delta < 0:
            taken[posting.account_id] -= posting.delta
    for account_id, quantity in taken.items():
        require_available(positions[account_id], quantity)
    return reversed_

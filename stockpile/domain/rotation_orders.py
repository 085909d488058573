"""Rotation orders as operators work them, rotation policies as planners write them, and the
re-dating of lots after a shelf-life test.

Rules:

- An order is worked by ``rotation_out`` movements (old stock of its lot and owner leaves) and
  ``rotation_in`` movements (fresh stock of its material arrives for its owner). Neither may go past
  the order's quantity; the first movement puts it ``in_progress``, and it is ``completed`` once
  both have covered its quantity. A completed or cancelled order takes no more movements.
- A reversal of one of its movements takes that movement's quantity back off the order (reopening
  it when it was completed), so an order's progress is always the net of its movements.
- An open order is overdue when its old stock has not all left by ``out_by``, or its fresh stock has
  not all arrived by ``in_by``.
- A policy applies to exactly one material or one category and has at least one trigger.
- A passed shelf-life test moves a lot's expiry later, by at most the cap of one extension.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from stockpile.domain.errors import Conflict, Invalid

OPEN_STATES = ("planned", "in_progress")
RATIO_PLACES = 4  # rotation_policies stores its ratios as numeric(6, 4)


@dataclass(frozen=True)
class OrderProgress:
    """What a rotation order has done so far (quantities in the material's smallest unit)."""

    id: str
    quantity: int
    out_quantity: int
    in_quantity: int
    state: str

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES


def state_after(quantity: int, out_quantity: int, in_quantity: int) -> str:
    """``completed`` once old stock out and fresh stock in both cover the quantity, else ``in_progress``."""
    return "completed" if out_quantity >= quantity and in_quantity >= quantity else "in_progress"


def _require_open(order: OrderProgress) -> None:
    if not order.open:
        raise Conflict(f"rotation order {order.id} is {order.state} and takes no more movements",
                       rotation_order_id=order.id, state=order.state)


def record_out(order: OrderProgress, quantity: int, fmt) -> OrderProgress:
    """The order after ``quantity`` more of its old stock left; refuses to go past its quantity.
    ``fmt`` writes a quantity for the message (the material's decimals)."""
    _require_open(order)
    remaining = order.quantity - order.out_quantity
    if quantity > remaining:
        raise Conflict(
            f"rotation order {order.id} has {fmt(remaining)} left to rotate out; {fmt(quantity)} requested",
            rotation_order_id=order.id, remaining=fmt(remaining), requested=fmt(quantity),
        )
    out_quantity = order.out_quantity + quantity
    return OrderProgress(order.id, order.quantity, out_quantity, order.in_quantity,
                         state_after(order.quantity, out_quantity, order.in_quantity))


def record_in(order: OrderProgress, quantity: int, fmt) -> OrderProgress:
    """The order after ``quantity`` more fresh stock arrived; refuses to go past its quantity."""
    _require_open(order)
    remaining = order.quantity - order.in_quantity
    if quantity > remaining:
        raise Conflict(
            f"rotation order {order.id} has {fmt(remaining)} left to rotate in; {fmt(quantity)} received",
            rotation_order_id=order.id, remaining=fmt(remaining), requested=fmt(quantity),
        )
    in_quantity = order.in_quantity + quantity
    return OrderProgress(order.id, order.quantity, order.out_quantity, in_quantity,
                         state_after(order.quantity, order.out_quantity, in_quantity))


def undo(order: OrderProgress, direction: str, quantity: int) -> OrderProgress:
    """The order after a reversal takes back ``quantity`` of its ``"out"`` or ``"in"`` progress: a
    completed order is open again (in progress, or planned when nothing is left done); a cancelled
    one stays cancelled."""
    out_quantity = order.out_quantity - (quantity if direction == "out" else 0)
    in_quantity = order.in_quantity - (quantity if direction == "in" else 0)
    if out_quantity < 0 or in_quantity < 0:
        raise ValueError(f"rotation order {order.id} never recorded the quantity being reversed")
    if order.state == "cancelled":
        state = "cancelled"
    else:
        state = "planned" if out_quantity == 0 and in_quantity == 0 else "in_progress"
    return OrderProgress(order.id, order.quantity, out_quantity, in_quantity, state)


def is_overdue(state: str, quantity: int, out_quantity: int, in_quantity: int, out_by: date, in_by: date,
               today: date) -> bool:
    """An open order whose old stock is not all out by ``out_by`` or fresh stock not all in by ``in_by``."""
    if state not in OPEN_STATES:
        return False
    return (out_quantity < quantity and out_by < today) or (in_quantity < quantity and in_by < today)


def _ratio_error(value: Decimal, *, upper_inclusive: bool) -> str | None:
    if not value.is_finite() or value <= 0 or value > 1 or (value == 1 and not upper_inclusive):
        return "must lie in (0, 1]" if upper_inclusive else "must lie strictly between 0 and 1"
    if value.as_tuple().exponent < -RATIO_PLACES:
        return f"has more than {RATIO_PLACES} decimal places"
    return None


def policy_errors(*, material: str | None, category: str | None, trigger_days_before_expiry: int | None,
                  trigger_fraction_remaining: Decimal | None, max_out_share: Decimal) -> list[dict[str, str]]:
    """Per-field problems of a rotation policy (empty when it is sound)."""
    errors = []
    if (material is None) == (category is None):
        errors.append({"field": "material", "message": "give exactly one of material or category"})
    if trigger_days_before_expiry is None and trigger_fraction_remaining is None:
        errors.append({"field": "trigger_days_before_expiry",
                       "message": "give at least one trigger: trigger_days_before_expiry or trigger_fraction_remaining"})
    if trigger_fraction_remaining is not None:
        problem = _ratio_error(trigger_fraction_remaining, upper_inclusive=False)
        if problem:
            errors.append({"field": "trigger_fraction_remaining", "message": problem})
    problem = _ratio_error(max_out_share, upper_inclusive=True)
    if problem:
        errors.append({"field": "max_out_share", "message": problem})
    return errors


def extension_cap_days(policy_max_extension_days: int | None, shelf_life_days: int | None) -> int | None:
    """Longest one extension may add: the applicable policy's cap, else the material's shelf life."""
    return policy_max_extension_days if policy_max_extension_days is not None else shelf_life_days


def check_extension(current_expiry: date | None, new_expiry: date | None, cap_days: int | None) -> None:
    """A passed test re-dates a lot: later than its current expiry, by at most ``cap_days``."""
    if current_expiry is None:
        raise Invalid.field("new_expires_on", "the lot does not expire (non-perishable); there is nothing to extend")
    if new_expiry is None:
        raise Invalid.field("new_expires_on", "is required when the test passed")
    if cap_days is None:
        raise Invalid.field("new_expires_on", "no cap applies to this lot (no rotation policy with max_extension_days "
                                              "and no shelf life on its material), so it cannot be extended")
    if new_expiry <= current_expiry:
        raise Invalid.field("new_expires_on", f"must be after the lot's current expiry {current_expiry.isoformat()}")
    latest = current_expiry + timedelta(days=cap_days)
    if new_expiry > latest:
        raise Invalid.field("new_expires_on", f"extends by more than the {cap_days}-day cap: at most {latest.isoformat()}")

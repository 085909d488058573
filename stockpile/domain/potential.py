"""Mobilisation potential: what industry can deliver, how fast, and how long the reserve lasts with it.

A capacity is potential, not stock: a refinery's daily diesel, a mill's flour. It is counted in
days of supply *with capacity* and is a source of the allocation solve, tasked after stock within a
priority (``stockpile.domain.allocation``) — never in balances, coverage or floors.

Days of supply with capacity: the stock ``S`` is drawn at the daily need ``D``; each capacity adds
its daily quantity ``C`` from its lead day ``L`` on. The stock on day ``t`` is
``S − D·t + Σ C·max(0, t − L)``; the reserve lasts until the first day that reaches zero. Output
that arrives after the stock ran out does not undo the gap, so a capacity whose lead is longer than
the stock lasts adds nothing. When the capacities together keep up with the need before the stock
runs out, the reserve is sustained (no end).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

TENTH = Decimal("0.1")


@dataclass(frozen=True)
class Output:
    """A capacity as the arithmetic needs it: a daily quantity from its lead day on (material units)."""

    lead_days: int
    daily: Decimal


@dataclass(frozen=True)
class DaysOfSupply:
    """Days of supply without and with capacity; ``sustained`` when capacity keeps up for good
    (then ``with_capacity`` is None)."""

    without: Decimal
    with_capacity: Decimal | None
    sustained: bool


def days_with_capacity(stock: Decimal, daily_need: Decimal, outputs: Iterable[Output]) -> DaysOfSupply:
    """How many days ``stock`` lasts a ``daily_need`` (> 0), alone and with ``outputs`` mobilised,
    each from its lead day (to a tenth of a day, as ``stockpile.domain.coverage.days_of_supply``)."""
    if daily_need <= 0:
        raise ValueError("days of supply need a positive daily need")
    stock = max(stock, Decimal(0))
    without = _tenths(stock / daily_need)
    by_lead: dict[int, Decimal] = {}
    for o in outputs:
        by_lead[o.lead_days] = by_lead.get(o.lead_days, Decimal(0)) + o.daily
    day, level, rate = Decimal(0), stock, -daily_need
    for lead in sorted(by_lead):
        if rate < 0 and level + rate * (lead - day) < 0:
            break
        level += rate * (lead - day)
        day, rate = Decimal(lead), rate + by_lead[lead]
    if rate >= 0:
        return DaysOfSupply(without, None, True)
    return DaysOfSupply(without, _tenths(day + level / -rate), False)


def _tenths(days: Decimal) -> Decimal:
    return days.quantize(TENTH)


def capacity_military(party_sector: str, held_for: str | None) -> bool:
    """A capacity of a military party, or held for the military, is military (need-to-know)."""
    return "military" in (party_sector, held_for)


def survey_due_on(surveyed_on: date, interval_days: int) -> date:
    """The day after which a capacity's survey is overdue."""
    return surveyed_on + timedelta(days=interval_days)


def survey_overdue(surveyed_on: date, interval_days: int, today: date) -> bool:
    """Past ``surveyed_on + survey_interval_days`` the figures are no longer trusted."""
    return today > survey_due_on(surveyed_on, interval_days)


# Tasking: capacity as a source of the allocation solve ------------------------------------------


@dataclass(frozen=True)
class Tasked:
    """A capacity ready to be tasked: its daily output (smallest units) from ``lead_days`` on."""

    key: int
    material_id: int
    daily: int
    lead_days: int
    region_ids: frozenset[int] = frozenset()  # the region it delivers to and every region under it
    substitution_group: str | None = None  # its material's group


@dataclass(frozen=True)
class Tasking:
    """Task ``capacity`` on ``start_on`` for ``quantity`` toward ``request_id``: output begins on
    ``ready_on`` and covers the quantity by ``due_on`` (the request's need date)."""

    request_id: str
    capacity: int
    quantity: int
    start_on: date
    ready_on: date
    due_on: date


def output_by(capacity: Tasked, today: date, day: date) -> int:
    """What ``capacity``, tasked ``today``, has delivered by the end of ``day`` (0 if its lead does not fit)."""
    days = (day - today).days - capacity.lead_days + 1
    return capacity.daily * max(0, days)


def schedule(capacity: Tasked, draws: Iterable[tuple[str, date, int]], today: date) -> list[Tasking]:
    """The taskings of one capacity for what the allocation solve draws on it: ``draws`` as (request
    id, need date, quantity). Its output serves them earliest need date first, so each is tasked on
    the latest day from which the output delivers it, and every draw due before it, by its need date
    (the solve never draws more than the output by each date). Exact integers."""
    taskings, total = [], 0
    for request_id, due_on, quantity in sorted(draws, key=lambda d: (d[1], d[0])):
        total += quantity
        producing_days = -(-total // capacity.daily)
        start_on = max(today, due_on - timedelta(days=capacity.lead_days + producing_days - 1))
        taskings.append(Tasking(request_id, capacity.key, quantity, start_on,
                                start_on + timedelta(days=capacity.lead_days), due_on))
    return taskings

"""Mobilisation potential for planners: per region × material, usable stock and days of supply
beside the capacity that could be mobilised, the capacities themselves and the tasking orders
approved plans made — read through the same use cases as the API (a military capacity, or one held
for the military, is not there for an uncleared reader)."""

from __future__ import annotations

from litestar import Request, Response, get

from stockpile.api.auth import can_read
from stockpile.api.presenters.capacities import present_capacity, present_order, present_potential
from stockpile.console import charts
from stockpile.console.planner import CATEGORIES
from stockpile.console.web import render, signed_in, speaker
from stockpile.domain.errors import Invalid
from stockpile.domain.moments import Clock
from stockpile.services import capacities, masterdata, taskings

ROWS = 1000
CHART_DAYS = 180  # the chart's days-of-supply scale ends here (longer and sustained bars are drawn full)


def _state(item: dict) -> str:
    """How a row of the potential reads on the chart: ``ok`` when capacity sustains the need or stock
    lasts the chart's span, ``warning`` past 30 days, else ``critical``."""
    days = item["days_of_supply_with_capacity"]
    if item["sustained"] or (days is not None and days >= CHART_DAYS):
        return "ok"
    return "warning" if days is not None and days >= 30 else "critical"


@get("/potential", guards=[signed_in, can_read])
async def potential_page(request: Request, region: str | None = None, category: str | None = None) -> Response:
    """The filter form sends its empty choices as empty values: they mean every region and category."""
    region, category = region or None, category or None
    if category is not None and category not in CATEGORIES:
        raise Invalid.field("category", f"is one of {', '.join(CATEGORIES)}")
    voice = speaker(request)
    today = Clock.utc().today
    async with request.app.state.db.transaction() as tx:
        items = [present_potential(i) for i in await capacities.potential(
            tx.pg, request.user, today=today, region=region, category=category)]
        held = [present_capacity(r, today) for r in await capacities.listing(
            tx.pg, request.user, region=region, material=None, after=None, limit=ROWS)]
        orders = [present_order(r, today) for r in await taskings.listing(
            tx.pg, request.user, state=None, capacity=None, after=None, limit=ROWS)]
        regions = await masterdata.page(tx.pg, "regions", request.user, after=None, limit=ROWS)
    known = [i for i in items if i["days_of_supply"] is not None]
    chart = charts.bars(voice.gettext("Days of supply with capacity mobilised"), [
        charts.Bar(f"{i['region']} · {i['material']}",
                   CHART_DAYS if i["sustained"] else min(i["days_of_supply_with_capacity"] or 0, CHART_DAYS),
                   voice.gettext("sustained") if i["sustained"]
                   else voice.ngettext("%(num)d day", "%(num)d days", int(i["days_of_supply_with_capacity"] or 0)),
                   _state(i)) for i in known[:40]], maximum=CHART_DAYS)
    return render(request, "potential.html", items=items, capacities=held, taskings=orders, regions=regions,
                  region=region, category=category, categories=CATEGORIES, chart=chart if known else None)


HANDLERS = [potential_page]

"""Sensors in the console: a warehouse's probes and gauges (on its page) and one sensor's recent
readings drawn against its band — read through the sensor use cases, so a military tank's gauge does
not exist for an uncleared reader here either."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from litestar import Request, Response, get

from stockpile.api.auth import can_read
from stockpile.api.presenters.alerts import present_alert
from stockpile.api.presenters.sensors import present_reading, present_sensor
from stockpile.console import charts
from stockpile.console.web import render, signed_in, speaker
from stockpile.domain.sensors import FUTURE_SKEW
from stockpile.services import alerts, sensors

ROWS = 1000
CHART_SPAN = timedelta(hours=24)  # the sensor page draws this much of the latest readings
CHART_READINGS = 2000
TABLE_READINGS = 20
# A sensor's state from its alerts not yet resolved, the gravest first (as the metrics count them).
STATE_OF_ALERT = {"cold_chain_excursion": "excursion", "stock_variance": "variance", "sensor_offline": "offline"}
GRAVITY = ("excursion", "variance", "offline", "ok")


async def unresolved_alerts(pg, principal) -> list[dict]:
    """The alerts the reader may see that are open or acknowledged (not yet resolved)."""
    rows = []
    for state in ("open", "acknowledged"):
        rows += await alerts.listing(pg, principal, state=state, kind=None, after=None, limit=ROWS)
    return [present_alert(r, principal) for r in rows]


def states(sensor_codes: list[str], unresolved: list[dict]) -> dict[str, str]:
    """Each sensor's state: ``excursion``, ``variance`` or ``offline`` while such an alert of it is
    unresolved, else ``ok``."""
    found: dict[str, set[str]] = {code: set() for code in sensor_codes}
    for alert in unresolved:
        subject = alert["subject"] or ""
        if subject.startswith("sensor:") and alert["kind"] in STATE_OF_ALERT and subject[7:] in found:
            found[subject[7:]].add(STATE_OF_ALERT[alert["kind"]])
    return {code: next(s for s in GRAVITY if s in kinds or s == "ok") for code, kinds in found.items()}


async def of_warehouse(pg, principal, code: str, unresolved: list[dict]) -> list[dict]:
    """The sensors of a warehouse the reader may see, each with its state and last reading."""
    listed = [present_sensor(r) for r in await sensors.listing(pg, principal, warehouse=code, after=None, limit=ROWS)]
    state = states([s["code"] for s in listed], unresolved)
    return [s | {"state": state[s["code"]]} for s in listed]


def _band(sensor: dict) -> tuple[float | None, float | None]:
    band = sensor["band"] or {}
    return tuple(None if band.get(edge) is None else float(Decimal(band[edge])) for edge in ("min", "max"))


@get("/sensors/{code:str}", guards=[signed_in, can_read])
async def sensor_page(request: Request, code: str) -> Response:
    """A sensor: what it watches, its state, its last day of readings as a chart with its band, and
    the latest readings."""
    voice = speaker(request)
    until = datetime.now(timezone.utc) + FUTURE_SKEW
    async with request.app.state.db.transaction() as tx:
        row, rows = await sensors.readings(tx.pg, code, request.user, since=until - CHART_SPAN, until=until, step=None,
                                           after=None, limit=CHART_READINGS)
        sensor = present_sensor(row)
        unresolved = [a for a in await unresolved_alerts(tx.pg, request.user) if a["subject"] == f"sensor:{code}"]
    sensor["state"] = states([code], unresolved)[code]
    readings = [present_reading(r) for r in rows]
    low, high = _band(sensor)
    band_label = voice.gettext("Allowed band") + f": {'' if low is None else f'{low:g}'}–{'' if high is None else f'{high:g}'}"
    chart = charts.line(voice.gettext("Readings of the last 24 hours"),
                        [charts.Point(voice.moment(r["at"]), float(Decimal(r["value"]))) for r in readings],
                        band=(low, high), band_label=band_label, unit=sensor["unit"])
    outside = sum(1 for r in readings if (low is not None and float(Decimal(r["value"])) < low)
                  or (high is not None and float(Decimal(r["value"])) > high))
    return render(request, "sensor.html", sensor=sensor, chart=chart, latest=list(reversed(readings))[:TABLE_READINGS],
                  count=len(readings), outside=outside, alerts=unresolved)


HANDLERS = [sensor_page]

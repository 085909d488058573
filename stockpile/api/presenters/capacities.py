"""Capacity, survey, potential and tasking order JSON."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from stockpile.domain.moments import iso_day, rfc3339
from stockpile.domain.potential import survey_due_on, survey_overdue
from stockpile.domain.quantities import format_quantity
from stockpile.services.capacities import Potential


def present_capacity(row, today: date) -> dict[str, Any]:
    return {
        "code": row["code"], "party": row["party"], "material": row["material"], "unit": row["unit"],
        "daily_quantity": format_quantity(row["daily_quantity"], row["decimals"]), "lead_days": row["lead_days"],
        "region": row["region"], "warehouse": row["warehouse"], "held_for": row["held_for"],
        "surveyed_on": iso_day(row["surveyed_on"]), "survey_interval_days": row["survey_interval_days"],
        "survey_due_on": iso_day(survey_due_on(row["surveyed_on"], row["survey_interval_days"])),
        "survey_overdue": survey_overdue(row["surveyed_on"], row["survey_interval_days"], today),
        "note": row["note"], "updated_at": rfc3339(row["updated_at"]),
    }


def present_capacity_with_surveys(row, surveys, today: date) -> dict[str, Any]:
    return {**present_capacity(row, today), "surveys": [
        {"surveyed_on": iso_day(s["surveyed_on"]), "daily_quantity": format_quantity(s["daily_quantity"], row["decimals"]),
         "lead_days": s["lead_days"], "note": s["note"], "recorded_at": rfc3339(s["recorded_at"]),
         "recorded_by": s["recorded_by"]} for s in surveys]}


def _days(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def present_potential(item: Potential) -> dict[str, Any]:
    """``days_of_supply_with_capacity`` is None with ``sustained`` true when capacity keeps up with the
    need for good; both day figures are None when no target of the region says whom it serves."""
    row, days, d = item.row, item.days, item.row["decimals"]
    return {
        "region": row["region"], "material": row["material"], "category": row["category"], "unit": row["unit"],
        "usable": format_quantity(row["units"], d), "capacity_per_day": format_quantity(row["daily"], d),
        "capacity_by_lead_day": [{"lead_days": lead, "daily_quantity": format_quantity(daily, d)}
                                 for lead, daily in zip(row["leads"], row["dailies"])],
        "population": row["population"],
        "daily_need": None if item.daily_need is None else format(item.daily_need.normalize(), "f"),
        "days_of_supply": None if days is None else _days(days.without),
        "days_of_supply_with_capacity": None if days is None else _days(days.with_capacity),
        "sustained": days is not None and days.sustained,
    }


def present_order(row, today: date) -> dict[str, Any]:
    """A tasking order: ``overdue`` while open past its due date."""
    d = row["decimals"]
    return {"id": row["id"], "plan_id": row["plan_id"], "request_id": row["request_id"], "capacity": row["capacity"],
            "party": row["party"], "material": row["material"], "unit": row["unit"], "destination": row["destination"],
            "quantity": format_quantity(row["quantity"], d), "received": format_quantity(row["received"], d),
            "start_on": iso_day(row["start_on"]), "ready_on": iso_day(row["ready_on"]), "due_on": iso_day(row["due_on"]),
            "state": row["state"], "overdue": row["state"] == "open" and row["due_on"] < today,
            "ordered_at": rfc3339(row["ordered_at"]), "completed_at": rfc3339(row["completed_at"])}

"""Sensor and reading JSON."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from stockpile.api.problems import STATUS
from stockpile.domain.errors import DomainError
from stockpile.domain.moments import rfc3339


def _num(value: Decimal | None) -> str | None:
    """A measured value as written (no exponent, no trailing zeros beyond the value's own)."""
    return None if value is None else format(value, "f")


def present_sensor(row) -> dict[str, Any]:
    band = None if row["band_min"] is None and row["band_max"] is None else {
        "min": _num(row["band_min"]), "max": _num(row["band_max"])}
    return {
        "code": row["code"], "warehouse": row["warehouse"], "kind": row["kind"], "storage_class": row["storage_class"],
        "material": row["material"], "unit": row["unit"], "band": band, "tolerance_minutes": row["tolerance_minutes"],
        "last_reading": None if row["last_at"] is None else {"at": rfc3339(row["last_at"]),
                                                             "value": _num(row["last_value"])},
    }


def present_reading(row) -> dict[str, Any]:
    return {"at": rfc3339(row["at"]), "value": _num(row["value"])}


def present_average(row) -> dict[str, Any]:
    """One ``step`` of readings: its start, mean, extremes and how many readings it holds."""
    return {"at": rfc3339(row["at"]), "value": _num(row["mean"].normalize()), "min": _num(row["min"]),
            "max": _num(row["max"]), "readings": row["readings"]}


def present_refusal(index: int, sensor: str, error: DomainError) -> dict[str, Any]:
    status = STATUS.get(error.type, 409)
    return {"index": index, "sensor": sensor, "status": status,
            "problem": {"type": error.type, "title": error.title, "status": status, "detail": error.detail,
                        **error.extra}}

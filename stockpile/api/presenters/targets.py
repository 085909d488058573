"""Reserve target and coverage JSON."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from stockpile.services.targets import Coverage

THOUSANDTH = Decimal("0.001")


def _num(value: Decimal) -> str:
    return format(value.quantize(THOUSANDTH).normalize(), "f")


def present_target(row) -> dict[str, Any]:
    return {
        "code": row["code"],
        "scope": {"warehouse": row["warehouse"]} if row["warehouse"] else {"region": row["region"]},
        "material": row["material"], "category": row["category"], "substitution_group": row["substitution_group"],
        "owner": row["owner"], "sector": row["sector"], "quantity": _num(row["quantity"]),
        "warning_ratio": float(row["warning_ratio"]), "critical_ratio": float(row["critical_ratio"]),
        "floor_ratio": float(row["floor_ratio"]), "horizon_days": row["horizon_days"], "population": row["population"],
    }


def present_coverage(item: Coverage) -> dict[str, Any]:
    row = item.row
    return {
        **present_target(row), "target": row["code"], "required": _num(item.required), "usable": _num(item.usable),
        "floor": _num(item.required * row["floor_ratio"]), "ratio": round(float(item.ratio), 4), "state": item.state,
        "days_of_supply": None if item.days_of_supply is None else float(item.days_of_supply), "unit": row["unit"],
    }

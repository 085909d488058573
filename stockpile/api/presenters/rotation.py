"""Rotation policy, rotation order and shelf-life extension JSON."""

from __future__ import annotations

from datetime import date
from typing import Any

from stockpile.domain import rotation_orders as rules
from stockpile.domain.access import Principal
from stockpile.domain.moments import iso_day, rfc3339
from stockpile.domain.quantities import format_quantity
from stockpile.services.rotation import ShelfLifeTest


def present_policy(row) -> dict[str, Any]:
    fraction = row["trigger_fraction_remaining"]
    return {
        "code": row["code"], "material": row["material"], "category": row["category"],
        "trigger_days_before_expiry": row["trigger_days_before_expiry"],
        "trigger_fraction_remaining": None if fraction is None else float(fraction),
        "max_out_share": float(row["max_out_share"]), "max_gap_days": row["max_gap_days"], "outlet": row["outlet"],
        "lead_days": row["lead_days"], "max_extension_days": row["max_extension_days"],
        "updated_at": rfc3339(row["updated_at"]),
    }


def present_order(row, today: date, principal: Principal) -> dict[str, Any]:
    """An order as the reader sees it: without military clearance, its explanation in the public
    wording (no hidden target, no military lot, no figure counting military stock)."""
    d = row["decimals"]
    return {
        "id": row["id"], "lot_id": row["lot_id"], "lot_code": row["lot_code"], "owner": row["owner"],
        "warehouse": row["warehouse"], "material": row["material"], "unit": row["unit"], "policy": row["policy"],
        "quantity": format_quantity(row["quantity"], d), "out_quantity": format_quantity(row["out_quantity"], d),
        "in_quantity": format_quantity(row["in_quantity"], d),
        "out_by": iso_day(row["out_by"]), "in_by": iso_day(row["in_by"]), "outlet": row["outlet"], "state": row["state"],
        "overdue": rules.is_overdue(row["state"], row["quantity"], row["out_quantity"], row["in_quantity"],
                                    row["out_by"], row["in_by"], today),
        "explanation": row["explanation"] if principal.cleared_military else row["public_explanation"],
        "cancel_reason": row["cancel_reason"],
        "created_at": rfc3339(row["created_at"]), "updated_at": rfc3339(row["updated_at"]),
    }


def present_extension(row) -> dict[str, Any]:
    return {
        "id": row["id"], "lot_id": row["lot_id"], "previous_expires_on": iso_day(row["previous_expires_on"]),
        "new_expires_on": iso_day(row["new_expires_on"]), "test_reference": row["test_reference"],
        "result": row["result"], "recorded_by": row["recorded_by"], "recorded_at": rfc3339(row["recorded_at"]),
    }


def present_shelf_life_test(test: ShelfLifeTest) -> dict[str, Any]:
    head = test.lot
    return {
        **present_extension(test.extension),
        "lot": {"id": head["id"], "code": head["code"], "expires_on": iso_day(head["expires_on"]),
                "expired": test.expired, "status": head["status"]},
    }

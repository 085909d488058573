"""Obligation JSON: quantities in the material's decimals, the open/settled state, and the
settlements when one obligation is read."""

from __future__ import annotations

from typing import Any

from stockpile.domain.moments import rfc3339
from stockpile.domain.quantities import format_quantity
from stockpile.services.obligations import Obligation


def present_obligation(row, settled: list | None = None) -> dict[str, Any]:
    fmt = lambda units: format_quantity(units, row["decimals"])  # noqa: E731
    body = {
        "id": str(row["id"]), "kind": row["kind"], "rule": row["rule_code"], "rule_version": row["rule_version"],
        "movement_id": str(row["movement_id"]), "lot_id": str(row["lot_id"]), "material": row["material"],
        "creditor": row["creditor"], "debtor": row["debtor"], "quantity": fmt(row["quantity"]),
        "settled": fmt(row["settled_quantity"]), "outstanding": fmt(row["quantity"] - row["settled_quantity"]),
        "state": "settled" if row["settled_quantity"] == row["quantity"] else "open",
        "created_at": rfc3339(row["created_at"]), "settled_at": rfc3339(row["settled_at"]),
    }
    if settled is not None:
        body["settlements"] = [{"movement_id": None if s["movement_id"] is None else str(s["movement_id"]),
                                "quantity": fmt(s["quantity"]), "note": s["note"], "recorded_by": s["recorded_by"],
                                "recorded_at": rfc3339(s["recorded_at"])} for s in settled]
    return body


def present_with_settlements(found: Obligation) -> dict[str, Any]:
    return present_obligation(found.row, found.settlements)

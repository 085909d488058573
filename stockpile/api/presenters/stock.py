"""Stock JSON: positions and lots."""

from __future__ import annotations

from datetime import date
from typing import Any

from stockpile.api.presenters.rotation import present_extension
from stockpile.domain.lots import is_expired
from stockpile.domain.moments import iso_day, rfc3339
from stockpile.domain.quantities import format_quantity


def present_position(row, today: date) -> dict[str, Any]:
    d = row["decimals"]
    return {
        "lot_id": row["lot_id"], "lot_code": row["lot_code"], "warehouse": row["warehouse"], "region": row["region"],
        "material": row["material"], "category": row["category"], "unit": row["unit"], "owner": row["owner"],
        "owner_sector": row["owner_sector"],
        "balance": format_quantity(row["balance"], d), "reserved": format_quantity(row["reserved"], d),
        "available": format_quantity(row["balance"] - row["reserved"], d),
        "expires_on": row["expires_on"].isoformat() if row["expires_on"] else None,
        "expired": is_expired(row["expires_on"], today), "status": row["status"],
    }


def present_lot_head(row, today: date) -> dict[str, Any]:
    """A lot's head: what the list of lots shows, and ``GET /lots/{id}`` before its owners and history."""
    return {
        "id": row["id"], "code": row["code"], "warehouse": row["warehouse"], "material": row["material"],
        "unit": row["unit"], "manufactured_on": iso_day(row["manufactured_on"]), "expires_on": iso_day(row["expires_on"]),
        "expired": is_expired(row["expires_on"], today), "status": row["status"], "origin_lot_id": row["origin_lot_id"],
        "balance": format_quantity(row["balance"], row["decimals"]),
    }


def present_lot(head, positions, events, extensions, today: date) -> dict[str, Any]:
    """A lot with its owners' shares, its status history and its shelf-life extensions."""
    d = head["decimals"]
    return {
        **present_lot_head({**head, "balance": sum(p["balance"] for p in positions)}, today),
        "owners": [{
            "owner": p["owner"], "sector": p["sector"], "balance": format_quantity(p["balance"], d),
            "reserved": format_quantity(p["reserved"], d), "available": format_quantity(p["balance"] - p["reserved"], d),
        } for p in positions],
        "history": [{
            "kind": e["kind"], "from": e["from_value"], "to": e["to_value"], "reason": e["reason"],
            "by": e["actor"], "at": rfc3339(e["at"]),
        } for e in events],
        "shelf_life_extensions": [present_extension(r) for r in extensions],
    }

"""Allocation request JSON. (A plan is still presented by ``services.allocation.present_plan``: it
reads the plan's lines and requests while it presents them.)"""

from __future__ import annotations

from typing import Any

from stockpile.domain.moments import rfc3339
from stockpile.domain.quantities import format_quantity


def present_request(row) -> dict[str, Any]:
    return {"id": row["id"], "requester": row["requester"], "destination": row["destination"],
            "material": row["material"], "substitution_group": row["substitution_group"], "category": row["category"],
            "quantity": format_quantity(row["quantity"], row["decimals"]), "priority": row["priority"],
            "needed_by": row["needed_by"].isoformat(), "purpose": row["purpose"], "state": row["state"],
            "created_at": rfc3339(row["created_at"])}

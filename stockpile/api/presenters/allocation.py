"""Allocation JSON: requests and plans."""

from __future__ import annotations

from typing import Any

from stockpile.domain.moments import iso_day, rfc3339
from stockpile.domain.quantities import format_quantity
from stockpile.services.allocation import PlanView


def present_request(row) -> dict[str, Any]:
    return {"id": row["id"], "requester": row["requester"], "destination": row["destination"],
            "material": row["material"], "substitution_group": row["substitution_group"], "category": row["category"],
            "quantity": format_quantity(row["quantity"], row["decimals"]), "priority": row["priority"],
            "needed_by": row["needed_by"].isoformat(), "purpose": row["purpose"], "state": row["state"],
            "created_at": rfc3339(row["created_at"])}


def present_plan(view: PlanView) -> dict[str, Any]:
    """A plan as its reader may see it: its lines on stock, then its tasking lines; ``lines_withheld``
    says lines on military stock or military capacities were left out — no count, no sum, nothing
    per line."""
    plan = view.plan
    return {
        "id": plan["id"], "state": plan["state"], "rule_version": plan["rule_version"],
        "lines": [_present_line(plan["state"], line) for line in view.lines]
                 + [_present_tasking_line(row) for row in view.tasked],
        "lines_withheld": view.withheld,
        "requests": [_present_plan_request(r) for r in view.requests],
        "solver": {"objective": plan["objective"], "solve_ms": round(plan["solve_ms"], 3),
                   "build_ms": round(plan["build_ms"], 3), "arcs": plan["arcs"]},
        "created_at": rfc3339(plan["created_at"]), "approved_at": rfc3339(plan["approved_at"]),
        "reserved_until": rfc3339(plan["reserved_until"]), "dispatched_at": rfc3339(plan["dispatched_at"]),
        "ended_at": rfc3339(plan["ended_at"]), "end_reason": plan["end_reason"],
    }


def _line_state(plan_state: str, line) -> str:
    if line["received_at"] is not None:
        return "received"
    if line["transfer_id"] is not None:
        return "in_transit"
    return {"approved": "reserved", "proposed": "proposed"}.get(plan_state, "void")


def _present_line(plan_state: str, line) -> dict[str, Any]:
    return {"kind": "stock", "request_id": line["request_id"], "lot_id": line["lot_id"], "lot_code": line["lot_code"],
            "owner": line["owner"], "warehouse": line["warehouse"], "material": line["material"],
            "quantity": format_quantity(line["quantity"], line["decimals"]), "distance_km": float(line["distance_km"]),
            "rule": line["rule_code"], "obligation": line["obligation"],
            "expires_on": None if line["expires_on"] is None else line["expires_on"].isoformat(),
            "destination": line["destination"], "state": _line_state(plan_state, line),
            "transfer_id": line["transfer_id"], "obligation_id": line["obligation_id"]}


def _present_tasking_line(row) -> dict[str, Any]:
    """A plan's tasking line, after its lines on stock (``kind`` tells them apart)."""
    return {"kind": "tasking", "request_id": row["request_id"], "capacity": row["capacity"], "party": row["party"],
            "material": row["material"], "destination": row["destination"],
            "quantity": format_quantity(row["quantity"], row["decimals"]), "lead_days": row["lead_days"],
            "start_on": iso_day(row["start_on"]), "ready_on": iso_day(row["ready_on"]), "due_on": iso_day(row["due_on"]),
            "state": row["state"], "tasking_id": row["id"] if row["state"] != "proposed" else None}


def _present_plan_request(r) -> dict[str, Any]:
    return {"id": r["request_id"], "priority": r["priority"], "needed_by": r["needed_by"].isoformat(),
            "requested": format_quantity(r["requested"], r["decimals"]),
            "planned": format_quantity(r["planned"], r["decimals"]),
            "unfilled": format_quantity(r["requested"] - r["planned"], r["decimals"]), "reasons": list(r["reasons"])}

"""Readiness JSON: regions' effective levels, declarations, the allocation rule table."""

from __future__ import annotations

from typing import Any

from stockpile.domain.moments import rfc3339
from stockpile.domain.rules import Rule
from stockpile.services.readiness import RegionLevel, RuleTable


def present_level(item: RegionLevel) -> dict[str, Any]:
    r, source = item.region, item.source
    return {
        "region": r["code"], "name": r["name"], "parent": item.parent,
        "level": item.level, "declared_level": r["own_level"] or "peacetime",
        "source_region": source["code"] if source else None,
        "declaration_id": str(source["declaration_id"]) if source else None,
        "since": rfc3339(source["effective_at"]) if source else None, "pending_confirmations": r["pending"],
    }


def present_declaration(row) -> dict[str, Any]:
    return {
        "id": str(row["id"]), "region": row["region"], "level": row["level"], "reason": row["reason"],
        "state": row["state"], "declared_by": row["declared_by_name"], "declared_at": rfc3339(row["declared_at"]),
        "confirmed_by": row["confirmed_by_name"], "confirmed_at": rfc3339(row["confirmed_at"]),
        "effective_at": rfc3339(row["effective_at"]), "ends_at": rfc3339(row["ends_at"]), "ended_at": rfc3339(row["ended_at"]),
    }


def present_rule(rule: Rule) -> dict[str, Any]:
    return {"code": rule.code, "level": rule.level, "category": rule.category,
            "requester_sector": rule.requester_sector, "owner_sector": rule.owner_sector, "allowed": rule.allowed,
            "floor_ratio": None if rule.floor_ratio is None else float(rule.floor_ratio),
            "preference_cost": rule.preference_cost, "approval_required": rule.approval_required,
            "obligation": rule.obligation, "note": rule.note}


def present_rule_table(table: RuleTable) -> dict[str, Any]:
    return {"version": table.version, "current_version": table.current_version,
            "items": [present_rule(r) for r in table.rules]}

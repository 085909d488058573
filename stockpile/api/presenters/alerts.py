"""Alert JSON."""

from __future__ import annotations

import json
from typing import Any

from stockpile.domain.access import Principal, shows_figures_of
from stockpile.domain.moments import rfc3339


def present_alert(row, principal: Principal, history=None) -> dict[str, Any]:
    """An alert as the reader may see it: a shortfall of a target counting every owner's stock
    shows an uncleared reader its state, not the figures (they count military stock)."""
    details = row["details"]
    details = json.loads(details) if isinstance(details, str) else details
    title = row["title"]
    if not shows_figures_of(principal, counts_every_owner=row["counts_every_owner"]):
        details = {"target": details.get("target"), "restricted": True}
        title = f"reserve target {details['target']} is {row['severity']}"
    body = {
        "id": row["id"], "kind": row["kind"], "subject": row["subject"], "severity": row["severity"],
        "state": row["state"], "title": title, "details": details,
        "warehouse": row["warehouse"], "region": row["region"], "opened_at": rfc3339(row["opened_at"]),
        "last_seen_at": rfc3339(row["last_seen_at"]), "acknowledged_at": rfc3339(row["acknowledged_at"]),
        "acknowledged_by": row["acknowledged_by"], "resolved_at": rfc3339(row["resolved_at"]),
    }
    if history is not None:
        body["history"] = [{"event": h["event"], "severity": h["severity"], "by": h["actor"], "note": h["note"],
                            "at": rfc3339(h["at"])} for h in history]
    return body

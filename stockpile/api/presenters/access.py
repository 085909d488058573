"""Access JSON: tokens and counted denials."""

from __future__ import annotations

from typing import Any

from stockpile.domain.moments import rfc3339


def present_token(row) -> dict[str, Any]:
    return {
        "id": row["id"], "principal": row["principal"], "roles": list(row["roles"]), "clearance": row["clearance"],
        "label": row["label"], "created_at": rfc3339(row["created_at"]),
        "expires_at": rfc3339(row["expires_at"]), "revoked_at": rfc3339(row["revoked_at"]),
    }


def present_denial(row) -> dict[str, Any]:
    return {"id": row["id"], "minute": rfc3339(row["minute"]), "actor_kind": row["actor_kind"], "actor": row["actor"],
            "action": row["action"], "status": row["status"], "count": row["count"]}

"""Movement JSON, in one place for both sources: a movement just posted (``Posted``, with new
balances) and a movement read back from the ledger (a row, with ``recorded_by``).

Both build each posting with ``_posting`` and end with ``_tail``. The key order of each body is
part of the stored idempotent responses, so it is kept exactly as each source has always written it.
"""

from __future__ import annotations

import json
from typing import Any

from stockpile.domain.moments import rfc3339
from stockpile.domain.quantities import format_quantity
from stockpile.services.movements import Posted


def _posting(account: dict[str, Any], material: str, delta: int, decimals: int) -> dict[str, Any]:
    return {"account": account, "material": material, "delta": format_quantity(delta, decimals)}


def _tail(body: dict[str, Any], rotation_order_id: str | None) -> dict[str, Any]:
    if rotation_order_id is not None:
        body["rotation_order_id"] = rotation_order_id
    return body


def present_posted(posted: Posted) -> dict[str, Any]:
    """A movement as the POST that made it answers: postings, then each stock account's new balance."""
    deltas: dict[int, int] = {}
    for p in posted.postings:
        if p.account_id is not None:
            deltas[p.account_id] = deltas.get(p.account_id, 0) + p.delta
    postings = []
    for p in posted.postings:
        code, decimals = posted.materials[p.material_id]
        if p.account_id is None:
            account = {"type": p.external, "material": code}
        else:
            pos = posted.positions[p.account_id]
            account = {"type": "stock", "lot_id": pos.lot_id, "owner": pos.owner_code}
            if p.account_id in posted.transit_of:
                account = {"type": "transit", "transfer_id": posted.transit_of[p.account_id],
                           "lot_id": pos.lot_id, "owner": pos.owner_code}
        postings.append(_posting(account, code, p.delta, decimals))
    balances = []
    for account_id, delta in deltas.items():
        if account_id in posted.transit_of:
            continue
        pos = posted.positions[account_id]
        balance = pos.balance + delta
        balances.append({
            "lot_id": pos.lot_id, "owner": pos.owner_code,
            "balance": pos.fmt(balance), "reserved": pos.fmt(pos.reserved),
            "available": pos.fmt(balance - pos.reserved),
        })
    return _tail({
        "id": posted.id, "kind": posted.kind,
        "occurred_at": rfc3339(posted.occurred_at), "recorded_at": rfc3339(posted.recorded_at),
        "reason": posted.reason, "note": posted.note, "reverses": posted.reverses, "transfer_id": posted.transfer_id,
        "postings": postings, "balances": balances,
    }, posted.rotation_order_id)


def present_movement(row) -> dict[str, Any]:
    """A movement read back from the ledger (its ``postings`` column is JSON built by the store)."""
    postings = []
    raw = row["postings"]
    for p in raw if isinstance(raw, list) else json.loads(raw):
        if p["type"] in ("stock", "transit"):
            account = {"type": p["type"], "lot_id": p["lot_id"], "owner": p["owner"]}
            if p["type"] == "transit":
                account["transfer_id"] = p["transfer_id"]
        else:
            account = {"type": p["type"], "material": p["material"]}
        postings.append(_posting(account, p["material"], p["delta"], p["decimals"]))
    return _tail({
        "id": row["id"], "kind": row["kind"], "occurred_at": rfc3339(row["occurred_at"]),
        "recorded_at": rfc3339(row["recorded_at"]), "recorded_by": row["recorded_by"], "reason": row["reason"],
        "note": row["note"], "reverses": row["reverses"], "transfer_id": row["transfer_id"], "postings": postings,
    }, row["rotation_order_id"])

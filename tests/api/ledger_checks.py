"""Checks and request bodies shared by the ledger's API tests (movements, batches, idempotency,
lot status, stock and ledger reads)."""

from __future__ import annotations

import base64
import json
import uuid

from tests.factories import list_all

PROBLEM = "application/problem+json"


def assert_problem(response, status: int, type_: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["type"] == type_ and problem["status"] == status and problem["detail"]
    assert "Traceback" not in response.text
    return problem


def stock_posting(lot_id: str, owner: str, material: str, delta: str) -> dict:
    return {"account": {"type": "stock", "lot_id": lot_id, "owner": owner}, "material": material, "delta": delta}


def external_posting(kind: str, material: str, delta: str) -> dict:
    return {"account": {"type": kind, "material": material}, "material": material, "delta": delta}


def position(lot_id: str, owner: str, balance: str) -> dict:
    """A position after a movement, with nothing reserved."""
    return {"lot_id": lot_id, "owner": owner, "balance": balance, "reserved": "0.0", "available": balance}


async def ledger_of(client, headers, material: str) -> list[dict]:
    return await list_all(client, headers, "/api/v1/movements", material=material)


async def assert_ledger_consistent(pg_pool, lot_id: str) -> None:
    """Guarantee 3 for every account of the lot: stored balance == sum of its postings."""
    rows = await pg_pool.fetch(
        """SELECT a.id, a.balance, coalesce((SELECT sum(delta) FROM postings p WHERE p.account_id = a.id), 0) AS posted
             FROM accounts a WHERE a.lot_id = $1::uuid""", lot_id)
    assert rows and all(r["balance"] == r["posted"] for r in rows), [dict(r) for r in rows]



async def post_batch(client, headers, movements: list[dict], atomic: bool = True, key: str | None = None):
    return await client.post("/api/v1/movements/batch", json={"movements": movements, "atomic": atomic},
                             headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex})


def receipt_body(world, quantity: str, lot: str = "BATCH", owner: str | None = None) -> dict:
    return {"kind": "receipt", "warehouse": world.north, "material": world.diesel, "owner": owner or world.civil,
            "quantity": quantity, "lot": {"code": lot, "expires_on": "2030-01-01"}}


def issue_body(world, quantity: str) -> dict:
    return {"kind": "issue", "warehouse": world.north, "material": world.diesel, "owner": world.civil, "quantity": quantity}


def forged_cursor(value) -> str:
    """A page cursor the service never issued: ``value`` encoded as its cursors are."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

"""Arrange helpers: master data and stock created through the public API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


def idem() -> dict[str, str]:
    return {"Idempotency-Key": uuid.uuid4().hex}


@dataclass
class World:
    """One test's own small reserve: a region, two warehouses, owners of each sector, materials."""

    uid: str
    region: str
    north: str
    south: str
    military: str
    civil: str
    enterprise: str
    diesel: str  # 1 decimal, L
    vaccine: str  # 0 decimals, dose, perishable


async def make_world(client, admin: dict, uid: str) -> World:
    w = World(
        uid=uid, region=f"R-{uid}", north=f"WH-N-{uid}", south=f"WH-S-{uid}", military=f"MIL-{uid}",
        civil=f"CIV-{uid}", enterprise=f"ENT-{uid}", diesel=f"DSL-{uid}", vaccine=f"VAX-{uid}",
    )
    calls = [
        (f"/api/v1/regions/{w.region}", {"name": f"Region {uid}", "parent": "TEST-NATION"}),
        (f"/api/v1/parties/{w.military}", {"name": "Logistics Brigade", "sector": "military", "parent": None}),
        (f"/api/v1/parties/{w.civil}", {"name": "Civil Reserve Bureau", "sector": "civilian", "parent": None}),
        (f"/api/v1/parties/{w.enterprise}", {"name": "Tank Farm Co", "sector": "enterprise", "parent": None}),
        (f"/api/v1/warehouses/{w.north}", {"name": "North depot", "operator": w.enterprise, "region": w.region,
                                           "kind": "joint", "latitude": 60.1, "longitude": 24.9, "status": "active"}),
        (f"/api/v1/warehouses/{w.south}", {"name": "South depot", "operator": w.civil, "region": w.region,
                                           "kind": "civilian", "latitude": 59.4, "longitude": 24.7, "status": "active"}),
        (f"/api/v1/materials/{w.diesel}", {"name": "Diesel", "category": "fuel", "unit": "L", "decimals": 1,
                                           "shelf_life_days": 730, "storage_class": "bulk_liquid"}),
        (f"/api/v1/materials/{w.vaccine}", {"name": "Vaccine", "category": "medical", "unit": "dose", "decimals": 0,
                                            "shelf_life_days": 365, "storage_class": "cold_chain"}),
    ]
    for path, body in calls:
        r = await client.put(path, json=body, headers=admin)
        assert r.status_code in (200, 201), (path, r.status_code, r.text)
    return w


async def receive(client, operator: dict, *, warehouse: str, material: str, owner: str, quantity: str,
                  lot: str, expires_on: str = "2030-01-01", manufactured_on: str | None = None) -> dict:
    body = {"kind": "receipt", "warehouse": warehouse, "material": material, "owner": owner,
            "quantity": quantity, "lot": {"code": lot, "expires_on": expires_on, "manufactured_on": manufactured_on}}
    r = await client.post("/api/v1/movements", json=body, headers={**operator, **idem()})
    assert r.status_code == 201, r.text
    return r.json()


def lot_of(movement: dict) -> str:
    """The lot of a movement's first stock posting (a receipt's lot)."""
    return next(p["account"]["lot_id"] for p in movement["postings"] if p["account"]["type"] == "stock")


async def post_movement(client, headers: dict, body: dict, key: str | None = None):
    """POST one movement with an Idempotency-Key (a fresh one unless given); returns the response."""
    return await client.post("/api/v1/movements", json=body,
                             headers={**headers, "Idempotency-Key": key or uuid.uuid4().hex})


async def owner_balances(client, headers: dict, lot_id: str) -> dict[str, str]:
    """Each owner's balance in a lot, as GET /lots/{id} shows it."""
    r = await client.get(f"/api/v1/lots/{lot_id}", headers=headers)
    assert r.status_code == 200, r.text
    return {o["owner"]: o["balance"] for o in r.json()["owners"]}


async def list_all(client, headers: dict, path: str, **params) -> list[dict]:
    """Every item of a paged list, following next_cursor."""
    items, cursor = [], None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = await client.get(path, params=query, headers=headers)
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return items


async def declare(client, commanders, region: str, level: str) -> None:
    """Declare a readiness level on a region; wartime confirmed by the second commander."""
    r = await client.post("/api/v1/readiness/declarations", headers=commanders[0],
                          json={"region": region, "level": level, "reason": "exercise"})
    assert r.status_code == 201, r.text
    if r.json()["state"] == "pending_confirmation":
        c = await client.post(f"/api/v1/readiness/declarations/{r.json()['id']}/confirm", headers=commanders[1])
        assert c.status_code == 200, c.text

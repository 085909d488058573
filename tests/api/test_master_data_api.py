"""Master data upserts by code, validation, paging; health, metrics and docs."""

from __future__ import annotations

import pytest

from tests.factories import make_world, receive


async def test_upsert_creates_then_replaces(client, admin, uid):
    code = f"P-{uid}"
    created = await client.put(f"/api/v1/parties/{code}", headers=admin, json={"name": "Bureau", "sector": "civilian"})
    assert created.status_code == 201 and created.json() == {"code": code, "name": "Bureau", "sector": "civilian", "parent": None}
    replaced = await client.put(f"/api/v1/parties/{code}", headers=admin, json={"name": "Bureau 2", "sector": "enterprise"})
    assert replaced.status_code == 200 and replaced.json()["name"] == "Bureau 2"
    assert (await client.get(f"/api/v1/parties/{code}", headers=admin)).json()["sector"] == "enterprise"
    missing = await client.get(f"/api/v1/parties/NOPE-{uid}", headers=admin)
    assert missing.status_code == 404 and missing.json()["type"] == "not-found"


async def test_a_material_and_a_warehouse_read_back_as_stored(client, admin, uid):
    w = await make_world(client, admin, uid)
    warehouse = (await client.get(f"/api/v1/warehouses/{w.north}", headers=admin)).json()
    assert warehouse == {"code": w.north, "name": "North depot", "operator": w.enterprise, "region": w.region,
                         "kind": "joint", "latitude": 60.1, "longitude": 24.9, "status": "active", "capacity": {}}
    material = await client.put(f"/api/v1/materials/{w.diesel}", headers=admin, json={
        "name": "Diesel", "category": "fuel", "unit": "L", "decimals": 1, "shelf_life_days": 730,
        "storage_class": "bulk_liquid", "substitution_group": "middle-distillates", "daily_consumption_per_person": "0.25"})
    assert material.status_code == 200
    assert material.json()["substitution_group"] == "middle-distillates"
    assert material.json()["daily_consumption_per_person"] == "0.25"


@pytest.mark.parametrize(("path", "body", "field"), [
    ("parties/X", {"name": "x", "sector": "navy"}, "sector"),
    ("parties/X", {"name": "x", "sector": "civilian", "parent": "NO-SUCH"}, "parent"),
    ("regions/X", {"name": "x", "parent": "NO-SUCH"}, "parent"),
    ("warehouses/X", {"name": "x", "operator": "NO-SUCH", "region": "NO-SUCH", "kind": "civilian",
                      "latitude": 1, "longitude": 1}, "operator"),
    ("warehouses/X", {"name": "x", "operator": "NO-SUCH", "region": "NO-SUCH", "kind": "civilian",
                      "latitude": 91, "longitude": 1}, "latitude"),
    ("warehouses/X", {"name": "x", "operator": "NO-SUCH", "region": "NO-SUCH", "kind": "bunker",
                      "latitude": 1, "longitude": 1}, "kind"),
    ("materials/X", {"name": "x", "category": "fuel", "unit": "L", "decimals": 4}, "decimals"),
    ("materials/X", {"name": "x", "category": "toys", "unit": "L", "decimals": 1}, "category"),
])
async def test_invalid_master_data_is_a_422_with_field_errors(client, admin, path, body, field):
    r = await client.put(f"/api/v1/{path}", headers=admin, json=body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert any(field in e["field"] or field in e["message"] for e in r.json()["errors"]), r.json()


async def test_a_region_cannot_become_its_own_ancestor(client, admin, uid):
    top, below = f"TOP-{uid}", f"BELOW-{uid}"
    assert (await client.put(f"/api/v1/regions/{top}", headers=admin, json={"name": "t"})).status_code == 201
    assert (await client.put(f"/api/v1/regions/{below}", headers=admin, json={"name": "b", "parent": top})).status_code == 201
    cycle = await client.put(f"/api/v1/regions/{top}", headers=admin, json={"name": "t", "parent": below})
    assert cycle.status_code == 422 and cycle.json()["errors"][0]["field"] == "parent"


async def test_a_materials_precision_is_fixed_once_it_has_lots(client, admin, operator, uid):
    w = await make_world(client, admin, uid)
    await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="1", lot="P")
    r = await client.put(f"/api/v1/materials/{w.diesel}", headers=admin,
                         json={"name": "Diesel", "category": "fuel", "unit": "L", "decimals": 2})
    assert r.status_code == 409 and r.json()["type"] == "conflict"


async def test_lists_page_by_cursor(client, admin, uid):
    for i in range(5):
        await client.put(f"/api/v1/regions/PAGE-{uid}-{i}", headers=admin, json={"name": str(i)})
    seen, cursor = [], None
    while True:
        page = (await client.get("/api/v1/regions", params={"limit": 2, **({"cursor": cursor} if cursor else {})},
                                 headers=admin)).json()
        seen += [r["code"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    mine = [c for c in seen if c.startswith(f"PAGE-{uid}")]
    assert mine == [f"PAGE-{uid}-{i}" for i in range(5)] and len(seen) == len(set(seen))
    bad = await client.get("/api/v1/regions", params={"cursor": "garbage!"}, headers=admin)
    assert bad.status_code == 422


async def test_health_metrics_and_docs(client, make_token, operator, uid, admin):
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200 and ready.json()["schema"]
    w = await make_world(client, admin, uid)
    await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="1", lot="M")
    assert (await client.get("/metrics")).status_code == 401
    assert (await client.get("/metrics", headers=operator)).status_code == 403
    metrics = await client.get("/metrics", headers={"Authorization": f"Bearer {await make_token('metrics')}"})
    assert metrics.status_code == 200
    text = metrics.text
    assert 'stockpile_movements_posted_total{kind="receipt"}' in text
    assert 'path="/api/v1/warehouses/{code' in text  # the route template, never the code itself
    assert w.north not in text
    schema = await client.get("/schema/openapi.json")
    assert schema.status_code == 200 and "/api/v1/movements" in schema.json()["paths"]
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()

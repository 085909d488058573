"""GET /api/v1/stock: the positions holding stock, their fields, filters, regions, expiry, paging."""

from __future__ import annotations

import pytest

from tests.api.ledger_checks import assert_problem, forged_cursor
from tests.factories import list_all, lot_of, post_movement, receive


# -- reads: stock ------------------------------------------------------------------------------

@pytest.fixture
async def stocked(client, admin, operator, world):
    """North: diesel (civil, expiring 2027-03-01; military, 2029) and vaccine (civil, quarantined).
    South: diesel (enterprise). A sub-region's depot: vaccine (civil)."""
    sub, depot = f"SUB-{world.uid}", f"WH-SUB-{world.uid}"
    assert (await client.put(f"/api/v1/regions/{sub}", json={"name": "District", "parent": world.region},
                             headers=admin)).status_code == 201
    assert (await client.put(f"/api/v1/warehouses/{depot}", headers=admin, json={
        "name": "District depot", "operator": world.civil, "region": sub, "kind": "civilian", "latitude": 58.0,
        "longitude": 25.0})).status_code == 201
    lots = {
        "diesel_civil": await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                                      quantity="100", lot="D1", expires_on="2027-03-01"),
        "diesel_military": await receive(client, operator, warehouse=world.north, material=world.diesel,
                                         owner=world.military, quantity="200", lot="D2", expires_on="2029-01-01"),
        "vaccine_north": await receive(client, operator, warehouse=world.north, material=world.vaccine,
                                       owner=world.civil, quantity="500", lot="V1", expires_on="2027-06-01"),
        "diesel_south": await receive(client, operator, warehouse=world.south, material=world.diesel,
                                      owner=world.enterprise, quantity="300", lot="D3", expires_on="2028-01-01"),
        "vaccine_sub": await receive(client, operator, warehouse=depot, material=world.vaccine, owner=world.civil,
                                     quantity="50", lot="V2", expires_on="2027-02-01"),
    }
    lots = {name: lot_of(m) for name, m in lots.items()}
    r = await client.post(f"/api/v1/lots/{lots['vaccine_north']}/status", json={"status": "quarantine"}, headers=operator)
    assert r.status_code == 200
    return world, sub, depot, lots


async def _positions(client, headers, **filters) -> set[str]:
    return {p["lot_id"] for p in await list_all(client, headers, "/api/v1/stock", **filters)}


async def test_stock_positions_show_every_contract_field(client, operator, stocked):
    world, _, _, lots = stocked
    [row] = await list_all(client, operator, "/api/v1/stock", warehouse=world.north, material=world.diesel, owner=world.civil)
    assert {k: row[k] for k in ("lot_id", "lot_code", "warehouse", "material", "owner", "balance", "reserved",
                                "available", "expires_on", "status")} == {
        "lot_id": lots["diesel_civil"], "lot_code": "D1", "warehouse": world.north, "material": world.diesel,
        "owner": world.civil, "balance": "100.0", "reserved": "0.0", "available": "100.0", "expires_on": "2027-03-01",
        "status": "available"}


async def test_stock_filters_by_warehouse_material_owner_category_and_status(client, operator, stocked):
    world, _, depot, lots = stocked
    assert await _positions(client, operator, warehouse=world.north) == {
        lots["diesel_civil"], lots["diesel_military"], lots["vaccine_north"]}
    assert await _positions(client, operator, material=world.diesel) == {
        lots["diesel_civil"], lots["diesel_military"], lots["diesel_south"]}
    assert await _positions(client, operator, owner=world.civil, region=world.region) == {
        lots["diesel_civil"], lots["vaccine_north"], lots["vaccine_sub"]}
    assert await _positions(client, operator, category="medical", region=world.region) == {
        lots["vaccine_north"], lots["vaccine_sub"]}
    assert await _positions(client, operator, status="quarantine", region=world.region) == {lots["vaccine_north"]}
    assert await _positions(client, operator, status="available", warehouse=world.north) == {
        lots["diesel_civil"], lots["diesel_military"]}
    assert await _positions(client, operator, warehouse=depot, material=world.diesel) == set()


async def test_stock_by_region_includes_sub_regions(client, operator, stocked):
    world, sub, _, lots = stocked
    assert await _positions(client, operator, region=world.region) == set(lots.values())
    assert await _positions(client, operator, region=sub) == {lots["vaccine_sub"]}


async def test_stock_expiring_before_a_date(client, operator, stocked):
    world, _, _, lots = stocked
    assert await _positions(client, operator, region=world.region, expiring_before="2027-06-01") == {
        lots["diesel_civil"], lots["vaccine_sub"]}
    assert await _positions(client, operator, region=world.region, expiring_before="2027-02-01") == set()


async def test_stock_pages_by_cursor_without_repeats(client, operator, stocked):
    world, _, _, lots = stocked
    pages, seen, cursor = 0, [], None
    while True:
        r = await client.get("/api/v1/stock", headers=operator,
                             params={"region": world.region, "limit": 2, **({"cursor": cursor} if cursor else {})})
        seen += [p["lot_id"] for p in r.json()["items"]]
        pages, cursor = pages + 1, r.json()["next_cursor"]
        if cursor is None:
            break
    assert pages == 3 and len(seen) == 5 and set(seen) == set(lots.values())


async def test_empty_positions_are_not_stock(client, operator, stocked):
    world, _, _, lots = stocked
    await post_movement(client, operator, {"kind": "write_off", "lot_id": lots["diesel_south"], "owner": world.enterprise,
                                           "quantity": "300"})
    assert await _positions(client, operator, warehouse=world.south) == set()


@pytest.mark.parametrize("params", [
    {"category": "toys"}, {"status": "lost"}, {"expiring_before": "soon"}, {"limit": 0}, {"cursor": "%%%"},
    {"cursor": forged_cursor("abc")}, {"cursor": forged_cursor([1, 2])}, {"cursor": forged_cursor(2**70)},
    {"cursor": forged_cursor(1.5)}, {"cursor": forged_cursor({"after": 1})}, {"warehouse": "WH\x00"},
])
async def test_bad_stock_filters_are_a_validation_problem(client, operator, params):
    assert_problem(await client.get("/api/v1/stock", params=params, headers=operator), 422, "validation")

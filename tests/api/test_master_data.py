"""Master data over HTTP: parties, regions, warehouses, materials — upserted by code (admin only),
read by anyone who reads, refused with problem details when wrong."""

from __future__ import annotations

import base64
import json

import pytest

from tests.factories import make_world, receive

PROBLEM = "application/problem+json"


def party(uid: str, **over) -> dict:
    return {"name": f"Bureau {uid}", "sector": "civilian", "parent": None, **over}


def region(uid: str, **over) -> dict:
    return {"name": f"Region {uid}", "parent": None, **over}


def warehouse(operator: str, region_code: str, **over) -> dict:
    return {"name": "Depot", "operator": operator, "region": region_code, "kind": "civilian", "latitude": 59.5,
            "longitude": 24.75, "status": "active", **over}


def material(**over) -> dict:
    return {"name": "Diesel", "category": "fuel", "unit": "L", "decimals": 1, "shelf_life_days": 730,
            "storage_class": "bulk_liquid", "substitution_group": None, "daily_consumption_per_person": None, **over}


def assert_problem(response, status: int, type_: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["type"] == type_ and problem["status"] == status
    assert problem["title"] and problem["detail"]
    assert "Traceback" not in response.text
    return problem


def fields(problem: dict) -> set[str]:
    return {error["field"] for error in problem["errors"]}


async def put(client, headers, path: str, body: dict):
    return await client.put(f"/api/v1/{path}", json=body, headers=headers)


# -- create, replace, read ---------------------------------------------------------------------

async def test_a_party_is_created_with_201_then_replaced_with_200(client, admin, uid):
    parent, code = f"HQ-{uid}", f"P-{uid}"
    assert (await put(client, admin, f"parties/{parent}", party(uid, sector="military"))).status_code == 201
    created = await put(client, admin, f"parties/{code}", party(uid))
    assert created.status_code == 201
    assert created.json() == {"code": code, "name": f"Bureau {uid}", "sector": "civilian", "parent": None}
    replaced = await put(client, admin, f"parties/{code}", party(uid, name="Brigade", sector="military", parent=parent))
    assert replaced.status_code == 200
    assert replaced.json() == {"code": code, "name": "Brigade", "sector": "military", "parent": parent}
    read = await client.get(f"/api/v1/parties/{code}", headers=admin)
    assert read.status_code == 200 and read.json() == replaced.json()


async def test_a_region_is_created_then_replaced_and_read_back(client, admin, uid):
    code = f"REG-{uid}"
    created = await put(client, admin, f"regions/{code}", region(uid, parent="TEST-NATION"))
    assert created.status_code == 201
    assert created.json() == {"code": code, "name": f"Region {uid}", "parent": "TEST-NATION"}
    replaced = await put(client, admin, f"regions/{code}", region(uid, name="Renamed"))
    assert replaced.status_code == 200 and replaced.json() == {"code": code, "name": "Renamed", "parent": None}
    assert (await client.get(f"/api/v1/regions/{code}", headers=admin)).json() == replaced.json()


async def test_a_warehouse_is_created_then_replaced_and_read_back(client, admin, uid):
    w = await make_world(client, admin, uid)
    code = f"WH-X-{uid}"
    created = await put(client, admin, f"warehouses/{code}", warehouse(w.civil, w.region))
    assert created.status_code == 201
    assert created.json() == {"code": code, "name": "Depot", "operator": w.civil, "region": w.region, "kind": "civilian",
                              "latitude": 59.5, "longitude": 24.75, "status": "active", "capacity": {}}
    replaced = await put(client, admin, f"warehouses/{code}", warehouse(
        w.military, w.region, kind="military", status="suspended", latitude=-33.25, longitude=-70.5,
        capacity={"bulk_liquid": "5000000"}))
    assert replaced.status_code == 200
    assert replaced.json() == {"code": code, "name": "Depot", "operator": w.military, "region": w.region,
                               "kind": "military", "latitude": -33.25, "longitude": -70.5, "status": "suspended",
                               "capacity": {"bulk_liquid": "5000000"}}
    assert (await client.get(f"/api/v1/warehouses/{code}", headers=admin)).json() == replaced.json()


async def test_a_material_is_created_then_replaced_and_read_back(client, admin, uid):
    code = f"MAT-{uid}"
    created = await put(client, admin, f"materials/{code}", material())
    assert created.status_code == 201
    assert created.json() == {"code": code, **material()}
    replaced = await put(client, admin, f"materials/{code}", material(
        name="Diesel arctic", decimals=2, shelf_life_days=None, substitution_group="middle-distillates",
        daily_consumption_per_person="0.75"))
    assert replaced.status_code == 200
    assert replaced.json() == {"code": code, "name": "Diesel arctic", "category": "fuel", "unit": "L", "decimals": 2,
                               "shelf_life_days": None, "storage_class": "bulk_liquid",
                               "substitution_group": "middle-distillates", "daily_consumption_per_person": "0.75"}
    assert (await client.get(f"/api/v1/materials/{code}", headers=admin)).json() == replaced.json()


async def test_any_reader_may_read_master_data(client, admin, auditor, operator, uid):
    w = await make_world(client, admin, uid)
    for headers in (auditor, operator):
        r = await client.get(f"/api/v1/materials/{w.vaccine}", headers=headers)
        assert r.status_code == 200 and r.json()["decimals"] == 0 and r.json()["unit"] == "dose"


@pytest.mark.parametrize("kind", ["parties", "regions", "warehouses", "materials"])
async def test_an_unknown_code_is_a_404_not_found_problem(client, admin, uid, kind):
    problem = assert_problem(await client.get(f"/api/v1/{kind}/NOPE-{uid}", headers=admin), 404, "not-found")
    assert f"NOPE-{uid}" in problem["detail"]


# -- lists -------------------------------------------------------------------------------------

async def _all_codes(client, headers, kind: str, prefix: str, limit: int) -> tuple[list[str], int]:
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        r = await client.get(f"/api/v1/{kind}", params=params, headers=headers)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"items", "next_cursor"} and len(body["items"]) <= limit
        seen += [item["code"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return [code for code in seen if code.startswith(prefix)], len(seen)


@pytest.mark.parametrize("kind", ["parties", "regions"])
async def test_lists_page_through_every_item_once_by_code(client, admin, uid, kind):
    prefix = f"PG-{uid}-"
    body = party(uid) if kind == "parties" else region(uid)
    for i in (3, 0, 4, 1, 2):
        assert (await put(client, admin, f"{kind}/{prefix}{i}", body)).status_code == 201
    mine, total = await _all_codes(client, admin, kind, prefix, limit=2)
    assert mine == [f"{prefix}{i}" for i in range(5)]
    everything, _ = await _all_codes(client, admin, kind, "", limit=1000)
    assert total == len(everything) == len(set(everything))


async def test_warehouse_and_material_lists_show_the_stored_objects(client, admin, uid):
    w = await make_world(client, admin, uid)
    for kind, code in (("warehouses", w.north), ("materials", w.diesel)):
        items = []
        cursor = None
        while True:
            page = (await client.get(f"/api/v1/{kind}", headers=admin,
                                     params={"limit": 500, **({"cursor": cursor} if cursor else {})})).json()
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        [found] = [item for item in items if item["code"] == code]
        assert found == (await client.get(f"/api/v1/{kind}/{code}", headers=admin)).json()


async def test_a_full_page_has_a_cursor_and_the_last_has_none(client, admin, uid):
    prefix = f"LAST-{uid}-"
    for i in range(3):
        await put(client, admin, f"regions/{prefix}{i}", region(uid))
    first = (await client.get("/api/v1/regions", params={"limit": 1}, headers=admin)).json()
    assert len(first["items"]) == 1 and first["next_cursor"]
    huge = (await client.get("/api/v1/regions", params={"limit": 1000}, headers=admin)).json()
    assert huge["next_cursor"] is None and {f"{prefix}{i}" for i in range(3)} <= {r["code"] for r in huge["items"]}


def forged_cursor(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("params", [
    {"limit": 0}, {"limit": 1001}, {"limit": -5}, {"cursor": "not-a-cursor!"}, {"cursor": forged_cursor(12)},
    {"cursor": forged_cursor(["a"])}, {"cursor": forged_cursor(None)},
])
async def test_bad_paging_is_a_validation_problem(client, admin, params):
    problem = assert_problem(await client.get("/api/v1/parties", params=params, headers=admin), 422, "validation")
    assert fields(problem) == {next(iter(params))}


async def test_a_cursor_carrying_a_nul_character_is_invalid_not_a_500(client, admin):
    r = await client.get("/api/v1/parties", params={"cursor": forged_cursor("A\x00")}, headers=admin)
    assert_problem(r, 422, "validation")


# -- validation --------------------------------------------------------------------------------

async def test_an_unknown_parent_party_is_a_validation_problem_on_parent(client, admin, uid):
    problem = assert_problem(await put(client, admin, f"parties/P-{uid}", party(uid, parent=f"NONE-{uid}")), 422, "validation")
    assert fields(problem) == {"parent"}
    assert (await client.get(f"/api/v1/parties/P-{uid}", headers=admin)).status_code == 404


async def test_an_unknown_parent_region_is_a_validation_problem_on_parent(client, admin, uid):
    problem = assert_problem(await put(client, admin, f"regions/R-{uid}", region(uid, parent=f"NONE-{uid}")), 422, "validation")
    assert fields(problem) == {"parent"}
    assert (await client.get(f"/api/v1/regions/R-{uid}", headers=admin)).status_code == 404


async def test_a_warehouse_with_unknown_operator_and_region_names_both(client, admin, uid):
    problem = assert_problem(await put(client, admin, f"warehouses/W-{uid}", warehouse(f"NOP-{uid}", f"NOR-{uid}")),
                             422, "validation")
    assert fields(problem) == {"operator", "region"}
    assert (await client.get(f"/api/v1/warehouses/W-{uid}", headers=admin)).status_code == 404


async def test_a_warehouse_with_an_unknown_region_only_names_the_region(client, admin, uid):
    w = await make_world(client, admin, uid)
    problem = assert_problem(await put(client, admin, f"warehouses/W-{uid}", warehouse(w.civil, f"NOR-{uid}")),
                             422, "validation")
    assert fields(problem) == {"region"}


@pytest.mark.parametrize(("kind", "body", "field"), [
    ("parties", {"name": "x", "sector": "navy"}, "sector"),
    ("parties", {"name": "", "sector": "civilian"}, "name"),
    ("parties", {"sector": "civilian"}, "name"),
    ("warehouses", {"kind": "bunker"}, "kind"),
    ("warehouses", {"status": "flooded"}, "status"),
    ("warehouses", {"latitude": 90.5}, "latitude"),
    ("warehouses", {"latitude": -91}, "latitude"),
    ("warehouses", {"longitude": 180.01}, "longitude"),
    ("warehouses", {"longitude": -200}, "longitude"),
    ("warehouses", {"latitude": "north"}, "latitude"),
    ("materials", {"category": "toys"}, "category"),
    ("materials", {"decimals": 4}, "decimals"),
    ("materials", {"decimals": -1}, "decimals"),
    ("materials", {"decimals": 1.5}, "decimals"),
    ("materials", {"shelf_life_days": 0}, "shelf_life_days"),
    ("materials", {"unit": ""}, "unit"),
    ("materials", {"colour": "red"}, "colour"),
])
async def test_bad_values_are_a_422_naming_the_field(client, admin, uid, kind, body, field):
    w = await make_world(client, admin, uid)
    base = {"parties": party(uid), "warehouses": warehouse(w.civil, w.region), "materials": material()}[kind]
    full = {**base, **body}
    if kind == "parties" and "name" not in body:
        full.pop("name")
    problem = assert_problem(await put(client, admin, f"{kind}/NEW-{uid}", full), 422, "validation")
    assert field in fields(problem), problem
    assert (await client.get(f"/api/v1/{kind}/NEW-{uid}", headers=admin)).status_code == 404


@pytest.mark.parametrize("rate", ["0", "-1", "NaN", "Infinity", "1e30"])
async def test_a_daily_consumption_must_be_a_positive_finite_number(client, admin, uid, rate):
    problem = assert_problem(await put(client, admin, f"materials/M-{uid}", material(daily_consumption_per_person=rate)),
                             422, "validation")
    assert fields(problem) == {"daily_consumption_per_person"}


@pytest.mark.parametrize("capacity", [{"ambient": "-1"}, {"ambient": "NaN"}])
async def test_a_warehouse_capacity_must_be_a_non_negative_number(client, admin, uid, capacity):
    w = await make_world(client, admin, uid)
    problem = assert_problem(await put(client, admin, f"warehouses/W-{uid}", warehouse(w.civil, w.region, capacity=capacity)),
                             422, "validation")
    assert fields(problem) == {"capacity.ambient"}


@pytest.mark.parametrize("code", ["-leading-dash", "has space", "semi;colon", "a" * 65])
async def test_a_code_movements_could_never_name_is_refused(client, admin, code):
    problem = assert_problem(await client.put(f"/api/v1/regions/{code}", json={"name": "x"}, headers=admin),
                             422, "validation")
    assert fields(problem) == {"code"}
    assert_problem(await client.get(f"/api/v1/regions/{code}", headers=admin), 404, "not-found")


async def test_an_object_cannot_be_its_own_parent(client, admin, uid):
    for kind, body in (("parties", party(uid, parent=f"SELF-{uid}")), ("regions", region(uid, parent=f"SELF-{uid}"))):
        problem = assert_problem(await put(client, admin, f"{kind}/SELF-{uid}", body), 422, "validation")
        assert fields(problem) == {"parent"}


@pytest.mark.parametrize("kind", ["parties", "regions"])
async def test_a_parent_cycle_is_refused(client, admin, uid, kind):
    make = party if kind == "parties" else region
    top, middle, bottom = f"TOP-{uid}", f"MID-{uid}", f"BOT-{uid}"
    assert (await put(client, admin, f"{kind}/{top}", make(uid))).status_code == 201
    assert (await put(client, admin, f"{kind}/{middle}", make(uid, parent=top))).status_code == 201
    assert (await put(client, admin, f"{kind}/{bottom}", make(uid, parent=middle))).status_code == 201
    problem = assert_problem(await put(client, admin, f"{kind}/{top}", make(uid, parent=bottom)), 422, "validation")
    assert fields(problem) == {"parent"} and "cycle" in problem["errors"][0]["message"]
    assert (await client.get(f"/api/v1/{kind}/{top}", headers=admin)).json()["parent"] is None


async def test_a_name_postgresql_cannot_store_is_invalid_not_a_500(client, admin, uid):
    assert_problem(await put(client, admin, f"regions/NUL-{uid}", region(uid, name="North\x00")), 422, "validation")
    assert_problem(await client.get(f"/api/v1/regions/NUL-{uid}", headers=admin), 404, "not-found")


async def test_malformed_json_is_a_validation_problem(client, admin, uid):
    r = await client.put(f"/api/v1/regions/R-{uid}", content=b'{"name": ', headers={**admin, "Content-Type": "application/json"})
    assert_problem(r, 422, "validation")


# -- precision is fixed once a material has lots -----------------------------------------------

async def test_a_materials_decimals_cannot_change_once_it_has_lots(client, admin, operator, uid):
    w = await make_world(client, admin, uid)
    await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="10.5", lot="P1")
    problem = assert_problem(await put(client, admin, f"materials/{w.diesel}", material(decimals=2)), 409, "conflict")
    assert problem["field"] == "decimals"
    assert (await client.get(f"/api/v1/materials/{w.diesel}", headers=admin)).json()["decimals"] == 1
    stock = (await client.get("/api/v1/stock", params={"material": w.diesel}, headers=admin)).json()["items"]
    assert [p["balance"] for p in stock] == ["10.5"]


async def test_a_material_with_lots_may_still_change_other_fields(client, admin, operator, uid):
    w = await make_world(client, admin, uid)
    await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil, quantity="1", lot="P1")
    r = await put(client, admin, f"materials/{w.diesel}", material(name="Diesel winter grade", decimals=1))
    assert r.status_code == 200 and r.json()["name"] == "Diesel winter grade" and r.json()["decimals"] == 1


async def test_a_material_without_lots_may_change_its_decimals(client, admin, uid):
    w = await make_world(client, admin, uid)
    r = await put(client, admin, f"materials/{w.diesel}", material(decimals=3))
    assert r.status_code == 200 and r.json()["decimals"] == 3


# -- who may write -----------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["operator", "auditor", "planner", "commander", "metrics"])
async def test_only_an_admin_may_write_master_data(client, admin, make_token, uid, role):
    headers = {"Authorization": f"Bearer {await make_token(role, clearance='military')}"}
    problem = assert_problem(await put(client, headers, f"regions/DENIED-{uid}", region(uid)), 403, "forbidden")
    assert "admin" in problem["detail"]
    assert_problem(await client.get(f"/api/v1/regions/DENIED-{uid}", headers=admin), 404, "not-found")


async def test_a_forbidden_replace_leaves_the_object_as_it_was(client, admin, operator, uid):
    code = f"KEEP-{uid}"
    await put(client, admin, f"parties/{code}", party(uid))
    assert_problem(await put(client, operator, f"parties/{code}", party(uid, name="Hijacked")), 403, "forbidden")
    assert (await client.get(f"/api/v1/parties/{code}", headers=admin)).json()["name"] == f"Bureau {uid}"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer sp_not-a-real-token"}, {"Authorization": "Basic YTpi"}])
async def test_without_a_valid_token_master_data_is_unauthenticated(client, uid, headers):
    for r in (await client.put(f"/api/v1/regions/ANON-{uid}", json=region(uid), headers=headers),
              await client.get("/api/v1/regions", headers=headers),
              await client.get(f"/api/v1/regions/ANON-{uid}", headers=headers)):
        assert_problem(r, 401, "unauthenticated")
        assert r.headers["www-authenticate"] == "Bearer"

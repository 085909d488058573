"""Higher priority first across overlapping floors, through the API: a depot's target over every
owner and a region's civilian target overlap without nesting; the plan serves the flash request
in full before a routine one takes stock the flash request could use, keeps both floors, names
each line's rule, distance and expiry, and passes approval's floor check as proposed."""

from datetime import date, timedelta

from tests.api.test_allocation import commanders  # noqa: F401 (a fixture)
from tests.factories import declare, receive

SOON = (date.today() + timedelta(days=10)).isoformat()


async def put(client, admin, path: str, body: dict) -> None:
    r = await client.put(path, headers=admin, json=body)
    assert r.status_code in (200, 201), (path, r.text)


async def test_flash_is_served_in_full_before_routine_under_two_overlapping_floors(client, admin, operator, make_token,
                                                                                    commanders, world):  # noqa: F811
    w, u = world, world.uid
    r2, wh3, flash_to, routine_to = f"R2-{u}", f"WH3-{u}", f"WH4-{u}", f"WH5-{u}"
    await put(client, admin, f"/api/v1/regions/{r2}", {"name": f"Region two {u}", "parent": "TEST-NATION"})
    for code, region, lat, lon in ((wh3, r2, 61.0, 25.5), (flash_to, w.region, 60.0, 24.9),
                                   (routine_to, r2, 61.1, 25.6)):
        await put(client, admin, f"/api/v1/warehouses/{code}", {"name": code, "operator": w.civil, "region": region,
                                                                 "kind": "civilian", "latitude": lat, "longitude": lon,
                                                                 "status": "active"})
    # WH1 = north (R1): 1,000 L civilian, 1,000 L enterprise; WH2 = south (R1): 1,000 L civilian; WH3 (R2): 1,000 L civilian
    for warehouse, owner, lot in ((w.north, w.civil, "C1"), (w.north, w.enterprise, "E1"), (w.south, w.civil, "C2"),
                                  (wh3, w.civil, "C3")):
        await receive(client, operator, warehouse=warehouse, material=w.diesel, owner=owner, quantity="1000", lot=lot)
    target = {"material": w.diesel, "warning_ratio": 0.95, "critical_ratio": 0.9, "horizon_days": 30}
    await put(client, admin, f"/api/v1/reserve-targets/WH1-ALL-{u}", {   # 1,000 may go
        **target, "scope": {"warehouse": w.north}, "quantity": "2000", "floor_ratio": 0.5})
    await put(client, admin, f"/api/v1/reserve-targets/R1-CIV-{u}", {    # 600 may go
        **target, "scope": {"region": w.region}, "sector": "civilian", "quantity": "2000", "floor_ratio": 0.7})
    for region in (w.region, r2):
        await declare(client, commanders, region, "emergency")
    planner = {"Authorization": f"Bearer {await make_token('planner', clearance='military', regions=[w.region, r2])}"}
    ids = {}
    for priority, destination in (("flash", flash_to), ("routine", routine_to)):
        r = await client.post("/api/v1/allocation-requests", headers=planner, json={
            "requester": w.civil, "destination": destination, "material": w.diesel, "quantity": "2000" if priority == "flash" else "1000",
            "priority": priority, "needed_by": SOON})
        assert r.status_code == 201, r.text
        ids[priority] = r.json()["id"]

    r = await client.post("/api/v1/allocation-plans", headers=planner, json={"request_ids": sorted(ids.values())})
    assert r.status_code == 201, r.text
    plan = r.json()
    by_request = {x["id"]: x for x in plan["requests"]}
    assert (by_request[ids["flash"]]["planned"], by_request[ids["flash"]]["unfilled"]) == ("2000.0", "0.0")
    assert (by_request[ids["routine"]]["planned"], by_request[ids["routine"]]["unfilled"]) == ("600.0", "400.0")
    assert by_request[ids["routine"]]["reasons"] == ["floor", "capacity"]
    drawn: dict[tuple[str, str], float] = {}
    for line in plan["lines"]:
        drawn[(line["warehouse"], line["owner"])] = drawn.get((line["warehouse"], line["owner"]), 0) + float(line["quantity"])
        assert line["rule"] == ("EME-CIV-ENT" if line["owner"] == w.enterprise else "EME-OWN-CIV")
        assert line["distance_km"] > 0 and line["expires_on"] == "2030-01-01"
    assert drawn.get((w.north, w.civil), 0) + drawn.get((w.north, w.enterprise), 0) == 1000  # WH1 at its floor
    assert drawn.get((w.north, w.civil), 0) + drawn.get((w.south, w.civil), 0) == 600  # R1 civilian at its floor
    assert drawn[(wh3, w.civil)] == 1000

    approved = await client.post(f"/api/v1/allocation-plans/{plan['id']}/approve", headers=commanders[0])
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "approved"

"""Sensors through HTTP: registering them, posting readings (a resend changes nothing, a bad reading
is refused on its own), reading them back raw or averaged, and who may post and see what."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from tests.factories import receive

PROBLEM = "application/problem+json"


def ago(minutes: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(minutes=minutes)).replace(microsecond=0).isoformat()


async def probe(client, admin, world, code: str | None = None, warehouse: str | None = None, tolerance: int = 30) -> str:
    code = code or f"T-{world.uid}"
    r = await client.put(f"/api/v1/sensors/{code}", headers=admin, json={
        "warehouse": warehouse or world.north, "kind": "temperature", "storage_class": "cold_chain", "unit": "C",
        "band": {"min": "2", "max": "8"}, "tolerance_minutes": tolerance})
    assert r.status_code == 201, r.text
    return code


async def gauge(client, admin, world, warehouse: str, code: str | None = None) -> str:
    code = code or f"G-{world.uid}-{warehouse}"
    r = await client.put(f"/api/v1/sensors/{code}", headers=admin, json={
        "warehouse": warehouse, "kind": "tank_level", "material": world.diesel, "unit": "L", "tolerance_minutes": 60})
    assert r.status_code == 201, r.text
    return code


async def post(client, headers, readings):
    return await client.post("/api/v1/sensor-readings", headers=headers, json={"readings": readings})


async def test_a_probe_is_registered_replaced_and_read_with_its_last_reading(client, admin, operator, world):
    code = await probe(client, admin, world)
    again = await client.put(f"/api/v1/sensors/{code}", headers=admin, json={
        "warehouse": world.north, "kind": "temperature", "storage_class": "cold_chain", "unit": "C",
        "band": {"min": "2.0", "max": "8.0"}, "tolerance_minutes": 20})
    assert again.status_code == 200 and again.json()["tolerance_minutes"] == 20
    assert again.json()["last_reading"] is None
    last = ago(1)
    r = await post(client, operator, [{"sensor": code, "at": ago(2), "value": 4.5},
                                      {"sensor": code, "at": last, "value": "5.25"}])
    assert r.status_code == 200 and r.json() == {"accepted": 2, "duplicates": 0, "refused": []}
    shown = (await client.get(f"/api/v1/sensors/{code}", headers=operator)).json()
    assert shown["band"] == {"min": "2.0", "max": "8.0"} and shown["last_reading"] == {"at": last.replace("+00:00", "Z"),
                                                                                       "value": "5.25"}
    listed = await client.get("/api/v1/sensors", params={"warehouse": world.north}, headers=operator)
    assert [s["code"] for s in listed.json()["items"]] == [code]


async def test_a_sensor_that_cannot_be_judged_is_refused(client, admin, world):
    for body in ({"warehouse": world.north, "kind": "tank_level", "unit": "L", "tolerance_minutes": 30},
                 {"warehouse": world.north, "kind": "tank_level", "material": world.diesel, "unit": "kg",
                  "tolerance_minutes": 30},
                 {"warehouse": world.north, "kind": "temperature", "storage_class": "cold_chain", "unit": "C",
                  "tolerance_minutes": 30},
                 {"warehouse": world.north, "kind": "humidity", "storage_class": "ambient", "unit": "%",
                  "band": {"min": "70", "max": "20"}, "tolerance_minutes": 30},
                 {"warehouse": "NO-SUCH-DEPOT", "kind": "humidity", "storage_class": "ambient", "unit": "%",
                  "band": {"max": "70"}, "tolerance_minutes": 30}):
        r = await client.put(f"/api/v1/sensors/X-{world.uid}", headers=admin, json=body)
        assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM), (body, r.text)
        assert r.json()["type"] == "validation"
    assert (await client.get(f"/api/v1/sensors/X-{world.uid}", headers=admin)).status_code == 404


async def test_a_batch_sent_again_changes_nothing(client, admin, operator, world):
    code = await probe(client, admin, world)
    batch = [{"sensor": code, "at": ago(m), "value": f"{4 + m / 10}"} for m in range(30, 0, -1)]
    first = await post(client, operator, batch)
    assert first.json() == {"accepted": 30, "duplicates": 0, "refused": []}
    second = await post(client, operator, batch + [{"sensor": code, "at": ago(0), "value": "4"}])
    assert second.json() == {"accepted": 1, "duplicates": 30, "refused": []}
    same_time_other_value = await post(client, operator, [{"sensor": code, "at": batch[0]["at"], "value": "99"}])
    assert same_time_other_value.json()["duplicates"] == 1
    stored = await client.get(f"/api/v1/sensors/{code}/readings", headers=operator,
                              params={"since": ago(40), "limit": 1000})
    values = [item["value"] for item in stored.json()["items"]]
    assert len(values) == 31 and values[0] == "7.0" and "99" not in values


async def test_bad_readings_are_refused_one_by_one_and_the_others_are_kept(client, admin, operator, world):
    code = await probe(client, admin, world)
    future = (datetime.now(timezone.utc) + timedelta(hours=2)).isoformat()
    r = await post(client, operator, [
        {"sensor": code, "at": ago(3), "value": "4.1"},
        {"sensor": f"NO-SUCH-{world.uid}", "at": ago(3), "value": "4.1"},
        {"sensor": code, "at": ago(2), "value": "NaN"},
        {"sensor": code, "at": ago(2), "value": "warm"},
        {"sensor": code, "at": future, "value": "4.2"},
        {"sensor": code, "at": ago(60 * 24 * 400), "value": "4.2"},
        {"sensor": code, "at": ago(1), "value": "1e999"},
        {"sensor": code, "at": ago(1), "value": 4.3},
    ])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 2 and body["duplicates"] == 0
    refused = {x["index"]: x["problem"]["type"] for x in body["refused"]}
    assert refused == {1: "not-found", 2: "validation", 3: "validation", 4: "validation", 5: "validation",
                       6: "validation"}
    stored = await client.get(f"/api/v1/sensors/{code}/readings", headers=operator, params={"since": ago(10)})
    assert [i["value"] for i in stored.json()["items"]] == ["4.1", "4.3"]


async def test_too_many_readings_in_one_request_are_refused_whole(client, admin, operator, world):
    code = await probe(client, admin, world)
    start = datetime.now(timezone.utc) - timedelta(days=2)
    readings = [{"sensor": code, "at": (start + timedelta(seconds=i)).isoformat(), "value": 5} for i in range(10_001)]
    r = await post(client, operator, readings)
    assert r.status_code == 422 and r.json()["type"] == "validation"
    r = await post(client, operator, [])
    assert r.status_code == 422


async def test_readings_are_averaged_per_step(client, admin, operator, world):
    code = await probe(client, admin, world)
    hour = (datetime.now(timezone.utc) - timedelta(hours=3)).replace(minute=0, second=0, microsecond=0)
    values = ["3", "5", "7", "9"]
    await post(client, operator, [{"sensor": code, "at": (hour + timedelta(minutes=15 * i)).isoformat(), "value": v}
                                  for i, v in enumerate(values)])
    r = await client.get(f"/api/v1/sensors/{code}/readings", headers=operator,
                         params={"since": hour.isoformat(), "until": (hour + timedelta(hours=1)).isoformat(),
                                 "step": 1800})
    assert r.status_code == 200, r.text
    assert [(i["value"], i["min"], i["max"], i["readings"]) for i in r.json()["items"]] == [
        ("4", "3", "5", 2), ("8", "7", "9", 2)]


async def test_a_device_token_posts_only_at_its_warehouses_and_does_nothing_else(client, admin, make_token, world):
    north, south = await probe(client, admin, world), await probe(client, admin, world, f"T-S-{world.uid}", world.south)
    device = {"Authorization": f"Bearer {await make_token('sensor', warehouses=[world.north])}"}
    r = await post(client, device, [{"sensor": north, "at": ago(1), "value": "4"},
                                    {"sensor": south, "at": ago(1), "value": "4"}])
    assert r.status_code == 200
    assert r.json()["accepted"] == 1 and [x["problem"]["type"] for x in r.json()["refused"]] == ["forbidden"]
    for method, path, body in (("GET", "/api/v1/sensors", None), ("GET", f"/api/v1/sensors/{north}", None),
                               ("GET", f"/api/v1/sensors/{north}/readings", None), ("GET", "/api/v1/stock", None),
                               ("PUT", f"/api/v1/sensors/{north}", {}), ("POST", "/api/v1/movements", {})):
        denied = await client.request(method, path, headers=device, json=body)
        assert denied.status_code == 403 and denied.json()["type"] == "forbidden", (method, path, denied.text)


async def test_a_military_tanks_gauge_exists_only_for_cleared_readers(client, admin, operator, make_token, world):
    await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.military,
                  quantity="500", lot=f"MIL-{world.uid}")
    await receive(client, operator, warehouse=world.south, material=world.diesel, owner=world.civil,
                  quantity="500", lot=f"CIV-{world.uid}")
    military, civil = await gauge(client, admin, world, world.north), await gauge(client, admin, world, world.south)
    reader = {"Authorization": f"Bearer {await make_token('operator', regions=[world.region])}"}
    device = {"Authorization": f"Bearer {await make_token('sensor', warehouses=[world.north, world.south])}"}
    cleared_device = {"Authorization": f"Bearer {await make_token('sensor', clearance='military', warehouses=[world.north])}"}

    r = await post(client, device, [{"sensor": military, "at": ago(1), "value": "500.0"},
                                    {"sensor": civil, "at": ago(1), "value": "500.0"}])
    assert r.json()["accepted"] == 1
    [refusal] = r.json()["refused"]
    unknown = await post(client, device, [{"sensor": f"NONE-{world.uid}", "at": ago(1), "value": "1"}])
    assert refusal["problem"]["type"] == "not-found"
    assert refusal["problem"]["detail"].replace(military, "X") == \
        unknown.json()["refused"][0]["problem"]["detail"].replace(f"NONE-{world.uid}", "X")
    assert (await post(client, cleared_device, [{"sensor": military, "at": ago(1), "value": "500.0"}])).json()[
        "accepted"] == 1

    assert (await client.get(f"/api/v1/sensors/{military}", headers=reader)).status_code == 404
    assert (await client.get(f"/api/v1/sensors/{military}/readings", headers=reader)).status_code == 404
    listed = await client.get("/api/v1/sensors", params={"warehouse": world.north}, headers=reader)
    assert listed.json()["items"] == []
    assert (await client.get(f"/api/v1/sensors/{civil}", headers=reader)).json()["last_reading"]["value"] == "500.0"
    shown = await client.get(f"/api/v1/sensors/{military}", headers=admin)
    assert shown.json()["last_reading"]["value"] == "500.0"


async def test_sensors_out_of_scope_answer_as_missing(client, admin, make_token, world):
    code = await probe(client, admin, world, warehouse=world.south)
    reader = {"Authorization": f"Bearer {await make_token('operator', warehouses=[world.north])}"}
    assert (await client.get(f"/api/v1/sensors/{code}", headers=reader)).status_code == 404
    assert (await client.get(f"/api/v1/sensors/{code}/readings", headers=reader)).status_code == 404
    assert code not in str((await client.get("/api/v1/sensors", headers=reader)).json())


async def test_concurrent_resends_store_each_reading_once(client, admin, operator, world):
    """A device that times out resends while its first request is still running: eight clients post
    the same 500 readings at once; each is stored once, and the answers add up."""
    code = await probe(client, admin, world)
    batch = [{"sensor": code, "at": ago(600 - m), "value": f"{5 + m % 7 / 10}"} for m in range(500)]
    answers = await asyncio.gather(*(post(client, operator, batch) for _ in range(8)))
    assert all(a.status_code == 200 for a in answers)
    assert sum(a.json()["accepted"] for a in answers) == 500
    assert sum(a.json()["duplicates"] for a in answers) == 7 * 500
    stored = await client.get(f"/api/v1/sensors/{code}/readings", headers=operator,
                              params={"since": ago(700), "limit": 1000})
    assert len(stored.json()["items"]) == 500

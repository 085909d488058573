"""Readiness declarations, the two-person rule, and the versioned allocation rule table, through the API."""

import pytest

from tests.factories import make_world


@pytest.fixture
async def commanders(make_token):
    first = {"Authorization": f"Bearer {await make_token('commander', clearance='military')}"}
    second = {"Authorization": f"Bearer {await make_token('commander', clearance='military')}"}
    return first, second


async def _levels(client, headers) -> dict[str, dict]:
    r = await client.get("/api/v1/readiness", headers=headers)
    assert r.status_code == 200, r.text
    return {item["region"]: item for item in r.json()["items"]}


async def test_an_emergency_applies_at_once_to_the_region_and_everything_under_it(client, admin, commanders, uid):
    w = await make_world(client, admin, uid)
    district = f"D-{uid}"
    assert (await client.put(f"/api/v1/regions/{district}", json={"name": "District", "parent": w.region},
                             headers=admin)).status_code == 201
    first, _ = commanders
    r = await client.post("/api/v1/readiness/declarations", headers=first,
                          json={"region": w.region, "level": "emergency", "reason": "flooding on the river"})
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "effective" and r.json()["effective_at"]
    levels = await _levels(client, first)
    assert levels[w.region]["level"] == "emergency"
    assert levels[district]["level"] == "emergency" and levels[district]["source_region"] == w.region
    assert levels[district]["declared_level"] == "peacetime"
    assert levels["TEST-NATION"]["level"] == "peacetime"  # nothing above is touched

    r = await client.post("/api/v1/readiness/declarations", headers=first,
                          json={"region": w.region, "level": "peacetime", "reason": "water receded"})
    assert r.status_code == 201
    assert (await _levels(client, first))[district]["level"] == "peacetime"
    history = (await client.get("/api/v1/readiness/declarations", params={"region": w.region}, headers=first)).json()
    assert [d["state"] for d in history["items"]] == ["effective", "superseded"]


async def test_wartime_takes_effect_only_when_a_different_commander_confirms(client, admin, commanders, uid):
    w = await make_world(client, admin, uid)
    first, second = commanders
    r = await client.post("/api/v1/readiness/declarations", headers=first,
                          json={"region": w.region, "level": "wartime", "reason": "mobilisation order 7"})
    assert r.status_code == 201 and r.json()["state"] == "pending_confirmation"
    declaration = r.json()["id"]
    assert (await _levels(client, first))[w.region]["level"] == "peacetime"

    own = await client.post(f"/api/v1/readiness/declarations/{declaration}/confirm", headers=first)
    assert own.status_code == 403 and own.json()["type"] == "forbidden"
    assert (await _levels(client, first))[w.region]["level"] == "peacetime"

    confirmed = await client.post(f"/api/v1/readiness/declarations/{declaration}/confirm", headers=second)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["state"] == "effective" and confirmed.json()["confirmed_by"]
    assert (await _levels(client, first))[w.region]["level"] == "wartime"

    again = await client.post(f"/api/v1/readiness/declarations/{declaration}/confirm", headers=second)
    assert again.status_code == 409
    audit = await client.get("/api/v1/audit-events", headers=admin, params={"limit": 1000})
    actions = [e for e in audit.json()["items"] if (e.get("details") or {}).get("id") == declaration]
    assert len(actions) >= 2  # the declaration and its confirmation are both in the audit trail


async def test_a_pending_wartime_declaration_can_be_withdrawn(client, admin, commanders, uid):
    w = await make_world(client, admin, uid)
    first, second = commanders
    r = await client.post("/api/v1/readiness/declarations", headers=first,
                          json={"region": w.region, "level": "wartime", "reason": "exercise mistaken for attack"})
    withdrawn = await client.post(f"/api/v1/readiness/declarations/{r.json()['id']}/withdraw", headers=second)
    assert withdrawn.status_code == 200 and withdrawn.json()["state"] == "withdrawn"
    late = await client.post(f"/api/v1/readiness/declarations/{r.json()['id']}/confirm", headers=second)
    assert late.status_code == 409
    assert (await _levels(client, first))[w.region]["level"] == "peacetime"


async def test_only_commanders_declare_and_bad_declarations_are_422(client, admin, operator, commanders, uid):
    w = await make_world(client, admin, uid)
    body = {"region": w.region, "level": "emergency", "reason": "drill"}
    assert (await client.post("/api/v1/readiness/declarations", headers=admin, json=body)).status_code == 403
    assert (await client.post("/api/v1/readiness/declarations", headers=operator, json=body)).status_code == 403
    first, _ = commanders
    for bad, field in (({**body, "region": "NOWHERE"}, "region"), ({**body, "level": "defcon1"}, "level"),
                       ({**body, "reason": ""}, "reason"), ({**body, "ends_at": "2001-01-01T00:00:00Z"}, "ends_at")):
        r = await client.post("/api/v1/readiness/declarations", headers=first, json=bad)
        assert r.status_code == 422 and r.json()["type"] == "validation", (bad, r.text)
        assert field in r.text
    assert (await _levels(client, first))[w.region]["level"] == "peacetime"


async def test_editing_a_rule_opens_a_new_version_and_keeps_the_old_one_readable(client, admin, commanders):
    before = (await client.get("/api/v1/allocation-rules", headers=admin)).json()
    assert {r["code"] for r in before["items"]} >= {"PEA-OWN-MIL", "WAR-MIL-CIV-FUEL", "EME-CIV-MIL-FOOD"}
    code = "TEST-EME-CIV-MIL-FUEL"
    rule = {"level": "emergency", "category": "fuel", "requester_sector": "civilian", "owner_sector": "military",
            "allowed": True, "floor_ratio": 0.8, "preference_cost": 70, "approval_required": True, "obligation": "loan"}
    r = await client.put(f"/api/v1/allocation-rules/{code}", headers=admin, json=rule)
    assert r.status_code == 201, r.text
    version = r.json()["version"]
    assert version > before["current_version"]
    r = await client.put(f"/api/v1/allocation-rules/{code}", headers=admin, json={**rule, "allowed": False, "obligation": None})
    assert r.status_code == 200 and r.json()["version"] == version + 1
    now = {x["code"]: x for x in (await client.get("/api/v1/allocation-rules", headers=admin)).json()["items"]}
    then = {x["code"]: x for x in (await client.get("/api/v1/allocation-rules", params={"version": version},
                                                    headers=admin)).json()["items"]}
    assert now[code]["allowed"] is False and then[code]["allowed"] is True and then[code]["floor_ratio"] == 0.8
    first, _ = commanders
    assert (await client.put(f"/api/v1/allocation-rules/{code}", headers=first, json=rule)).status_code == 403
    for bad in ({**rule, "floor_ratio": 1.5}, {**rule, "allowed": False}, {**rule, "level": "calm"}):
        assert (await client.put(f"/api/v1/allocation-rules/{code}", headers=admin, json=bad)).status_code == 422
    latest = (await client.get("/api/v1/allocation-rules", headers=admin)).json()["current_version"]
    assert latest == version + 1  # the refused edits opened no version

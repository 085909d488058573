"""A lot's status (available, quarantine, recalled) through POST /api/v1/lots/{id}/status: its
history, its effect on picking, and who may change it."""

from __future__ import annotations

import uuid

from tests.api.ledger_checks import assert_problem, issue_body
from tests.factories import lot_of, post_movement, receive


# -- lot status --------------------------------------------------------------------------------

async def test_a_lot_goes_to_quarantine_then_recalled_then_back_with_its_history(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="STATUS"))
    for status, reason in (("quarantine", "suspect seal"), ("recalled", "supplier recall"), ("available", "cleared")):
        r = await client.post(f"/api/v1/lots/{lot}/status", json={"status": status, "reason": reason}, headers=operator)
        assert r.status_code == 200, r.text
        assert r.json()["status"] == status
    view = (await client.get(f"/api/v1/lots/{lot}", headers=operator)).json()
    assert view["status"] == "available"
    assert [(h["kind"], h["from"], h["to"], h["reason"]) for h in view["history"]] == [
        ("status", "available", "quarantine", "suspect seal"), ("status", "quarantine", "recalled", "supplier recall"),
        ("status", "recalled", "available", "cleared")]
    assert all(h["by"] and h["at"].endswith("Z") for h in view["history"])
    assert (await post_movement(client, operator, {"kind": "issue", "lot_id": lot, "owner": world.civil,
                                                   "quantity": "1"})).status_code == 201


async def test_a_quarantined_lot_is_skipped_by_picking_until_released(client, operator, world):
    soon = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                                quantity="10", lot="SOON", expires_on="2027-01-01"))
    later = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                                 quantity="10", lot="LATER", expires_on="2029-01-01"))
    await client.post(f"/api/v1/lots/{soon}/status", json={"status": "quarantine"}, headers=operator)
    r = await post_movement(client, operator, issue_body(world, "3"))
    assert [b["lot_id"] for b in r.json()["balances"]] == [later]
    await client.post(f"/api/v1/lots/{soon}/status", json={"status": "available"}, headers=operator)
    r = await post_movement(client, operator, issue_body(world, "3"))
    assert [b["lot_id"] for b in r.json()["balances"]] == [soon]


async def test_setting_a_lot_to_its_current_status_adds_no_history(client, operator, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="SAME"))
    r = await client.post(f"/api/v1/lots/{lot}/status", json={"status": "available"}, headers=operator)
    assert r.status_code == 200 and r.json()["history"] == []


async def test_lot_status_refusals(client, operator, auditor, world):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="REFUSE"))
    assert_problem(await client.post(f"/api/v1/lots/{lot}/status", json={"status": "destroyed"}, headers=operator),
                   422, "validation")
    assert_problem(await client.post(f"/api/v1/lots/{uuid.uuid4()}/status", json={"status": "recalled"}, headers=operator),
                   404, "not-found")
    assert_problem(await client.post(f"/api/v1/lots/{lot}/status", json={"status": "recalled"}, headers=auditor),
                   403, "forbidden")
    assert (await client.get(f"/api/v1/lots/{lot}", headers=operator)).json()["status"] == "available"
    assert_problem(await client.get(f"/api/v1/lots/{uuid.uuid4()}", headers=operator), 404, "not-found")
    assert_problem(await client.get("/api/v1/lots/not-a-uuid", headers=operator), 404, "not-found")

"""Bad movement requests: every malformed, out-of-range or unknown member is a 422 problem that
names it and writes nothing; never a 500."""

from __future__ import annotations

import pytest

from tests.api.ledger_checks import PROBLEM, assert_problem, ledger_of
from tests.factories import idem, list_all, lot_of, owner_balances, post_movement, receive


# -- bad input ---------------------------------------------------------------------------------

ISSUE = {"kind": "issue", "quantity": "1"}


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"quantity": "1.25"}, "quantity", "decimal places"),
    ({"quantity": 1.25}, "quantity", "decimal places"),
    ({"quantity": "1.000000000000000000000000000001"}, "quantity", "decimal places"),
    ({"quantity": "0"}, "quantity", "greater than zero"),
    ({"quantity": 0}, "quantity", "greater than zero"),
    ({"quantity": "-5"}, "quantity", "negative"),
    ({"quantity": "NaN"}, "quantity", "finite"),
    ({"quantity": "Infinity"}, "quantity", "finite"),
    ({"quantity": "1e999999"}, "quantity", "larger"),
    ({"quantity": 1e300}, "quantity", "larger"),
    ({"quantity": True}, "quantity", ""),
    ({"quantity": "ten"}, "quantity", ""),
    ({"owner": "NOBODY-X"}, "owner", "unknown"),
    ({"warehouse": "NOWHERE-X"}, "warehouse", "unknown"),
    ({"material": "NOTHING-X"}, "material", "unknown"),
    ({"surprise": 1}, "surprise", "unknown field"),
    ({"kind": "teleport"}, "kind", ""),
])
async def test_bad_input_is_a_422_problem_that_writes_nothing(client, operator, world, change, field, message):
    lot = lot_of(await receive(client, operator, warehouse=world.north, material=world.diesel, owner=world.civil,
                               quantity="10", lot="BAD"))
    before = await ledger_of(client, operator, world.diesel)
    body = {**ISSUE, "warehouse": world.north, "material": world.diesel, "owner": world.civil, **change}
    problem = assert_problem(await post_movement(client, operator, body), 422, "validation")
    assert any(e["field"] == field and message in e["message"] for e in problem["errors"]), problem
    assert await owner_balances(client, operator, lot) == {world.civil: "10.0"}
    assert await ledger_of(client, operator, world.diesel) == before


async def test_a_manufacturing_date_too_late_to_add_the_shelf_life_to_is_invalid(client, operator, world):
    r = await post_movement(client, operator, {
        "kind": "receipt", "warehouse": world.north, "material": world.vaccine, "owner": world.civil, "quantity": "10",
        "lot": {"code": "FAR", "manufactured_on": "9999-12-01"}})
    assert [e["field"] for e in assert_problem(r, 422, "validation")["errors"]] == ["lot.manufactured_on"]
    assert await list_all(client, operator, "/api/v1/stock", material=world.vaccine) == []


@pytest.mark.parametrize("change", [{"note": "signed\x00"}, {"reason": "\x00"}, {"lot": {"code": "L\x00T"}}])
async def test_text_postgresql_cannot_store_is_invalid_not_a_500(client, operator, world, change):
    body = {"kind": "receipt", "warehouse": world.north, "material": world.diesel, "owner": world.civil, "quantity": "1",
            "lot": {"code": "NUL", "expires_on": "2030-01-01"}, **change}
    assert_problem(await post_movement(client, operator, body), 422, "validation")
    assert await ledger_of(client, operator, world.diesel) == []


@pytest.mark.parametrize(("body", "field"), [
    ({"kind": "receipt", "quantity": "1", "lot": {"code": "X"}}, "warehouse"),
    ({"kind": "receipt", "warehouse": "W", "material": "M", "owner": "O", "quantity": "1"}, "lot"),
    ({"kind": "receipt", "warehouse": "W", "material": "M", "owner": "O", "quantity": "1", "lot": {}}, "lot.code"),
    ({"kind": "write_off", "quantity": "1", "owner": "X"}, "lot_id"),
    ({"kind": "reversal"}, "movement_id"),
    ({"quantity": "1"}, "kind"),
])
async def test_a_missing_member_is_named_in_the_errors(client, operator, body, field):
    problem = assert_problem(await post_movement(client, operator, body), 422, "validation")
    assert [e["field"] for e in problem["errors"]] == [field], problem


async def test_unknown_codes_in_a_receipt_are_each_named(client, operator, uid):
    r = await post_movement(client, operator, {"kind": "receipt", "warehouse": f"W-{uid}", "material": f"M-{uid}",
                                               "owner": f"O-{uid}", "quantity": "1", "lot": {"code": "L"}})
    assert {e["field"] for e in assert_problem(r, 422, "validation")["errors"]} == {"warehouse", "material", "owner"}


@pytest.mark.parametrize("raw", [b'{"kind": "issue",', b"not json", b"[1, 2", b"", b'"just a string"', b"null"])
async def test_malformed_json_is_a_problem_not_a_500(client, operator, raw):
    r = await client.post("/api/v1/movements", content=raw,
                          headers={**operator, **idem(), "Content-Type": "application/json"})
    assert 400 <= r.status_code < 500, r.text
    assert r.headers["content-type"].startswith(PROBLEM) and r.json()["type"] == "validation"

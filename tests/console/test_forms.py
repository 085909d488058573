"""The operator's and planner's other forms: a write-off and an ownership transfer change exactly the
positions they name; a transfer of several lines dispatches them in one transfer, and a half-filled
line is refused at the form with nothing sent; a drill runs on synthetic requests alone."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from tests.console.browser import screenshot
from tests.console.conftest import sign_in
from tests.console.test_operator import WAREHOUSE, _balance

DESTINATION = "WH-S-02"


async def _usable_rows(page, n: int) -> list[tuple[str, str, Decimal]]:
    """``n`` positions of lots that can be moved (available, not expiring), each with some stock."""
    found = []
    for row in await page.locator("table.stock tbody tr[data-lot]").all():
        if await row.get_attribute("class") in ("expired", "expiring"):
            continue
        available = Decimal(await row.locator("td.available").get_attribute("data-value"))
        if available >= 5 and await row.locator("td.status").get_attribute("data-value") == "available":
            found.append((await row.get_attribute("data-lot"), await row.get_attribute("data-owner"), available))
        if len(found) == n:
            return found
    raise AssertionError(f"fewer than {n} usable positions at {WAREHOUSE}")


async def _operator_at_warehouse(watched, demo_service):
    page = await (await watched()).page()
    await sign_in(page, demo_service.tokens["demo-operator"])
    await page.goto(f"/console/warehouses/{WAREHOUSE}")
    return page


async def test_a_write_off_lowers_the_position_by_exactly_the_amount(watched, demo_service):
    page = await _operator_at_warehouse(watched, demo_service)
    [(lot, owner, _)] = await _usable_rows(page, 1)
    before = await _balance(page, lot, owner)
    await page.locator("#write-off-lot").fill(lot)
    await page.locator("#write-off-owner").fill(owner)
    await page.locator("#write-off-quantity").fill("1")
    await page.locator("#write-off-reason").fill("crushed pallet")
    await page.locator("#write-off-form button[type=submit]").click()
    await page.wait_for_url("**done=**")
    assert "write_off" in await page.get_by_role("status").inner_text()
    assert await _balance(page, lot, owner) == before - 1


async def test_an_ownership_transfer_moves_the_share_between_owners(watched, demo_service):
    page = await _operator_at_warehouse(watched, demo_service)
    [(lot, owner, _)] = await _usable_rows(page, 1)
    with demo_service.api("demo-operator") as api:
        parties = api.get("/api/v1/parties", params={"limit": 1000}).json()["items"]
    to_owner = next(p["code"] for p in parties if p["code"] != owner and p["sector"] == "civilian")
    before = await _balance(page, lot, owner)
    receiving = page.locator(f"table.stock tr[data-lot='{lot}'][data-owner='{to_owner}'] td.balance")
    before_to = Decimal(await receiving.get_attribute("data-value")) if await receiving.count() else Decimal(0)

    await page.locator("#ownership-lot").fill(lot)
    await page.locator("#ownership-from").fill(owner)
    await page.locator("#ownership-to").fill(to_owner)
    await page.locator("#ownership-quantity").fill("2")
    await page.locator("#ownership-reason").fill("settlement of a loan")
    await page.locator("#ownership-form button[type=submit]").click()
    await page.wait_for_url("**done=**")
    assert await _balance(page, lot, owner) == before - 2
    assert await _balance(page, lot, to_owner) == before_to + 2


async def test_a_transfer_of_several_lines_is_dispatched_as_one(watched, demo_service):
    page = await _operator_at_warehouse(watched, demo_service)
    rows = await _usable_rows(page, 2)
    befores = [await _balance(page, lot, owner) for lot, owner, _ in rows]
    for i, ((lot, owner, _), quantity) in enumerate(zip(rows, ("1", "2"))):
        await page.locator(f"#transfer-lot-{i}").fill(lot)
        await page.locator(f"#transfer-owner-{i}").fill(owner)
        await page.locator(f"#transfer-quantity-{i}").fill(quantity)
    await page.locator("#transfer-to").select_option(DESTINATION)
    await page.locator("#transfer-form button[type=submit]").click()
    await page.wait_for_url("**done=**")

    transfer_id = (await page.locator(".done-what").inner_text()).split()[1]
    with demo_service.api("demo-admin") as api:
        transfer = api.get(f"/api/v1/transfers/{transfer_id}").json()
    assert transfer["from_warehouse"] == WAREHOUSE and transfer["to_warehouse"] == DESTINATION
    assert sorted((line["lot_code"], line["owner"], Decimal(line["quantity"])) for line in transfer["lines"]) == \
        sorted([(rows[0][0], rows[0][1], Decimal(1)), (rows[1][0], rows[1][1], Decimal(2))])
    for (lot, owner, _), before, quantity in zip(rows, befores, (1, 2)):
        assert await _balance(page, lot, owner) == before - quantity
    await screenshot(page, "operator-transfer-lines")


async def test_a_half_filled_transfer_line_is_refused_at_the_form_and_nothing_is_sent(watched, demo_service):
    page = await _operator_at_warehouse(watched, demo_service)
    [(lot, owner, _)] = await _usable_rows(page, 1)
    before = await _balance(page, lot, owner)
    with demo_service.api("demo-admin") as api:
        moving = len(api.get("/api/v1/transfers", params={"warehouse": WAREHOUSE, "limit": 1000}).json()["items"])
    await page.locator("#transfer-lot-0").fill(lot)
    await page.locator("#transfer-owner-0").fill(owner)
    await page.locator("#transfer-quantity-0").fill("1")
    await page.locator("#transfer-lot-1").fill(lot)  # a second line without its owner and quantity
    await page.locator("#transfer-form button[type=submit]").click()

    problem = page.locator("#transfer-form .problem")
    await problem.wait_for()
    assert await problem.get_attribute("data-problem-type") == "validation"
    assert "lines[1].owner" in await problem.inner_text()
    assert await page.locator("#transfer-lot-1").input_value() == lot  # what was typed is kept
    assert await _balance(page, lot, owner) == before
    with demo_service.api("demo-admin") as api:
        assert len(api.get("/api/v1/transfers", params={"warehouse": WAREHOUSE, "limit": 1000}).json()["items"]) == moving


async def test_a_drill_runs_on_synthetic_requests_alone(watched, demo_service):
    page = await (await watched()).page()
    await sign_in(page, demo_service.tokens["demo-planner"])
    await page.goto("/console/drills")
    await page.locator("#drill-name").fill("flood at the ferry port")
    await page.locator("#req-requester-0").select_option("CIV-CD-SOUTH")
    await page.locator("#req-destination-0").select_option("WH-S-01")
    await page.locator("#req-material-0").fill("WATER-BOTTLED")
    await page.locator("#req-quantity-0").fill("77.7")
    await page.locator("#req-priority-0").select_option("flash")
    await page.locator("#req-needed-0").fill((date.today() + timedelta(days=10)).isoformat())
    await page.locator("#drill-pending").uncheck()
    await page.locator("#drill-form button[type=submit]").click()
    await page.wait_for_url("**/console/drills/*")
    drill_id = page.url.rstrip("/").rsplit("/", 1)[1]
    with demo_service.api("demo-planner") as api:
        drill = api.get(f"/api/v1/drills/{drill_id}").json()
    assert drill["scenario"]["include_pending"] is False
    assert drill["scenario"]["requests"] == 1  # the one synthetic request, and no pending one
    assert set(drill["fill_rate"]) == {"flash"}
    await screenshot(page, "planner-drill-synthetic")


async def test_a_drill_with_neither_requests_nor_pending_ones_is_refused_at_its_form(watched, demo_service):
    page = await (await watched()).page()
    await sign_in(page, demo_service.tokens["demo-planner"])
    await page.goto("/console/drills")
    await page.locator("#drill-name").fill("nothing to plan")
    await page.locator("#drill-pending").uncheck()
    await page.locator("#drill-form button[type=submit]").click()
    problem = page.locator("#drill-form .problem")
    await problem.wait_for()
    assert await problem.get_attribute("data-problem-type") == "validation"
    assert "Traceback" not in await page.content()

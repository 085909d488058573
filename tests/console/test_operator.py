"""An operator at the depot counter: sign in with the demo token, record an issue, see the balance
change by exactly that amount; a refused issue is shown at its form; a double submit of one form
makes one movement."""

from __future__ import annotations

from decimal import Decimal

from tests.console.browser import screenshot
from tests.console.conftest import sign_in

WAREHOUSE = "WH-N-04"


async def _usable_row(page):
    """A position of a lot that can be issued from (available, not expired), with some stock."""
    for row in await page.locator("table.stock tbody tr[data-lot]").all():
        if await row.get_attribute("class") in ("expired", "expiring"):
            continue
        available = Decimal(await row.locator("td.available").get_attribute("data-value"))
        if available >= 3 and await row.locator("td.status").get_attribute("data-value") == "available":
            return await row.get_attribute("data-lot"), await row.get_attribute("data-owner"), available
    raise AssertionError("no usable position on the demo operator's warehouse")


async def _balance(page, lot: str, owner: str) -> Decimal:
    cell = page.locator(f"table.stock tr[data-lot='{lot}'][data-owner='{owner}'] td.balance")
    return Decimal(await cell.get_attribute("data-value"))


async def _fill_issue(page, lot: str, owner: str, quantity: str) -> None:
    await page.locator("#issue-lot").fill(lot)
    await page.locator("#issue-owner").fill(owner)
    await page.locator("#issue-quantity").fill(quantity)


def _movements(demo_service, lot_code: str) -> int:
    """Movements touching the lot, as the ledger holds them (read through the API)."""
    with demo_service.api("demo-admin") as api:
        stock = api.get("/api/v1/stock", params={"warehouse": WAREHOUSE, "limit": 1000}).json()["items"]
        lot_id = next(p["lot_id"] for p in stock if p["lot_code"] == lot_code)
        listed = api.get("/api/v1/movements", params={"warehouse": WAREHOUSE, "limit": 1000}).json()["items"]
    return sum(1 for m in listed if any(p["account"].get("lot_id") == lot_id for p in m["postings"]))


async def test_an_operator_issue_lowers_the_balance_shown_by_exactly_the_amount(watched, demo_service):
    page = await (await watched()).page()
    await sign_in(page, demo_service.tokens["demo-operator"])
    assert await page.locator(f"a[href='/console/warehouses/{WAREHOUSE}']").is_visible()
    await screenshot(page, "operator-home")
    await page.goto(f"/console/warehouses/{WAREHOUSE}")
    lot, owner, _ = await _usable_row(page)
    before = await _balance(page, lot, owner)

    await _fill_issue(page, lot, owner, "2")
    await page.locator("#issue-lot-found li").first.wait_for()  # the typed lot code found the lot
    assert lot in await page.locator("#issue-lot-found").inner_text()
    await page.locator("#issue-form button[type=submit]").click()
    await page.wait_for_url("**done=**")

    assert await page.get_by_role("status").is_visible()
    assert await _balance(page, lot, owner) == before - 2
    await screenshot(page, "operator-warehouse")


async def test_a_refused_issue_is_shown_at_its_form_and_changes_nothing(watched, demo_service):
    page = await (await watched()).page()
    await sign_in(page, demo_service.tokens["demo-operator"])
    await page.goto(f"/console/warehouses/{WAREHOUSE}")
    lot, owner, available = await _usable_row(page)
    before, movements = await _balance(page, lot, owner), _movements(demo_service, lot)

    await _fill_issue(page, lot, owner, str(available + 1))
    await page.locator("#issue-form button[type=submit]").click()

    problem = page.locator("#issue-form .problem")
    await problem.wait_for()
    assert await problem.get_attribute("data-problem-type") == "insufficient-stock"
    assert "Traceback" not in await page.content()
    assert await _balance(page, lot, owner) == before
    assert _movements(demo_service, lot) == movements


async def test_a_double_submitted_issue_makes_one_movement(watched, demo_service):
    page = await (await watched()).page()
    await sign_in(page, demo_service.tokens["demo-operator"])
    await page.goto(f"/console/warehouses/{WAREHOUSE}")
    lot, owner, _ = await _usable_row(page)
    before, movements = await _balance(page, lot, owner), _movements(demo_service, lot)
    await _fill_issue(page, lot, owner, "1")

    # A double click: the same rendered form (one idempotency key) sent twice at once …
    answers = await page.evaluate("""async () => {
        const form = document.querySelector('#issue-form');
        const send = () => fetch(form.action, {method: 'POST', body: new URLSearchParams(new FormData(form)),
                                               redirect: 'manual'});
        const answers = await Promise.all([send(), send()]);
        return answers.map(a => a.type);
    }""")
    assert answers == ["opaqueredirect", "opaqueredirect"]  # both answered as applied (303)
    # … and the same page submitted once more, as after a lost answer.
    await page.locator("#issue-form button[type=submit]").click()
    await page.wait_for_url("**done=**")

    assert _movements(demo_service, lot) == movements + 1
    assert await _balance(page, lot, owner) == before - 1


async def test_working_a_rotation_order_out_counts_exactly_that_amount_on_the_order(watched, demo_service):
    page = await (await watched()).page()
    await sign_in(page, demo_service.tokens["demo-operator"])
    await page.goto(f"/console/warehouses/{WAREHOUSE}")
    work = page.locator("tr.work[data-order]").first
    order_id = await work.get_attribute("data-order")
    with demo_service.api("demo-admin") as api:
        before = api.get(f"/api/v1/rotation-orders/{order_id}").json()
    await work.locator("form.rotation-out input[name=quantity]").fill("1")
    await work.locator("form.rotation-out button").click()
    await page.wait_for_url("**done=**")
    with demo_service.api("demo-admin") as api:
        after = api.get(f"/api/v1/rotation-orders/{order_id}").json()
    assert Decimal(after["out_quantity"]) == Decimal(before["out_quantity"]) + 1
    assert after["in_quantity"] == before["in_quantity"]

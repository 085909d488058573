"""A planner files a request, proposes a plan, reads its evidence, approves and dispatches it."""

from __future__ import annotations

from datetime import date, timedelta

from tests.console.browser import screenshot
from tests.console.conftest import sign_in


async def test_a_planner_files_proposes_approves_and_dispatches_a_plan(watched, demo_service):
    page = await (await watched()).page()
    await sign_in(page, demo_service.tokens["demo-planner"])
    assert await page.locator("tr[data-region]").count() >= 1  # the planner's regions on the home page
    await page.goto("/console/coverage")
    assert await page.locator("svg.chart").count() == 3  # regions, targets, expiring per month
    await screenshot(page, "planner-coverage")

    await page.goto("/console/allocation")
    await page.locator("#file-requester").select_option("CIV-CD-SOUTH")
    await page.locator("#file-destination").select_option("WH-S-01")
    await page.locator("#file-material").fill("WATER-BOTTLED")
    await page.locator("#file-quantity").fill("120.5")
    await page.locator("#file-priority").select_option("immediate")
    await page.locator("#file-needed").fill((date.today() + timedelta(days=30)).isoformat())
    await page.locator("#file-purpose").fill("shelter at the ferry port")
    await page.locator("#file-form button[type=submit]").click()
    await page.wait_for_url("**done=**")
    filed = page.locator("tr[data-request]", has_text="WATER-BOTTLED").filter(has_text="pending")
    assert await filed.count() == 1
    request_id = await filed.get_attribute("data-request")

    # A drill on the pending requests (the new one among them) posts nothing and reports its fill rates.
    await page.goto("/console/drills")
    await page.locator("#drill-name").fill("ferry port shelter")
    await page.locator("#drill-form button[type=submit]").click()
    await page.wait_for_url("**/console/drills/*")
    assert await page.locator("section[aria-labelledby=fill] svg.chart rect").count() >= 1
    await screenshot(page, "planner-drill")

    await page.goto("/console/allocation")
    filed = page.locator(f"tr[data-request='{request_id}']")
    await filed.locator("input[name=request_id]").check()
    await page.locator("#propose-form button[type=submit]").click()
    await page.wait_for_url("**/console/allocation/plans/*")
    assert await page.locator("#plan-state").get_attribute("data-state") == "proposed"
    lines = page.locator("section[aria-labelledby=lines] tbody tr")
    assert "WH-S-03" in await lines.first.inner_text()  # the line names its source, rule, distance, expiry
    assert "km" in await lines.first.inner_text()
    await screenshot(page, "planner-plan")

    await page.locator("#approve-form button").click()
    await page.wait_for_url("**done=**")
    assert await page.locator("#plan-state").get_attribute("data-state") == "approved"
    await page.locator("#dispatch-form button").click()
    await page.wait_for_url("**done=**")
    assert await page.locator("#plan-state").get_attribute("data-state") == "dispatched"

    with demo_service.api("demo-admin") as api:
        request = api.get(f"/api/v1/allocation-requests/{request_id}").json()
        moving = api.get("/api/v1/transfers", params={"state": "in_transit", "warehouse": "WH-S-01"}).json()["items"]
    assert request["state"] == "allocated"
    assert any(t["from_warehouse"] == "WH-S-03" and t["to_warehouse"] == "WH-S-01"
               and any(line["quantity"] == "120.5" for line in t["lines"]) for t in moving)

"""The planner's mobilisation potential page shows what the API answers the same reader: the potential
per region × material, the capacities and the tasking orders (need-to-know: tests/console/test_need_to_know.py)."""

from __future__ import annotations

from tests.console.browser import screenshot
from tests.console.conftest import sign_in


async def test_the_potential_page_shows_what_the_api_answers_the_planner(watched, demo_service):
    with demo_service.api("demo-planner") as api:
        potential = api.get("/api/v1/potential").json()["items"]
        capacities = api.get("/api/v1/capacities", params={"limit": 1000}).json()["items"]
        taskings = api.get("/api/v1/taskings", params={"limit": 1000}).json()["items"]
    assert potential and capacities
    page = await (await watched()).page()
    await sign_in(page, demo_service.tokens["demo-planner"])
    await page.locator("nav a[href='/console/potential']").click()
    await page.wait_for_url("**/console/potential")

    rows = await page.locator("table.potential tbody tr[data-region]").evaluate_all(
        "rs => rs.map(r => [r.dataset.region, r.dataset.material])")
    assert sorted(map(tuple, rows)) == sorted((p["region"], p["material"]) for p in potential)
    sustained = [p for p in potential if p["sustained"]]
    for p in sustained:
        row = page.locator(f"table.potential tr[data-region='{p['region']}'][data-material='{p['material']}']")
        assert "sustained" in await row.inner_text()
    listed = await page.locator("table.capacities tbody tr[data-capacity]").evaluate_all(
        "rs => rs.map(r => r.dataset.capacity)")
    assert sorted(listed) == sorted(c["code"] for c in capacities)
    overdue = [c["code"] for c in capacities if c["survey_overdue"]]
    assert sorted(await page.locator("table.capacities tr.expired").evaluate_all(
        "rs => rs.map(r => r.dataset.capacity)")) == sorted(overdue)
    assert await page.locator("table.taskings tbody tr[data-tasking]").count() == len(taskings)
    await screenshot(page, "planner-potential")

    await page.locator("#potential-region").select_option("PRV-SOUTH")
    await page.locator("form.filters button").click()
    await page.wait_for_url("**region=PRV-SOUTH**")
    with demo_service.api("demo-planner") as api:
        south = api.get("/api/v1/potential", params={"region": "PRV-SOUTH"}).json()["items"]
    assert await page.locator("table.potential tbody tr[data-region]").count() == len(south)
    assert (await page.goto("/console/potential?category=water")).status == 422  # refused in place, not a 500
    assert await page.locator("[data-problem-type=validation]").count() == 1

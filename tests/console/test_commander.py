"""A commander declares wartime on a region; it waits for a second commander, who confirms it."""

from __future__ import annotations

from tests.console.browser import screenshot
from tests.console.conftest import sign_in

REGION = "DST-EASTVALE"


async def test_wartime_declared_by_one_commander_takes_effect_when_a_second_confirms(watched, demo_service):
    first = await (await watched()).page()
    await sign_in(first, demo_service.tokens["demo-commander"])
    await first.goto("/console/readiness")
    assert await first.locator("svg.map g.place").count() >= 3  # the warehouses placed on the map
    await first.locator("#declare-region").select_option(REGION)
    await first.locator("#declare-level").select_option("wartime")
    await first.locator("#declare-reason").fill("border incident")
    await first.locator("#declare-form button[type=submit]").click()
    await first.wait_for_url("**done=**")
    pending = first.locator("tr[data-declaration][data-state=pending_confirmation]", has_text=REGION)
    assert await pending.count() == 1
    assert await first.locator(f"tr[data-region={REGION}]").get_attribute("data-level") != "wartime"

    # The declaring commander may not confirm it: the page says why, nothing changes.
    await pending.locator("form.confirm button").click()
    refusal = first.locator(".problem[data-problem-type]")
    await refusal.wait_for()
    assert await refusal.get_attribute("data-problem-type") in ("forbidden", "conflict")
    assert await first.locator(f"tr[data-region={REGION}]").get_attribute("data-level") != "wartime"

    second = await (await watched()).page()
    await sign_in(second, demo_service.tokens["demo-commander-2"])
    await second.goto("/console/readiness")
    await second.locator("tr[data-declaration][data-state=pending_confirmation]", has_text=REGION) \
        .locator("form.confirm button").click()
    await second.wait_for_url("**done=**")
    assert await second.locator(f"tr[data-region={REGION}]").get_attribute("data-level") == "wartime"
    assert await second.locator("svg.map g.place[data-level=wartime]").count() >= 1
    await screenshot(second, "commander-readiness")

    with demo_service.api("demo-admin") as api:
        levels = {r["region"]: r["level"] for r in api.get("/api/v1/readiness").json()["items"]}
    assert levels[REGION] == "wartime"

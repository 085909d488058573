"""Sensors in the console: the demo's cold store WH-W-02 is in a cold-chain excursion (its probe
TEMP-W02-COLD reads above the band) and the warehouse page and the sensor's page show it; an alert is
acknowledged from the warehouse page, with its note."""

from __future__ import annotations

from decimal import Decimal

from tests.console.browser import screenshot
from tests.console.conftest import sign_in

WAREHOUSE, PROBE = "WH-W-02", "TEMP-W02-COLD"


async def test_the_warehouse_page_and_the_sensor_page_show_the_demo_excursion(watched, demo_service):
    with demo_service.api("demo-admin") as api:
        sensor = api.get(f"/api/v1/sensors/{PROBE}").json()
        listed = api.get("/api/v1/sensors", params={"warehouse": WAREHOUSE}).json()["items"]
    page = await (await watched()).page()
    await sign_in(page, demo_service.tokens["demo-admin"])
    await page.goto(f"/console/warehouses/{WAREHOUSE}")

    rows = page.locator("table.sensors tbody tr[data-sensor]")
    assert sorted(await rows.evaluate_all("rs => rs.map(r => r.dataset.sensor)")) == sorted(s["code"] for s in listed)
    probe = page.locator(f"table.sensors tr[data-sensor='{PROBE}']")
    assert await probe.get_attribute("data-state") == "excursion"
    shown = await probe.inner_text()
    assert "cold_chain" in shown and "2–8 C" in shown
    assert f"{sensor['last_reading']['value']} C" in shown
    await screenshot(page, "operator-sensors")

    await probe.locator("a").click()
    await page.wait_for_url(f"**/console/sensors/{PROBE}")
    assert await page.locator(".sensor-state").get_attribute("data-state") == "excursion"
    chart = page.locator("svg.chart.line")
    assert await chart.locator("rect.band").count() == 1  # the allowed band is drawn …
    assert await chart.locator("path.outside").count() >= 1  # … and the readings above it are marked
    last = Decimal(sensor["last_reading"]["value"])
    assert last > 8
    assert await page.locator("table.readings tbody tr").first.locator("td.num").inner_text() == f"{last} C"
    assert "cold_chain_excursion" in await page.locator("section[aria-labelledby=sensor-alerts]").inner_text()
    await screenshot(page, "sensor-excursion")


async def test_an_alert_is_acknowledged_from_the_warehouse_page_with_its_note(watched, demo_service):
    page = await (await watched()).page()
    await sign_in(page, demo_service.tokens["demo-admin"])
    await page.goto(f"/console/warehouses/{WAREHOUSE}")
    alert = page.locator("ul.alerts li[data-state=open]", has_text="cold_chain_excursion")
    alert_id = await alert.get_attribute("data-alert")

    await alert.locator("input[name=note]").fill("door closed, probe checked")
    await alert.locator("input[name=note]").press("Enter")  # the keyboard submits the form
    await page.wait_for_url("**done=**")
    acknowledged = page.locator(f"ul.alerts li[data-alert='{alert_id}']")
    assert await acknowledged.get_attribute("data-state") == "acknowledged"
    assert "demo-admin" in await acknowledged.inner_text()
    # Still unresolved: the probe's state stays an excursion.
    assert await page.locator(f"table.sensors tr[data-sensor='{PROBE}']").get_attribute("data-state") == "excursion"

    assert await acknowledged.locator("form").count() == 0
    with demo_service.api("demo-admin") as api:
        read = api.get(f"/api/v1/alerts/{alert_id}").json()
    assert read["state"] == "acknowledged" and read["acknowledged_by"] == "demo-admin"
    acks = [h for h in read["history"] if h["event"] == "acknowledged"]
    assert [h["note"] for h in acks] == ["door closed, probe checked"]

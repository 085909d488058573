"""An uncleared reader's console never shows military stock: the canary world of the secrecy tests
(``tests/canary.py``) is built through the API of a running service, then uncleared principals of
every console role open every page they can reach (and its CSV exports) in the browser, and not one
canary string may show — in the page, its fragments or its downloads: not the military tank's gauge
on its warehouse's sensor panel or its own page, not the military capacity or its tasking order on
the mobilisation potential page.

The canary material's code is national reference data (README "Scope"): it may be offered in a
form's list of materials, as ``GET /materials`` shows it; nothing else of the canary may appear.
"""

from __future__ import annotations

import uuid

import asyncpg
import httpx
import pytest

from stockpile.store.engine import asyncpg_dsn
from tests.canary import build
from tests.console.conftest import sign_in, start_service, stop_service
from tests.live import principal_token

REFERENCE = ("canary material code",)


async def _principal(url: str, name: str, roles: list[str], clearance: str | None, regions: list[str] = ()) -> str:
    return await principal_token(url, name, roles, clearance, regions, "console need-to-know")


@pytest.fixture(scope="module")
async def canary_service(make_database, settings):
    url = make_database()
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        await conn.execute("INSERT INTO regions (code, name) VALUES ('TEST-NATION', 'Test nation')")
    finally:
        await conn.close()
    uid = uuid.uuid4().hex[:6].upper()
    cleared = {}
    for role, roles in (("admin", ["admin", "operator"]), ("operator", ["operator"]), ("planner", ["planner"]),
                        ("commander", ["commander"])):
        token = await _principal(url, f"cleared-{role}-{uid}", roles, "military",
                                 regions=["TEST-NATION"] if role in ("operator", "planner") else [])
        cleared[role] = {"Authorization": f"Bearer {token}"}
    service = start_service(url, {})
    try:
        async with httpx.AsyncClient(base_url=service.base_url, timeout=120) as client:
            k = await build(client, url, uid=uid, settings=settings, **cleared)
        for role in ("operator", "planner", "commander", "auditor"):
            service.tokens[role] = await _principal(url, f"uncleared-{role}-{uid}", [role], None,
                                                    regions=[k.region] if role in ("operator", "planner") else [])
        yield service, k
    finally:
        stop_service(service)


def _pages(k) -> dict[str, list[str]]:
    return {
        "operator": ["/console", f"/console/warehouses/{k.joint}", f"/console/warehouses/{k.south}",
                     f"/console/warehouses/{k.joint}/lot?lot={k.lot_code}", "/console/readiness",
                     f"/console/sensors/{k.gauge}",
                     f"/console/export/stock.csv?warehouse={k.joint}", f"/console/export/stock.csv?region={k.region}"],
        "planner": ["/console", "/console/coverage", f"/console/coverage?region={k.region}", "/console/allocation",
                    f"/console/allocation/plans/{k.loan_plan_id}", "/console/drills", f"/console/drills/{k.drill_id}",
                    "/console/export/coverage.csv", "/console/export/requests.csv", "/console/export/stock.csv",
                    "/console/potential", f"/console/potential?region={k.region}", "/console/potential?category=fuel",
                    f"/console/warehouses/{k.joint}", f"/console/sensors/{k.gauge}"],
        "commander": ["/console", "/console/readiness", "/console/coverage", "/console/allocation", "/console/potential"],
        "auditor": ["/console", "/console/audit", "/console/export/audit.csv"],
    }


async def test_no_uncleared_console_page_shows_military_stock(canary_service, browser):
    from tests.console.browser import Watched

    service, k = canary_service
    secrets = [s for s in k.secrets if s.what not in REFERENCE]
    sightings, read = [], 0
    for role, paths in _pages(k).items():
        watched = await Watched.open(browser, service.base_url)
        try:
            page = await watched.page()
            await sign_in(page, service.tokens[role])
            for path in paths:
                answer = await page.request.get(path)
                assert answer.status in (200, 404), (role, path, answer.status)
                body = await answer.text()
                if path.startswith("/console/warehouses/") and "/lot?" not in path:
                    await page.goto(path)  # the page as the browser shows it, fragments included
                    body += await page.content()
                read += answer.status == 200
                if answer.status == 404:  # a code the reader typed may come back only as a never-issued one would
                    asked = path.rsplit("/", 1)[1]
                    never = await page.request.get(path.replace(asked, f"NEVER-{k.uid}"))
                    assert never.status == 404, (role, path)
                    assert body == (await never.text()).replace(f"NEVER-{k.uid}", asked), (role, path)
                    body = body.replace(asked, "")
                sightings += [(role, path, s.what) for s in secrets if s.pattern.search(body)]
        finally:
            await watched.close()
        assert watched.foreign() == []
    assert read >= 25, read
    assert sightings == []


async def test_a_cleared_reader_does_see_the_canary(canary_service, browser):
    """The control: the same pages show the canary to a cleared admin, so the check looks where it is."""
    from tests.console.browser import Watched

    service, k = canary_service
    token = await _principal(service.database_url, f"cleared-reader-{k.uid}", ["admin"], "military")
    watched = await Watched.open(browser, service.base_url)
    try:
        page = await watched.page()
        await sign_in(page, token)
        await page.goto(f"/console/warehouses/{k.joint}")
        assert k.lot_code in await page.content()
        assert await page.locator(f"table.sensors tr[data-sensor='{k.gauge}']").count() == 1
        assert (await page.goto(f"/console/sensors/{k.gauge}")).status == 200
        await page.goto("/console/potential")
        assert await page.locator(f"table.capacities tr[data-capacity='{k.capacity}']").count() == 1
        assert await page.locator(f"table.taskings tr[data-tasking='{k.tasking_id}']").count() == 1
    finally:
        await watched.close()

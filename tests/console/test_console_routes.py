"""Every console route but the sign-in form and the static assets needs a session: without one a
page sends the browser to sign in and a form changes nothing; a forged or tampered session cookie
is no session; a form without the session's CSRF value is refused; the session cookie is
HttpOnly and SameSite=Strict."""

from __future__ import annotations

import re
import uuid

import pytest

from stockpile.api.app import create_app
from stockpile.config import Settings

OPEN = re.compile(r"^/console/(sign-in|static)")


def _console_routes() -> list[tuple[str, str]]:
    app = create_app(Settings(), "postgresql://unused@localhost/unused")
    found = []
    for route in app.routes:
        if not route.path.startswith("/console") or OPEN.match(route.path):
            continue
        for method in sorted(getattr(route, "methods", ())):
            if method not in {"HEAD", "OPTIONS"}:
                found.append((method, route.path))
    return found


ROUTES = _console_routes()


def _concrete(path: str) -> str:
    return re.sub(r"\{(\w+):(\w+)\}", lambda m: str(uuid.uuid4()) if m.group(2) == "uuid" else "WH-NONE", path)


def test_the_console_has_its_pages_and_forms():
    assert len(ROUTES) >= 30
    assert ("POST", "/console/warehouses/{code:str}/issue") in ROUTES


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_without_a_session_a_console_route_sends_the_browser_to_sign_in(client, pg_pool, method, path):
    before = await pg_pool.fetchval("SELECT count(*) FROM audit_events")
    for cookie in (None, "forged", "A" * 200):
        if cookie:
            client.cookies.set("stockpile_console", cookie, path="/console")
        r = await client.request(method, _concrete(path), data={"_csrf": "x", "_key": "k"}, follow_redirects=False)
        client.cookies.clear()
        assert r.status_code == 303, (method, path, r.status_code, r.text[:200])
        assert r.headers["location"].startswith("/console/sign-in")
    assert await pg_pool.fetchval("SELECT count(*) FROM audit_events") == before


async def _signed_in(client, token: str) -> str:
    form = await client.get("/console/sign-in")
    csrf = re.search(r'name="_csrf" value="([^"]+)"', form.text).group(1)
    r = await client.post("/console/sign-in", data={"_csrf": csrf, "token": token}, follow_redirects=False)
    assert r.status_code == 303
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    return cookie


async def test_a_wrong_token_does_not_sign_in(client):
    form = await client.get("/console/sign-in")
    csrf = re.search(r'name="_csrf" value="([^"]+)"', form.text).group(1)
    r = await client.post("/console/sign-in", data={"_csrf": csrf, "token": "sp_not-a-token"}, follow_redirects=False)
    assert r.status_code == 401
    assert "stockpile_console=" not in r.headers.get("set-cookie", "")
    client.cookies.clear()


async def test_a_form_without_the_sessions_csrf_value_is_refused(client, make_token, root_region):
    await _signed_in(client, await make_token("commander", clearance="military"))
    try:
        r = await client.post("/console/readiness/declarations",
                              data={"_csrf": "guessed", "_key": "k1", "region": root_region, "level": "emergency",
                                    "reason": "csrf"}, follow_redirects=False)
        assert r.status_code == 403
        levels = await client.get("/console/readiness")
        assert f'data-region="{root_region}" data-level="peacetime"' in levels.text
    finally:
        client.cookies.clear()


async def test_a_role_without_the_right_is_forbidden_a_form(client, make_token, root_region):
    await _signed_in(client, await make_token("auditor"))
    try:
        page = await client.get("/console/audit")
        csrf = re.search(r'name="_csrf" value="([^"]+)"', page.text).group(1)
        r = await client.post("/console/readiness/declarations",
                              data={"_csrf": csrf, "_key": "k2", "region": root_region, "level": "wartime",
                                    "reason": "not mine"}, follow_redirects=False)
        assert r.status_code == 403
        assert "text/html" in r.headers["content-type"]
    finally:
        client.cookies.clear()


def test_a_session_ends_at_its_expiry_and_cannot_be_forged_or_altered():
    import time

    from stockpile.console.session import Sealer, Session

    sealer = Sealer("a secret of the service that is long enough", 1)
    live = sealer.new("sp_token")
    assert sealer.open(sealer.seal(live)) == live
    assert sealer.open(sealer.seal(Session("sp_token", time.time() - 1, "c"))) is None  # expired
    other = Sealer("another service's secret, just as long as that", 1)
    assert other.open(sealer.seal(live)) is None  # sealed by another key
    sealed = sealer.seal(live)
    assert sealer.open(sealed[:-2] + ("AA" if sealed[-2:] != "AA" else "BB")) is None  # altered


async def test_over_https_the_session_cookie_is_secure_and_signing_out_ends_it(database_url, settings, make_token):
    from litestar.testing import AsyncTestClient

    app = create_app(settings, database_url)
    async with AsyncTestClient(app=app, base_url="https://console.example") as client:
        cookie = await _signed_in(client, await make_token("auditor"))
        assert "Secure" in cookie
        page = await client.get("/console/audit")
        assert page.status_code == 200
        csrf = re.search(r'name="_csrf" value="([^"]+)"', page.text).group(1)
        r = await client.post("/console/sign-out", data={"_csrf": csrf}, follow_redirects=False)
        assert r.status_code == 303 and 'stockpile_console=""' in r.headers["set-cookie"]
        client.cookies.clear()
        r = await client.get("/console/audit", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/console/sign-in")

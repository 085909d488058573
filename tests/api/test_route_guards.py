"""Every registered route is guarded: no token → 401, a role without the right → 403.

``ROLE_MATRIX`` is the README's role matrix as data; a route missing from it fails the test, so a
new route cannot ship without a decision about who may call it.
"""

from __future__ import annotations

import re
import uuid

import pytest

from stockpile.api.app import create_app
from stockpile.config import Settings

READ = {"operator", "planner", "commander", "auditor", "admin"}
ROLES = ("operator", "planner", "commander", "auditor", "admin", "metrics", "sensor")

ROLE_MATRIX: dict[tuple[str, str], set[str]] = {
    ("GET", "/api/v1/parties"): READ, ("GET", "/api/v1/parties/{code}"): READ, ("PUT", "/api/v1/parties/{code}"): {"admin"},
    ("GET", "/api/v1/regions"): READ, ("GET", "/api/v1/regions/{code}"): READ, ("PUT", "/api/v1/regions/{code}"): {"admin"},
    ("GET", "/api/v1/warehouses"): READ, ("GET", "/api/v1/warehouses/{code}"): READ,
    ("PUT", "/api/v1/warehouses/{code}"): {"admin"},
    ("GET", "/api/v1/materials"): READ, ("GET", "/api/v1/materials/{code}"): READ,
    ("PUT", "/api/v1/materials/{code}"): {"admin"},
    ("POST", "/api/v1/movements"): {"operator", "admin"}, ("POST", "/api/v1/movements/batch"): {"operator", "admin"},
    ("GET", "/api/v1/movements"): READ, ("GET", "/api/v1/movements/{movement_id}"): READ,
    ("POST", "/api/v1/transfers"): {"operator", "admin"},
    ("POST", "/api/v1/transfers/{transfer_id}/receipt"): {"operator", "admin"},
    ("GET", "/api/v1/transfers"): READ, ("GET", "/api/v1/transfers/{transfer_id}"): READ,
    ("GET", "/api/v1/stock"): READ, ("GET", "/api/v1/lots"): READ, ("GET", "/api/v1/lots/{lot_id}"): READ,
    ("POST", "/api/v1/lots/{lot_id}/status"): {"operator", "admin"},
    ("POST", "/api/v1/tokens"): {"admin"}, ("GET", "/api/v1/tokens"): {"admin"},
    ("POST", "/api/v1/tokens/{token_id}/revoke"): {"admin"},
    ("GET", "/api/v1/audit-events"): {"auditor", "admin"},
    ("GET", "/api/v1/audit-denials"): {"auditor", "admin"},
    ("PUT", "/api/v1/reserve-targets/{code}"): {"planner", "admin"}, ("GET", "/api/v1/reserve-targets"): READ,
    ("GET", "/api/v1/reserve-targets/{code}"): READ, ("GET", "/api/v1/coverage"): READ,
    ("GET", "/api/v1/alerts"): READ, ("GET", "/api/v1/alerts/{alert_id}"): READ,
    ("POST", "/api/v1/alerts/{alert_id}/acknowledge"): {"operator", "planner", "commander", "admin"},
    ("PUT", "/api/v1/rotation-policies/{code}"): {"planner", "admin"}, ("GET", "/api/v1/rotation-policies"): READ,
    ("GET", "/api/v1/rotation-policies/{code}"): READ, ("GET", "/api/v1/rotation-orders"): READ,
    ("GET", "/api/v1/rotation-orders/{order_id}"): READ,
    ("POST", "/api/v1/rotation-orders/{order_id}/cancel"): {"planner", "admin"},
    ("POST", "/api/v1/lots/{lot_id}/shelf-life-extensions"): {"operator", "planner", "admin"},
    ("GET", "/api/v1/readiness"): READ, ("GET", "/api/v1/readiness/declarations"): READ,
    ("GET", "/api/v1/readiness/declarations/{declaration_id}"): READ,
    ("POST", "/api/v1/readiness/declarations"): {"commander"},
    ("POST", "/api/v1/readiness/declarations/{declaration_id}/confirm"): {"commander"},
    ("POST", "/api/v1/readiness/declarations/{declaration_id}/withdraw"): {"commander"},
    ("GET", "/api/v1/allocation-rules"): READ, ("PUT", "/api/v1/allocation-rules/{code}"): {"admin"},
    ("GET", "/api/v1/obligations"): READ, ("GET", "/api/v1/obligations/{obligation_id}"): READ,
    ("POST", "/api/v1/obligations/{obligation_id}/settlements"): {"operator", "planner", "admin"},
    ("POST", "/api/v1/allocation-requests"): {"planner", "admin"}, ("GET", "/api/v1/allocation-requests"): READ,
    ("GET", "/api/v1/allocation-requests/{request_id}"): READ,
    ("POST", "/api/v1/allocation-requests/{request_id}/cancel"): {"planner", "admin"},
    ("POST", "/api/v1/allocation-plans"): {"planner", "commander", "admin"}, ("GET", "/api/v1/allocation-plans"): READ,
    ("GET", "/api/v1/allocation-plans/{plan_id}"): READ,
    ("POST", "/api/v1/allocation-plans/{plan_id}/approve"): {"planner", "commander", "admin"},
    ("POST", "/api/v1/allocation-plans/{plan_id}/dispatch"): {"planner", "operator", "admin"},
    ("POST", "/api/v1/allocation-plans/{plan_id}/cancel"): {"planner", "commander", "admin"},
    ("POST", "/api/v1/drills"): {"planner", "commander", "admin"}, ("GET", "/api/v1/drills"): READ,
    ("GET", "/api/v1/drills/{drill_id}"): READ,
    ("PUT", "/api/v1/capacities/{code}"): {"planner", "admin"}, ("GET", "/api/v1/capacities"): READ,
    ("GET", "/api/v1/capacities/{code}"): READ, ("GET", "/api/v1/potential"): READ,
    ("GET", "/api/v1/taskings"): READ, ("GET", "/api/v1/taskings/{tasking_id}"): READ,
    ("POST", "/api/v1/taskings/{tasking_id}/receipts"): {"operator", "admin"},
    ("PUT", "/api/v1/sensors/{code}"): {"admin"}, ("GET", "/api/v1/sensors"): READ,
    ("GET", "/api/v1/sensors/{code}"): READ, ("GET", "/api/v1/sensors/{code}/readings"): READ,
    ("POST", "/api/v1/sensor-readings"): {"sensor", "operator", "admin"},
}

# The console signs in with a session, not a bearer token: tests/console/test_console_routes.py guards it.
PUBLIC = re.compile(r"^/(health|docs|schema|metrics|console)")


def _api_routes() -> list[tuple[str, str]]:
    app = create_app(Settings(), "postgresql://unused@localhost/unused")
    found = []
    for route in app.routes:
        if PUBLIC.match(route.path):
            continue
        for method in sorted(getattr(route, "methods", ())):
            if method in {"HEAD", "OPTIONS"}:
                continue
            found.append((method, re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)))
    return found


ROUTES = _api_routes()


def _concrete(path: str) -> str:
    path = path.replace("{code}", "NO-SUCH-CODE").replace("{token_id}", "999999999")
    return re.sub(r"\{\w+_id\}", lambda _: str(uuid.uuid4()), path)  # every other id is a uuid


def test_every_api_route_has_a_decision_in_the_role_matrix():
    assert sorted(ROUTES) == sorted(ROLE_MATRIX), "routes and ROLE_MATRIX (and the README) must list the same routes"


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_a_request_without_a_token_is_unauthenticated(client, method, path):
    r = await client.request(method, _concrete(path), json={})
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"] == "unauthenticated"


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_a_token_that_is_not_a_bearer_token_is_refused(client, method, path):
    r = await client.request(method, _concrete(path), json={}, headers={"Authorization": "Bearer sp_not-a-real-token"})
    assert r.status_code == 401


@pytest.fixture(scope="module")
async def role_tokens(make_token):
    return {role: {"Authorization": f"Bearer {await make_token(role, clearance='military')}"} for role in ROLES}


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_every_role_outside_the_matrix_is_forbidden(client, role_tokens, pg_pool, method, path):
    before = await pg_pool.fetchval("SELECT count(*) FROM movements")
    for role in ROLES:
        if role in ROLE_MATRIX[(method, path)]:
            continue
        r = await client.request(method, _concrete(path), json={}, headers={**role_tokens[role], "Idempotency-Key": "k"})
        assert r.status_code == 403, (role, method, path, r.status_code, r.text)
        assert r.json()["type"] == "forbidden"
    assert await pg_pool.fetchval("SELECT count(*) FROM movements") == before

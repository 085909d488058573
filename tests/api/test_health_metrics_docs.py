"""Operations endpoints: liveness, readiness, Prometheus metrics (behind a metrics token), and the
OpenAPI document."""

from __future__ import annotations

import re
import uuid

import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from stockpile.store.engine import asyncpg_dsn, head_revision, with_database
from tests.factories import idem, lot_of, make_world, post_movement, receive

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
async def metrics_token(make_token) -> dict[str, str]:
    return {"Authorization": f"Bearer {await make_token('metrics')}"}


async def scrape(client, headers) -> str:
    r = await client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


def samples(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample of one metric, keyed by its sorted labels."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def posted(text: str, kind: str) -> float:
    return samples(text, "stockpile_movements_posted_total").get((("kind", kind),), 0.0)


# -- health ------------------------------------------------------------------------------------

async def test_the_service_is_live_without_a_token(client):
    r = await client.get("/health/live")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


async def test_the_service_is_ready_at_the_latest_schema(client):
    r = await client.get("/health/ready")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "schema": head_revision()}


async def test_the_service_is_not_ready_while_its_schema_is_behind(make_database, settings):
    from litestar.testing import AsyncTestClient

    from stockpile.api.app import create_app

    url = make_database()
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        await conn.execute("UPDATE alembic_version SET version_num = '0001'")
    finally:
        await conn.close()
    async with AsyncTestClient(app=create_app(settings, url)) as behind:
        assert (await behind.get("/health/live")).status_code == 200
        r = await behind.get("/health/ready")
    assert r.status_code == 503 and r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["type"] == "not-ready" and r.json()["schema"] == "0001" and r.json()["latest"] == head_revision()


async def test_the_service_is_not_ready_without_its_database(server_url, settings):
    from litestar.testing import AsyncTestClient

    from stockpile.api.app import create_app

    url = with_database(server_url, f"stockpile_missing_{uuid.uuid4().hex[:8]}")
    async with AsyncTestClient(app=create_app(settings, url)) as unreachable:
        assert (await unreachable.get("/health/live")).json() == {"status": "ok"}
        r = await unreachable.get("/health/ready")
    assert r.status_code == 503 and r.json()["type"] == "not-ready"
    assert "Traceback" not in r.text and url not in r.text


# -- metrics -----------------------------------------------------------------------------------

@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer sp_unknown"}, {"Authorization": "Token abc"}])
async def test_metrics_need_a_token(client, headers):
    r = await client.get("/metrics", headers=headers)
    assert r.status_code == 401 and r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["type"] == "unauthenticated"
    assert "stockpile_movements_posted_total" not in r.text


async def test_metrics_need_the_metrics_role(client, operator, auditor):
    for headers in (operator, auditor):
        r = await client.get("/metrics", headers=headers)
        assert r.status_code == 403 and r.json()["type"] == "forbidden"


async def test_a_metrics_token_reads_prometheus_text(client, metrics_token):
    text = await scrape(client, metrics_token)
    names = {family.name for family in text_string_to_metric_families(text)}
    assert "stockpile_movements_posted" in names  # the counter family (samples end in _total)
    assert "# TYPE stockpile_movements_posted_total counter" in text
    assert "stockpile_metrics_snapshot_timestamp_seconds" in names


async def test_an_admin_may_read_metrics_too(client, admin):
    assert "stockpile_movements_posted" in await scrape(client, admin)


async def test_posted_movements_are_counted_by_kind_and_replays_are_not(client, admin, operator, metrics_token, uid):
    w = await make_world(client, admin, uid)
    before = await scrape(client, metrics_token)
    lot = lot_of(await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil,
                               quantity="10", lot="MET"))
    body = {"kind": "issue", "lot_id": lot, "owner": w.civil, "quantity": "1"}
    assert (await post_movement(client, operator, body, key=f"metrics-{uid}")).status_code == 201
    replay = await post_movement(client, operator, body, key=f"metrics-{uid}")
    assert replay.headers["idempotent-replayed"] == "true"
    refused = await post_movement(client, operator, {**body, "quantity": "100"})
    assert refused.status_code == 409
    after = await scrape(client, metrics_token)
    assert posted(after, "receipt") - posted(before, "receipt") == 1
    assert posted(after, "issue") - posted(before, "issue") == 1
    replays = "stockpile_idempotent_replays_total"
    assert samples(after, replays)[()] - samples(before, replays).get((), 0.0) == 1


async def test_batches_and_transfers_are_counted_once(client, admin, operator, metrics_token, uid):
    w = await make_world(client, admin, uid)
    before = await scrape(client, metrics_token)
    receipt = {"kind": "receipt", "warehouse": w.north, "material": w.diesel, "owner": w.civil, "quantity": "10",
               "lot": {"code": "B", "expires_on": "2030-01-01"}}
    batch = {"movements": [receipt, receipt], "atomic": True}
    key = {"Idempotency-Key": f"metrics-batch-{uid}"}
    first = await client.post("/api/v1/movements/batch", json=batch, headers={**operator, **key})
    assert first.status_code == 201, first.text
    again = await client.post("/api/v1/movements/batch", json=batch, headers={**operator, **key})
    assert again.headers["idempotent-replayed"] == "true"
    lot = lot_of(first.json()["results"][0]["movement"])
    moved = await client.post("/api/v1/transfers", headers={**operator, **idem()}, json={
        "from_warehouse": w.north, "to_warehouse": w.south, "lines": [{"lot_id": lot, "owner": w.civil, "quantity": "5"}]})
    assert moved.status_code == 201, moved.text
    after = await scrape(client, metrics_token)
    assert posted(after, "receipt") - posted(before, "receipt") == 2
    assert posted(after, "transfer_dispatch") - posted(before, "transfer_dispatch") == 1


async def test_http_request_metrics_label_paths_by_route_template_not_by_id(client, admin, operator, metrics_token, uid):
    w = await make_world(client, admin, uid)
    lot = lot_of(await receive(client, operator, warehouse=w.north, material=w.diesel, owner=w.civil,
                               quantity="1", lot="TPL"))
    assert (await client.get(f"/api/v1/lots/{lot}", headers=operator)).status_code == 200
    assert (await client.get(f"/api/v1/materials/{w.diesel}", headers=operator)).status_code == 200
    text = await scrape(client, metrics_token)
    paths = {dict(labels).get("path") for family in text_string_to_metric_families(text)
             if family.name.startswith("stockpile_") for labels, _ in
             ((tuple(s.labels.items()), s.value) for s in family.samples) if "path" in dict(labels)}
    assert {"/api/v1/lots/{lot_id}", "/api/v1/materials/{code}"} <= paths, sorted(paths)
    requests = samples(text, "stockpile_requests_total")
    assert requests[(("app_name", "stockpile"), ("method", "GET"), ("path", "/api/v1/lots/{lot_id}"),
                     ("status_code", "200"))] >= 1
    assert "/api/v1/movements" in paths or "/api/v1/movements/" in paths
    assert lot not in text and w.diesel not in text and w.north not in text
    assert not any(re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", p) for p in paths)


async def test_a_request_refused_before_its_handler_is_counted_with_the_status_it_got(client, metrics_token):
    """A 401 is raised by the bearer middleware, before any handler: it is counted as a 401 of its
    route, not as a 200, and not in progress once answered."""
    def count(text: str, name: str, status: str) -> float:
        return samples(text, name).get((("app_name", "stockpile"), ("method", "GET"), ("path", "/api/v1/stock"),
                                        ("status_code", status)), 0.0)

    before = await scrape(client, metrics_token)
    for _ in range(3):
        assert (await client.get("/api/v1/stock")).status_code == 401
    after = await scrape(client, metrics_token)
    assert count(after, "stockpile_requests_total", "401") - count(before, "stockpile_requests_total", "401") == 3
    assert count(after, "stockpile_requests_total", "200") == count(before, "stockpile_requests_total", "200")
    assert count(after, "stockpile_request_duration_seconds_count", "401") - \
        count(before, "stockpile_request_duration_seconds_count", "401") == 3
    assert count(after, "stockpile_requests_in_progress", "200") == 0


# -- docs --------------------------------------------------------------------------------------

async def test_the_openapi_document_lists_the_api(client):
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200 and "json" in r.headers["content-type"]
    schema = r.json()
    assert schema["openapi"].startswith("3.") and schema["info"]["title"] == "stockpile"
    paths = schema["paths"]
    for path in ("/api/v1/movements", "/api/v1/movements/batch", "/api/v1/transfers", "/api/v1/stock",
                 "/api/v1/parties/{code}", "/api/v1/lots/{lot_id}"):
        assert path in paths, sorted(paths)
    post = paths["/api/v1/movements"]["post"]
    [key] = [p for p in post["parameters"] if p["name"].lower() == "idempotency-key"]
    assert key["in"] == "header" and key["required"] is True
    assert "/health/live" in paths and "/metrics" not in paths


async def test_the_interactive_docs_are_served(client):
    r = await client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "/schema/openapi.json" in r.text or "openapi" in r.text.lower()

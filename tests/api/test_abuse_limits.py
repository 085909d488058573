"""Abuse limits: rate per token and per client address (shared by every API instance), failed
authentications, body size, list and batch caps — each a clear problem, nothing written; denied
requests counted, not recorded one by one; unknown routes not audited; the token cache an LRU."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime, timezone

import asyncpg
import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from stockpile.api.app import create_app
from stockpile.api.auth import ApiTokenAuthenticator, RequestLimits, SharedLimiter
from stockpile.config import Settings
from stockpile.domain.limits import Limit
from stockpile.store.db import Database
from tests.factories import idem


async def test_a_token_over_its_rate_gets_429_with_retry_after(database_url, settings, make_token):
    headers = {"Authorization": f"Bearer {await make_token('auditor')}"}
    app = create_app(replace(settings, rate_limit_per_second=1, rate_limit_burst=3), database_url)
    async with AsyncTestClient(app=app) as c:
        statuses = [(await c.get("/api/v1/regions", headers=headers)).status_code for _ in range(5)]
        limited = await c.get("/api/v1/regions", headers=headers)
        other = {"Authorization": f"Bearer {await make_token('auditor')}"}
        assert (await c.get("/api/v1/regions", headers=other)).status_code == 200
    assert statuses[:3] == [200, 200, 200] and 429 in statuses[3:]
    assert limited.status_code == 429 and limited.json()["type"] == "rate-limited"
    assert int(limited.headers["retry-after"]) >= 1


async def test_an_oversized_body_is_refused_before_anything_is_written(database_url, settings, operator, pg_pool):
    app = create_app(replace(settings, max_body_bytes=1000), database_url)
    before = await pg_pool.fetchval("SELECT count(*) FROM movements")
    async with AsyncTestClient(app=app) as c:
        r = await c.post("/api/v1/movements", headers={**operator, **idem()},
                         json={"kind": "issue", "lot_id": "x", "owner": "y", "quantity": "1", "note": "n" * 5000})
    assert r.status_code == 413 and r.json()["type"] == "payload-too-large"
    assert await pg_pool.fetchval("SELECT count(*) FROM movements") == before


async def test_list_limits_are_capped(client, auditor):
    r = await client.get("/api/v1/stock", params={"limit": 1001}, headers=auditor)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "limit"


async def test_a_batch_over_the_cap_is_refused(database_url, settings, operator):
    app = create_app(replace(settings, max_batch=2), database_url)
    body = {"atomic": True, "movements": [{"kind": "reversal", "movement_id": "00000000-0000-0000-0000-000000000000"}] * 3}
    async with AsyncTestClient(app=app) as c:
        r = await c.post("/api/v1/movements/batch", headers={**operator, **idem()}, json=body)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "movements"


# ---- Limits in front of authentication, shared limits, denial counts ---------------------------------
#
# Real concurrent clients: each is its own httpx client on the application's ASGI interface in the
# test's event loop (the requests interleave at every await, as on a server), with the application's
# lifespan running, so the limits' reconciliation and the denial counts' flushes run as in production.


def limited(settings: Settings, **changes) -> Settings:
    """The suite's settings (limits off) with the request limits on: loose unless ``changes`` tighten one."""
    loose = dict(rate_limit_per_second=1000, rate_limit_burst=100_000, address_rate_limit_per_second=1000,
                 address_rate_limit_burst=100_000, address_failure_limit_per_minute=1000, token_cache_seconds=60)
    return replace(settings, **{**loose, **changes})


@asynccontextmanager
async def serving(app: Litestar) -> AsyncIterator[Callable[..., httpx.AsyncClient]]:
    """Run the app's lifespan; yield a factory of clients, each calling from the address it is given."""
    async with app.lifespan():
        clients: list[httpx.AsyncClient] = []

        def client(address: str = "198.51.100.7") -> httpx.AsyncClient:
            c = httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 40000)), base_url="http://api")
            clients.append(c)
            return c

        try:
            yield client
        finally:
            for c in clients:
                await c.aclose()


async def concurrently(clients: int, each: int, call: Callable[[int], Awaitable[httpx.Response]]) -> list[httpx.Response]:
    """``clients`` concurrent clients, each sending ``each`` requests one after the other."""
    async def one(i: int) -> list[httpx.Response]:
        return [await call(i) for _ in range(each)]

    return [r for batch in await asyncio.gather(*(one(i) for i in range(clients))) for r in batch]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_rate_limited(r: httpx.Response) -> None:
    assert r.status_code == 429 and r.json()["type"] == "rate-limited"
    assert int(r.headers["retry-after"]) >= 1 and r.json()["retry_after"] > 0


async def test_a_flood_of_bad_tokens_costs_no_lookup_past_the_address_failure_budget(database_url, settings, make_token):
    app = create_app(limited(settings, address_failure_limit_per_minute=5), database_url)
    authenticator = app.state.authenticators[0]
    good = bearer(await make_token("auditor"))
    async with serving(app) as client:
        flooder, neighbour = client("198.51.100.66"), client("198.51.100.67")
        assert (await flooder.get("/api/v1/regions", headers=good)).status_code == 200  # known good from now on
        before = authenticator.lookups
        answers = await concurrently(8, 10, lambda i: flooder.get("/api/v1/regions", headers=bearer(f"sp_{uuid.uuid4().hex}")))
        bare = await concurrently(4, 5, lambda i: flooder.get("/api/v1/regions"))
        lookups = authenticator.lookups - before
        still_good = await flooder.get("/api/v1/regions", headers=good)
        other_address = await neighbour.get("/api/v1/regions", headers=bearer("sp_not-a-real-token"))
    refused = [r for r in answers if r.status_code == 401]
    # Each bad token costs one lookup until the budget of 5 is spent; the clients already waiting on
    # a lookup when it ran out (at most the other 7) finish theirs; everything after costs none.
    assert 5 <= len(refused) <= 5 + 7 and lookups == len(refused)
    for r in [r for r in answers if r.status_code != 401] + bare:
        assert_rate_limited(r)
    assert bare[0].json()["detail"] == "too many failed authentications from this address"
    assert still_good.status_code == 200  # a token this process knows to be good still passes
    assert other_address.status_code == 401  # the budget is the address's, not everyone's


async def test_an_address_over_its_request_limit_gets_429_before_its_token_is_looked_up(database_url, settings, make_token):
    app = create_app(limited(settings, address_rate_limit_per_second=1, address_rate_limit_burst=6), database_url)
    authenticator = app.state.authenticators[0]
    tokens = [bearer(await make_token("auditor")) for _ in range(4)]
    async with serving(app) as client:
        busy, quiet = client("203.0.113.10"), client("203.0.113.11")
        answers = await concurrently(4, 4, lambda i: busy.get("/api/v1/regions", headers=tokens[i]))
        unauthenticated = await busy.get("/api/v1/regions")
        lookups = authenticator.lookups
        elsewhere = await quiet.get("/api/v1/regions", headers=tokens[0])
    assert sorted(r.status_code for r in answers) == [200] * 6 + [429] * 10
    for r in [r for r in answers if r.status_code == 429] + [unauthenticated]:
        assert_rate_limited(r)
        assert r.json()["detail"] == "too many requests from this address"
    assert lookups == 4  # one per distinct token (then cached); none for the refused requests
    assert elsewhere.status_code == 200


async def test_two_api_instances_share_one_principals_limit(database_url, settings, make_token, pg_pool):
    """Two applications on the same database (two processes or replicas): what one admitted, the
    other counts, as soon as each has reconciled with PostgreSQL."""
    shared = limited(settings, rate_limit_per_second=0.01, rate_limit_burst=10)  # 10 in any 1000 s
    first, second = create_app(shared, database_url), create_app(shared, database_url)
    token = await make_token("auditor")
    async with serving(first) as on_first, serving(second) as on_second:
        a, b = on_first(), on_second()
        used_on_first = await concurrently(5, 2, lambda i: a.get("/api/v1/regions", headers=bearer(token)))
        await first.state.limits.reconcile()
        blind = await b.get("/api/v1/regions", headers=bearer(token))  # the second has not seen this token yet
        await second.state.limits.reconcile()
        on_second_now = await concurrently(4, 2, lambda i: b.get("/api/v1/regions", headers=bearer(token)))
        await first.state.limits.reconcile()
        on_first_now = await a.get("/api/v1/regions", headers=bearer(token))
        await first.state.limits.reconcile()
        await second.state.limits.reconcile()
    assert [r.status_code for r in used_on_first] == [200] * 10
    assert blind.status_code == 200
    for r in on_second_now + [on_first_now]:
        assert_rate_limited(r)
    principal_id = await pg_pool.fetchval(
        "SELECT principal_id FROM api_tokens WHERE token_hash = $1", hashlib.sha256(token.encode()).digest())
    counted = await pg_pool.fetchval("SELECT sum(count) FROM rate_counters WHERE key = $1", f"p:{principal_id}")
    assert counted == 11  # every admitted request of both instances, and no refused one


async def test_denied_requests_are_counted_per_actor_route_and_minute_not_recorded_one_by_one(
        database_url, settings, make_token, pg_pool, auditor):
    app = create_app(settings, database_url)
    app.state.denials.clock = lambda: datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)  # one minute for all
    name = f"denied-{uuid.uuid4().hex[:8]}"
    operator = bearer(await make_token("operator", name=name))
    events_before = await pg_pool.fetchval("SELECT count(*) FROM audit_events")
    async with serving(app) as client:
        forbidden = await concurrently(6, 4, lambda i: client().get("/api/v1/audit-events", headers=operator))
        stranger = client("192.0.2.44")
        unauthenticated = await concurrently(3, 3, lambda i: stranger.get("/api/v1/tokens"))
        listed = await client().get("/api/v1/audit-denials", params={"actor": name}, headers=auditor)
        by_address = await client().get("/api/v1/audit-denials", params={"actor": "192.0.2.44", "limit": 1},
                                        headers=auditor)
    assert {r.status_code for r in forbidden} == {403} and {r.status_code for r in unauthenticated} == {401}
    assert listed.status_code == 200
    assert listed.json()["items"] == [{
        "id": listed.json()["items"][0]["id"], "minute": "2026-01-02T03:04:00Z", "actor_kind": "principal",
        "actor": name, "action": "GET /api/v1/audit-events", "status": 403, "count": 24,
    }]
    assert [(i["actor_kind"], i["action"], i["status"], i["count"]) for i in by_address.json()["items"]] == [
        ("address", "GET /api/v1/tokens", 401, 9)]
    assert await pg_pool.fetchval("SELECT count(*) FROM audit_events") == events_before
    with pytest.raises(asyncpg.InsufficientPrivilegeError):  # counts only grow
        await pg_pool.execute("UPDATE audit_denials SET count = 1 WHERE actor = $1", name)


async def test_requests_to_unknown_routes_are_not_audited(database_url, settings, operator, pg_pool):
    app = create_app(settings, database_url)
    events_before = await pg_pool.fetchval("SELECT count(*) FROM audit_events")
    async with serving(app) as client:
        c = client("192.0.2.55")
        answers = await concurrently(3, 3, lambda i: c.post("/api/v1/no-such-route", headers=operator, json={}))
        answers += [await c.get("/api/v1/no-such-route"), await c.delete("/api/v1/regions", headers=operator)]
        await app.state.denials.flush()
    assert [r.status_code for r in answers] == [404] * 10 + [405]
    assert await pg_pool.fetchval("SELECT count(*) FROM audit_events") == events_before
    assert await pg_pool.fetchval("SELECT count(*) FROM audit_denials WHERE actor = '192.0.2.55' "
                                  "OR action LIKE '%no-such-route%'") == 0


async def test_the_token_cache_evicts_the_least_recently_used_and_remembers_bad_tokens(database_url, make_token):
    authenticator = ApiTokenAuthenticator(Database(database_url, pool_size=2), cache_seconds=60, max_entries=3)
    first, second, third = [await make_token("auditor") for _ in range(3)]
    for token in (first, second, third, first):
        assert await authenticator.authenticate(token) is not None
    assert authenticator.lookups == 3  # the second `first` came from the cache
    assert await authenticator.authenticate("sp_bad") is None  # a fourth entry: `second`, least recent, goes
    assert await authenticator.authenticate("sp_bad") is None
    assert authenticator.lookups == 4  # a bad token is looked up once
    for token in (first, third):
        assert await authenticator.authenticate(token) is not None
    assert authenticator.lookups == 4
    assert await authenticator.authenticate(second) is not None
    assert authenticator.lookups == 5
    await authenticator.db.dispose()


async def test_concurrent_lookups_of_one_unknown_token_share_one_query(database_url):
    authenticator = ApiTokenAuthenticator(Database(database_url, pool_size=4), cache_seconds=60)
    assert await asyncio.gather(*(authenticator.authenticate("sp_same-bad") for _ in range(20))) == [None] * 20
    assert authenticator.lookups == 1
    await authenticator.db.dispose()


def test_x_forwarded_for_is_believed_only_from_trusted_proxies():
    limits = RequestLimits(Database("postgresql://unused@localhost/unused"),
                           Settings(trusted_proxies=("10.0.0.0/8",)))

    def address(peer: str, forwarded: str | None) -> str:
        headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
        return limits.client_address({"type": "http", "client": (peer, 1), "headers": headers, "state": {}})

    assert address("198.51.100.1", "203.0.113.9") == "198.51.100.1"  # not a proxy of ours: its header is ignored
    assert address("10.0.0.2", "203.0.113.9") == "203.0.113.9"
    assert address("10.0.0.2", "1.2.3.4, 203.0.113.9, 10.0.0.3") == "203.0.113.9"  # a forged left entry is skipped
    assert address("10.0.0.2", None) == "10.0.0.2"


def test_a_limiter_forgets_keys_idle_for_two_windows_and_reads_back_only_the_recent_ones():
    limiter = SharedLimiter("a:", Limit(5, 10.0), max_watched=2)
    for key in ("one", "two", "three"):
        assert limiter.admit(key, now=1000.0) is None  # window 100
    added, watched = limiter.take_pending(1000.0)
    assert sorted((k, w, n) for k, w, n, _ in added) == [("a:one", 100, 1), ("a:three", 100, 1), ("a:two", 100, 1)]
    assert {k for k, _ in watched} == {"a:two", "a:three"}  # the two used last
    limiter.settle({("a:one", 100): 1, ("a:two", 100): 1, ("a:three", 100): 1})
    assert limiter.admit("two", now=1015.0) is None  # window 101
    added, watched = limiter.take_pending(1025.0)  # window 102: `one` and `three` were last seen in 100
    assert [(k, w, n) for k, w, n, _ in added] == [("a:two", 101, 1)]
    assert {k for k, _ in watched} == {"a:two"}


async def test_the_metrics_token_check_is_behind_the_same_address_limits(database_url, settings, make_token):
    app = create_app(limited(settings, address_failure_limit_per_minute=2), database_url)
    authenticator = app.state.authenticators[0]
    metrics = bearer(await make_token("metrics"))
    async with serving(app) as client:
        scraper, guesser = client("192.0.2.80"), client("192.0.2.81")
        assert (await scraper.get("/metrics", headers=metrics)).status_code == 200
        guesses = await concurrently(2, 3, lambda i: guesser.get("/metrics", headers=bearer(f"sp_{uuid.uuid4().hex}")))
        lookups = authenticator.lookups
        assert (await scraper.get("/metrics", headers=metrics)).status_code == 200
    refused = [r for r in guesses if r.status_code == 401]
    # the budget of 2, and the other client's lookup already under way when it ran out
    assert 2 <= len(refused) <= 2 + 1 and len(refused) + sum(r.status_code == 429 for r in guesses) == 6
    assert lookups == 1 + len(refused)  # the good token once, then one per failure within the budget
    for r in [r for r in guesses if r.status_code == 429]:
        assert_rate_limited(r)

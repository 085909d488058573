"""Outbox delivery to real local webhook receivers: signed with a timestamp (a replay is refused by
the verifier receivers use), sent to each endpoint only what its clearance may see, retried per
endpoint, sent with no transaction open, and not lost when the delivering worker is killed
mid-delivery (delivery is at least once, deduplicable by event id)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import asyncpg
import pytest
from litestar.testing import AsyncTestClient

from stockpile.api.app import create_app
from stockpile.config import Settings
from stockpile.domain.alerts import Wanted
from stockpile.jobs.deliver import deliver_notifications
from stockpile.services import alerts
from stockpile.store import alerts as alert_store
from stockpile.store.db import Database
from stockpile.store.engine import asyncpg_dsn
from stockpile.webhooks import WebhookRefused, sign, verify
from tests.factories import make_world, receive
from tests.live import make_admin_token

SECRET = "k7Qw9-test-secret-of-forty-characters-xx"
TODAY = datetime.now(timezone.utc).date()


class Receiver:
    """A webhook receiver on a free local port that verifies every request with the shipped verifier
    (401 when refused). ``fail_first`` requests answer 500; ``hold`` seconds stall the first;
    ``inspect(event_id)`` runs while a request is being handled and its result is kept."""

    def __init__(self, fail_first: int = 0, hold: float = 0.0, inspect=None) -> None:
        self.calls: list[tuple[dict, bytes]] = []
        self.refused: list[str] = []
        self.inspected: list = []
        self.fail_first, self.hold = fail_first, hold
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    verify(SECRET, headers, body)
                except WebhookRefused as exc:
                    receiver.refused.append(str(exc))
                    self.send_response(401)
                    self.end_headers()
                    return
                receiver.calls.append((headers, body))
                if inspect is not None:
                    receiver.inspected.append(inspect(headers["x-stockpile-event-id"]))
                if receiver.hold and len(receiver.calls) == 1:
                    time.sleep(receiver.hold)
                status = 500 if len(receiver.calls) <= receiver.fail_first else 204
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def event_ids(self) -> list[str]:
        return [h["x-stockpile-event-id"] for h, _ in self.calls]

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver_factory():
    made = []

    def make(**kw) -> Receiver:
        made.append(Receiver(**kw))
        return made[-1]

    yield make
    for r in made:
        r.close()


async def _sql(url: str, query: str, *args):
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        return await conn.fetch(query, *args)
    finally:
        await conn.close()


async def _queue(url: str, n: int, military: bool = False) -> list[str]:
    return [r["id"] for r in await _sql(
        url, """INSERT INTO outbox (topic, payload, military)
                SELECT 'alert.opened', jsonb_build_object('n', i), $2 FROM generate_series(1, $1) i
                RETURNING id::text AS id""", n, military)]


async def _pending(url: str) -> int:
    return (await _sql(url, "SELECT count(*) AS n FROM outbox WHERE delivered_at IS NULL"))[0]["n"]


def _settings(*endpoints: str) -> Settings:
    return Settings(webhook_urls=endpoints, webhook_secret=SECRET)


async def _deliver(url: str, settings: Settings) -> dict:
    db = Database(url, pool_size=2)
    try:
        return await deliver_notifications(settings)(db)
    finally:
        await db.dispose()


async def test_deliveries_are_signed_with_their_timestamp_and_a_replay_is_refused(make_database, receiver_factory):
    url = make_database()
    receiver = receiver_factory()
    ids = await _queue(url, 3)
    done = await _deliver(url, _settings(receiver.url))
    assert done["delivered"] == 3 and done["messages_delivered"] == 3 and await _pending(url) == 0
    assert sorted(receiver.event_ids()) == sorted(ids) and receiver.refused == []
    for headers, body in receiver.calls:
        timestamp = int(headers["x-stockpile-timestamp"])
        assert headers["x-stockpile-signature"] == f"v1={sign(SECRET, timestamp, body)}"
        assert json.loads(body)["id"] == headers["x-stockpile-event-id"] and json.loads(body)["topic"] == "alert.opened"
        assert verify(SECRET, headers, body, now=timestamp + 299) == timestamp
        with pytest.raises(WebhookRefused, match="replay"):  # the same request, byte for byte, 6 minutes later
            verify(SECRET, headers, body, now=timestamp + 360)
        with pytest.raises(WebhookRefused, match="future"):
            verify(SECRET, headers, body, now=timestamp - 120)
        with pytest.raises(WebhookRefused, match="does not match"):  # a fresh timestamp needs a new signature
            verify(SECRET, {**headers, "x-stockpile-timestamp": str(timestamp + 360)}, body, now=timestamp + 360)
        with pytest.raises(WebhookRefused, match="does not match"):
            verify(SECRET, headers, body.replace(b"alert.opened", b"alert.closed"), now=timestamp)
        with pytest.raises(WebhookRefused, match="does not match"):
            verify("another-secret-of-at-least-32-characters", headers, body, now=timestamp)
        with pytest.raises(WebhookRefused, match="required"):
            verify(SECRET, {"x-stockpile-timestamp": str(timestamp)}, body, now=timestamp)


async def test_without_webhooks_messages_are_settled_and_nothing_is_sent(make_database):
    url = make_database()
    await _queue(url, 2)
    done = await _deliver(url, Settings())
    assert done["dispatched"] == 2 and done["delivered"] == 0 and await _pending(url) == 0
    assert (await _sql(url, "SELECT count(*) AS n FROM outbox_deliveries"))[0]["n"] == 0


@pytest.fixture
async def reserve(make_database, settings):
    """A database of its own with a small reserve: a military and a civilian lot, both expiring."""
    url = make_database()
    token = await make_admin_token(url)
    async with AsyncTestClient(app=create_app(settings, url)) as c:
        c.headers["Authorization"] = f"Bearer {token}"
        assert (await c.put("/api/v1/regions/TEST-NATION", json={"name": "n"})).status_code == 201
        w = await make_world(c, dict(c.headers), "WH")
        expiring = (TODAY + timedelta(days=10)).isoformat()
        await receive(c, dict(c.headers), warehouse=w.north, material=w.diesel, owner=w.military, quantity="4321.7",
                      lot="MILCANARY-7", expires_on=expiring)
        await receive(c, dict(c.headers), warehouse=w.north, material=w.diesel, owner=w.civil, quantity="100",
                      lot="CIVLOT-1", expires_on=expiring)
    yield url, w


async def _evaluate(url: str) -> dict:
    db = Database(url, pool_size=2)
    try:
        async with db.transaction() as tx:
            return await alerts.evaluate(tx.pg, today=TODAY, now=datetime.now(timezone.utc), expiring_days=30)
    finally:
        await db.dispose()


async def test_an_uncleared_endpoint_gets_no_military_alert_while_a_cleared_one_does(reserve, receiver_factory):
    url, w = reserve
    uncleared, cleared = receiver_factory(), receiver_factory()
    assert (await _evaluate(url))["opened"] == 2  # expiring: the military lot and the civilian lot
    done = await _deliver(url, _settings(uncleared.url, f"{cleared.url}|military"))
    assert done["dispatched"] == 2 and done["military"] == 1 and done["delivered"] == 3
    to_cleared = b"".join(body for _, body in cleared.calls)
    to_uncleared = b"".join(body for _, body in uncleared.calls)
    assert len(cleared.calls) == 2 and b"MILCANARY-7" in to_cleared and b"CIVLOT-1" in to_cleared
    assert len(uncleared.calls) == 1 and b"CIVLOT-1" in to_uncleared
    for canary in (b"MILCANARY-7", b"4321.7", w.military.encode()):
        assert canary not in to_uncleared
    assert await _pending(url) == 0  # the military message is delivered: every endpoint entitled to it has it


async def test_a_message_naming_military_stock_is_withheld_from_uncleared_endpoints(reserve, receiver_factory):
    """Even when its writer did not flag it: a payload member naming a military lot, owner or a target
    an uncleared reader may not see keeps the message from uncleared endpoints, for good."""
    url, w = reserve
    uncleared, cleared = receiver_factory(), receiver_factory()
    [lot_id] = [r["id"] for r in await _sql(url, "SELECT id::text AS id FROM lots WHERE code = 'MILCANARY-7'")]
    db = Database(url, pool_size=2)
    try:
        async with db.transaction() as tx:
            await tx.pg.execute(
                """INSERT INTO reserve_targets (code, material_id, scope_warehouse_id, quantity, warning_ratio,
                                                critical_ratio, floor_ratio, horizon_days)
                   SELECT $1, m.id, wh.id, 1000, 0.5, 0.3, 0.1, 0 FROM materials m, warehouses wh
                    WHERE m.code = $2 AND wh.code = $3""", f"TGT-ALL-{w.uid}", w.diesel, w.north)
            for subject, title, details in [
                ("target:CIV", "rotation held back: first lot MILCANARY-7 waits", {"first_lot": "none"}),
                (f"lot:{lot_id}", "a lot", {}),
                ("target:CIV2", "owner", {"owner": w.military}),
                (f"target:TGT-ALL-{w.uid}", "every owner's stock at one depot", {}),
                ("target:CIV3", "nothing military here", {"first_lot": "CIVLOT-1"}),
            ]:
                assert await alert_store.raise_one(tx.pg, Wanted("rotation_blocked", subject, "warning", title, details,
                                                                 military=False))
    finally:
        await db.dispose()
    done = await _deliver(url, _settings(uncleared.url, f"{cleared.url}|military"))
    assert done["dispatched"] == 5 and done["military"] == 4
    assert len(cleared.calls) == 5
    assert [json.loads(b)["payload"]["alert"]["title"] for _, b in uncleared.calls] == ["nothing military here"]
    with pytest.raises(asyncpg.InsufficientPrivilegeError):  # the database refuses to lower it again…
        await _sql(url, "UPDATE outbox SET military = false")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):  # …or to address a military message to an uncleared endpoint
        await _sql(url, "INSERT INTO outbox_deliveries (message_id, endpoint, cleared) "
                        "SELECT id, 'https://elsewhere.example/hook', false FROM outbox WHERE military LIMIT 1")


async def test_a_failing_endpoint_is_retried_without_resending_to_the_healthy_one(make_database, receiver_factory):
    url = make_database()
    healthy, failing = receiver_factory(), receiver_factory(fail_first=1)
    [event] = await _queue(url, 1)
    settings = _settings(healthy.url, failing.url)
    first = await _deliver(url, settings)
    assert first["delivered"] == 1 and first["retrying"] == 1 and await _pending(url) == 1
    assert (await _deliver(url, settings))["delivered"] == 0  # not due yet: backing off
    [row] = await _sql(url, "SELECT attempts, last_error, delivered_at FROM outbox_deliveries WHERE endpoint = $1",
                       failing.url)
    assert row["attempts"] == 1 and "HTTP 500" in row["last_error"] and row["delivered_at"] is None
    await _sql(url, "UPDATE outbox_deliveries SET next_attempt_at = now() WHERE endpoint = $1", failing.url)
    assert (await _deliver(url, settings))["delivered"] == 1
    assert healthy.event_ids() == [event] and failing.event_ids() == [event, event]
    assert await _pending(url) == 0


async def test_no_transaction_is_open_while_a_receiver_handles_a_delivery(make_database, receiver_factory):
    url = make_database()

    def inspect(event_id: str) -> tuple[int, bool]:
        """From the receiver, mid-request: sessions of the test database idle in a transaction, and
        whether the delivery's lease is committed (visible to another session)."""
        async def look():
            [row] = await _sql(url, """
                SELECT (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                          AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()) AS idle_in_tx,
                       (SELECT leased_until > now() FROM outbox_deliveries WHERE message_id = $1::uuid) AS leased""",
                event_id)
            return row["idle_in_tx"], row["leased"]
        return asyncio.run(look())

    receiver = receiver_factory(inspect=inspect)
    ids = await _queue(url, 3)
    assert (await _deliver(url, _settings(receiver.url)))["delivered"] == 3
    assert sorted(receiver.event_ids()) == sorted(ids)
    assert receiver.inspected == [(0, True)] * 3


async def test_a_worker_killed_mid_delivery_loses_nothing(make_database, receiver_factory):
    url = make_database()
    receiver = receiver_factory(hold=4.0)
    [event] = await _queue(url, 1)
    env = {**os.environ, "DATABASE_URL": url, "STOCKPILE_WEBHOOK_URLS": receiver.url, "STOCKPILE_WEBHOOK_SECRET": SECRET,
           "STOCKPILE_WEBHOOK_TIMEOUT_SECONDS": "5", "STOCKPILE_JOB_DELIVER_NOTIFICATIONS_SECONDS": "1",
           "STOCKPILE_WORKER_METRICS_PORT": "0"}
    first = subprocess.Popen([sys.executable, "-m", "stockpile", "worker"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not receiver.calls and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert receiver.calls, "the first worker never started delivering"
        first.send_signal(signal.SIGKILL)  # dies while the receiver holds the request
        first.wait(timeout=10)
        assert await _pending(url) == 1
        [lease] = await _sql(url, "SELECT leased_until > now() AS live FROM outbox_deliveries")
        assert lease["live"]  # left to expire: no run may send it meanwhile
        second = subprocess.Popen([sys.executable, "-m", "stockpile", "worker"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 45
            while await _pending(url) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
        finally:
            second.terminate()
            second.wait(timeout=20)
    finally:
        if first.poll() is None:
            first.kill()
    assert await _pending(url) == 0
    ids = receiver.event_ids()
    assert len(ids) >= 2 and set(ids) == {event}  # at least once, the same event id to deduplicate on


@pytest.mark.parametrize(("urls", "secret", "refusal"), [
    ("https://soc.example/hook", "", "STOCKPILE_WEBHOOK_SECRET must be at least 32 characters"),
    ("https://soc.example/hook", "short-secret", "STOCKPILE_WEBHOOK_SECRET must be at least 32 characters"),
    ("http://soc.example/hook", SECRET, "must use https"),
    ("http://10.0.0.7/hook", SECRET, "must use https"),
    ("https://soc.example/hook|secret", SECRET, "clearance 'secret'"),
    ("soc.example/hook", SECRET, "not an absolute https URL"),
    ("https://soc.example/hook,https://soc.example/hook|military", SECRET, "lists a URL twice"),
])
def test_a_webhook_configuration_that_would_leak_is_refused_at_start(urls, secret, refusal):
    env = {**os.environ, "STOCKPILE_WEBHOOK_URLS": urls, "STOCKPILE_WEBHOOK_SECRET": secret}
    for command in ("worker", "serve"):
        done = subprocess.run([sys.executable, "-m", "stockpile", command], env=env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 2 and refusal in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_loopback_receivers_may_use_plain_http_and_endpoints_declare_their_clearance():
    settings = _settings("http://127.0.0.9:8080/a", "http://[::1]/b|military", "http://localhost/c",
                         "https://soc.example/d|uncleared")
    assert [(e.url, e.cleared) for e in settings.webhook_endpoints] == [
        ("http://127.0.0.9:8080/a", False), ("http://[::1]/b", True), ("http://localhost/c", False),
        ("https://soc.example/d", False)]
    assert SECRET not in repr(settings)

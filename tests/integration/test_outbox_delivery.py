"""Outbox delivery to a real local webhook receiver: signed, retried after failures, and not lost
when the delivering worker is killed mid-delivery (delivery is at least once, deduplicable by id)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import asyncpg
import pytest

from stockpile.config import Settings
from stockpile.jobs.deliver import deliver_notifications
from stockpile.store.db import Database
from stockpile.store.engine import asyncpg_dsn

SECRET = "test-secret"


class Receiver:
    """A webhook receiver on a free local port; ``fail_first`` requests answer 500, ``hold`` seconds stall the first."""

    def __init__(self, fail_first: int = 0, hold: float = 0.0) -> None:
        self.calls: list[tuple[dict, bytes]] = []
        self.fail_first, self.hold = fail_first, hold
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append(({k.lower(): v for k, v in self.headers.items()}, body))
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

    def close(self) -> None:
        self.server.shutdown()


async def _queue(url: str, n: int) -> list[str]:
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        return [r["id"] for r in await conn.fetch(
            """INSERT INTO outbox (topic, payload) SELECT 'alert.opened', jsonb_build_object('n', i)
               FROM generate_series(1, $1) i RETURNING id::text AS id""", n)]
    finally:
        await conn.close()


async def _pending(url: str) -> int:
    dsn, kwargs = asyncpg_dsn(url)
    conn = await asyncpg.connect(dsn, **kwargs)
    try:
        return await conn.fetchval("SELECT count(*) FROM outbox WHERE delivered_at IS NULL")
    finally:
        await conn.close()


@pytest.fixture
def receiver_factory():
    made = []

    def make(**kw) -> Receiver:
        made.append(Receiver(**kw))
        return made[-1]

    yield make
    for r in made:
        r.close()


async def test_messages_arrive_signed_with_their_event_id(make_database, receiver_factory):
    url = make_database()
    receiver = receiver_factory()
    ids = await _queue(url, 3)
    db = Database(url, pool_size=2)
    try:
        done = await deliver_notifications(Settings(webhook_urls=(receiver.url,), webhook_secret=SECRET))(db)
    finally:
        await db.dispose()
    assert done["delivered"] == 3 and await _pending(url) == 0
    assert sorted(h["x-stockpile-event-id"] for h, _ in receiver.calls) == sorted(ids)
    for headers, body in receiver.calls:
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        assert headers["x-stockpile-signature"] == expected
        assert json.loads(body)["id"] == headers["x-stockpile-event-id"] and json.loads(body)["topic"] == "alert.opened"


async def test_a_failing_receiver_gets_the_message_again_after_backoff(make_database, receiver_factory):
    url = make_database()
    receiver = receiver_factory(fail_first=1)
    [event] = await _queue(url, 1)
    db = Database(url, pool_size=2)
    deliver = deliver_notifications(Settings(webhook_urls=(receiver.url,), webhook_secret=SECRET))
    try:
        assert (await deliver(db))["retrying"] == 1
        assert (await deliver(db))["delivered"] == 0  # not due yet: backing off
        async with db.transaction() as tx:
            attempts, error = await tx.pg.fetchrow("SELECT attempts, last_error FROM outbox WHERE id = $1::uuid", event)
            await tx.pg.execute("UPDATE outbox SET next_attempt_at = now() WHERE id = $1::uuid", event)
        assert attempts == 1 and "HTTP 500" in error
        assert (await deliver(db))["delivered"] == 1
    finally:
        await db.dispose()
    assert [h["x-stockpile-event-id"] for h, _ in receiver.calls] == [event, event]
    assert await _pending(url) == 0


async def test_a_worker_killed_mid_delivery_loses_nothing(make_database, receiver_factory):
    url = make_database()
    receiver = receiver_factory(hold=4.0)
    [event] = await _queue(url, 1)
    env = {**os.environ, "DATABASE_URL": url, "STOCKPILE_WEBHOOK_URLS": receiver.url, "STOCKPILE_WEBHOOK_SECRET": SECRET,
           "STOCKPILE_JOB_DELIVER_NOTIFICATIONS_SECONDS": "1", "STOCKPILE_WORKER_METRICS_PORT": "0"}
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
        second = subprocess.Popen([sys.executable, "-m", "stockpile", "worker"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 40
            while await _pending(url) and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
        finally:
            second.terminate()
            second.wait(timeout=20)
    finally:
        if first.poll() is None:
            first.kill()
    assert await _pending(url) == 0
    ids = [h["x-stockpile-event-id"] for h, _ in receiver.calls]
    assert len(ids) >= 2 and set(ids) == {event}  # at least once, the same event id to deduplicate on

"""Job ``deliver-notifications``: send outbox messages to the configured webhooks.

Each message is POSTed as JSON to every endpoint of ``STOCKPILE_WEBHOOK_URLS`` entitled to it (an
endpoint without military clearance never gets a message about military stock), signed as
``stockpile.webhooks`` describes: ``X-Stockpile-Timestamp`` and ``X-Stockpile-Signature: v1=<hex
HMAC-SHA256 of "<timestamp>.<body>">``, with ``X-Stockpile-Event-Id`` to deduplicate on (delivery
is at least once).

A run works in three kinds of short transactions and never holds one across an HTTP call:

1. dispatch — new messages are fanned out into one delivery per entitled endpoint;
2. claim — a few due deliveries are leased (``leased_until``) and the lease is committed;
3. after sending them, concurrently and each within the timeout, the outcomes are recorded.

A failed delivery is retried on its own with exponential backoff (2, 4, 8 … seconds, at most an
hour); the other endpoints of the message are not sent it again. A worker that dies mid-delivery
leaves its leases to expire (timeout + 10 s) and a later run sends those deliveries again.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import timedelta
from typing import Any

import httpx

from stockpile.config import Settings
from stockpile.store import outbox
from stockpile.store.db import Database
from stockpile.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature_header

DISPATCH_BATCH = 500  # messages fanned out per run
CLAIM_BATCH = 10  # deliveries leased and sent at once
MAX_SENDS = 500  # sends per run; the next run goes on
LEASE_MARGIN_SECONDS = 10  # beyond the send timeout: time to record the outcome


def backoff(attempts: int) -> timedelta:
    """How long a delivery that failed its ``attempts``-th send waits: 2, 4, 8 … s, at most an hour."""
    return timedelta(seconds=min(2 ** max(attempts, 1), 3600))


def message_body(message: Any) -> bytes:
    """The JSON body of a message, the same for every endpoint (only the signature differs per send)."""
    return (f'{{"id":{json.dumps(message["id"])},"topic":{json.dumps(message["topic"])},'
            f'"created_at":{json.dumps(message["created_at"].isoformat())},"payload":{message["payload"]}}}').encode()


async def send(client: httpx.AsyncClient, url: str, message: Any, secret: str, timeout: float) -> str | None:
    """POST one message to one endpoint, signed with the time of this attempt; the error, or None
    when the endpoint answered 2xx. Redirects are not followed (one could lead to plain http)."""
    body = message_body(message)
    timestamp = int(time.time())
    headers = {"Content-Type": "application/json", "User-Agent": "stockpile-webhooks",
               EVENT_ID_HEADER: message["id"], TIMESTAMP_HEADER: str(timestamp),
               SIGNATURE_HEADER: signature_header(secret, timestamp, body)}
    try:
        async with asyncio.timeout(timeout):  # the whole exchange, not each read: a trickling receiver cannot outlast the lease
            response = await client.post(url, content=body, headers=headers)
    except (httpx.HTTPError, TimeoutError) as exc:
        return type(exc).__name__
    return None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"


def deliver_notifications(settings: Settings):
    endpoints = [(e.url, e.cleared) for e in settings.webhook_endpoints]
    urls = [url for url, _ in endpoints]
    cleared_urls = [url for url, cleared in endpoints if cleared]
    timeout = settings.webhook_timeout_seconds
    lease = timedelta(seconds=timeout + LEASE_MARGIN_SECONDS)

    async def run(db: Database) -> dict[str, Any]:
        run_id = str(uuid.uuid4())
        async with db.transaction() as tx:
            dispatched = await outbox.dispatch(tx.pg, endpoints, DISPATCH_BATCH)
        delivered = retrying = settled = 0
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:
            while delivered + retrying < MAX_SENDS:
                async with db.transaction() as tx:
                    claimed = await outbox.claim(tx.pg, urls, cleared_urls, CLAIM_BATCH, lease, run_id)
                if not claimed:
                    break
                errors = await asyncio.gather(*(send(client, d["endpoint"], d, settings.webhook_secret, timeout)
                                                 for d in claimed))
                ok = [(d["id"], d["endpoint"]) for d, error in zip(claimed, errors) if error is None]
                failed = [(d["id"], d["endpoint"], f"{d['endpoint']}: {error}", backoff(d["attempts"]))
                          for d, error in zip(claimed, errors) if error is not None]
                async with db.transaction() as tx:
                    settled += await outbox.record(tx.pg, run_id, ok, failed)
                delivered, retrying = delivered + len(ok), retrying + len(failed)
        return {"dispatched": dispatched["dispatched"], "military": dispatched["military"],
                "delivered": delivered, "retrying": retrying, "messages_delivered": settled,
                "webhooks": len(endpoints)}

    return run

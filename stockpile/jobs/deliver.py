"""Job ``deliver-notifications``: send outbox messages to the configured webhooks.

Each message is POSTed as JSON to every URL in ``STOCKPILE_WEBHOOK_URLS`` with headers
``X-Stockpile-Event-Id`` (deduplicate on it: delivery is at least once) and
``X-Stockpile-Signature: sha256=<hex HMAC-SHA256 of the body with STOCKPILE_WEBHOOK_SECRET>``.
A message counts as delivered when every URL answered 2xx; otherwise it is retried with exponential
backoff (2, 4, 8 … seconds, at most an hour). Messages stay locked by the delivering transaction, so
a worker that dies mid-delivery leaves them undelivered for the next run.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any

import httpx

from stockpile.config import Settings
from stockpile.store import outbox
from stockpile.store.db import Database

BATCH = 100


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(2 ** (attempts + 1), 3600))


def deliver_notifications(settings: Settings):
    async def run(db: Database) -> dict[str, Any]:
        sent = retried = 0
        async with httpx.AsyncClient(timeout=settings.webhook_timeout_seconds) as client, db.transaction() as tx:
            for message in await outbox.due(tx.pg, BATCH):
                body = (f'{{"id":"{message["id"]}","topic":"{message["topic"]}",'
                        f'"created_at":"{message["created_at"].isoformat()}","payload":{message["payload"]}}}').encode()
                headers = {"Content-Type": "application/json", "X-Stockpile-Event-Id": message["id"],
                           "X-Stockpile-Signature": signature(settings.webhook_secret, body)}
                errors = []
                for url in settings.webhook_urls:
                    try:
                        response = await client.post(url, content=body, headers=headers)
                        if response.status_code >= 300:
                            errors.append(f"{url}: HTTP {response.status_code}")
                    except httpx.HTTPError as exc:
                        errors.append(f"{url}: {type(exc).__name__}")
                if errors:
                    await outbox.failed(tx.pg, message["id"], "; ".join(errors), backoff(message["attempts"]))
                    retried += 1
                else:
                    await outbox.delivered(tx.pg, message["id"])
                    sent += 1
        return {"delivered": sent, "retrying": retried, "webhooks": len(settings.webhook_urls)}

    return run

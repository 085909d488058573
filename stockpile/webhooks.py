"""Signing and verifying stockpile webhooks — the verifier receivers run (import it, or copy this file:
it needs nothing beyond the standard library).

Every delivery carries::

    X-Stockpile-Event-Id:  <outbox message id>   (deduplicate on it: delivery is at least once)
    X-Stockpile-Timestamp: <unix seconds when this attempt was sent>
    X-Stockpile-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed with STOCKPILE_WEBHOOK_SECRET>

The timestamp is inside the signature, so it cannot be changed without the secret; a receiver that
refuses old timestamps refuses a captured request replayed later, even byte for byte. Each retry is
signed afresh with the time it is sent, so a late retry is not mistaken for a replay. Within the
five minutes a replay could still arrive: receivers that must be strict also drop event ids they
have already processed (they need to anyway — delivery is at least once).

Usage in a receiver::

    from stockpile.webhooks import WebhookRefused, verify

    try:
        verify(SECRET, request.headers, raw_body)   # the body exactly as received, before parsing
    except WebhookRefused as exc:
        return 400, str(exc)
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

SCHEME = "v1"
TIMESTAMP_HEADER = "X-Stockpile-Timestamp"
SIGNATURE_HEADER = "X-Stockpile-Signature"
EVENT_ID_HEADER = "X-Stockpile-Event-Id"
TOLERANCE_SECONDS = 300  # older than this: refused as a replay (or a delivery held up somewhere)
FUTURE_SKEW_SECONDS = 30  # clocks may disagree by this much; beyond it a timestamp is not believable


class WebhookRefused(ValueError):
    """The request is not a genuine, fresh stockpile delivery; the message says why."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>.<body>"``."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """The value of ``X-Stockpile-Signature`` for this body sent at ``timestamp``."""
    return f"{SCHEME}={sign(secret, timestamp, body)}"


def verify(secret: str, headers: Mapping[str, str], body: bytes, now: float | None = None, *,
           tolerance: int = TOLERANCE_SECONDS) -> int:
    """Check a delivery; return its timestamp, or raise :class:`WebhookRefused`.

    Refused: a missing or malformed header, a timestamp older than ``tolerance`` seconds before
    ``now`` (default: the current time) or more than a few seconds after it, and a signature that
    does not match (compared in constant time). ``headers`` may be any mapping; names are matched
    without regard to case.
    """
    if not secret:
        raise WebhookRefused("no secret to verify with")
    found = {str(k).lower(): v for k, v in headers.items()}
    raw_timestamp = found.get(TIMESTAMP_HEADER.lower())
    raw_signature = found.get(SIGNATURE_HEADER.lower())
    if raw_timestamp is None or raw_signature is None:
        raise WebhookRefused(f"{TIMESTAMP_HEADER} and {SIGNATURE_HEADER} are required")
    if not raw_timestamp.isascii() or not raw_timestamp.isdigit():
        raise WebhookRefused(f"{TIMESTAMP_HEADER} must be whole unix seconds")
    timestamp = int(raw_timestamp)
    now = time.time() if now is None else now
    if now - timestamp > tolerance:
        raise WebhookRefused(f"signed {int(now - timestamp)} s ago, more than {tolerance} s: refused as a replay")
    if timestamp - now > FUTURE_SKEW_SECONDS:
        raise WebhookRefused(f"signed {int(timestamp - now)} s in the future")
    expected = sign(secret, timestamp, body)
    offered = [part.strip()[len(SCHEME) + 1:] for part in raw_signature.split(",")
               if part.strip().startswith(f"{SCHEME}=")]
    # Every offered signature is compared (constant time each), so timing says nothing about which.
    matched = False
    for candidate in offered:
        matched |= hmac.compare_digest(candidate.encode(), expected.encode())
    if not matched:
        raise WebhookRefused("signature does not match")
    return timestamp

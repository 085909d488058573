"""Guarantee 5's one rule: a key used again with the same request replays its answer; with another
request it is refused. Both write paths — the group commit of single movements and every other
ledger POST — ask this one function, so they cannot drift apart."""

from __future__ import annotations

from stockpile.domain.errors import IdempotencyConflict


def reuse_conflict(key: str, used_for: bytes, fingerprint: bytes) -> IdempotencyConflict | None:
    """The refusal (409) when ``key``, first used for the request ``used_for``, now comes with
    another request (``fingerprint``); None when it is the same request, whose answer is replayed."""
    if used_for == fingerprint:
        return None
    return IdempotencyConflict(f"Idempotency-Key {key!r} was already used for a different request",
                               idempotency_key=key)

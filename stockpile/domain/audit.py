"""The tamper-evident audit trail's rules.

Guarantees (the database keeps events append-only; ``stockpile audit verify`` checks the rest):

- Each event carries ``content_hash = SHA-256(canonical content)``; changing any recorded field
  changes the hash.
- Sealed events form one chain: ``chain_hash = SHA-256(prev_hash || content_hash)`` with
  ``chain_seq`` 1, 2, 3… without gaps. Removing, inserting or altering an event breaks the chain
  at that point, and ``verify_chain`` names the first event where it breaks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

GENESIS = bytes(32)


def canonical(content: dict[str, Any]) -> bytes:
    """One byte string per content: sorted keys, no whitespace, UTC timestamps, str for the rest."""

    def default(value: Any) -> str:
        if isinstance(value, datetime):
            return value.astimezone(timezone.utc).isoformat()
        return str(value)

    return json.dumps(content, sort_keys=True, separators=(",", ":"), default=default, ensure_ascii=False).encode()


def content_hash(content: dict[str, Any]) -> bytes:
    return hashlib.sha256(canonical(content)).digest()


def chain_hash(prev_hash: bytes, content_digest: bytes) -> bytes:
    return hashlib.sha256(prev_hash + content_digest).digest()


@dataclass(frozen=True)
class SealedEvent:
    id: int
    chain_seq: int
    content: dict[str, Any]
    content_hash: bytes
    prev_hash: bytes
    chain_hash: bytes


@dataclass(frozen=True)
class Verdict:
    ok: bool
    checked: int
    first_bad_event: int | None = None
    problem: str | None = None
    head: bytes = GENESIS


def verify_chain(events: Iterable[SealedEvent]) -> Verdict:
    """Walk sealed events in ``chain_seq`` order and report the first break, if any."""
    prev = GENESIS
    expected_seq = 1
    checked = 0
    for event in events:
        if event.chain_seq > expected_seq:
            return Verdict(False, checked, event.id,
                           f"chain position {expected_seq} expected, found {event.chain_seq}: events were removed "
                           "before this one, or this one was inserted", prev)
        if event.chain_seq < expected_seq:
            return Verdict(False, checked, event.id,
                           f"chain position {event.chain_seq} appears twice: an event was inserted or duplicated", prev)
        if content_hash(event.content) != event.content_hash:
            return Verdict(False, checked, event.id, "its content no longer matches its hash: the event was altered", prev)
        if event.prev_hash != prev:
            return Verdict(False, checked, event.id, "it does not point at the previous event: the chain was cut", prev)
        if chain_hash(prev, event.content_hash) != event.chain_hash:
            return Verdict(False, checked, event.id, "its chain hash is wrong: the event was altered", prev)
        prev = event.chain_hash
        expected_seq += 1
        checked += 1
    return Verdict(True, checked, head=prev)

"""Guarantee 5, implemented once: a ledger POST sent twice with the same Idempotency-Key is applied
once, and the second call gets the first call's answer.

A key is claimed by inserting its row in the request's own transaction (``Keys.claim``): a
concurrent duplicate waits on the row until the first transaction ends, then finds the stored
answer (or, if the first rolled back, proceeds as the first). The answer is stored in the same
transaction as the ledger change, so a failed request leaves the key free for a retry. A key used
before is judged by ``domain.idempotency.reuse_conflict``: the same request replays its answer,
another request is a 409.

The group commit (``services.posting``) claims the keys of a whole group at once and stores their
answers in its append statement; every other ledger POST goes through ``once``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import asyncpg

from stockpile.domain.errors import IdempotencyConflict
from stockpile.domain.idempotency import reuse_conflict
from stockpile.store import idempotency as store

Ident = tuple[int, str]  # (principal id, Idempotency-Key)


@dataclass(frozen=True)
class Answer:
    """A ledger POST's answer: its status and body, whether it is a replay of a stored one, and the
    kinds of the movements it posted (none on a replay)."""

    status: int
    body: bytes
    replayed: bool
    kinds: tuple[str, ...] = ()


class Keys:
    """The keys of one transaction's requests: the ones claimed now, and what was stored for the
    ones used before."""

    def __init__(self, claimed: set[Ident], stored: dict[Ident, store.Stored]) -> None:
        self.claimed, self._stored = claimed, stored

    @classmethod
    async def claim(cls, pg: asyncpg.Connection, requests: Iterable[tuple[int, str, bytes]]) -> Keys:
        """Claim each (principal id, key, request fingerprint) in one statement; read what was
        stored for the keys already used (a second statement, only when there are any)."""
        requests = list(requests)
        claimed = await store.claim_many(pg, requests)
        stored = await store.stored_many(pg, [(p, k) for p, k, _ in requests if (p, k) not in claimed])
        return cls(claimed, stored)

    def replay(self, ident: Ident, fingerprint: bytes) -> Answer | IdempotencyConflict:
        """The stored answer of a key used before, or the refusal when it was used for another request."""
        stored = self._stored[ident]
        refused = reuse_conflict(ident[1], stored.request_hash, fingerprint)
        return refused if refused is not None else Answer(stored.status_code, stored.body, replayed=True)

    @staticmethod
    async def record(pg: asyncpg.Connection, ident: Ident, status: int, body: bytes) -> None:
        """Store the answer a claimed key's replays will get (in the claiming transaction)."""
        await store.record(pg, ident[0], ident[1], status, body)

    @staticmethod
    async def release(pg: asyncpg.Connection, idents: list[Ident]) -> None:
        """Free the keys of refused requests in the transaction that refused them (no trace left)."""
        await store.release_many(pg, idents)


async def once(pg: asyncpg.Connection, principal_id: int, key: str, fingerprint: bytes,
               run: Callable[[], Awaitable[tuple[int, bytes]]]) -> Answer:
    """Run a ledger POST once per (principal, key) in the caller's transaction: ``run`` makes the
    change and answers (status, body), which is stored for replays. Raises ``IdempotencyConflict``
    when the key was used for another request."""
    ident = (principal_id, key)
    keys = await Keys.claim(pg, [(principal_id, key, fingerprint)])
    if ident not in keys.claimed:
        answer = keys.replay(ident, fingerprint)
        if isinstance(answer, IdempotencyConflict):
            raise answer
        return answer
    status, body = await run()
    await Keys.record(pg, ident, status, body)
    return Answer(status, body, replayed=False)

"""Sealing and verifying the audit trail (``stockpile audit verify``, the worker's sealing job)."""

from __future__ import annotations

from dataclasses import dataclass

from stockpile.domain.audit import SealedEvent, Verdict, verify_chain
from stockpile.store import audit as store
from stockpile.store.db import Database


@dataclass
class Report:
    verdict: Verdict
    sealed_now: int
    unsealed: int

    @property
    def ok(self) -> bool:
        return self.verdict.ok

    def text(self) -> str:
        v = self.verdict
        if v.ok:
            return (f"audit chain intact: {v.checked} events, head {v.head.hex()} "
                    f"({self.sealed_now} sealed now, {self.unsealed} still pending in open transactions)")
        return (f"audit chain BROKEN at event {v.first_bad_event}: {v.problem} "
                f"({v.checked} events verified before it)")


async def verify(url: str) -> Report:
    """Seal what can be sealed, then verify the whole chain from its start."""
    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as tx:
            sealed_now = await store.seal(tx.pg)
        async with db.transaction() as tx:
            events: list[SealedEvent] = [event async for event in store.sealed_events(tx.pg)]
            unsealed = await store.unsealed_count(tx.pg)
        return Report(verify_chain(events), sealed_now, unsealed)
    finally:
        await db.dispose()

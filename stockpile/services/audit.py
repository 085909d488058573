"""Sealing and verifying the audit trail (``stockpile audit verify``, the worker's sealing job).

The chain proves that no sealed event was altered, removed or inserted in the middle; the signed
checkpoints prove that its end was not cut off while a later checkpoint survives; an anchor kept
outside the database proves it even when every checkpoint after the cut was removed too.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from stockpile.domain.access import Principal
from stockpile.domain.audit import (
    Anchor, Checkpoint, CheckpointVerdict, SealedEvent, Verdict, verify_chain, verify_checkpoints, visible_event,
)
from stockpile.domain.moments import rfc3339
from stockpile.store import audit as store
from stockpile.store.db import Database, repeatable_read


class AnchorUnreadable(Exception):
    """The anchor file exists but is not one ``audit verify`` wrote."""


@dataclass
class Report:
    verdict: Verdict
    checkpoints: CheckpointVerdict
    sealed_now: int
    unsealed: int
    anchor_note: str | None = None

    @property
    def ok(self) -> bool:
        return self.verdict.ok and self.checkpoints.ok

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.checkpoints.warnings

    def text(self) -> str:
        v, c = self.verdict, self.checkpoints
        lines = []
        if v.ok:
            lines.append(f"audit chain intact: {v.checked} events, head {v.head.hex()} "
                         f"({self.sealed_now} sealed now, {self.unsealed} still pending in open transactions)")
        else:
            lines.append(f"audit chain BROKEN at event {v.first_bad_event}: {v.problem} "
                         f"({v.checked} events verified before it)")
        lines.extend(c.problems)
        if c.ok:
            lines.append(f"checkpoints: {c.count}, {c.signed} signed and verified, each reached by the chain")
        if c.latest is not None:
            lines.append(f"latest checkpoint: #{c.latest.counter} chain_seq {c.latest.chain_seq} "
                         f"head {c.latest.head.hex()} at {c.latest.at.isoformat()} "
                         f"hmac {c.latest.mac.hex() if c.latest.mac else 'none (unsigned)'}")
        if self.anchor_note:
            lines.append(self.anchor_note)
        return "\n".join(lines)


def read_anchor(path: Path) -> Anchor | None:
    """The anchor in ``path``, or None when the file does not exist yet (the first verification)."""
    try:
        raw = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return Anchor.from_json(json.loads(raw))
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise AnchorUnreadable(f"{path}: {exc}") from None


def write_anchor(path: Path, checkpoint: Checkpoint) -> None:
    """Replace the anchor atomically (a crash leaves the old one or the new one, never half)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as out:
        json.dump({**Anchor.of(checkpoint).as_json(), "at": checkpoint.at.isoformat()}, out, indent=2)
        out.write("\n")
    os.replace(tmp, path)


async def verify(url: str, *, key: bytes | None = None, anchor_file: Path | None = None,
                 expect_seq: int | None = None) -> Report:
    """Seal what can be sealed (checkpointing it), verify the whole chain from its start, then every
    checkpoint, the anchor and ``expect_seq`` against it. When everything holds, the anchor file is
    moved on to the latest checkpoint."""
    anchor = read_anchor(anchor_file) if anchor_file else None
    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as tx:
            sealed_now = await store.seal(tx.pg, key)
        async with db.transaction() as tx:
            await repeatable_read(tx.pg)  # chain and checkpoints agree
            marks = await store.checkpoints(tx.pg)
            events: list[SealedEvent] = [event async for event in store.sealed_events(tx.pg)]
            unsealed = await store.unsealed_count(tx.pg)
    finally:
        await db.dispose()
    wanted = {cp.chain_seq for cp in marks} | ({anchor.chain_seq} if anchor else set())
    chain = verify_chain(events, wanted)
    report = Report(chain, verify_checkpoints(marks, chain, key=key, anchor=anchor, expect_seq=expect_seq),
                    sealed_now, unsealed)
    if anchor_file and report.ok and report.checkpoints.latest is not None:
        write_anchor(anchor_file, report.checkpoints.latest)
        report.anchor_note = (f"anchor {anchor_file} {'moved on to' if anchor else 'created at'} checkpoint "
                              f"#{report.checkpoints.latest.counter}")
    elif anchor_file and not report.ok:
        report.anchor_note = f"anchor {anchor_file} left as it was"
    return report


async def events(db: Database, key: bytes | None, reader: Principal, *, since: datetime | None,
                 until: datetime | None, actor: str | None, target: str | None, action: str | None,
                 before_id: int | None, limit: int) -> list[dict[str, Any]]:
    """The audit trail newest first, as ``reader`` may see it (``domain.audit.visible_event``: a
    restricted event without target, details or client for a reader without military clearance).
    What has committed is chained (and checkpointed) first, in a transaction of its own, so a reader
    never sees an event the chain does not hold yet."""
    cleared = reader.cleared_military
    await seal_committed(db, key)
    async with db.transaction() as tx:
        rows = await store.events(since=since, until=until, actor=actor, target=target, action=action,
                                  before_id=before_id, limit=limit, reader_cleared=cleared).fetch(tx.pg)
    return [_shown(r, cleared) for r in rows]


async def seal_committed(db: Database, key: bytes | None) -> None:
    """Chain (and checkpoint) what has committed, in a transaction of its own, before a read of the
    trail, so a reader never sees an event the chain does not hold yet."""
    async with db.transaction() as tx:
        await store.seal(tx.pg, key)


async def every_event(pg: asyncpg.Connection, reader: Principal, **filters) -> AsyncIterator[dict[str, Any]]:
    """Every event ``events`` pages through with these filters, streamed (an export; seal first with
    ``seal_committed``)."""
    cleared = reader.cleared_military
    async for row in store.events(**filters, before_id=None, limit=None, reader_cleared=cleared).stream(pg):
        yield _shown(row, cleared)


def _shown(row: asyncpg.Record, cleared: bool) -> dict[str, Any]:
    return visible_event({**store.content_of(row), "at": rfc3339(row["at"]), "id": row["id"],
                          "chain_seq": row["chain_seq"], "restricted": row["restricted"],
                          "content_hash": row["content_hash"], "chain_hash": row["chain_hash"]},
                         reader_cleared=cleared)


async def denials(pg: asyncpg.Connection, *, since: datetime | None, actor: str | None, before_id: int | None,
                  limit: int) -> list[asyncpg.Record]:
    """Denied requests counted per minute, actor or address, route template and status, newest first."""
    return await store.denials(pg, since=since, actor=actor, before_id=before_id, limit=limit)

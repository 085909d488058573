"""The tamper-evident audit trail's rules.

Guarantees (the database keeps events append-only; ``stockpile audit verify`` checks the rest):

- Each event carries ``content_hash = SHA-256(canonical content)``; changing any recorded field
  changes the hash.
- Sealed events form one chain: ``chain_hash = SHA-256(prev_hash || content_hash || r)`` with
  ``chain_seq`` 1, 2, 3… without gaps, where ``r`` is one byte for the event's ``restricted`` flag
  (chain version 2; events sealed before the flag existed are chain version 1, without ``r``).
  Removing, inserting or altering an event, or flipping a sealed event's flag, breaks the chain at
  that point, and ``verify_chain`` names the first event where it breaks.
- Every sealing round that seals anything ends with a checkpoint: a gapless counter, the chain
  position and head hash it reached, and the database's time, signed with an HMAC-SHA256 under a
  key the database does not hold (``STOCKPILE_AUDIT_KEY``). ``verify_checkpoints`` proves that the
  chain still reaches every checkpoint, so removing the newest events is detected as long as one
  later checkpoint survives; removing events *and* every checkpoint after them leaves a shorter but
  consistent chain, which only a head kept outside the database (an ``Anchor``) exposes.

Need-to-know (``visible_event``): an event is *restricted* when its actor held military clearance
or its handler flagged it. A reader without military clearance sees who, roles, action, outcome,
status, time and request id of a restricted event, never its target, details or client; and of an
event that did not succeed, the route template instead of the concrete path it tried.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from stockpile.domain.access import MILITARY

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


def chain_hash(prev_hash: bytes, content_digest: bytes, restricted: bool | None = None) -> bytes:
    """The link to the previous event. ``restricted=None`` is chain version 1 (events sealed before
    the flag existed); a bool binds the flag into the link (version 2), so flipping it is tampering."""
    flag = b"" if restricted is None else (b"\x01" if restricted else b"\x00")
    return hashlib.sha256(prev_hash + content_digest + flag).digest()


def link_hash(prev_hash: bytes, content_digest: bytes, chain_version: int, restricted: bool) -> bytes:
    """``chain_hash`` under an event's own chain version."""
    return chain_hash(prev_hash, content_digest, restricted if chain_version >= 2 else None)


def is_restricted(*, flagged: bool, actor_clearance: str | None) -> bool:
    """An event is restricted when its handler says so or its actor was cleared for military stock
    (whatever such an actor touched may be military, so its targets and details are need-to-know)."""
    return flagged or actor_clearance == MILITARY


@dataclass(frozen=True)
class SealedEvent:
    id: int
    chain_seq: int
    content: dict[str, Any]
    content_hash: bytes
    prev_hash: bytes
    chain_hash: bytes
    restricted: bool = False
    chain_version: int = 1


@dataclass(frozen=True)
class Verdict:
    ok: bool
    checked: int
    first_bad_event: int | None = None
    problem: str | None = None
    head: bytes = GENESIS
    heads: Mapping[int, bytes] = field(default_factory=dict)  # chain hash at each position asked for


def verify_chain(events: Iterable[SealedEvent], marks: frozenset[int] | set[int] = frozenset()) -> Verdict:
    """Walk sealed events in ``chain_seq`` order and report the first break, if any. The chain hash
    reached at each position in ``marks`` (the checkpoints' positions) is kept in ``heads``."""
    prev = GENESIS
    expected_seq = 1
    checked = 0
    heads: dict[int, bytes] = {}
    for event in events:
        if event.chain_seq > expected_seq:
            return Verdict(False, checked, event.id,
                           f"chain position {expected_seq} expected, found {event.chain_seq}: events were removed "
                           "before this one, or this one was inserted", prev, heads)
        if event.chain_seq < expected_seq:
            return Verdict(False, checked, event.id,
                           f"chain position {event.chain_seq} appears twice: an event was inserted or duplicated",
                           prev, heads)
        if content_hash(event.content) != event.content_hash:
            return Verdict(False, checked, event.id, "its content no longer matches its hash: the event was altered",
                           prev, heads)
        if event.prev_hash != prev:
            return Verdict(False, checked, event.id, "it does not point at the previous event: the chain was cut",
                           prev, heads)
        if link_hash(prev, event.content_hash, event.chain_version, event.restricted) != event.chain_hash:
            return Verdict(False, checked, event.id,
                           "its chain hash is wrong: the event (or its restricted flag) was altered", prev, heads)
        prev = event.chain_hash
        expected_seq += 1
        checked += 1
        if event.chain_seq in marks:
            heads[event.chain_seq] = prev
    return Verdict(True, checked, head=prev, heads=heads)


# --- checkpoints: the chain's head, signed with a key the database does not hold -------------------


@dataclass(frozen=True)
class Checkpoint:
    """What one sealing round reached. ``mac`` is None when the sealer had no ``STOCKPILE_AUDIT_KEY``."""

    counter: int
    chain_seq: int
    head: bytes
    at: datetime
    mac: bytes | None = None


def checkpoint_message(counter: int, chain_seq: int, head: bytes, at: datetime) -> bytes:
    """The signed bytes: every field, fixed order, UTC time to the microsecond (as PostgreSQL keeps it)."""
    moment = at.astimezone(timezone.utc).isoformat()
    return f"stockpile-audit-checkpoint/1|{counter}|{chain_seq}|{head.hex()}|{moment}".encode()


def sign_checkpoint(key: bytes, counter: int, chain_seq: int, head: bytes, at: datetime) -> bytes:
    return hmac.new(key, checkpoint_message(counter, chain_seq, head, at), hashlib.sha256).digest()


def signature_holds(key: bytes, checkpoint: Checkpoint) -> bool:
    if checkpoint.mac is None:
        return False
    expected = sign_checkpoint(key, checkpoint.counter, checkpoint.chain_seq, checkpoint.head, checkpoint.at)
    return hmac.compare_digest(expected, checkpoint.mac)


@dataclass(frozen=True)
class Anchor:
    """The latest checkpoint a verifier saw, kept where the database's owners cannot write (a file in
    another system, a ticket, a printout). It is the only thing that exposes a chain cut back together
    with every checkpoint after the cut."""

    counter: int
    chain_seq: int
    head: bytes
    mac: bytes | None = None

    @classmethod
    def of(cls, checkpoint: Checkpoint) -> Anchor:
        return cls(checkpoint.counter, checkpoint.chain_seq, checkpoint.head, checkpoint.mac)

    def as_json(self) -> dict[str, Any]:
        return {"counter": self.counter, "chain_seq": self.chain_seq, "head": self.head.hex(),
                "hmac": self.mac.hex() if self.mac else None}

    @classmethod
    def from_json(cls, data: Any) -> Anchor:
        """Raises ``ValueError`` on anything but what ``as_json`` writes."""
        try:
            counter, seq, head, mac = data["counter"], data["chain_seq"], data["head"], data.get("hmac")
            if not (isinstance(counter, int) and isinstance(seq, int) and counter >= 1 and seq >= 1):
                raise ValueError("counter and chain_seq must be positive whole numbers")
            return cls(counter, seq, bytes.fromhex(head), bytes.fromhex(mac) if mac else None)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not an audit anchor: {exc}") from None


@dataclass(frozen=True)
class CheckpointVerdict:
    problems: tuple[str, ...]
    warnings: tuple[str, ...]
    latest: Checkpoint | None
    count: int
    signed: int

    @property
    def ok(self) -> bool:
        return not self.problems


NO_KEY_WARNING = (
    "STOCKPILE_AUDIT_KEY is not set: checkpoint signatures are NOT checked, so whoever can write to the "
    "database can remove the newest events together with their checkpoints, or rewrite checkpoints, "
    "without this check noticing. Set the key, and keep the latest checkpoint outside the database "
    "(--anchor FILE or --expect-seq N).")


def verify_checkpoints(checkpoints: Sequence[Checkpoint], chain: Verdict, *, key: bytes | None,
                       anchor: Anchor | None = None, expect_seq: int | None = None) -> CheckpointVerdict:
    """Check checkpoints (in counter order) against the verified chain and a key the database lacks.

    Problems (the trail was tampered with): a counter gap (checkpoints removed), an HMAC that does not
    hold, positions that do not grow, a checkpoint or the anchor beyond the chain's end (its newest
    events removed), a head the chain no longer reaches there (events removed and replaced, or
    rewritten), an anchored checkpoint missing or different. Positions past a break of the chain
    itself are not judged again (the break is reported on its own).
    """
    problems: list[str] = []
    warnings: list[str] = [] if key else [NO_KEY_WARNING]
    reach = chain.checked
    signed = unsigned_after_signed = 0
    previous: Checkpoint | None = None
    for cp in checkpoints:
        expected = previous.counter + 1 if previous else 1
        if cp.counter > expected:
            missing = f"#{expected}" if cp.counter == expected + 1 else f"#{expected}–#{cp.counter - 1}"
            problems.append(f"checkpoints MISSING: {missing} (before #{cp.counter}): checkpoints were removed")
        if cp.mac is None:
            unsigned_after_signed += 1 if signed else 0
        elif key is not None:
            if signature_holds(key, cp):
                signed += 1
            else:
                problems.append(f"checkpoint #{cp.counter} ({_moment(cp.at)}) FORGED or altered: its HMAC does not "
                                "hold (or STOCKPILE_AUDIT_KEY is not the key it was signed with)")
        if previous and cp.chain_seq <= previous.chain_seq:
            problems.append(f"checkpoint #{cp.counter} records chain position {cp.chain_seq}, not beyond "
                            f"#{previous.counter}'s {previous.chain_seq}: checkpoints were altered")
        if previous and cp.at < previous.at:
            warnings.append(f"checkpoint #{cp.counter} is dated before #{previous.counter}: the database's clock "
                            "went back, or checkpoints were altered")
        problems.extend(_reaches(chain, reach, f"checkpoint #{cp.counter} ({_moment(cp.at)})", cp.chain_seq, cp.head))
        previous = cp
    if key is not None and checkpoints and not signed:
        warnings.append("no checkpoint is signed: every sealer ran without STOCKPILE_AUDIT_KEY")
    elif unsigned_after_signed:
        warnings.append(f"{unsigned_after_signed} checkpoint(s) after signed ones are unsigned: a sealer (API, "
                        "worker or verify) runs without STOCKPILE_AUDIT_KEY; they prove nothing")
    if chain.ok and previous and reach > previous.chain_seq:
        warnings.append(f"chain positions {previous.chain_seq + 1}–{reach} are covered by no checkpoint yet")
    if chain.ok and not checkpoints and reach:
        warnings.append("there is no checkpoint yet: the chain's end is not protected")
    if anchor is not None:
        by_counter = {cp.counter: cp for cp in checkpoints}
        kept = by_counter.get(anchor.counter)
        if kept is None:
            problems.append(f"the anchored checkpoint #{anchor.counter} (chain position {anchor.chain_seq}) is "
                            "MISSING: checkpoints were removed")
        elif (kept.chain_seq, kept.head, kept.mac) != (anchor.chain_seq, anchor.head, anchor.mac):
            problems.append(f"checkpoint #{anchor.counter} differs from the anchor: it was rewritten")
        problems.extend(_reaches(chain, reach, "the anchor", anchor.chain_seq, anchor.head))
    if expect_seq is not None and chain.ok and reach < expect_seq:
        problems.append(f"audit chain TRUNCATED: it ends at position {reach}, but at least {expect_seq} were "
                        f"expected (--expect-seq): the newest {expect_seq - reach} sealed events were removed")
    return CheckpointVerdict(tuple(problems), tuple(warnings), previous, len(checkpoints), signed)


def _reaches(chain: Verdict, reach: int, what: str, seq: int, head: bytes) -> list[str]:
    if seq > reach:
        if not chain.ok:
            return []  # the chain's own break explains it
        return [f"audit chain TRUNCATED: {what} records chain position {seq} (head {head.hex()[:16]}…), but the "
                f"chain ends at position {reach}: the newest {seq - reach} sealed event(s) were removed"]
    if chain.heads.get(seq) != head:
        return [f"audit chain REWRITTEN: at position {seq} it no longer ends in the head {what} records: events up "
                f"to there were removed and replaced, or rewritten"]
    return []


def _moment(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- need-to-know ------------------------------------------------------------------------------------


def route_of(action: str) -> str | None:
    """``PUT /api/v1/reserve-targets/{code}`` → ``/api/v1/reserve-targets/{code}`` (None for CLI actions)."""
    _, _, route = action.partition(" ")
    return route if route.startswith("/") else None


def visible_event(event: dict[str, Any], *, reader_cleared: bool) -> dict[str, Any]:
    """An event as a reader may see it.

    A restricted event loses ``target`` (the concrete path, which can carry a military code),
    ``details`` and ``client`` for a reader without military clearance; an event that did not
    succeed (a failed or refused request may carry a concrete path someone guessed) shows the route
    template as its target. Both lose their ``content_hash`` and ``chain_hash``: a hash over content
    whose other fields are shown would confirm a guess of the hidden ones. Cleared readers see all.
    """
    shown = dict(event)
    if reader_cleared:
        return shown
    if event.get("restricted"):
        shown.update(target=None, details=None, client=None, content_hash=None, chain_hash=None)
    elif event.get("outcome") != "ok":
        shown.update(target=route_of(event.get("action") or ""), content_hash=None, chain_hash=None)
    return shown

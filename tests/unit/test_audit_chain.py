"""The audit chain's rules, without a database."""

from datetime import datetime, timezone

from stockpile.domain.audit import GENESIS, SealedEvent, chain_hash, content_hash, verify_chain


def _chain(n: int) -> list[SealedEvent]:
    events, prev = [], GENESIS
    for i in range(1, n + 1):
        content = {"at": datetime(2026, 1, 1, tzinfo=timezone.utc), "actor": f"a{i}", "action": "PUT /x", "details": {"n": i}}
        digest = content_hash(content)
        events.append(SealedEvent(i * 10, i, content, digest, prev, chain_hash(prev, digest)))
        prev = events[-1].chain_hash
    return events


def test_an_untouched_chain_verifies_and_reports_its_head():
    events = _chain(4)
    verdict = verify_chain(events)
    assert verdict.ok and verdict.checked == 4 and verdict.head == events[-1].chain_hash


def test_content_hash_does_not_depend_on_key_order():
    assert content_hash({"a": 1, "b": [1, 2]}) == content_hash({"b": [1, 2], "a": 1})


def test_an_altered_event_is_named():
    events = _chain(4)
    altered = events[2]
    events[2] = SealedEvent(altered.id, altered.chain_seq, {**altered.content, "actor": "mallory"},
                            altered.content_hash, altered.prev_hash, altered.chain_hash)
    verdict = verify_chain(events)
    assert not verdict.ok and verdict.first_bad_event == 30 and "altered" in verdict.problem


def test_a_removed_event_breaks_the_chain_at_its_successor():
    events = _chain(4)
    del events[1]
    verdict = verify_chain(events)
    assert not verdict.ok and verdict.first_bad_event == 30 and verdict.checked == 1


def test_a_rehashed_forgery_without_the_real_predecessor_is_caught():
    events = _chain(3)
    forged_content = {**events[1].content, "actor": "mallory"}
    digest = content_hash(forged_content)
    events[1] = SealedEvent(20, 2, forged_content, digest, events[1].prev_hash, chain_hash(events[1].prev_hash, digest))
    verdict = verify_chain(events)
    assert not verdict.ok and verdict.first_bad_event == 30 and "cut" in verdict.problem

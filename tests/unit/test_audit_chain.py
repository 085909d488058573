"""The audit chain's rules, without a database: the hash chain, its signed checkpoints and what
readers without clearance may see of an event."""

from datetime import datetime, timedelta, timezone

import pytest

from stockpile.domain.audit import (
    GENESIS, NO_KEY_WARNING, Anchor, Checkpoint, SealedEvent, chain_hash, content_hash, is_restricted, link_hash,
    sign_checkpoint, verify_chain, verify_checkpoints, visible_event,
)

KEY = b"k" * 32
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _chain(n: int, *, version: int = 1, restricted: frozenset[int] = frozenset()) -> list[SealedEvent]:
    events, prev = [], GENESIS
    for i in range(1, n + 1):
        content = {"at": T0, "actor": f"a{i}", "action": "PUT /x", "details": {"n": i}}
        digest = content_hash(content)
        flag = i in restricted
        events.append(SealedEvent(i * 10, i, content, digest, prev, link_hash(prev, digest, version, flag), flag, version))
        prev = events[-1].chain_hash
    return events


def _checkpoints(events: list[SealedEvent], at_seqs: list[int], key: bytes | None = KEY) -> list[Checkpoint]:
    marks = []
    for counter, seq in enumerate(at_seqs, start=1):
        head, at = events[seq - 1].chain_hash, T0 + timedelta(seconds=5 * counter)
        marks.append(Checkpoint(counter, seq, head, at, sign_checkpoint(key, counter, seq, head, at) if key else None))
    return marks


def _judge(events, marks, *, key=KEY, anchor=None, expect_seq=None):
    wanted = {cp.chain_seq for cp in marks} | ({anchor.chain_seq} if anchor else set())
    chain = verify_chain(events, wanted)
    return chain, verify_checkpoints(marks, chain, key=key, anchor=anchor, expect_seq=expect_seq)


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


def test_flipping_a_sealed_events_restricted_flag_breaks_the_chain_from_version_2_on():
    events = _chain(3, version=2, restricted=frozenset({2}))
    assert verify_chain(events).ok
    e = events[1]
    events[1] = SealedEvent(e.id, e.chain_seq, e.content, e.content_hash, e.prev_hash, e.chain_hash, False, 2)
    verdict = verify_chain(events)
    assert not verdict.ok and verdict.first_bad_event == 20 and "restricted flag" in verdict.problem


def test_downgrading_an_event_to_chain_version_1_is_caught():
    events = _chain(2, version=2)
    e = events[0]
    events[0] = SealedEvent(e.id, e.chain_seq, e.content, e.content_hash, e.prev_hash, e.chain_hash, False, 1)
    assert verify_chain(events).first_bad_event == 10


def test_signed_checkpoints_the_chain_reaches_verify():
    events = _chain(6)
    _, verdict = _judge(events, _checkpoints(events, [2, 5, 6]))
    assert verdict.ok and verdict.signed == 3 and verdict.warnings == ()
    assert verdict.latest.counter == 3 and verdict.latest.head == events[-1].chain_hash


def test_removing_the_newest_events_is_named_by_a_surviving_checkpoint():
    events = _chain(6)
    marks = _checkpoints(events, [2, 6])
    chain, verdict = _judge(events[:4], marks)
    assert chain.ok  # the shortened chain is consistent in itself
    assert not verdict.ok
    assert verdict.problems == ("audit chain TRUNCATED: checkpoint #2 (2026-01-01T00:00:10Z) records chain position 6 "
                                f"(head {events[5].chain_hash.hex()[:16]}…), but the chain ends at position 4: the "
                                "newest 2 sealed event(s) were removed",)


def test_a_removed_checkpoint_leaves_a_gap_in_the_counter():
    events = _chain(6)
    marks = _checkpoints(events, [2, 4, 6])
    _, verdict = _judge(events, [marks[0], marks[2]])
    assert not verdict.ok and verdict.problems == ("checkpoints MISSING: #2 (before #3): checkpoints were removed",)


def test_a_checkpoint_rewritten_without_the_key_is_forged():
    events = _chain(6)
    marks = _checkpoints(events, [2, 6])
    forged = Checkpoint(2, 4, events[3].chain_hash, marks[1].at, sign_checkpoint(b"x" * 32, 2, 4, events[3].chain_hash,
                                                                                  marks[1].at))
    _, verdict = _judge(events[:4], [marks[0], forged])
    assert not verdict.ok and len(verdict.problems) == 1 and "checkpoint #2" in verdict.problems[0]
    assert "FORGED" in verdict.problems[0]


def test_a_verifier_with_another_key_trusts_no_checkpoint():
    events = _chain(3)
    _, verdict = _judge(events, _checkpoints(events, [1, 3]), key=b"another key, not the signer's one!")
    assert [p.split(" (")[0] for p in verdict.problems] == ["checkpoint #1", "checkpoint #2"]


def test_events_replaced_after_a_checkpoint_do_not_reach_its_head():
    events = _chain(4)
    marks = _checkpoints(events, [4])
    rewritten = _chain(4)  # position 4 will hold another event
    other = {**rewritten[3].content, "actor": "mallory"}
    digest = content_hash(other)
    rewritten[3] = SealedEvent(40, 4, other, digest, rewritten[2].chain_hash, chain_hash(rewritten[2].chain_hash, digest))
    chain, verdict = _judge(rewritten, marks)
    assert chain.ok and not verdict.ok and "REWRITTEN: at position 4" in verdict.problems[0]


def test_cutting_events_and_their_checkpoints_is_seen_only_against_an_anchor():
    events = _chain(6)
    marks = _checkpoints(events, [2, 4, 6])
    anchor = Anchor.of(marks[2])
    _, unanchored = _judge(events[:4], marks[:2])
    assert unanchored.ok  # consistent: nothing in the database contradicts it
    _, anchored = _judge(events[:4], marks[:2], anchor=anchor)
    assert not anchored.ok
    assert anchored.problems[0].startswith("the anchored checkpoint #3 (chain position 6) is MISSING")
    assert anchored.problems[1].startswith("audit chain TRUNCATED: the anchor records chain position 6")
    _, expected = _judge(events[:4], marks[:2], expect_seq=6)
    assert expected.problems == ("audit chain TRUNCATED: it ends at position 4, but at least 6 were expected "
                                 "(--expect-seq): the newest 2 sealed events were removed",)


def test_an_anchor_the_chain_has_moved_past_still_holds():
    events = _chain(6)
    marks = _checkpoints(events, [2, 4, 6])
    _, verdict = _judge(events, marks, anchor=Anchor.of(marks[1]), expect_seq=6)
    assert verdict.ok


def test_anchor_round_trips_through_json_and_refuses_anything_else():
    anchor = Anchor(3, 17, bytes(range(32)), b"\x01" * 32)
    assert Anchor.from_json(anchor.as_json()) == anchor
    assert Anchor.from_json(Anchor(1, 1, GENESIS).as_json()).mac is None
    for bad in ({}, {"counter": "3", "chain_seq": 1, "head": "00"}, {"counter": 1, "chain_seq": 1, "head": "zz"}, []):
        with pytest.raises(ValueError):
            Anchor.from_json(bad)


def test_without_a_key_checkpoints_pass_but_the_verifier_is_warned():
    events = _chain(3)
    _, verdict = _judge(events, _checkpoints(events, [3], key=None), key=None)
    assert verdict.ok and verdict.warnings == (NO_KEY_WARNING,)
    assert "NOT checked" in NO_KEY_WARNING and "--anchor" in NO_KEY_WARNING


def test_unsigned_checkpoints_after_signed_ones_are_reported():
    events = _chain(4)
    signed = _checkpoints(events, [2])
    unsigned = Checkpoint(2, 4, events[3].chain_hash, T0 + timedelta(minutes=1), None)
    _, verdict = _judge(events, signed + [unsigned])
    assert verdict.ok and verdict.signed == 1
    assert verdict.warnings == ("1 checkpoint(s) after signed ones are unsigned: a sealer (API, worker or verify) runs "
                                "without STOCKPILE_AUDIT_KEY; they prove nothing",)


def test_events_of_cleared_actors_or_flagged_by_their_handler_are_restricted():
    assert is_restricted(flagged=False, actor_clearance="military")
    assert is_restricted(flagged=True, actor_clearance=None)
    assert not is_restricted(flagged=False, actor_clearance=None)


EVENT = {"id": 7, "actor": "cmdr", "roles": ["commander"], "action": "PUT /api/v1/reserve-targets/{code}",
         "target": "/api/v1/reserve-targets/TGT-NAT-JET-MILITARY", "outcome": "ok", "status": 200,
         "client": "10.1.2.3", "request_id": "r1", "details": {"quantity": "1049914"}, "restricted": True,
         "at": "2026-01-01T00:00:00Z", "content_hash": "ab", "chain_hash": "cd", "chain_seq": 3}


def test_an_uncleared_reader_sees_who_did_what_to_a_restricted_event_but_not_on_what():
    shown = visible_event(EVENT, reader_cleared=False)
    assert {k: shown[k] for k in ("actor", "roles", "action", "outcome", "status", "at", "request_id", "restricted")} \
        == {k: EVENT[k] for k in ("actor", "roles", "action", "outcome", "status", "at", "request_id", "restricted")}
    assert shown["target"] is shown["details"] is shown["client"] is None
    assert shown["content_hash"] is shown["chain_hash"] is None  # no hash to confirm a guessed target against
    assert "MILITARY" not in repr(shown) and "1049914" not in repr(shown)


def test_a_cleared_reader_sees_a_restricted_event_whole():
    assert visible_event(EVENT, reader_cleared=True) == EVENT


def test_an_unsuccessful_event_shows_its_route_template_not_the_path_tried():
    refused = {**EVENT, "restricted": False, "outcome": "failed", "status": 404, "details": {"type": "not-found"}}
    shown = visible_event(refused, reader_cleared=False)
    assert shown["target"] == "/api/v1/reserve-targets/{code}" and shown["details"] == {"type": "not-found"}
    assert shown["content_hash"] is None


def test_an_unrestricted_success_is_shown_whole_to_everyone():
    plain = {**EVENT, "restricted": False, "target": "/api/v1/regions/NORTH"}
    assert visible_event(plain, reader_cleared=False) == plain

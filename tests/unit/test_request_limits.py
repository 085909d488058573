"""The sliding-window arithmetic of the request limits: what fits, and how long to wait."""

from __future__ import annotations

from stockpile.domain.limits import Limit, wait_before_next

TEN_PER_TEN_SECONDS = Limit(10, 10.0)


def test_a_rate_and_burst_is_the_burst_per_burst_over_rate_seconds():
    assert Limit.of_rate(200, 400) == Limit(400, 2.0)
    assert Limit.of_rate(0, 400) is None
    assert Limit.per_minute(30) == Limit(30, 60.0)


def test_requests_fit_until_the_window_holds_the_limit():
    assert wait_before_next(TEN_PER_TEN_SECONDS, previous=0, current=9, fraction=0.5) is None
    assert wait_before_next(TEN_PER_TEN_SECONDS, previous=0, current=10, fraction=0.5) is not None


def test_the_previous_window_counts_for_the_share_still_inside_the_sliding_window():
    # 10 last window, a quarter into this one: 7.5 of them still count, so 2 more fit, not 3.
    assert wait_before_next(TEN_PER_TEN_SECONDS, previous=10, current=1, fraction=0.25) is None
    assert wait_before_next(TEN_PER_TEN_SECONDS, previous=10, current=2, fraction=0.25) is not None


def test_the_wait_is_until_enough_of_the_previous_window_has_slid_out():
    # previous 10, current 2: one more fits once 10 × (1 − f) + 3 ≤ 10, at f = 0.3 — 0.5 s after 0.25.
    assert abs(wait_before_next(TEN_PER_TEN_SECONDS, previous=10, current=2, fraction=0.25) - 0.5) < 1e-9


def test_a_full_window_waits_into_the_next_one():
    # current full at f = 0.5: the next window starts in 5 s, where this one counts as previous
    # and one more fits once 10 × (1 − f) ≤ 9, at f = 0.1: 5 + 1 s.
    assert abs(wait_before_next(TEN_PER_TEN_SECONDS, previous=0, current=10, fraction=0.5) - 6.0) < 1e-9


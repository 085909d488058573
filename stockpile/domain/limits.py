"""Request limits as arithmetic: a sliding window estimated from two fixed windows.

A limit admits at most ``limit`` requests in any ``window`` seconds. Time is cut into fixed windows
(``floor(epoch / window)``) so that every API process counts into the same buckets, and the count
of the sliding window ending now is estimated as the previous window's count weighted by the share
of it still inside the sliding window, plus the current window's count (the estimate Cloudflare's
limiter uses). A rate ``r`` a second with a burst ``b`` is the limit ``b`` per ``b / r`` seconds:
``b`` requests may come at once, and ``r`` a second is what is left on average.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    """``limit`` requests in any ``window`` seconds."""

    limit: int
    window: float

    @classmethod
    def of_rate(cls, per_second: float, burst: int) -> Limit | None:
        """The limit of a rate and a burst; None when the rate is 0 (no limit)."""
        if per_second <= 0:
            return None
        burst = max(int(burst), 1)
        return cls(burst, burst / per_second)

    @classmethod
    def per_minute(cls, count: int) -> Limit | None:
        return cls(count, 60.0) if count > 0 else None

    def position(self, now: float) -> tuple[int, float]:
        """The fixed window ``now`` (epoch seconds) falls in, and how far into it (0 ≤ fraction < 1)."""
        exact = now / self.window
        window_id = math.floor(exact)
        return window_id, exact - window_id


def wait_before_next(limit: Limit, previous: int, current: int, fraction: float) -> float | None:
    """None when one more request fits, else the seconds until it would.

    ``previous`` and ``current`` are the counts of the fixed window before the present one and of
    the present one; ``fraction`` is how far into the present window we are.
    """
    if previous * (1 - fraction) + current + 1 <= limit.limit:
        return None
    if current + 1 <= limit.limit:
        # It fits later in this window, once enough of the previous window has slid out.
        fits_at = 1 - (limit.limit - current - 1) / previous
        return max(fits_at - fraction, 0.0) * limit.window
    # Not in this window: in the next one the present window is the previous.
    fits_at = max(0.0, 1 - (limit.limit - 1) / current)
    return (1 - fraction + fits_at) * limit.window


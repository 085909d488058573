"""Every Prometheus metric the service defines, in one place.

HTTP request metrics come from Litestar's Prometheus middleware (paths grouped by route template);
the business metrics below are aggregates with bounded label sets.
"""

from prometheus_client import Counter

MOVEMENTS_POSTED = Counter(
    "stockpile_movements_posted_total",
    "Movements appended to the ledger by this process, by kind.",
    ["kind"],
)
IDEMPOTENT_REPLAYS = Counter(
    "stockpile_idempotent_replays_total",
    "Ledger POSTs answered from a stored response because their Idempotency-Key was seen before.",
)

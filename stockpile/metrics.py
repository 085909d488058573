"""Every Prometheus metric the service defines, in one place.

HTTP request metrics come from Litestar's Prometheus middleware (paths grouped by route template);
the business metrics below are aggregates with bounded label sets.
"""

from prometheus_client import Counter, Gauge, Histogram

MOVEMENTS_POSTED = Counter(
    "stockpile_movements_posted_total",
    "Movements appended to the ledger by this process, by kind.",
    ["kind"],
)
IDEMPOTENT_REPLAYS = Counter(
    "stockpile_idempotent_replays_total",
    "Ledger POSTs answered from a stored response because their Idempotency-Key was seen before.",
)

# The worker's own metrics (served by the worker on STOCKPILE_WORKER_METRICS_PORT).
JOB_RUNS = Counter("stockpile_job_runs_total", "Job slots run by this worker, by job and outcome.", ["job", "outcome"])
JOB_DURATION = Histogram("stockpile_job_duration_seconds", "Wall time of one job run.", ["job"])
JOB_LAST_SUCCESS = Gauge("stockpile_job_last_success_timestamp_seconds",
                         "Unix time of the job's last successful run in this worker.", ["job"])
LEDGER_MISMATCHED_ACCOUNTS = Gauge("stockpile_ledger_mismatched_accounts",
                                   "Accounts whose stored balance differs from the sum of their postings (must be 0).")

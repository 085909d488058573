"""Every Prometheus metric the service defines, in one place.

HTTP request metrics are counted by the API's request log (``stockpile.api.request_log``), their
paths grouped by route template; the business metrics below are aggregates with bounded label sets.

No series carries a label named ``job`` or ``instance``: Prometheus owns those (it would rename
ours to ``exported_job``). A job of the worker is ``job_name``.

Several API processes (``STOCKPILE_WORKERS`` > 1) count in Prometheus's multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``, set by ``stockpile serve``): a scrape of any process sums every
process's counters. The business snapshot is not a process's count: each API process serves the
same copy once, so dashboards and rules take ``max by (<its labels>)`` across replicas.
"""

import os
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cache

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess

MOVEMENTS_POSTED = Counter(
    "stockpile_movements_posted_total",
    "Movements appended to the ledger by this process, by kind.",
    ["kind"],
)
IDEMPOTENT_REPLAYS = Counter(
    "stockpile_idempotent_replays_total",
    "Ledger POSTs answered from a stored response because their Idempotency-Key was seen before.",
)
READINGS_INGESTED = Counter(
    "stockpile_sensor_readings_ingested_total",
    "New sensor readings stored by this process, by warehouse kind and storage class (never per sensor).",
    ["warehouse_kind", "storage_class"],
)

# The worker's own metrics (served by the worker on STOCKPILE_WORKER_METRICS_PORT).
JOB_RUNS = Counter("stockpile_job_runs_total", "Job slots run by this worker, by job and outcome.",
                   ["job_name", "outcome"])
JOB_DURATION = Histogram("stockpile_job_duration_seconds", "Wall time of one job run.", ["job_name"])
JOB_LAST_SUCCESS = Gauge("stockpile_worker_job_last_success_timestamp_seconds",
                         "Unix time of the job's last successful run in this worker.", ["job_name"])


@cache
def ledger_mismatched_accounts() -> Gauge:
    """Made where the ledger check runs (the worker, ``job run``): an API process, which never
    runs it, does not export a 0 of its own."""
    return Gauge("stockpile_ledger_mismatched_accounts",
                 "Accounts whose stored balance differs from the sum of their postings (must be 0).")


@dataclass(frozen=True, slots=True)
class HttpMetrics:
    """The request metrics of an API process, labelled (``HTTP_LABELS``) method, route template,
    status code and app name, as Prometheus middleware commonly names them. Made where requests are
    served (see ``http_metrics``)."""

    requests: Counter
    errors: Counter
    duration: Histogram
    in_progress: Gauge


HTTP_LABELS = ("method", "path", "status_code", "app_name")


@cache
def http_metrics() -> HttpMetrics:
    """Made by the API's first request: a worker, which serves none, does not export them."""
    return HttpMetrics(
        requests=Counter("stockpile_requests_total", "Total requests", HTTP_LABELS),
        errors=Counter("stockpile_requests_error_total", "Total errors in requests", HTTP_LABELS),
        duration=Histogram("stockpile_request_duration_seconds", "Request duration, in seconds", HTTP_LABELS),
        in_progress=Gauge("stockpile_requests_in_progress", "Total requests currently in progress", HTTP_LABELS,
                          multiprocess_mode="livesum"),
    )


# Database connections of each process (API and worker); summed over the processes of one instance.
DB_CONNECTIONS_IN_USE = Gauge("stockpile_db_connections_in_use",
                              "Database connections held by a transaction now.", multiprocess_mode="livesum")
DB_CONNECTIONS_MAX = Gauge("stockpile_db_connections_max",
                           "Database connections the process's pool may open.", multiprocess_mode="livesum")


# Business gauges: computed by the worker's refresh-metrics job into a snapshot row; each API process
# keeps a copy in memory and serves it at scrape time without touching the database.
SNAPSHOT_METRICS = {
    "stockpile_stock_quantity": "Stock on hand, by category, province (top-level region), owner sector and unit.",
    "stockpile_expiring_quantity": "Stock on hand expiring within 30 or 90 days, nationally by category, sector, unit.",
    "stockpile_coverage_ratio": "Usable stock divided by the required quantity, per reserve target (worst targets first).",
    "stockpile_coverage_usable_quantity": "Usable stock per reserve target, in the material's unit.",
    "stockpile_coverage_required_quantity": "Required quantity per reserve target, in the material's unit.",
    "stockpile_targets": "Reserve targets by coverage state.",
    "stockpile_alerts_open": "Unresolved alerts by kind and severity.",
    "stockpile_ledger_movements": "Movements in the ledger by kind (the ledger is append-only: a counter).",
    "stockpile_job_last_success_timestamp_seconds": "Unix time of each job's last successful run (any worker).",
    "stockpile_job_interval_seconds": "How often the worker runs each job (its slot length).",
    "stockpile_webhook_deliveries_pending": "Webhook deliveries not yet made, by the endpoints' clearance.",
    "stockpile_webhook_oldest_pending_seconds": "Age of the oldest webhook delivery not yet made when the "
                                                "snapshot was taken (0: none), by the endpoints' clearance.",
    "stockpile_rotation_orders": "Rotation orders by state.",
    "stockpile_rotation_overdue_quantity": "Quantity overdue rotation orders have not yet replaced, by category and unit.",
    "stockpile_allocation_requests": "Allocation requests by state and priority.",
    "stockpile_allocation_plans": "Allocation plans by state.",
    "stockpile_sensors": "Sensors by warehouse kind, storage class and state (ok, excursion, variance, offline).",
    "stockpile_sensor_excursions_open": "Open cold-chain excursions by warehouse kind and storage class.",
}
SNAPSHOT_COUNTERS = {"stockpile_ledger_movements"}  # exposed as ``…_total``


# Whether the scrape being rendered is by a token cleared for military stock (set by /metrics for
# the one render it does; a collector cannot see the request).
SCRAPE_CLEARED: ContextVar[bool] = ContextVar("scrape_cleared", default=False)


class SnapshotCollector:
    """Serves the latest snapshot held in memory (see ``stockpile.api.app``), each sample to its
    audience: series that count military stock only to a scrape cleared for it, their uncleared
    variants only to the others (see ``stockpile.store.snapshots.aggregate``)."""

    def __init__(self) -> None:
        self.taken_at: float | None = None
        self.samples: list[dict] = []

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        hidden = "uncleared" if SCRAPE_CLEARED.get() else "cleared"
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
        for sample in self.samples:
            name = sample["metric"]
            if name not in SNAPSHOT_METRICS or sample.get("audience", "cleared") == hidden:
                continue
            labels = sample["labels"]
            family = families.get(name)
            if family is None:
                kind = CounterMetricFamily if name in SNAPSHOT_COUNTERS else GaugeMetricFamily
                family = families[name] = kind(name, SNAPSHOT_METRICS[name], labels=sorted(labels))
            family.add_metric([labels[k] for k in sorted(labels)], sample["value"])
        yield from families.values()
        age = GaugeMetricFamily("stockpile_metrics_snapshot_timestamp_seconds",
                                "Unix time the business metrics snapshot was taken (0: none yet).")
        age.add_metric([], self.taken_at or 0.0)
        yield age


SNAPSHOT = SnapshotCollector()
_SNAPSHOT_REGISTRY = CollectorRegistry()
_SNAPSHOT_REGISTRY.register(SNAPSHOT)  # the API's alone: a worker never serves (an empty) snapshot


def multiprocess_dir() -> str | None:
    """Where the processes of one API instance keep their counts (multiprocess mode), if set."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def api_exposition() -> bytes:
    """The text an API scrape gets: this instance's counts (every process's in multiprocess mode),
    then the business snapshot, each sample to its audience (``SCRAPE_CLEARED``)."""
    registry = REGISTRY
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry) + generate_latest(_SNAPSHOT_REGISTRY)


def process_exited(pid: int) -> None:
    """Drop an exited API process's live gauges (its counters stay counted)."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid)

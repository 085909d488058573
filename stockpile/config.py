"""One settings object, read once from the environment.

Every setting has a default that works on a laptop: no ``DATABASE_URL`` means an embedded
PostgreSQL in ``STOCKPILE_DATA_DIR``.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cached_property, lru_cache
from pathlib import Path
from urllib.parse import urlsplit


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name} must be true or false, got {raw!r}")


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None


def _fraction(name: str, default: Decimal) -> Decimal:
    """A share, as a fraction (``0.005``) or a percentage (``0.5%``), between 0 and 1."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = Decimal(raw[:-1].strip()) / 100 if raw.endswith("%") else Decimal(raw)
    except InvalidOperation:
        raise ValueError(f"{name} must be a fraction (0.005) or a percentage (0.5%), got {raw!r}") from None
    if not 0 <= value < 1:
        raise ValueError(f"{name} must be at least 0 and below 100%, got {raw!r}")
    return value
def _secret(name: str) -> str:
    """A secret setting: ``NAME``, or the content of the file ``NAME_FILE`` names (a container
    secret), stripped of surrounding whitespace. Both set is refused: which one wins is a guess."""
    value, path = os.environ.get(name, ""), os.environ.get(f"{name}_FILE", "")
    if value and path:
        raise ValueError(f"set {name} or {name}_FILE, not both")
    if not path:
        return value
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ValueError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None


def _audit_key() -> str:
    """The audit checkpoints' HMAC key: unset, or at least 32 characters (a short key is guessable)."""
    raw = _secret("STOCKPILE_AUDIT_KEY")
    if raw and len(raw) < 32:
        raise ValueError("STOCKPILE_AUDIT_KEY must be at least 32 characters "
                         "(python -c 'import secrets; print(secrets.token_hex(32))')")
    return raw


WEBHOOK_CLEARANCES = {"uncleared": False, "military": True}
WEBHOOK_SECRET_MIN_LENGTH = 32


@dataclass(frozen=True)
class WebhookEndpoint:
    """A receiver of alert notifications and what it may be told: an endpoint without military
    clearance never receives a message about military stock (see ``stockpile.store.outbox``)."""

    url: str
    cleared: bool = False


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback  # 127.0.0.0/8 and ::1
    except ValueError:
        return False


def webhook_endpoint(entry: str) -> WebhookEndpoint:
    """One ``STOCKPILE_WEBHOOK_URLS`` entry, ``URL`` or ``URL|CLEARANCE``. Plain http is refused
    except to a loopback host: alerts and their signatures would cross the network in clear."""
    url, _, clearance = entry.strip().partition("|")
    url, clearance = url.strip(), clearance.strip().lower() or "uncleared"
    if clearance not in WEBHOOK_CLEARANCES:
        raise ValueError(f"STOCKPILE_WEBHOOK_URLS: {entry!r} declares clearance {clearance!r}; "
                         f"use {' or '.join(WEBHOOK_CLEARANCES)} (URL|military)")
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname
        parts.port  # noqa: B018 - a malformed port raises here
    except ValueError:
        scheme, host = "", None
    if scheme not in ("https", "http") or not host:
        raise ValueError(f"STOCKPILE_WEBHOOK_URLS: {url!r} is not an absolute https URL")
    if scheme == "http" and not _loopback(host):
        raise ValueError(f"STOCKPILE_WEBHOOK_URLS: {url!r} must use https "
                         "(plain http is allowed only to a loopback host: 127.0.0.0/8, ::1, localhost)")
    return WebhookEndpoint(url, WEBHOOK_CLEARANCES[clearance])


@dataclass(frozen=True)
class Settings:
    """The service's configuration (see the README's configuration table)."""

    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    demo: bool = True
    migrate_on_start: bool = True
    data_dir: Path = field(default_factory=lambda: Path(".stockpile"))
    metrics_public: bool = False
    log_level: str = "info"
    db_pool_size: int = 20
    max_body_bytes: int = 2_000_000
    max_batch: int = 1000
    token_cache_seconds: int = 5
    rate_limit_per_second: float = 200.0
    rate_limit_burst: int = 400
    rate_limit_sync_ms: int = 100
    address_rate_limit_per_second: float = 1000.0
    address_rate_limit_burst: int = 2000
    address_failure_limit_per_minute: int = 30
    trusted_proxies: tuple[str, ...] = ()
    token_cache_size: int = 10_000
    job_seal_audit_seconds: int = 5
    audit_key: str = field(default="", repr=False)
    job_check_ledger_seconds: int = 300
    job_evaluate_alerts_seconds: int = 60
    expiring_within_days: int = 30
    job_deliver_notifications_seconds: int = 10
    job_refresh_metrics_seconds: int = 30
    job_plan_rotation_seconds: int = 86400
    metrics_reload_seconds: int = 5
    webhook_urls: tuple[str, ...] = ()  # entries as configured: URL or URL|CLEARANCE
    webhook_secret: str = field(default="", repr=False)
    webhook_timeout_seconds: float = 5.0
    worker_metrics_port: int = 9101
    allocation_k: int = 50
    allocation_max_requests: int = 5000
    allocation_max_arcs: int = 500_000
    allocation_time_limit_seconds: int = 10
    allocation_solvers: int = 1
    reservation_hours: int = 48
    job_expire_reservations_seconds: int = 300
    gauge_tolerance: Decimal = Decimal("0.005")  # a fraction of the book
    sensor_silence_minutes: int = 30
    readings_retention_days: int = 90
    job_evaluate_sensors_seconds: int = 60
    job_maintain_readings_seconds: int = 3600
    console_secret: str = field(default="", repr=False)  # seals console session cookies; empty: one per process
    console_session_minutes: int = 480

    @property
    def audit_key_bytes(self) -> bytes | None:
        """The key that signs audit checkpoints; None: checkpoints are written unsigned."""
        return self.audit_key.encode() if self.audit_key else None

    def __post_init__(self) -> None:
        self._check_webhooks()

    def _check_webhooks(self) -> None:
        """Refuse a webhook configuration that would send alerts unsigned, weakly signed, in clear
        or twice to one receiver — at start, before anything is sent."""
        if not self.webhook_urls:
            return
        urls = [endpoint.url for endpoint in self.webhook_endpoints]
        if len(set(urls)) != len(urls):
            raise ValueError("STOCKPILE_WEBHOOK_URLS lists a URL twice")
        if len(self.webhook_secret) < WEBHOOK_SECRET_MIN_LENGTH:
            raise ValueError(
                f"STOCKPILE_WEBHOOK_SECRET must be at least {WEBHOOK_SECRET_MIN_LENGTH} characters when "
                "STOCKPILE_WEBHOOK_URLS is set: every delivery is signed with it "
                "(python -c 'import secrets; print(secrets.token_hex(32))')")

    @cached_property
    def webhook_endpoints(self) -> tuple[WebhookEndpoint, ...]:
        """The configured webhook receivers with their clearance (validated)."""
        return tuple(webhook_endpoint(entry) for entry in self.webhook_urls)

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=_secret("DATABASE_URL") or None,
            host=os.environ.get("STOCKPILE_HOST", "127.0.0.1"),
            port=_int("STOCKPILE_PORT", 8000),
            workers=_int("STOCKPILE_WORKERS", 1),
            demo=_bool("STOCKPILE_DEMO", True),
            migrate_on_start=_bool("STOCKPILE_MIGRATE_ON_START", True),
            data_dir=Path(os.environ.get("STOCKPILE_DATA_DIR", ".stockpile")),
            metrics_public=_bool("STOCKPILE_METRICS_PUBLIC", False),
            log_level=os.environ.get("STOCKPILE_LOG_LEVEL", "info").lower(),
            db_pool_size=_int("STOCKPILE_DB_POOL_SIZE", 20),
            max_body_bytes=_int("STOCKPILE_MAX_BODY_BYTES", 2_000_000),
            max_batch=_int("STOCKPILE_MAX_BATCH", 1000),
            token_cache_seconds=_int("STOCKPILE_TOKEN_CACHE_SECONDS", 5),
            rate_limit_per_second=float(_int("STOCKPILE_RATE_LIMIT_PER_SECOND", 200)),
            rate_limit_burst=_int("STOCKPILE_RATE_LIMIT_BURST", 400),
            rate_limit_sync_ms=_int("STOCKPILE_RATE_LIMIT_SYNC_MS", 100),
            address_rate_limit_per_second=float(_int("STOCKPILE_ADDRESS_RATE_LIMIT_PER_SECOND", 1000)),
            address_rate_limit_burst=_int("STOCKPILE_ADDRESS_RATE_LIMIT_BURST", 2000),
            address_failure_limit_per_minute=_int("STOCKPILE_ADDRESS_FAILURE_LIMIT_PER_MINUTE", 30),
            trusted_proxies=tuple(p.strip() for p in os.environ.get("STOCKPILE_TRUSTED_PROXIES", "").split(",") if p.strip()),
            token_cache_size=_int("STOCKPILE_TOKEN_CACHE_SIZE", 10_000),
            job_seal_audit_seconds=_int("STOCKPILE_JOB_SEAL_AUDIT_SECONDS", 5),
            audit_key=_audit_key(),
            job_check_ledger_seconds=_int("STOCKPILE_JOB_CHECK_LEDGER_SECONDS", 300),
            job_evaluate_alerts_seconds=_int("STOCKPILE_JOB_EVALUATE_ALERTS_SECONDS", 60),
            expiring_within_days=_int("STOCKPILE_EXPIRING_WITHIN_DAYS", 30),
            job_deliver_notifications_seconds=_int("STOCKPILE_JOB_DELIVER_NOTIFICATIONS_SECONDS", 10),
            job_refresh_metrics_seconds=_int("STOCKPILE_JOB_REFRESH_METRICS_SECONDS", 30),
            job_plan_rotation_seconds=_int("STOCKPILE_JOB_PLAN_ROTATION_SECONDS", 86400),
            metrics_reload_seconds=_int("STOCKPILE_METRICS_RELOAD_SECONDS", 5),
            webhook_urls=tuple(u.strip() for u in os.environ.get("STOCKPILE_WEBHOOK_URLS", "").split(",") if u.strip()),
            webhook_secret=_secret("STOCKPILE_WEBHOOK_SECRET"),
            webhook_timeout_seconds=float(os.environ.get("STOCKPILE_WEBHOOK_TIMEOUT_SECONDS", "5")),
            worker_metrics_port=_int("STOCKPILE_WORKER_METRICS_PORT", 9101),
            allocation_k=_int("STOCKPILE_ALLOCATION_K", 50),
            allocation_max_requests=_int("STOCKPILE_ALLOCATION_MAX_REQUESTS", 5000),
            allocation_max_arcs=_int("STOCKPILE_ALLOCATION_MAX_ARCS", 500_000),
            allocation_time_limit_seconds=_int("STOCKPILE_ALLOCATION_TIME_LIMIT_SECONDS", 10),
            allocation_solvers=_int("STOCKPILE_ALLOCATION_SOLVERS", 1),
            reservation_hours=_int("STOCKPILE_RESERVATION_HOURS", 48),
            job_expire_reservations_seconds=_int("STOCKPILE_JOB_EXPIRE_RESERVATIONS_SECONDS", 300),
            gauge_tolerance=_fraction("STOCKPILE_GAUGE_TOLERANCE", Decimal("0.005")),
            sensor_silence_minutes=_int("STOCKPILE_SENSOR_SILENCE_MINUTES", 30),
            readings_retention_days=_int("STOCKPILE_READINGS_RETENTION_DAYS", 90),
            job_evaluate_sensors_seconds=_int("STOCKPILE_JOB_EVALUATE_SENSORS_SECONDS", 60),
            job_maintain_readings_seconds=_int("STOCKPILE_JOB_MAINTAIN_READINGS_SECONDS", 3600),
            console_secret=os.environ.get("STOCKPILE_CONSOLE_SECRET", ""),
            console_session_minutes=_int("STOCKPILE_CONSOLE_SESSION_MINUTES", 480),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use."""
    return Settings.from_env()

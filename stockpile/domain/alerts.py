"""Alert rules: what should be open now, and how that differs from what is open.

One unresolved alert per (kind, subject). Re-evaluation keeps it (refreshing last-seen), escalates
or eases its severity, or resolves it when its condition is gone. New, escalated and resolved alerts
are announced; easing is recorded but not announced.

These functions state the rules; at national scale the service applies them set-wise in SQL
(``stockpile.store.alerts``), and the tests hold the two to the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

SEVERITY_RANK = {"warning": 1, "critical": 2}


@dataclass(frozen=True)
class Wanted:
    """An alert the current state of the reserve calls for."""

    kind: str
    subject: str
    severity: str
    title: str
    details: dict[str, Any] = field(default_factory=dict)
    warehouse_id: int | None = None
    region_id: int | None = None
    military: bool = False

    @property
    def key(self) -> tuple[str, str]:
        return self.kind, self.subject


@dataclass(frozen=True)
class Open:
    """An unresolved alert as stored."""

    id: str
    kind: str
    subject: str
    severity: str

    @property
    def key(self) -> tuple[str, str]:
        return self.kind, self.subject


@dataclass
class Changes:
    opened: list[Wanted] = field(default_factory=list)
    escalated: list[tuple[Open, Wanted]] = field(default_factory=list)
    eased: list[tuple[Open, Wanted]] = field(default_factory=list)
    unchanged: list[tuple[Open, Wanted]] = field(default_factory=list)
    resolved: list[Open] = field(default_factory=list)


def reconcile(wanted: list[Wanted], current: list[Open], kinds: set[str]) -> Changes:
    """Compare what should be open with what is open, for the alert ``kinds`` being evaluated."""
    want = {w.key: w for w in wanted}
    changes = Changes()
    for alert in current:
        if alert.kind not in kinds:
            continue
        target = want.pop(alert.key, None)
        if target is None:
            changes.resolved.append(alert)
        elif SEVERITY_RANK[target.severity] > SEVERITY_RANK[alert.severity]:
            changes.escalated.append((alert, target))
        elif SEVERITY_RANK[target.severity] < SEVERITY_RANK[alert.severity]:
            changes.eased.append((alert, target))
        else:
            changes.unchanged.append((alert, target))
    changes.opened = [w for w in want.values() if w.kind in kinds]
    return changes


EXPIRY_CRITICAL_WITHIN_DAYS = 7


def expiry_severity(expires_on: date, today: date, critical_within_days: int = EXPIRY_CRITICAL_WITHIN_DAYS) -> str:
    """Stock expiring within a week (or already expired) is critical; later within the window, a warning."""
    return "critical" if (expires_on - today).days <= critical_within_days else "warning"


def expiry_alert(expires_on: date | None, on_hand: int, today: date, within_days: int) -> tuple[str, str] | None:
    """(kind, severity) a lot holding ``on_hand`` calls for: ``expired_on_hand`` once expired,
    ``expiring`` within ``within_days``; None for empty, later-expiring or non-perishable lots."""
    if expires_on is None or on_hand <= 0 or (expires_on - today).days > within_days:
        return None
    if expires_on <= today:
        return "expired_on_hand", "critical"
    return "expiring", expiry_severity(expires_on, today)

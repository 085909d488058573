"""Who is asking, and what their roles let them do."""

from __future__ import annotations

from dataclasses import dataclass, field

ROLES = ("operator", "planner", "commander", "auditor", "admin", "metrics")

# Roles that may read reserve data through the API (``metrics`` sees only /metrics aggregates).
READERS = frozenset({"operator", "planner", "commander", "auditor", "admin"})


@dataclass(frozen=True)
class Principal:
    """An authenticated person or system. ``warehouse_ids``/``region_ids`` are its granted scopes."""

    id: int
    name: str
    roles: frozenset[str]
    clearance: str | None = None
    warehouse_ids: frozenset[int] = field(default_factory=frozenset)
    region_ids: frozenset[int] = field(default_factory=frozenset)

    def has_any(self, roles: frozenset[str] | set[str] | tuple[str, ...]) -> bool:
        return bool(self.roles & set(roles))

"""Who is asking, what their roles let them do, where, and what they may see.

Rules:

- Roles gate operations (the README's role matrix); ``admin`` is not implied by anything.
- ``admin``, ``auditor`` and ``commander`` act nationally. An ``operator`` acts only on the
  warehouses granted to it, directly or through a region (sub-regions included); a ``planner`` only
  in the regions granted (and any warehouse granted directly). Outside scope a write is forbidden
  and a read answers as if the object did not exist.
- Need-to-know: stock owned by a ``military`` party is shown in detail only to principals with
  ``military`` clearance; others may not act on it and see it at most as an aggregate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from stockpile.domain.errors import Forbidden

ROLES = ("operator", "planner", "commander", "auditor", "admin", "metrics")

# Roles that may read reserve data through the API (``metrics`` sees only /metrics aggregates).
READERS = frozenset({"operator", "planner", "commander", "auditor", "admin"})
NATIONAL_ROLES = frozenset({"admin", "auditor", "commander"})
MILITARY = "military"


@dataclass(frozen=True)
class Principal:
    """An authenticated person or system.

    ``warehouse_ids`` and ``region_ids`` are its scope with grants already expanded: every
    warehouse granted directly or lying in a granted region's subtree, and every region in a
    granted subtree.
    """

    id: int
    name: str
    roles: frozenset[str]
    clearance: str | None = None
    warehouse_ids: frozenset[int] = field(default_factory=frozenset)
    region_ids: frozenset[int] = field(default_factory=frozenset)

    def has_any(self, roles: frozenset[str] | set[str] | tuple[str, ...]) -> bool:
        return bool(self.roles & set(roles))

    @property
    def national(self) -> bool:
        """Acts and reads everywhere (no warehouse or region scope applies)."""
        return self.has_any(NATIONAL_ROLES)

    @property
    def cleared_military(self) -> bool:
        return self.clearance == MILITARY

    def covers_warehouse(self, warehouse_id: int) -> bool:
        return self.national or warehouse_id in self.warehouse_ids

    def covers_region(self, region_id: int) -> bool:
        return self.national or region_id in self.region_ids

    def may_see_owner(self, sector: str) -> bool:
        return sector != MILITARY or self.cleared_military

    @property
    def warehouse_filter(self) -> list[int] | None:
        """Warehouse ids a read is limited to, or ``None`` for no limit."""
        return None if self.national else sorted(self.warehouse_ids)


def require_warehouse(principal: Principal, warehouse_id: int, code: str) -> None:
    """Writes only inside the principal's scope."""
    if not principal.covers_warehouse(warehouse_id):
        raise Forbidden(f"{principal.name} may not act on warehouse {code}")


def require_cleared(principal: Principal, sector: str) -> None:
    """Only principals cleared for it act on military-owned stock (the answer names no quantity)."""
    if not principal.may_see_owner(sector):
        raise Forbidden("this stock is owned by the military sector; acting on it needs military clearance")

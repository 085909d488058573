"""Readiness levels: what state of crisis a region is in, and who may say so.

- A region's *own* level is that of its latest effective declaration (peacetime when none).
- Its *effective* level is the highest own level of the region and every ancestor: a national
  wartime declaration puts every province at war, whatever a province declared for itself.
- Escalation to ``wartime`` takes effect only when a second, different commander confirms it
  (two-person rule); ``peacetime`` and ``emergency`` take effect when declared.
"""

from __future__ import annotations

from collections.abc import Mapping

from stockpile.domain.errors import Conflict, Forbidden

LEVELS = ("peacetime", "emergency", "wartime")
CRISIS_LEVELS = frozenset({"emergency", "wartime"})


def rank(level: str) -> int:
    return LEVELS.index(level)


def highest(levels) -> str:
    return max(levels, key=rank, default="peacetime")


def effective_levels(parents: Mapping[int, int | None], own: Mapping[int, str]) -> dict[int, str]:
    """Effective level of every region: the highest own level on the path from it to the root."""
    effective: dict[int, str] = {}

    def resolve(region: int, seen: frozenset[int] = frozenset()) -> str:
        if region in effective:
            return effective[region]
        parent = parents.get(region)
        inherited = "peacetime" if parent is None or parent in seen else resolve(parent, seen | {region})
        effective[region] = highest((own.get(region, "peacetime"), inherited))
        return effective[region]

    for region in parents:
        resolve(region)
    return effective


def needs_confirmation(level: str) -> bool:
    """Two-person rule: only an escalation to wartime waits for a second commander."""
    return level == "wartime"


def check_confirmation(state: str, declared_by: int, confirmer: int) -> None:
    """A pending wartime declaration is confirmed once, by a commander other than the one who declared it."""
    if state != "pending_confirmation":
        raise Conflict(f"the declaration is {state}; only a pending wartime declaration is confirmed")
    if confirmer == declared_by:
        raise Forbidden("the two-person rule: a different commander must confirm a wartime declaration")

"""Master data as a use case holds it once a code (or id) is resolved: small named references
instead of anonymous tuples."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WarehouseRef:
    id: int
    code: str


@dataclass(frozen=True, slots=True)
class MaterialRef:
    id: int
    code: str
    decimals: int  # quantities are integers of 10**-decimals of the unit
    shelf_life_days: int | None = None  # None: not perishable (or not known where it is not needed)


@dataclass(frozen=True, slots=True)
class PartyRef:
    id: int
    code: str
    sector: str  # military, civilian or enterprise: what need-to-know is decided on


@dataclass(frozen=True, slots=True)
class LotRef:
    """A lot named by id, with where it is and what it holds."""

    id: str
    code: str
    warehouse: WarehouseRef
    material: MaterialRef

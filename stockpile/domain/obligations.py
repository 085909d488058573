"""Obligations left by draws across owners, and what may settle them.

A loan is repaid in kind. A settlement names the movement that repaid it, and only a movement that
actually did counts:

- it is a ``receipt`` or an ``ownership_transfer`` (stock arriving for the creditor, or title passing
  to it) — not a transfer receipt of the creditor's own stock, not a count, not a rotation;
- it was recorded after the obligation arose (an older receipt repaid nothing);
- it credited the creditor's positions, net, with at least the settled quantity of the loan's
  material or of a material of its substitution group;
- it has not been reversed, and no other settlement cites it;
- the caller may see it (a movement the caller cannot see does not exist for it).
"""

from __future__ import annotations

from dataclasses import dataclass

from stockpile.domain.errors import Conflict, Invalid

REPAYING_KINDS = frozenset({"receipt", "ownership_transfer"})


@dataclass(frozen=True)
class Repayment:
    """A movement offered as the repayment of a loan, with what the rule needs to judge it."""

    kind: str
    recorded_after_obligation: bool
    credited: int          # net units of the loan's material (or its substitutes) credited to the creditor
    reversed: bool
    cited: bool            # another settlement already names it


def require_repayment(movement_id: str, repayment: Repayment | None, units: int, shown: str) -> None:
    """Refuse a settlement of ``units`` whose movement did not repay the loan (``None``: no such
    movement, or not one the caller may see). ``shown`` is what the creditor was credited, as the
    problem may quote it (the caller may see the movement)."""
    field = "movement_id"
    if repayment is None:
        raise Invalid.field(field, f"no movement {movement_id}")
    if repayment.kind not in REPAYING_KINDS:
        raise Invalid.field(field, f"a movement of kind {repayment.kind} repays no loan: name the receipt or ownership transfer "
                                   "that returned the stock to the creditor")
    if not repayment.recorded_after_obligation:
        raise Invalid.field(field, "that movement was recorded before the loan was made; it repaid nothing")
    if repayment.reversed:
        raise Invalid.field(field, "that movement was reversed; it repaid nothing")
    if repayment.credited <= 0:
        raise Invalid.field(field, "that movement credited the creditor with none of the loan's material")
    if units > repayment.credited:
        raise Invalid.field(field, f"that movement credited the creditor with {shown} of the loan's material")
    if repayment.cited:
        raise Conflict(f"movement {movement_id} already settled an obligation")

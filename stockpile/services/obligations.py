"""Obligations (loans and requisitions left by draws across owners): read as the policy allows, and
settled only by what actually repaid them (stockpile.domain.obligations)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from stockpile.domain.access import Principal, require_visible
from stockpile.domain.errors import Conflict, Forbidden, Invalid
from stockpile.domain.obligations import Repayment, require_repayment
from stockpile.domain.quantities import format_quantity, parse_quantity
from stockpile.services import commands as c
from stockpile.store import masterdata
from stockpile.store import obligations as store


@dataclass(frozen=True)
class Obligation:
    """One obligation as stored, with the settlements recorded against it."""

    row: asyncpg.Record
    settlements: list[asyncpg.Record]


async def listing(pg: asyncpg.Connection, principal: Principal, *, state: str | None, party: str | None,
                  after: str | None, limit: int) -> list[asyncpg.Record]:
    """The obligations ``principal`` may see, of one party (by code, creditor or debtor) if given; an
    unknown party is a 422."""
    party_id = None
    if party is not None:
        party_id = (await masterdata.ids_by_code(pg, "parties", [party])).get(party)
        if party_id is None:
            raise Invalid.field("party", f"unknown code {party!r}")
    return await store.listing(pg, state=state, party_id=party_id, after=after, limit=limit,
                               **principal.visibility.ledger)


async def obligation(pg: asyncpg.Connection, obligation_id: str, principal: Principal) -> Obligation:
    row = await store.get(pg, obligation_id, **principal.visibility.ledger)
    require_visible(row is not None, f"obligation {obligation_id}")
    return Obligation(row, await store.settlements(pg, obligation_id))


async def settle(pg: asyncpg.Connection, obligation_id: str, data: c.SettlementIn, principal: Principal) -> Obligation:
    """Settle part or all of an obligation, judged as it is now: the caller must see it (else 404).
    A loan is repaid in kind — the settlement names the movement that repaid it, and settles at most
    what that movement credited the creditor; a requisition is compensated, settled by a planner or
    an admin."""
    row = await store.get(pg, obligation_id, for_update=True, **principal.visibility.ledger)
    require_visible(row is not None, f"obligation {obligation_id}")
    units = parse_quantity(data.quantity, row["decimals"])
    outstanding = row["quantity"] - row["settled_quantity"]
    if units > outstanding:
        raise Conflict(f"only {format_quantity(outstanding, row['decimals'])} is outstanding",
                       outstanding=format_quantity(outstanding, row["decimals"]))
    if row["kind"] == "loan":
        if data.movement_id is None:
            raise Invalid.field("movement_id", "a loan is repaid in kind: name the movement that returned the stock")
        facts = await store.repayment(pg, data.movement_id, row, **principal.visibility.ledger)
        repayment = None if facts is None else Repayment(
            kind=facts["kind"], recorded_after_obligation=facts["recorded_after_obligation"],
            credited=facts["credited"], reversed=facts["reversed"], cited=facts["cited"])
        require_repayment(data.movement_id, repayment, units,
                          "" if facts is None else format_quantity(max(facts["credited"], 0), row["decimals"]))
    elif not principal.has_any(("planner", "admin")):
        raise Forbidden("a requisition is settled by a planner or an admin")
    await store.settle(pg, obligation_id, quantity=units, movement_id=data.movement_id, note=data.note,
                       principal_id=principal.id)
    return await obligation(pg, obligation_id, principal)

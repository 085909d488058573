"""A transaction's working set for posting movements: what it has read and locked, and the
movements it has yet to append.

A bare workspace (an import, a plan's dispatch) reads from the database as it goes and appends when
flushed. The group commit (``services.posting``) first *preloads*: it resolves every code, opens every
receipt's lot and position, and locks every position the group touches in one ordered statement;
then the rules run in memory, movement after movement, each seeing the balances the previous ones
left, and everything is appended in as few statements as possible. The rules are the same either
way — only the number of round trips changes.

A read the cache cannot answer goes through ``flushed_connection()``, which first appends what is
pending, so the database and the cache never disagree; a write that reads nothing the pending
movements change goes through ``connection()``, which leaves them pending.

A workspace may also append in the background (``background=N``, as the group commit does): once
N movements are pending and no append is under way, ``append_soon`` sends them and lets the rules
go on with the next movements while PostgreSQL writes these. Both connections, and ``flush``, wait
for that append first; ``settle`` waits for it when the transaction is given up.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

import asyncpg

from stockpile.domain.access import Principal
from stockpile.domain.errors import Conflict, DomainError, Invalid
from stockpile.domain.ledger import Position
from stockpile.domain.lots import receipt_expiry
from stockpile.domain.quantities import parse_quantity
from stockpile.domain.refs import MaterialRef, PartyRef, WarehouseRef
from stockpile.services import commands as c
from stockpile.store import ledger as store


# The kind of master data a request field names, where the field is not named after it.
FIELD_KINDS = {"owner": "party", "from_owner": "party", "to_owner": "party",
               "from_warehouse": "warehouse", "to_warehouse": "warehouse"}


@dataclasses.dataclass
class Pending:
    """A prepared movement waiting to be appended, with what rides along in the same statement
    (``posted`` is None for a request's record that carries no movement of its own, as a batch's)."""

    posted: Any  # services.movements.Posted | None
    principal_id: int
    idempotency: tuple[int, str, int, bytes] | None = None
    audit_event: list | None = None


class Workspace:
    def __init__(self, pg: asyncpg.Connection, *, background: int | None = None) -> None:
        self.pg = pg
        self.pending: list[Pending] = []
        self.background = background
        self._appending: asyncio.Task | None = None
        self._codes: dict[tuple[str, str], WarehouseRef | MaterialRef | PartyRef | None] = {}
        self._positions: dict[int, Position] = {}
        self._facts: dict[int, asyncpg.Record] = {}
        self._by_lot_owner: dict[tuple[str, str], int] = {}
        self._by_receipt: dict[tuple[int, int, str, int], int] = {}
        self._by_owner: dict[tuple[int, int, int], list[int]] = {}

    # -- reads -----------------------------------------------------------------------------

    async def connection(self) -> asyncpg.Connection:
        """The connection, once no background append is under way; what is pending stays pending
        (for writes that do not read what the pending movements change)."""
        if self._appending is not None:
            appending, self._appending = self._appending, None
            await appending
        return self.pg

    async def flushed_connection(self) -> asyncpg.Connection:
        """The connection, after appending what is pending (for reads the cache does not serve)."""
        await self.flush()
        return self.pg

    async def resolve(self, **codes: str | None) -> dict[str, WarehouseRef | MaterialRef | PartyRef | None]:
        """Codes named by their request field (warehouse, from_warehouse, to_warehouse, material, owner,
        from_owner, to_owner) → their reference, or None when unknown."""
        kinds = {k: FIELD_KINDS.get(k, k) for k in codes}
        missing = {(kinds[k], v) for k, v in codes.items() if v is not None and (kinds[k], v) not in self._codes}
        if missing:
            await self._resolve_bulk(missing)
        return {k: self._codes[(kinds[k], v)] for k, v in codes.items() if v is not None}

    async def known(self, **codes: str | None) -> dict[str, WarehouseRef | MaterialRef | PartyRef]:
        """``resolve``, refusing unknown codes (422, each named by its field)."""
        found = await self.resolve(**codes)
        errors = [{"field": k, "message": f"unknown {k.removeprefix('from_').removeprefix('to_')} code {codes[k]!r}"}
                  for k, v in found.items() if v is None]
        if errors:
            raise Invalid(errors)
        return found

    async def lot_position(self, lot_id: str, owner_code: str) -> tuple[Position, asyncpg.Record] | None:
        """The owner's locked position in a lot, with the lot's facts; None if there is none."""
        account_id = self._by_lot_owner.get((lot_id, owner_code))
        if account_id is None:
            row = await store.lock_lot_position(await self.flushed_connection(), lot_id, owner_code)
            if row is None:
                return None
            account_id = self._remember(row)
        return self._positions[account_id], self._facts[account_id]

    async def receipt_position(self, *, warehouse_id: int, material_id: int, owner_id: int, code: str,
                               manufactured_on: date | None, expires_on: date | None) -> tuple[Position, date | None]:
        """The owner's locked position in the lot with this code (both opened if new), and the
        lot's stored expiry."""
        account_id = self._by_receipt.get((warehouse_id, material_id, code, owner_id))
        if account_id is None:
            row = await store.lock_receipt_position(
                await self.flushed_connection(), warehouse_id=warehouse_id, material_id=material_id, owner_id=owner_id, code=code,
                manufactured_on=manufactured_on, expires_on=expires_on,
            )
            self._positions[row["account_id"]] = store.to_position(row)
            return self._positions[row["account_id"]], row["expires_on"]
        return self._positions[account_id], self._facts[account_id]["expires_on"]

    async def owner_positions(self, warehouse_id: int, material_id: int, owner_id: int) -> list[Position]:
        """Every locked position of one owner for one material at one warehouse (for picking)."""
        ids = self._by_owner.get((warehouse_id, material_id, owner_id))
        if ids is None:
            positions = await store.lock_owner_positions(await self.flushed_connection(), warehouse_id, material_id, owner_id)
            for position in positions:
                self._positions[position.account_id] = position
            return positions
        return [self._positions[i] for i in ids]

    # -- writes ----------------------------------------------------------------------------

    def append(self, pending: Pending) -> None:
        """Queue a prepared movement and let later reads in this workspace see its balances."""
        for posting in pending.posted.postings if pending.posted is not None else ():
            position = self._positions.get(posting.account_id) if posting.account_id is not None else None
            if position is not None:
                self._positions[posting.account_id] = position.moved(posting.delta)
        self.pending.append(pending)

    async def append_soon(self, pending: Pending) -> None:
        """``append``, then — in a background workspace with enough pending and no append under
        way — start appending them, and yield once so the statement is on its way."""
        self.append(pending)
        if self.background and len(self.pending) >= self.background:
            if self._appending is not None and self._appending.done():
                await self.connection()  # collect its outcome
            if self._appending is not None:
                return
            batch, self.pending = self.pending, []
            self._appending = asyncio.ensure_future(self._insert(batch))
            await asyncio.sleep(0)

    async def flush(self) -> None:
        """Append every pending movement (postings, idempotency records, audit events) in one statement."""
        await self.connection()
        if self.pending:
            pending, self.pending = self.pending, []
            await self._insert(pending)

    async def settle(self) -> None:
        """Wait for a background append still under way (its outcome no longer matters: the
        transaction is being given up), so the connection is free to roll back."""
        with contextlib.suppress(Exception):
            await self.connection()

    async def _insert(self, pending: list[Pending]) -> None:
        try:
            await store.insert_movements(self.pg, pending)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "movements_reverses_id_key":
                raise Conflict("the movement was already reversed") from None
            raise

    # -- batch preloading ------------------------------------------------------------------

    async def preload(self, items: Sequence[tuple[c.Movement, Principal]]) -> None:
        """Resolve, open and lock in bulk what the movements of a batch will touch.

        Every existing position they name is locked here, in one ordered statement, so the
        transaction takes its locks in id order like any single movement and cannot deadlock with
        one (a later lock on one of them is then already held).

        A receipt's lot and position are opened here only when the receipt would pass the checks
        that precede writing (scope, clearance, quantity, expiry); any other receipt is left to the
        per-movement path, so a refused one leaves no trace."""
        commands = [cmd for cmd, _ in items]
        await self._resolve_bulk(
            {("warehouse", x.warehouse) for x in commands if isinstance(x, (c.Receipt, c.Issue)) and x.warehouse}
            | {("material", x.material) for x in commands if isinstance(x, (c.Receipt, c.Issue)) and x.material}
            | {("party", x.owner) for x in commands if isinstance(x, (c.Receipt, c.Issue, c.RotationIn))}
            | {(kind, getattr(x, kind)) for x in commands if isinstance(x, c.RotationIn) for kind in ("warehouse", "material")}
            | {("party", owner) for x in commands for _, owner in _named_positions(x)}
        )
        receipts = []
        for x, principal in items:
            if isinstance(x, c.Receipt):
                w, m, o = (self._codes.get(("warehouse", x.warehouse)), self._codes.get(("material", x.material)),
                           self._codes.get(("party", x.owner)))
                if not (w and m and o and principal.covers_warehouse(w.id) and principal.may_see_owner(o.sector)):
                    continue
                try:
                    parse_quantity(x.quantity, m.decimals)
                    expires_on = receipt_expiry(x.lot.manufactured_on, x.lot.expires_on, m.shelf_life_days)
                except DomainError:
                    continue
                receipts.append((w.id, m.id, x.lot.code, o.id, x.lot.manufactured_on, expires_on))
        if receipts:
            await store.open_receipt_positions(self.pg, receipts)
        by_lot = sorted({(lot_id, self._codes[("party", owner)].id) for x in commands
                         for lot_id, owner in _named_positions(x) if self._codes.get(("party", owner))})
        by_owner = sorted({
            (self._codes[("warehouse", x.warehouse)].id, self._codes[("material", x.material)].id,
             self._codes[("party", x.owner)].id)
            for x in commands
            if isinstance(x, c.Issue) and not x.lot_id and self._codes.get(("warehouse", x.warehouse))
            and self._codes.get(("material", x.material)) and self._codes.get(("party", x.owner))
        })
        reversed_ = sorted({x.movement_id for x in commands if isinstance(x, c.Reversal)})
        rows = await store.lock_positions_bulk(self.pg, by_lot, [r[:4] for r in receipts], by_owner, reversed_)
        for row in rows:
            self._remember(row)
        wanted = set(by_owner)
        for key in wanted:
            self._by_owner[key] = []
        for row in rows:
            key = (row["warehouse_id"], row["material_id"], row["owner_id"])
            if key in wanted:
                self._by_owner[key].append(row["account_id"])

    def _remember(self, row: asyncpg.Record) -> int:
        account_id = row["account_id"]
        self._positions.setdefault(account_id, store.to_position(row))
        self._facts[account_id] = row
        self._by_lot_owner[(row["lot_id"], row["owner_code"])] = account_id
        self._by_receipt[(row["warehouse_id"], row["material_id"], row["lot_code"], row["owner_id"])] = account_id
        return account_id

    async def _resolve_bulk(self, wanted: Iterable[tuple[str, str]]) -> None:
        wanted = set(wanted)
        found = await store.resolve_codes(
            await self.connection(),
            warehouses=[v for k, v in wanted if k == "warehouse"],
            materials=[v for k, v in wanted if k == "material"],
            parties=[v for k, v in wanted if k == "party"],
        )
        for key in wanted:
            self._codes[key] = found.get(key)


def _named_positions(cmd: c.Movement) -> list[tuple[str, str]]:
    """The (lot id, owner code) positions a movement names by lot."""
    if isinstance(cmd, (c.Issue, c.Adjustment, c.WriteOff, c.RotationOut)):
        return [(cmd.lot_id, cmd.owner)] if cmd.lot_id else []
    if isinstance(cmd, c.OwnershipTransfer):
        return [(cmd.lot_id, cmd.from_owner), (cmd.lot_id, cmd.to_owner)]
    return []

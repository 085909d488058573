"""The demo's last year of operations, drawn from the scenario with a seeded RNG and posted through
the use cases the API uses, oldest movement first.

The history is posted with a clock set to the moment each movement happened (``recorded_at`` =
``occurred_at``), so the ledger reads as a plausible last year of operations: receipts,
first-expiring-first issues, write-offs, counts, ownership transfers between sectors, transfers
(received, one short, some still on the road, one overdue), a duplicated issue corrected by a
reversal, a quarantined and a recalled lot. Dates are relative to ``now``, so on any day the demo
has some stock already expired, some expiring within 30 and 90 days, and most of it good for longer.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time as dtime, timedelta, timezone
from decimal import Decimal

import asyncpg

from stockpile.demo.data import (
    ISSUE_REASONS, LOT_STATUS_CHANGES, MATERIAL, OVERDUE_ROUTE, ROUTES, WAREHOUSE, WAREHOUSES, MaterialSpec,
    WarehouseSpec,
)
from stockpile.domain.access import Principal
from stockpile.domain.moments import Clock
from stockpile.services import commands as c
from stockpile.services import lots, transfers
from stockpile.services.movements import Posted, post_movement
from stockpile.services.workspace import Workspace


def _amount(units: int, decimals: int) -> Decimal:
    """Smallest units → the exact decimal the commands take (``1200005, 1 → Decimal('120000.5')``)."""
    return Decimal(units).scaleb(-decimals)


@dataclass
class _Lot:
    id: str
    code: str
    warehouse: str
    material: str
    expires_on: date | None
    status: str = "available"


@dataclass
class _LotPlan:
    warehouse: str
    material: str
    code: str
    manufactured_on: date
    expires_on: date | None
    receipts: list[tuple[datetime, str, int, str]] = field(default_factory=list)  # moment, owner, units, note


class History:
    """Plans the lots and the events of the scenario with a seeded RNG and posts them on one
    connection, following balances in memory so later movements take only what is there."""

    def __init__(self, pg: asyncpg.Connection, rng: random.Random, now: datetime,
                 actor: Callable[[str], Principal]) -> None:
        self.pg, self.rng, self.now, self._actor = pg, rng, now, actor
        self.today = now.date()
        self.lots: dict[str, _Lot] = {}
        self.balance: dict[tuple[str, str], int] = defaultdict(int)  # (lot id, owner) → units
        self.transfers: dict[str, str] = {}  # route key → transfer id
        self.lot_counter = 0

    # ---- time ---------------------------------------------------------------------------------

    def _moment(self, day: date) -> datetime:
        """A working-hours moment on ``day`` (never later than now)."""
        moment = datetime.combine(day, dtime(self.rng.randint(6, 17), self.rng.choice((0, 10, 15, 20, 30, 40, 45, 50))),
                                  tzinfo=timezone.utc)
        return min(moment, self.now - timedelta(minutes=5))

    def _day(self, lo: int, hi: int) -> date:
        """A day between ``lo`` and ``hi`` days from today (inclusive; negative = past)."""
        return self.today + timedelta(days=self.rng.randint(lo, hi))

    # ---- posting ------------------------------------------------------------------------------

    async def _post(self, cmd: c.Movement, moment: datetime, warehouse: str) -> Posted:
        posted = await post_movement(Workspace(self.pg), cmd, self._actor(warehouse), Clock(moment))
        self._track(posted, warehouse)
        return posted

    def _track(self, posted: Posted, warehouse: str | None) -> None:
        """Follow stock balances and lots in memory, so later movements take only what is there."""
        for p in posted.postings:
            if p.account_id is None or p.account_id in posted.transit_of:
                continue
            pos = posted.positions[p.account_id]
            if pos.lot_id not in self.lots and warehouse is not None:
                self.lots[pos.lot_id] = _Lot(pos.lot_id, pos.lot_code, warehouse,
                                             posted.materials[pos.material_id][0], pos.expires_on, pos.status)
            self.balance[(pos.lot_id, pos.owner_code)] += p.delta

    def _usable(self, lot: _Lot, day: date, margin_days: int = 0) -> bool:
        return lot.status == "available" and (lot.expires_on is None or lot.expires_on > day + timedelta(days=margin_days))

    def _positions(self, warehouse: str, material: str) -> list[tuple[_Lot, str, int]]:
        """(lot, owner, balance) with stock at a warehouse, in a stable order."""
        out = [(self.lots[lot_id], owner, units) for (lot_id, owner), units in self.balance.items()
               if units > 0 and self.lots[lot_id].warehouse == warehouse and self.lots[lot_id].material == material]
        out.sort(key=lambda x: (x[0].expires_on or date.max, x[0].code, x[1]))
        return out

    # ---- the scenario -------------------------------------------------------------------------

    def _plan_lots(self) -> list[_LotPlan]:
        """A few lots of each material each warehouse keeps, with expiries staggered around today:
        about 8 % already expired, 10 % expiring within 30 days, 12 % within 90, the rest later."""
        plans = []
        for w in WAREHOUSES:
            for material in w.materials:
                m = MATERIAL[material]
                for _ in range(self.rng.randint(3, 6)):
                    plans.append(self._plan_lot(w, m))
        return plans

    def _plan_lot(self, w: WarehouseSpec, m: MaterialSpec) -> _LotPlan:
        rng = self.rng
        if m.shelf_life_days is None:
            expires_on = None
            manufactured_on = self._day(-700, -60)
        else:
            shelf = m.shelf_life_days
            r = rng.random()
            offset = (rng.randint(-90, -1) if r < 0.08 else rng.randint(1, 30) if r < 0.18
                      else rng.randint(31, 90) if r < 0.30 else rng.randint(91, shelf - 40))
            expires_on = self.today + timedelta(days=offset)
            manufactured_on = expires_on - timedelta(days=shelf)
        self.lot_counter += 1
        code = f"{m.prefix}-{manufactured_on:%y%m}-{self.lot_counter:04d}"
        plan = _LotPlan(w.code, m.code, code, manufactured_on, expires_on)
        # Received while fresh: after manufacture, before expiry, at least 25 days ago.
        first = max(manufactured_on + timedelta(days=2), self.today - timedelta(days=400))
        last = self.today - timedelta(days=25)
        if expires_on is not None:
            last = min(last, expires_on - timedelta(days=5))
        lo, hi = (first - self.today).days, (last - self.today).days
        main = w.owners[0] if len(w.owners) == 1 or rng.random() < 0.6 else rng.choice(w.owners[1:])
        units = self._lot_units(m, w.scale)
        note = f"delivery note {rng.randint(1000, 9999)}"
        plan.receipts.append((self._moment(self._day(lo, hi)), main, units, note))
        # Joint storage: a second owner takes a share of the same batch on the same lot code.
        if len(w.owners) > 1 and rng.random() < (0.45 if w.kind == "joint" else 0.3):
            other = rng.choice([o for o in w.owners if o != main])
            share = self._lot_units(m, w.scale) // rng.randint(2, 4) or 1
            plan.receipts.append((self._moment(self._day(lo, hi)), other, share,
                                  f"joint storage share, delivery note {rng.randint(1000, 9999)}"))
        return plan

    def _lot_units(self, m: MaterialSpec, scale: int) -> int:
        lo, hi = m.lot_size
        if m.metered:
            return self.rng.randint(lo * 10**m.decimals, hi * 10**m.decimals) * scale
        step = 100 if hi >= 20_000 else 10 if hi >= 1_000 else 1
        return self.rng.randint(lo // step, hi // step) * step * scale * 10**m.decimals

    async def post(self) -> None:
        plans = self._plan_lots()
        receipts = sorted(
            ((moment, i, plan, owner, units, note) for i, plan in enumerate(plans)
             for moment, owner, units, note in plan.receipts),
            key=lambda r: (r[0], r[1]),
        )
        for moment, _, plan, owner, units, note in receipts:
            m = MATERIAL[plan.material]
            await self._post(c.Receipt(
                warehouse=plan.warehouse, material=plan.material, owner=owner, quantity=_amount(units, m.decimals),
                lot=c.LotIn(code=plan.code, manufactured_on=plan.manufactured_on, expires_on=plan.expires_on),
                occurred_at=moment, reason="reserve replenishment", note=note,
            ), moment, plan.warehouse)

        events = self._plan_events()
        events.sort(key=lambda e: (e[0], e[1]))
        for moment, _, action, args in events:
            await action(moment, *args)

    def _plan_events(self) -> list[tuple[datetime, int, object, tuple]]:
        """The last weeks of operations, as (moment, order, action, arguments)."""
        rng, events = self.rng, []

        def add(moment: datetime, action, *args) -> None:
            events.append((moment, len(events), action, args))

        pairs = [(w.code, material) for w in WAREHOUSES for material in w.materials]
        for warehouse, material in pairs:
            for _ in range(rng.choice((0, 1, 1, 2, 3))):
                add(self._moment(self._day(-24, -3)), self._issue, warehouse, material, rng.uniform(0.05, 0.25))
        duplicated = rng.choice([p for p in pairs if WAREHOUSE[p[0]].kind == "civilian"])
        add(self._moment(self._day(-15, -12)), self._duplicated_issue, *duplicated)
        for warehouse, material in rng.sample(pairs, 10):
            add(self._moment(self._day(-20, -3)), self._write_off, warehouse, material)
        for (warehouse, material), sign in zip(rng.sample(pairs, 4), (-1, 1, -1, -1)):
            add(self._moment(self._day(-18, -4)), self._count, warehouse, material, sign)
        joint = [p for p in pairs if len(WAREHOUSE[p[0]].owners) > 1]
        for warehouse, material in rng.sample(joint, 8):
            add(self._moment(self._day(-22, -5)), self._retitle, warehouse, material)
        for route in ROUTES:
            key, days = route[0], route[6]
            if days is not None:
                sent = self._moment(self._day(-22, -8))
                add(sent, self._dispatch, route)
                add(self._moment(sent.date() + timedelta(days=days)), self._receive, route)
            elif key == OVERDUE_ROUTE:
                add(self._moment(self._day(-7, -7)), self._dispatch, route)
            else:
                add(self._moment(self._day(-2, -1)), self._dispatch, route)
        for warehouse, material, status, reason, (lo, hi) in LOT_STATUS_CHANGES:
            add(self._moment(self._day(lo, hi)), self._set_status, warehouse, material, status, reason)
        return events

    async def _issue(self, moment: datetime, warehouse: str, material: str, fraction: float,
                     duplicate: bool = False) -> None:
        """Issue first-expiring-first (the service picks the lots) from the owner holding most."""
        day = moment.date()
        usable: dict[str, int] = defaultdict(int)
        for lot, owner, units in self._positions(warehouse, material):
            if self._usable(lot, day):
                usable[owner] += units
        if not usable:
            return
        owner = max(sorted(usable), key=lambda o: usable[o])
        units = int(usable[owner] * fraction)
        m = MATERIAL[material]
        if not m.metered:
            units -= units % 10**m.decimals
        if units <= 0:
            return
        reason = self.rng.choice(ISSUE_REASONS[m.category])
        cmd = c.Issue(owner=owner, quantity=_amount(units, m.decimals), warehouse=warehouse, material=material,
                      occurred_at=moment, reason=reason, note=f"issue voucher {self.rng.randint(10000, 99999)}")
        first = await self._post(cmd, moment, warehouse)
        if duplicate and usable[owner] >= 2 * units:
            # The same voucher keyed twice; the second entry is corrected by a reversal.
            later = moment + timedelta(minutes=3)
            again = await self._post(c.Issue(owner=owner, quantity=cmd.quantity, warehouse=warehouse, material=material,
                                             occurred_at=later, reason=reason, note=cmd.note), later, warehouse)
            fix = later + timedelta(minutes=40)
            await self._post(c.Reversal(movement_id=again.id, occurred_at=fix,
                                        reason=f"duplicate entry of movement {first.id}",
                                        note="voucher keyed twice"), fix, warehouse)

    async def _duplicated_issue(self, moment: datetime, warehouse: str, material: str) -> None:
        await self._issue(moment, warehouse, material, 0.1, duplicate=True)

    async def _write_off(self, moment: datetime, warehouse: str, material: str) -> None:
        """Expired stock destroyed (part of it: destruction is booked as it happens), or damage."""
        day = moment.date()
        positions = self._positions(warehouse, material)
        expired = [p for p in positions if p[0].expires_on is not None and p[0].expires_on <= day]
        if expired:
            lot, owner, units = expired[0]
            units = max(1, units // self.rng.randint(2, 4))
            reason = "expired: destroyed under supervision"
        elif positions:
            lot, owner, units = self.rng.choice(positions)
            units = max(1, units // self.rng.randint(40, 200))
            reason = self.rng.choice(["damaged in handling", "leaking container", "water damage", "pest damage"])
        else:
            return
        m = MATERIAL[material]
        await self._post(c.WriteOff(lot_id=lot.id, owner=owner, quantity=_amount(units, m.decimals),
                                    occurred_at=moment, reason=reason,
                                    note=f"write-off report WO-{self.rng.randint(100, 999)}"), moment, warehouse)

    async def _count(self, moment: datetime, warehouse: str, material: str, sign: int) -> None:
        """A physical count finding a small shortage (``sign`` −1) or surplus (+1)."""
        positions = self._positions(warehouse, material)
        if not positions:
            return
        lot, owner, units = self.rng.choice(positions)
        m = MATERIAL[material]
        step = 10**m.decimals
        diff = max(step, (units // 500) // step * step) * sign
        counted = max(0, units + diff)
        reason = "annual stocktake: shortage" if diff < 0 else "annual stocktake: surplus found (mislabelled pallet)"
        await self._post(c.Adjustment(lot_id=lot.id, owner=owner, counted=_amount(counted, m.decimals),
                                      occurred_at=moment, reason=reason), moment, warehouse)

    async def _retitle(self, moment: datetime, warehouse: str, material: str) -> None:
        """A share of a lot changes title (custody stays): joint-storage agreements between sectors."""
        w = WAREHOUSE[warehouse]
        positions = [p for p in self._positions(warehouse, material) if p[2] >= 10]
        if not positions:
            return
        lot, owner, units = self.rng.choice(positions)
        to_owner = self.rng.choice([o for o in w.owners if o != owner])
        share = units * self.rng.randint(20, 45) // 100
        m = MATERIAL[material]
        if not m.metered:
            share -= share % 10**m.decimals
        if share <= 0:
            return
        await self._post(c.OwnershipTransfer(
            lot_id=lot.id, from_owner=owner, to_owner=to_owner, quantity=_amount(share, m.decimals),
            occurred_at=moment, reason="joint storage agreement: share purchased",
            note=f"agreement JS-{self.rng.randint(100, 999)}",
        ), moment, warehouse)

    async def _dispatch(self, moment: datetime, route) -> None:
        key, source, target, materials, preferred, (lo, hi), days, _short = route
        day = moment.date()
        lines = []
        for material in materials:
            candidates = [p for p in self._positions(source, material) if self._usable(p[0], day, margin_days=45)]
            ranked = [p for p in candidates if p[1] in preferred] or candidates
            m = MATERIAL[material]
            for lot, owner, units in ranked[:2]:
                quantity = int(units * self.rng.uniform(lo, hi))
                if not m.metered:
                    quantity -= quantity % 10**m.decimals
                if quantity > 0:
                    lines.append(c.TransferLineIn(lot_id=lot.id, owner=owner, quantity=_amount(quantity, m.decimals)))
        if not lines:
            return
        # Received routes were expected when they arrived; the overdue one four days after dispatch
        # (days ago); the others still on the road are due in the next days.
        travel = days if days is not None else 4 if key == OVERDUE_ROUTE else self.rng.randint(2, 4)
        expected = datetime.combine(day + timedelta(days=travel), dtime(16, 0), tzinfo=timezone.utc)
        cmd = c.TransferIn(from_warehouse=source, to_warehouse=target, lines=lines, expected_at=expected,
                           note=f"{key.replace('-', ' ')}; waybill {self.rng.randint(100000, 999999)}")
        shown, posted = await transfers.dispatch(self.pg, cmd, self._actor(source), Clock(moment))
        self._track(posted, None)
        self.transfers[key] = shown["id"]

    async def _receive(self, moment: datetime, route) -> None:
        key, _source, target, *_rest, short = route
        transfer_id = self.transfers.get(key)
        if transfer_id is None:
            return
        lines = None
        note = "received in full"
        if short:
            shown = await transfers.show(self.pg, transfer_id)
            lines = []
            for i, line in enumerate(shown["lines"]):
                dispatched = Decimal(line["quantity"])
                received = dispatched
                if i == 0:  # a spill on the road: 1.5 % short, measured at the destination's meter
                    decimals = MATERIAL[line["material"]].decimals
                    received = (dispatched * Decimal("0.985")).quantize(Decimal(1).scaleb(-decimals))
                lines.append(c.ReceivedLineIn(lot_id=line["lot_id"], owner=line["owner"], received=received))
            note = "short receipt: spill reported by the driver, see incident report IR-0412"
        cmd = c.TransferReceiptIn(lines=lines, occurred_at=moment, note=note)
        _shown, posted = await transfers.receive(self.pg, transfer_id, cmd, self._actor(target), Clock(moment))
        self._track(posted, target)

    async def _set_status(self, moment: datetime, warehouse: str, material: str, status: str, reason: str) -> None:
        """Quarantine or recall the lot with most stock (usable lots first) — not a ledger movement."""
        day = moment.date()
        totals: dict[str, int] = defaultdict(int)
        for lot, _owner, units in self._positions(warehouse, material):
            totals[lot.id] += units
        if not totals:
            return
        lot_id = max(sorted(totals), key=lambda i: (self._usable(self.lots[i], day), totals[i]))
        await lots.change_status(self.pg, lot_id, status, reason, self._actor(warehouse))
        self.lots[lot_id].status = status


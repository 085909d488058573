"""Coverage and alert rules without a database: what counts as usable, states, days of supply,
expiry alerts and the reconciliation of wanted with open alerts."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from stockpile.domain.alerts import Open, Wanted, expiry_alert, reconcile
from stockpile.domain.coverage import (
    Holding, TargetScope, coverage_state, cuts_outlived, days_of_supply, horizon_cuts, usable_quantity,
    validate_ratios,
)

TODAY = date(2026, 11, 22)
DECIMALS = {"DIESEL": 1, "HEATING-OIL": 1, "VACCINE": 0}


def held(units: int, *, material: str = "DIESEL", warehouse: str = "WH-N", region: str = "NORTH",
         owner: str = "CIV", sector: str = "civilian", reserved: int = 0, status: str = "available",
         expires_in: int | None = 400) -> Holding:
    expires_on = None if expires_in is None else TODAY + timedelta(days=expires_in)
    return Holding(warehouse, region, material, owner, sector, units, reserved, status, expires_on)


def target(**kw) -> TargetScope:
    base = {"materials": frozenset({"DIESEL"}), "horizon_days": 30, "warehouse": "WH-N"}
    return TargetScope(**{**base, **kw})


def test_only_available_stock_counts():
    stock = [held(1000), held(300, status="quarantine"), held(200, status="recalled")]
    assert usable_quantity(target(), stock, DECIMALS, TODAY) == Decimal("100.0")


def test_stock_dying_within_the_horizon_protects_no_one():
    stock = [held(1000, expires_in=31), held(500, expires_in=30), held(70, expires_in=-2), held(5, expires_in=None)]
    assert usable_quantity(target(horizon_days=30), stock, DECIMALS, TODAY) == Decimal("100.5")
    assert usable_quantity(target(horizon_days=0), stock, DECIMALS, TODAY) == Decimal("150.5")


def test_reserved_stock_is_promised_elsewhere():
    assert usable_quantity(target(), [held(1000, reserved=250)], DECIMALS, TODAY) == Decimal("75.0")


def test_a_region_target_counts_its_sub_regions_only():
    stock = [held(10, region="NORTH"), held(20, warehouse="WH-X", region="NORTH-EAST"), held(40, region="SOUTH")]
    north = target(warehouse=None, regions=frozenset({"NORTH", "NORTH-EAST"}))
    assert usable_quantity(north, stock, DECIMALS, TODAY) == Decimal("3.0")


def test_a_substitution_group_adds_up_materials_in_their_own_precision():
    stock = [held(15, material="DIESEL"), held(25, material="HEATING-OIL"), held(7, material="VACCINE")]
    group = target(materials=frozenset({"DIESEL", "HEATING-OIL"}))
    assert usable_quantity(group, stock, DECIMALS, TODAY) == Decimal("4.0")


def test_an_owner_or_a_sector_narrows_the_stock_counted():
    stock = [held(10, owner="CIV"), held(20, owner="MIL", sector="military"), held(40, owner="CIV2")]
    assert usable_quantity(target(owner="CIV"), stock, DECIMALS, TODAY) == Decimal("1.0")
    assert usable_quantity(target(sector="civilian"), stock, DECIMALS, TODAY) == Decimal("5.0")
    assert usable_quantity(target(), stock, DECIMALS, TODAY) == Decimal("7.0")


def test_horizon_cuts_serve_every_horizon_in_one_pass():
    cuts = horizon_cuts([90, 30, 30, 0])
    assert cuts == [1, 31, 91]
    # a lot counts for the n-th cut's targets when it outlives at least n cuts
    assert [cuts_outlived(TODAY + timedelta(days=d), TODAY, cuts) for d in (0, 1, 30, 31, 91, 400)] == [0, 1, 1, 2, 3, 3]
    assert cuts_outlived(None, TODAY, cuts) == 3


@pytest.mark.parametrize(("ratio", "state"), [("0.95", "ok"), ("0.9", "ok"), ("0.89", "warning"), ("0.7", "warning"),
                                             ("0.69", "critical"), ("0", "critical")])
def test_states_follow_the_ratios(ratio, state):
    assert coverage_state(Decimal(ratio), Decimal("0.9"), Decimal("0.7")) == state


def test_days_of_supply_needs_a_population_and_a_rate():
    assert days_of_supply(Decimal("80"), 10, Decimal("0.5")) == Decimal("16.0")
    assert days_of_supply(Decimal("80"), None, Decimal("0.5")) is None
    assert days_of_supply(Decimal("80"), 10, None) is None


def test_ratios_must_be_ordered_and_within_one():
    assert validate_ratios(Decimal("0.9"), Decimal("0.7"), Decimal("0.5")) == []
    assert validate_ratios(Decimal("0.7"), Decimal("0.9"), Decimal("0.5"))[0]["field"] == "critical_ratio"
    assert validate_ratios(Decimal("1.2"), Decimal("0.7"), Decimal("0.5"))[0]["field"] == "warning_ratio"


@pytest.mark.parametrize(("expires_in", "on_hand", "alert"), [
    (-3, 5, ("expired_on_hand", "critical")), (0, 5, ("expired_on_hand", "critical")),
    (7, 5, ("expiring", "critical")), (8, 5, ("expiring", "warning")), (30, 5, ("expiring", "warning")),
    (31, 5, None), (3, 0, None), (None, 5, None),
])
def test_expiry_alerts_by_days_left(expires_in, on_hand, alert):
    expires_on = None if expires_in is None else TODAY + timedelta(days=expires_in)
    assert expiry_alert(expires_on, on_hand, TODAY, within_days=30) == alert


def test_reconcile_opens_what_is_new_and_resolves_what_is_gone():
    wanted = [Wanted("expiring", "lot:1", "critical", "t"), Wanted("expiring", "lot:3", "warning", "t"),
              Wanted("expiring", "lot:4", "warning", "t")]
    current = [Open("a", "expiring", "lot:1", "warning"), Open("b", "expiring", "lot:2", "warning"),
               Open("c", "shortfall", "target:X", "critical"), Open("d", "expiring", "lot:4", "critical")]
    changes = reconcile(wanted, current, {"expiring"})
    assert [w.subject for w in changes.opened] == ["lot:3"]
    assert [(a.id, w.severity) for a, w in changes.escalated] == [("a", "critical")]
    assert [(a.id, w.severity) for a, w in changes.eased] == [("d", "warning")]
    assert [a.id for a in changes.resolved] == ["b"]  # the shortfall is not this evaluation's to resolve

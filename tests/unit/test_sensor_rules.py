"""The sensor rules as plain functions: what a reading must be, when a condition has lasted, when a
gauge disagrees with the book, when a sensor is silent, what a sensor must say to be judged."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from stockpile.domain.errors import Invalid
from stockpile.domain.sensors import (
    ReadingWindow, SensorSpec, check_sensor, gauge_disagrees, lasted, outside_band, reading_value, silent,
)

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)


def at(minutes_ago: float) -> datetime:
    return NOW - timedelta(minutes=minutes_ago)


def test_a_reading_value_is_a_finite_number_as_the_device_wrote_it():
    assert reading_value(4.25) == Decimal("4.25") and reading_value("  -18.5 ") == Decimal("-18.5")
    assert reading_value(0.1) == Decimal("0.1")  # the float's shortest text, not its binary expansion
    assert reading_value(12) == Decimal(12)
    for bad in ("NaN", "Infinity", "warm", "", True, None, [1], "1e999", float("inf")):
        assert reading_value(bad) is None, bad


def test_a_reading_far_ahead_of_the_clock_or_past_the_retention_is_refused():
    window = ReadingWindow.at(NOW, 90)
    assert window.refusal(NOW + timedelta(minutes=5)) is None and window.refusal(NOW - timedelta(days=89)) is None
    assert "after the server's clock" in window.refusal(NOW + timedelta(minutes=11))
    assert "older than the 90 days" in window.refusal(NOW - timedelta(days=91))


def test_a_probe_is_outside_its_band_below_min_or_above_max_and_an_open_bound_never_trips():
    assert outside_band(Decimal("1.9"), Decimal(2), Decimal(8)) and outside_band(Decimal("8.1"), Decimal(2), Decimal(8))
    assert not outside_band(Decimal(2), Decimal(2), Decimal(8)) and not outside_band(Decimal(8), Decimal(2), Decimal(8))
    assert not outside_band(Decimal(-40), None, Decimal(-15)) and outside_band(Decimal(99), None, Decimal(70))


def test_a_gauge_disagrees_when_the_difference_exceeds_the_tolerance_of_the_book():
    tolerance = Decimal("0.005")
    assert not gauge_disagrees(Decimal(9950), 10_000, tolerance)  # exactly 0.5 %
    assert gauge_disagrees(Decimal(9949), 10_000, tolerance)
    assert gauge_disagrees(Decimal(1), 0, tolerance) and not gauge_disagrees(Decimal(0), 0, tolerance)


def test_a_condition_lasts_when_every_reading_back_to_one_older_than_the_tolerance_shows_it():
    out = [(at(m), True) for m in (40, 30, 20, 10, 0)]
    assert lasted(out, 30)
    assert not lasted(out, 45)  # no reading is 45 minutes older than the latest


def test_a_condition_shorter_than_the_tolerance_or_interrupted_does_not_last():
    assert not lasted([(at(40), False), (at(20), True), (at(0), True)], 30)
    assert not lasted([(at(40), True), (at(30), True), (at(15), False), (at(0), True)], 30)
    assert not lasted([(at(40), True), (at(0), False)], 30)  # it ended
    assert not lasted([], 0)


def test_a_long_silence_is_not_taken_for_a_lasting_condition():
    assert not lasted([(at(200), True), (at(0), True)], 30)  # the only older reading is 2 h 50 min before the window
    assert lasted([(at(80), True), (at(0), True)], 30)  # within the hour before it


def test_a_tolerance_of_zero_alerts_on_the_latest_reading():
    assert lasted([(at(0), True)], 0) and not lasted([(at(0), False)], 0)


def test_a_sensor_is_silent_after_the_silence_window_counted_from_registration_if_never_heard():
    assert silent(at(31), at(600), NOW, 30) and not silent(at(29), at(600), NOW, 30)
    assert not silent(None, at(10), NOW, 30) and silent(None, at(31), NOW, 30)


def spec(**changes) -> SensorSpec:
    base = dict(kind="temperature", unit="C", storage_class="cold_chain", material_unit=None, band_min=Decimal(2),
                band_max=Decimal(8), tolerance_minutes=30)
    return SensorSpec(**{**base, **changes})


def test_a_sensor_must_say_enough_to_be_judged():
    check_sensor(spec())
    check_sensor(spec(kind="tank_level", unit="L", storage_class=None, material_unit="L", band_min=None, band_max=None))
    for bad in (spec(storage_class=None), spec(band_min=None, band_max=None), spec(unit="F"),
                spec(band_min=Decimal(9)), spec(tolerance_minutes=-1), spec(tolerance_minutes=1441),
                spec(material_unit="dose"),
                spec(kind="tank_level", unit="L", material_unit=None, band_min=None, band_max=None),
                spec(kind="tank_level", unit="kg", material_unit="L", band_min=None, band_max=None),
                spec(kind="tank_level", unit="L", material_unit="L")):
        with pytest.raises(Invalid):
            check_sensor(bad)

"""The sensor view's parts that need no browser: a sensor's state from its unresolved alerts, and the
readings chart drawing the band and marking every reading outside it."""

from __future__ import annotations

from stockpile.console import charts
from stockpile.console.sensors import states


def _alert(kind: str, subject: str) -> dict:
    return {"kind": kind, "subject": subject}


def test_a_sensors_state_is_its_gravest_unresolved_alert():
    unresolved = [_alert("sensor_offline", "sensor:A"), _alert("cold_chain_excursion", "sensor:A"),
                  _alert("sensor_offline", "sensor:B"), _alert("stock_variance", "sensor:C"),
                  _alert("shortfall", "target:D"), _alert("expiring", "sensor:D")]
    assert states(["A", "B", "C", "D", "E"], unresolved) == {
        "A": "excursion", "B": "offline", "C": "variance", "D": "ok", "E": "ok"}


def test_the_readings_chart_draws_the_band_and_marks_the_readings_outside_it():
    points = [charts.Point(f"t{i}", v) for i, v in enumerate([4.0, 5.5, 9.1, 10.2, 7.9, 1.5])]
    svg = str(charts.line("probe <A>", points, band=(2.0, 8.0), band_label="2–8", unit="C"))
    assert svg.count('class="band"') == 1
    assert svg.count('class="outside"') == 3  # 9.1, 10.2 and 1.5
    assert "<title>probe &lt;A&gt;</title>" in svg
    assert ">t0<" in svg and ">t5<" in svg  # the first and last moments label the time axis


def test_a_chart_without_a_band_or_readings_draws_no_band_and_marks_nothing():
    gauge = str(charts.line("gauge", [charts.Point("t0", 100.0), charts.Point("t1", 99.5)]))
    assert 'class="band"' not in gauge and 'class="outside"' not in gauge and "<polyline" in gauge
    empty = str(charts.line("silent", []))
    assert "<polyline" not in empty and empty.endswith("</svg>")

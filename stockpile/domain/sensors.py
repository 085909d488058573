"""Sensors: what a sensor is, what a reading must be, and when a sensor calls for an alert.

Rules:

- A temperature or humidity **probe** watches one storage class of its warehouse and has an allowed
  band (either bound may be open); a **tank gauge** watches one material of its warehouse and reads
  in that material's unit. Readings change stock only through people: a gauge is compared with the
  book, never posted to it.
- A reading is identified by (sensor, at); its value is a finite number; it is not taken more than
  ``FUTURE_SKEW`` after now (a device clock that far ahead is wrong), nor before the raw retention
  period (it would be dropped at once).
- A probe is **in excursion** when its readings have been outside its band for ``tolerance_minutes``;
  a gauge is **at variance** when its readings have differed from the book (the ledger's balance of
  its material in its warehouse) by more than the gauge tolerance (``STOCKPILE_GAUGE_TOLERANCE``, a
  fraction of the book) for ``tolerance_minutes``. "Have been for" is judged on the readings
  (``lasted``): the latest reading shows it, and so does every reading back to one taken at least
  ``tolerance_minutes`` before the latest — no older than ``EVIDENCE_GAP`` before that, so a long
  silence is not taken for a lasting condition. A shorter excursion does nothing.
- A sensor is **offline** when it has sent nothing for ``STOCKPILE_SENSOR_SILENCE_MINUTES`` (one
  never heard from, that long after it was registered).

These functions state the rules; the evaluation applies them set-wise in SQL
(``stockpile.store.sensors``), and the tests hold the two to the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from stockpile.domain.errors import Invalid

KINDS = ("temperature", "humidity", "tank_level")
PROBE_UNITS = {"temperature": "C", "humidity": "%"}
MAX_READINGS = 10_000  # one request
MAX_STEP = 366 * 86400  # seconds: the longest step of averaged readings, a year
FUTURE_SKEW = timedelta(minutes=10)
EVIDENCE_GAP = timedelta(hours=1)
MAX_TOLERANCE_MINUTES = 1440
MAX_VALUE = Decimal(10) ** 15  # above any real tank or temperature, below anything that breaks a sum


@dataclass(frozen=True)
class SensorSpec:
    """A sensor as registered (``PUT /sensors/{code}``), its references resolved."""

    kind: str
    unit: str
    storage_class: str | None
    material_unit: str | None  # a tank gauge's material's unit (None: no material named)
    band_min: Decimal | None
    band_max: Decimal | None
    tolerance_minutes: int


def check_sensor(spec: SensorSpec) -> None:
    """Refuse a sensor that could not be judged: a probe without a storage class or with a material,
    a gauge without a material or with a band, a unit not the one its readings are in, a band whose
    bounds are reversed, a tolerance outside 0–1440 minutes."""
    errors = []
    if spec.kind == "tank_level":
        if spec.material_unit is None:
            errors.append(("material", "a tank gauge names the material it measures"))
        elif spec.unit != spec.material_unit:
            errors.append(("unit", f"a tank gauge reads in its material's unit ({spec.material_unit})"))
        if spec.band_min is not None or spec.band_max is not None:
            errors.append(("band", "a tank gauge is judged against the book, not a band"))
    else:
        if not spec.storage_class:
            errors.append(("storage_class", f"a {spec.kind} probe names the storage class it watches"))
        if spec.material_unit is not None:
            errors.append(("material", f"a {spec.kind} probe watches a storage class, not a material"))
        if spec.unit != PROBE_UNITS[spec.kind]:
            errors.append(("unit", f"a {spec.kind} probe reads in {PROBE_UNITS[spec.kind]}"))
        if spec.band_min is None and spec.band_max is None:
            errors.append(("band", f"a {spec.kind} probe needs an allowed band (min, max or both)"))
    for bound in (spec.band_min, spec.band_max):
        if bound is not None and (not bound.is_finite() or abs(bound) > MAX_VALUE):
            errors.append(("band", "bounds are finite numbers"))
    if spec.band_min is not None and spec.band_max is not None and spec.band_min > spec.band_max:
        errors.append(("band", "min is above max"))
    if not 0 <= spec.tolerance_minutes <= MAX_TOLERANCE_MINUTES:
        errors.append(("tolerance_minutes", f"must be between 0 and {MAX_TOLERANCE_MINUTES}"))
    if errors:
        raise Invalid([{"field": f, "message": m} for f, m in errors])


def reading_value(sent: object) -> Decimal | None:
    """A reading's value as sent (a JSON number or a decimal string); None when it is not a finite
    number a sensor could read. A JSON number arrives as a float: it is read by its shortest
    round-trip text, which is the number as the device wrote it."""
    if isinstance(sent, bool):
        return None
    try:
        if isinstance(sent, float):
            value = Decimal(repr(sent))
        elif isinstance(sent, (int, Decimal)):
            value = Decimal(sent)
        elif isinstance(sent, str):
            value = Decimal(sent.strip())
        else:
            return None
    except ArithmeticError:
        return None
    return value if value.is_finite() and abs(value) <= MAX_VALUE else None


@dataclass(frozen=True)
class ReadingWindow:
    """The times a reading may carry when it arrives at ``now``: not more than ``FUTURE_SKEW``
    ahead (a device clock that far ahead is wrong), not before the raw retention period (it would be
    dropped at once)."""

    earliest: datetime
    latest: datetime
    retention_days: int

    @classmethod
    def at(cls, now: datetime, retention_days: int) -> ReadingWindow:
        return cls(now - timedelta(days=retention_days), now + FUTURE_SKEW, retention_days)

    def refusal(self, at: datetime) -> str | None:
        """Why a reading taken ``at`` is refused (None: it is taken)."""
        if at > self.latest:
            return f"is more than {int(FUTURE_SKEW.total_seconds() // 60)} minutes after the server's clock"
        if at < self.earliest:
            return f"is older than the {self.retention_days} days raw readings are kept"
        return None


def outside_band(value: Decimal, band_min: Decimal | None, band_max: Decimal | None) -> bool:
    return (band_min is not None and value < band_min) or (band_max is not None and value > band_max)


def gauge_disagrees(gauge_units: Decimal, book_units: int, tolerance: Decimal) -> bool:
    """The gauge (in the material's smallest units) differs from the book by more than ``tolerance``
    (a fraction) of the book."""
    return abs(gauge_units - book_units) > tolerance * book_units


def lasted(readings: list[tuple[datetime, bool]], tolerance_minutes: int) -> bool:
    """Whether a condition has lasted ``tolerance_minutes``, on the readings (time, shows it),
    oldest first: the latest shows it, and so does every reading back to one taken at least
    ``tolerance_minutes`` before the latest and at most ``EVIDENCE_GAP`` before that."""
    if not readings or not readings[-1][1]:
        return False
    last_at = readings[-1][0]
    boundary = last_at - timedelta(minutes=tolerance_minutes)
    anchors = [at for at, _ in readings if boundary - EVIDENCE_GAP <= at <= boundary]
    if not anchors:
        return False
    anchor = max(anchors)
    return all(shows for at, shows in readings if at >= anchor)


def silent(last_at: datetime | None, registered_at: datetime, now: datetime, silence_minutes: int) -> bool:
    """No reading for ``silence_minutes`` (counted from registration for a sensor never heard from)."""
    return (last_at or registered_at) < now - timedelta(minutes=silence_minutes)

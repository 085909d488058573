"""The lot's own rules, without a database: the expiry a received lot gets."""

from __future__ import annotations

from datetime import date

import pytest

from stockpile.domain.errors import Invalid
from stockpile.domain.lots import receipt_expiry


def test_a_perishable_lot_received_without_an_expiry_keeps_its_shelf_life_from_manufacture():
    assert receipt_expiry(date(2026, 1, 10), None, 30) == date(2026, 2, 9)


def test_a_given_expiry_is_kept_and_a_non_perishable_lot_without_one_never_expires():
    assert receipt_expiry(date(2026, 1, 10), date(2026, 6, 1), 30) == date(2026, 6, 1)
    assert receipt_expiry(None, None, None) is None


@pytest.mark.parametrize(("manufactured_on", "expires_on", "shelf_life", "field"), [
    (None, None, 30, "lot.expires_on"),                           # perishable: an expiry or a manufacture date
    (date(2026, 3, 1), date(2026, 2, 1), None, "lot.expires_on"),  # expiring before it was made
    (date(9999, 12, 1), None, 365, "lot.manufactured_on"),         # past the last date there is
])
def test_a_receipt_whose_expiry_cannot_be_known_is_refused_naming_the_field(manufactured_on, expires_on,
                                                                             shelf_life, field):
    with pytest.raises(Invalid) as refused:
        receipt_expiry(manufactured_on, expires_on, shelf_life)
    assert [e["field"] for e in refused.value.errors] == [field]

"""Words the console shows that come from the data (a status, a kind, a state, a problem's title)
rather than from a template: listed here so the message catalogues carry them."""

from __future__ import annotations


def N_(message: str) -> str:  # noqa: N802 - gettext's name for a message marked, not translated, here
    return message


WORDS = (
    # lot status, warehouse kind and status, material category, sector
    N_("available"), N_("quarantine"), N_("quarantined"), N_("recalled"),
    N_("military"), N_("civilian"), N_("joint"), N_("enterprise"), N_("active"), N_("suspended"), N_("lost"),
    N_("fuel"), N_("food"), N_("medical"),
    # movement kinds
    N_("receipt"), N_("issue"), N_("transfer_dispatch"), N_("transfer_receipt"), N_("adjustment"), N_("write_off"),
    N_("ownership_transfer"), N_("rotation_out"), N_("rotation_in"), N_("reversal"),
    # coverage and alert severity, alert kinds
    N_("ok"), N_("warning"), N_("critical"),
    N_("shortfall"), N_("expiring"), N_("expired_on_hand"), N_("rotation_overdue"), N_("rotation_blocked"),
    N_("transfer_overdue"), N_("allocation_unfilled"), N_("count_discrepancy"), N_("ledger_invariant"),
    N_("shelf_life_failed"), N_("cold_chain_excursion"), N_("stock_variance"), N_("sensor_offline"),
    N_("survey_overdue"),
    # rotation orders, requests, plans and their lines, obligations
    N_("planned"), N_("in_progress"), N_("completed"), N_("cancelled"),
    N_("pending"), N_("allocated"), N_("proposed"), N_("approved"), N_("dispatched"), N_("expired"),
    N_("reserved"), N_("in_transit"), N_("received"), N_("void"), N_("loan"), N_("requisition"),
    N_("no_stock"), N_("rule"), N_("expiry"), N_("floor"), N_("capacity"),
    N_("flash"), N_("immediate"), N_("priority"), N_("routine"),
    # sensors: their kinds and states; tasking orders' state and alert
    N_("temperature"), N_("humidity"), N_("tank_level"), N_("excursion"), N_("variance"), N_("offline"),
    N_("open"), N_("tasking_overdue"),
    # readiness
    N_("peacetime"), N_("emergency"), N_("wartime"),
    N_("pending_confirmation"), N_("effective"), N_("superseded"), N_("withdrawn"),
    # audit outcomes
    N_("failed"),
    # problem titles (stockpile.domain.errors, stockpile.api.problems)
    N_("Conflict"), N_("Insufficient stock"), N_("Unusable lot"), N_("Protected floor"),
    N_("Idempotency key reused with a different request"), N_("Forbidden"), N_("Not found"), N_("Invalid request"),
    N_("Plan too large"), N_("Too many requests"), N_("Authentication required"), N_("Internal error"),
    N_("Method not allowed"), N_("Request body too large"), N_("Concurrent update, retry"),
)

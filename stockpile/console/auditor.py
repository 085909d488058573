"""The auditor's console: audit events with filters (the API's read and need-to-know), and the
chain's verification result."""

from __future__ import annotations

from datetime import datetime

from litestar import Request, Response, get, post

from stockpile.api.auth import requires
from stockpile.console import exports
from stockpile.console.web import read_form, render, signed_in
from stockpile.domain.errors import Invalid
from stockpile.services import audit

can_audit = requires("auditor", "admin")
PAGE = 200


def _moment(value: str | None, field: str) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid.field(field, "must be a date or a date and time") from None
    return moment if moment.tzinfo else moment.astimezone()


async def _events(request: Request, since: str | None, actor: str | None, action: str | None) -> list[dict]:
    state = request.app.state
    return await audit.events(state.db, state.settings.audit_key_bytes, request.user, since=_moment(since, "since"),
                              until=None, actor=actor or None, target=None, action=action or None, before_id=None,
                              limit=PAGE)


@get("/audit", guards=[signed_in, can_audit])
async def audit_page(request: Request, since: str | None = None, actor: str | None = None,
                     action: str | None = None) -> Response:
    events = await _events(request, since, actor, action)
    return render(request, "audit.html", events=events, since=since or "", actor=actor or "", action=action or "",
                  report=None)


@post("/audit/verify", guards=[signed_in, can_audit])
async def verify(request: Request) -> Response:
    """Seal what has committed and verify the whole chain and its checkpoints (as ``stockpile audit
    verify`` does)."""
    await read_form(request)
    state = request.app.state
    report = await audit.verify(state.db.url, key=state.settings.audit_key_bytes)
    events = await _events(request, None, None, None)
    return render(request, "audit.html", events=events, since="", actor="", action="",
                  report={"ok": report.ok, "text": report.text(), "warnings": report.warnings})


@get("/export/audit.csv", guards=[signed_in, can_audit])
async def export_audit(request: Request, since: str | None = None, actor: str | None = None,
                       action: str | None = None) -> Response:
    return exports.csv_response("audit-events", await _events(request, since, actor, action))


HANDLERS = [audit_page, verify, export_audit]

"""Principals' tokens (admin) and the audit trail (auditor)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.datastructures import State

from stockpile.api import exports
from stockpile.api.audit import write_transaction
from stockpile.api.auth import requires
from stockpile.api.common import Cursor, Limit, decode_cursor, json_response, page, page_limit
from stockpile.api.common import RowCursor
from stockpile.api.schemas.reference import AuditEventPage, DenialCountPage, IssuedToken, Token, TokenPage
from stockpile.api.schemas.problems import problem_answers
from stockpile.api.presenters.access import present_denial, present_token
from stockpile.domain.principals import Rights
from stockpile.services import audit, principals
from stockpile.services.commands import Code, Strict

Role = Literal["operator", "planner", "commander", "auditor", "admin", "metrics"]


class TokenIn(Strict):
    """A token for ``principal``. A new principal is created with these rights (``roles`` required).
    For an existing one the rights must be exactly its own, or left out entirely (a token for it as
    it is); more or fewer answer 409 ``conflict`` unless ``widen`` is true, which adds what is asked
    (never removes) and is recorded in the audit event. A token carrying military clearance is issued
    only by a cleared admin (403 otherwise)."""

    principal: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    roles: Annotated[list[Role], msgspec.Meta(min_length=1)] | None = None
    warehouses: list[Code] = []
    regions: list[Code] = []
    clearance: Literal["military"] | None = None
    expires_in_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] | None = None
    label: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    widen: bool = False

    def asked(self) -> Rights | None:
        """The rights asked for, ``None`` when the request names none."""
        if self.roles is None and not (self.warehouses or self.regions or self.clearance):
            return None
        return Rights.of(self.roles, self.clearance, self.warehouses, self.regions)


class RevokeIn(Strict):
    reason: Annotated[str, msgspec.Meta(max_length=500)] | None = None


class TokenController(Controller):
    path = "/api/v1/tokens"
    tags = ["access"]
    guards = [requires("admin")]

    @post("/", summary="Create a token for a principal (shown once, stored hashed); never widens one silently",
          responses=problem_answers(409))
    async def create(self, request: Request, state: State, data: TokenIn) -> Response[IssuedToken]:
        expires_at = (datetime.now(timezone.utc) + timedelta(days=data.expires_in_days)) if data.expires_in_days else None
        async with write_transaction(request, state.db) as (tx, note):
            issued = await principals.issue_token(tx.pg, data.principal, data.asked(), widen=data.widen,
                                                  label=data.label, expires_at=expires_at, issuer=request.user)
            row = issued.record
            note.status, note.target = 201, f"/api/v1/tokens/{row['id']}"
            note.details = {"principal": data.principal, "roles": sorted(row["roles"]), "created": issued.created}
            if not issued.added.empty:
                note.details["widened"] = issued.added.described()
        return json_response({**present_token(row), "token": issued.token}, 201)

    @get("/", summary="Tokens (never their values)")
    async def listing(self, state: State, principal: str | None = None, limit: Limit = None,
                      cursor: Cursor = None) -> Response[TokenPage]:
        size = page_limit(limit)
        async with state.db.transaction() as tx:
            rows = await principals.tokens_page(tx.pg, name=principal, after=decode_cursor(cursor, int), limit=size + 1)
        return json_response(page([present_token(r) for r in rows], size, lambda item: item["id"]))

    @post("/{token_id:int}/revoke", status_code=200, summary="Revoke a token at once",
          responses=problem_answers(404, 409))
    async def revoke(self, request: Request, state: State, token_id: int,
                     data: RevokeIn | None = None) -> Response[Token]:
        async with write_transaction(request, state.db) as (tx, note):
            row, count = await principals.revoke_token(tx.pg, token_id, request.user)
            note.details = {"revoked": count, "reason": data.reason if data else None}
        for authenticator in state.authenticators:
            getattr(authenticator, "forget", lambda: None)()
        return json_response(present_token(row))


class AuditController(Controller):
    path = "/api/v1/audit-events"
    tags = ["access"]
    guards = [requires("auditor", "admin")]

    @get("/", summary="The audit trail, newest first (need-to-know: restricted events without target or details "
                      "for readers without military clearance)")
    async def listing(
        self, request: Request, state: State, since: datetime | None = None, until: datetime | None = None,
        actor: str | None = None, target: str | None = None, action: str | None = None, limit: Limit = None,
        cursor: Cursor = None,
    ) -> Response[AuditEventPage]:
        if exports.wants_csv(request):
            return await exports.respond(request, state, "audit-events")
        size = page_limit(limit)
        items = await audit.events(state.db, state.settings.audit_key_bytes, request.user, since=since, until=until,
                                   actor=actor, target=target, action=action, before_id=decode_cursor(cursor, int),
                                   limit=size + 1)
        return json_response(page(items, size, lambda item: item["id"]))


class AuditDenialController(Controller):
    """Denied requests (401, 403, 429) as counts per minute, actor, route and status."""

    path = "/api/v1/audit-denials"
    tags = ["access"]
    guards = [requires("auditor", "admin")]

    @get("/", summary="Denied requests counted per minute, principal or client address, route and status; newest first")
    async def listing(self, state: State, since: datetime | None = None, actor: str | None = None,
                      limit: Limit = None, cursor: Cursor = None) -> Response[DenialCountPage]:
        size = page_limit(limit)
        after = decode_cursor(cursor, RowCursor)
        await state.denials.flush()  # this process's latest counts are part of what is read
        async with state.db.transaction() as tx:
            rows = await audit.denials(tx.pg, since=since, actor=actor, before_id=after, limit=size + 1)
        items = [present_denial(r) for r in rows]
        return json_response(page(items, size, lambda item: item["id"]))

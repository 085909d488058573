"""The console's edge: who is signed in, rendering a page, reading a form, applying it once, and
showing a failure in place (from the same problem details the API answers).

A form is decoded here into the use case's command and applied through the same services as the
API; the API's guards (``stockpile.api.auth.requires``) decide who may submit it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import msgspec
from litestar import Request, Response
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException, ValidationException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractMiddleware
from litestar.response import Redirect, Template
from litestar.types import Receive, Scope, Send

from stockpile.api import problems
from stockpile.api.audit import record_failure
from stockpile.api.auth import authenticate_token
from stockpile.api.common import apply_once
from stockpile.console import i18n
from stockpile.console.session import COOKIE, Sealer, form_key, fingerprint, same
from stockpile.domain.errors import DomainError, Invalid

log = logging.getLogger("stockpile.console")

SIGN_IN = "/console/sign-in"


class SessionMiddleware(AbstractMiddleware):
    """Puts the signed-in principal (or None) and the session on the request."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.setdefault("state", {})
        scope["user"] = None
        request = Request(scope)
        sealer: Sealer = scope["litestar_app"].state.console_sealer
        session = sealer.open(request.cookies.get(COOKIE))
        if session is not None:
            try:
                scope["user"] = await authenticate_token(request, session.token, "sign in again")
                state["console_session"] = session
            except NotAuthorizedException:
                scope["user"] = None
        await self.app(scope, receive, send)


async def signed_in(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    if connection.user is None:
        raise NotAuthorizedException("sign in to use the console")


def speaker(request: Request) -> i18n.Speaker:
    return i18n.Speaker(i18n.choose(request.query_params.get("lang"), request.cookies.get(i18n.LANG_COOKIE),
                                    request.headers.get("accept-language")))


def render(request: Request, template: str, status: int = 200, **context: Any) -> Template:
    """A page in the request's language, every form on it carrying the session's CSRF value and a
    fresh idempotency key."""
    voice = speaker(request)
    session = request.scope.get("state", {}).get("console_session")
    response = Template(template_name=template, status_code=status, context={
        **voice.context(), "principal": request.user if request.scope.get("user") else None,
        "csrf": session.csrf if session else "", "form_key": form_key, "path": request.url.path,
        "query": dict(request.query_params), **context,
    })
    if request.query_params.get("lang") in i18n.LANGUAGES:
        response.set_cookie(i18n.LANG_COOKIE, voice.lang, path="/console", samesite="strict", httponly=True)
    return response


def done(request: Request, path: str, message: str) -> Response:
    """After a form applied: back to the page it came from (a reload does not submit it again)."""
    return Redirect(f"{path}?done={quote(message)}", status_code=303)


@dataclass
class Failure:
    """A refused form as the page shows it: the problem's title, detail and field errors."""

    form: str
    title: str
    detail: str
    status: int
    type: str
    errors: list[dict] = field(default_factory=list)


def problem_of(request: Request, exc: Exception) -> dict[str, Any]:
    """The problem details the API would answer for ``exc`` (never a stack trace)."""
    if isinstance(exc, msgspec.ValidationError):
        exc = ValidationException(str(exc))
    for kind, handler in problems.HANDLERS.items():
        if isinstance(exc, kind):
            response = handler(request, exc)
            return msgspec.json.decode(response.content)
    return {"type": "internal", "title": "Internal error", "status": 500, "detail": "the service failed"}


class Form(dict):
    """A submitted form's fields (the last value of each), and every value of the repeated ones."""

    def __init__(self, fields: dict[str, str], multi: dict[str, list[str]]) -> None:
        super().__init__(fields)
        self.multi = multi

    def text(self, name: str) -> str | None:
        value = (self.get(name) or "").strip()
        return value or None

    def all(self, name: str) -> list[str]:
        return [v.strip() for v in self.multi.get(name, [])]


async def read_form(request: Request) -> Form:
    """The form's fields, once its CSRF value matches the session's (403 otherwise)."""
    data = await request.form()
    fields = {k: v for k, v in data.items() if isinstance(v, str)}
    multi = {k: [v for v in data.getall(k) if isinstance(v, str)] for k in data.keys()}
    session = request.scope.get("state", {}).get("console_session")
    if session is None or not same(session.csrf, fields.get("_csrf")):
        raise PermissionDeniedException("this form has expired or did not come from the console; reload the page")
    return Form(fields, multi)


def decimal_field(form: Form, name: str) -> str:
    """A decimal amount as typed (thousands separators dropped); the use case checks its precision."""
    value = form.text(name)
    if value is None:
        raise Invalid.field(name, "is required")
    try:
        Decimal(value.replace(",", ""))
    except InvalidOperation:
        raise Invalid.field(name, "must be a number") from None
    return value.replace(",", "")


def day_field(form: Form, name: str) -> str | None:
    """A date field, ISO-written, or None when empty."""
    value = form.text(name)
    if value is None:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise Invalid.field(name, "must be a date (YYYY-MM-DD)") from None


def command_of(kind: type, body: dict) -> Any:
    """The use case's command from a form's values (empty ones left out), shape-checked as the API checks a body."""
    try:
        return msgspec.convert({k: v for k, v in body.items() if v is not None}, kind, strict=False)
    except msgspec.ValidationError as exc:
        raise Invalid.field(str(exc).rpartition("$.")[2].rstrip("`") or "form", str(exc)) from None


async def apply(request: Request, form: Form, run: Callable[[Any], Awaitable[tuple[int, Any]]]) -> dict:
    """Apply a form once per its idempotency key (a double submit, or a page submitted again,
    answers the first outcome), in one transaction with its audit event."""
    key = form.get("_key") or ""
    if not 1 <= len(key) <= 200 or not key.isprintable() or not key.isascii():
        raise PermissionDeniedException("this form has no valid key; reload the page")
    _, body, _ = await apply_once(request, request.app.state.db, key, fingerprint(request.url.path, form), run)
    return msgspec.json.decode(body)


async def attempt(request: Request, form_name: str, action: Callable[[], Awaitable[Response]],
                  again: Callable[[Failure], Awaitable[Response]]) -> Response:
    """Run a form's action; a refusal re-renders the page with the problem shown at the form
    (nothing was written: the transaction rolled back and the key is free again)."""
    try:
        return await action()
    except (DomainError, problems.Problem, ValidationException, msgspec.ValidationError) as exc:
        problem = problem_of(request, exc)
        await record_failure(exc if not isinstance(exc, msgspec.ValidationError) else ValidationException(str(exc)),
                             request.scope)
        return await again(Failure(form_name, problem.get("title", ""), problem.get("detail", ""),
                                   int(problem.get("status", 422)), problem.get("type", ""),
                                   problem.get("errors", [])))


def failure_page(request: Request, exc: Exception) -> Response:
    """The console's exception handler: sign-in for a missing session, else the problem as a page."""
    if isinstance(exc, NotAuthorizedException) and request.scope.get("user") is None:
        target = SIGN_IN if request.method != "GET" else f"{SIGN_IN}?next={quote(request.url.path)}"
        response = Redirect(target, status_code=303)
        if request.headers.get("hx-request"):
            response.headers["HX-Redirect"] = target
        return response
    problem = problem_of(request, exc)
    status = int(problem.get("status", 500))
    if status >= 500:
        log.error("console failure path=%s type=%s", request.url.path, problem.get("type"))
    return render(request, "error.html", status=status, problem=problem)

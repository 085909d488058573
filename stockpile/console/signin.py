"""Signing in with a token, signing out, and the home page of the signed-in principal."""

from __future__ import annotations

import secrets

from litestar import Request, Response, get, post
from litestar.exceptions import NotAuthorizedException
from litestar.response import Redirect

from stockpile.api.auth import authenticate_token
from stockpile.console.session import SIGN_IN_COOKIE, end_session, same, secure, set_session
from stockpile.console.web import read_form, render, signed_in

MAX_TOKEN = 200


def _sign_in_page(request: Request, status: int = 200, error: str | None = None) -> Response:
    value = secrets.token_urlsafe(24)
    response = render(request, "sign_in.html", status=status, sign_in_csrf=value, error=error,
                      next=_next(request.query_params.get("next")))
    response.set_cookie(SIGN_IN_COOKIE, value, path="/console/sign-in", httponly=True, samesite="strict",
                        secure=secure(request), max_age=3600)
    return response


def _next(target: str | None) -> str:
    """Where to go after signing in: a console page, never another site."""
    if target and target.startswith("/console") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console"


@get("/sign-in", name="console:sign-in")
async def sign_in_form(request: Request) -> Response:
    return _sign_in_page(request)


@post("/sign-in", name="console:sign-in-post")
async def sign_in(request: Request) -> Response:
    data = await request.form()
    if not same(request.cookies.get(SIGN_IN_COOKIE), data.get("_csrf")):
        return _sign_in_page(request, 403, "expired")
    token = str(data.get("token") or "").strip()
    try:
        if not token or len(token) > MAX_TOKEN:
            raise NotAuthorizedException("no token")
        principal = await authenticate_token(request, token, "no token")
    except NotAuthorizedException:
        return _sign_in_page(request, 401, "unknown")
    request.scope["user"] = principal
    response = Redirect(_next(str(data.get("next") or "")), status_code=303)
    set_session(response, request, request.app.state.console_sealer, request.app.state.console_sealer.new(token))
    response.delete_cookie(SIGN_IN_COOKIE, path="/console/sign-in")
    return response


@post("/sign-out", guards=[signed_in])
async def sign_out(request: Request) -> Response:
    await read_form(request)
    response = Redirect("/console/sign-in", status_code=303)
    end_session(response, request)
    return response


@get("/", guards=[signed_in])
async def home(request: Request) -> Response:
    from stockpile.console import operator, planner

    principal = request.user
    context = {}
    async with request.app.state.db.transaction() as tx:
        if principal.has_any({"operator", "admin"}):
            context["warehouses"] = await operator.my_warehouses(tx.pg, principal)
        if principal.has_any({"planner", "commander", "admin"}):
            context["regions"] = planner.by_region(await planner.coverage_rows(tx.pg, principal))
    return render(request, "home.html", **context)


HANDLERS = [sign_in_form, sign_in, sign_out, home]

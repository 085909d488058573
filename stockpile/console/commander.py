"""The commander's console: every region's readiness on a map of its warehouses, and declaring,
withdrawing and confirming (the second commander of the two-person rule) through the API's use
cases and guards."""

from __future__ import annotations

from uuid import UUID

from litestar import Request, Response, get, post

from stockpile.api.auth import can_read, requires
from stockpile.api.presenters.masterdata import present_master
from stockpile.api.presenters.readiness import present_declaration, present_level
from stockpile.console import charts
from stockpile.console.web import (
    Failure, Form, apply, attempt, command_of, done, read_form, render, signed_in, speaker,
)
from stockpile.domain.moments import Clock
from stockpile.services import commands as c
from stockpile.services import masterdata, readiness

LEVELS = ("peacetime", "emergency", "wartime")
can_declare = requires("commander")


async def _page(request: Request, failure: Failure | None = None, values: Form | None = None) -> Response:
    principal = request.user
    voice = speaker(request)
    async with request.app.state.db.transaction() as tx:
        levels = [present_level(item) for item in await readiness.levels(tx.pg)]
        declarations = [present_declaration(r) for r in await readiness.declarations(
            tx.pg, region=None, state=None, before=None, limit=50)]
        warehouses = [present_master("warehouses", w)
                      for w in await masterdata.page(tx.pg, "warehouses", principal, after=None, limit=5000)]
    level_of = {r["region"]: r["level"] for r in levels}
    places = [charts.Place(w["code"], w["name"], w["latitude"], w["longitude"], level_of.get(w["region"], "peacetime"),
                           voice.gettext(level_of.get(w["region"], "peacetime"))) for w in warehouses]
    return render(request, "readiness.html", status=failure.status if failure else 200, failure=failure,
                  values=values or {}, levels=levels, declarations=declarations, level_names=LEVELS,
                  map=charts.region_map(voice.gettext("Readiness of the regions, by warehouse"), places,
                                        [(level, voice.gettext(level)) for level in LEVELS]),
                  may_declare=principal.has_any({"commander"}), done_message=request.query_params.get("done"))


@get("/readiness", guards=[signed_in, can_read])
async def readiness_page(request: Request) -> Response:
    return await _page(request)


@post("/readiness/declarations", guards=[signed_in, can_declare])
async def declare(request: Request) -> Response:
    form = await read_form(request)

    async def action() -> Response:
        command = command_of(c.DeclarationIn, {"region": form.text("region"), "level": form.text("level"),
                                             "reason": form.text("reason") or ""})

        async def run(tx):
            return 201, present_declaration(await readiness.declare(tx.pg, command, request.user, Clock.utc().now))

        declared = await apply(request, form, run)
        return done(request, "/console/readiness", f"{declared['region']}: {declared['level']} ({declared['state']})")

    return await attempt(request, "declare", action, lambda failure: _page(request, failure, form))


def _step(name: str, use_case):
    async def handler(request: Request, declaration_id: UUID) -> Response:
        form = await read_form(request)

        async def action() -> Response:
            async def run(tx):
                return 200, present_declaration(await use_case(tx.pg, str(declaration_id), request.user))

            declared = await apply(request, form, run)
            return done(request, "/console/readiness", f"{declared['region']}: {declared['level']} ({declared['state']})")

        return await attempt(request, f"{name}-{declaration_id}", action, lambda failure: _page(request, failure, form))

    handler.__name__ = f"declaration_{name}"
    return post(f"/readiness/declarations/{{declaration_id:uuid}}/{name}", guards=[signed_in, can_declare])(handler)


confirm = _step("confirm", readiness.confirm)
withdraw = _step("withdraw", readiness.withdraw)

HANDLERS = [readiness_page, declare, confirm, withdraw]

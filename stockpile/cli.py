"""The ``stockpile`` command (also ``python -m stockpile``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import sys
import warnings
from dataclasses import replace
from pathlib import Path

from stockpile.config import Settings, get_settings
from stockpile.domain.access import CAPACITY_SURVEYORS, MASTER_DATA_WRITERS, MOVEMENT_POSTERS, PLANNERS, ROLES
from stockpile.domain.principals import CLI_PREFIX

log = logging.getLogger("stockpile")


def _configure_logging(level: str) -> None:
    from stockpile.logs import configure

    configure(level)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")  # pgserver's runtime-dir notice


def database_url(settings: Settings) -> str:
    """``DATABASE_URL`` if set; otherwise the embedded server in the data directory (started now)."""
    if settings.database_url:
        return settings.database_url
    from stockpile.store.engine import start_embedded

    url = start_embedded(settings.data_dir)
    os.environ["DATABASE_URL"] = url
    return url


def _run(coro):
    return asyncio.run(coro)


async def _is_empty(url: str) -> bool:
    from stockpile.store.db import Database
    from stockpile.store.masterdata import any_party

    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as tx:
            return not await any_party(tx.pg)
    finally:
        await db.dispose()


def demo_wanted(*, embedded: bool, setting: bool, asked: bool = False, refused: bool = False) -> bool:
    """Whether ``serve`` loads the demo into an empty database.

    The demo prints admin and commander tokens, so it belongs on a laptop: on the embedded database
    ``STOCKPILE_DEMO`` (default true) decides. A server named by ``DATABASE_URL`` gets it only when
    ``serve --demo`` asks — ``STOCKPILE_DEMO=true`` is not enough, so a setting copied from a laptop
    never puts demo tokens on a real server. ``--no-demo`` always wins; ``--demo`` beats the setting.
    """
    if refused:
        return False
    return asked or (embedded and setting)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from stockpile.store.engine import upgrade

    demo = demo_wanted(embedded=not settings.database_url, setting=settings.demo, asked=args.demo,
                       refused=args.no_demo)
    settings = replace(
        settings,
        host=args.host or settings.host, port=args.port or settings.port,
        workers=args.workers or settings.workers, demo=demo,
    )
    url = database_url(settings)
    if settings.migrate_on_start:
        upgrade(url)
    if settings.demo and _run(_is_empty(url)):
        from stockpile.demo import DemoRefused, load_demo

        try:
            result = _run(load_demo(url, tokens_file=settings.data_dir / "demo-tokens.txt"))
            print(result.report(), flush=True)
            _run(_first_look(settings, url))
        except DemoRefused as exc:  # another replica loaded it first
            log.info("demo not loaded: %s", exc)
    elif settings.database_url and settings.migrate_on_start and not args.no_demo and _run(_is_empty(url)):
        log.info("the database is empty; demo data goes into a DATABASE_URL database only with serve --demo")
    os.environ["STOCKPILE_HOST"], os.environ["STOCKPILE_PORT"] = settings.host, str(settings.port)
    # Every worker process seals console sessions with one key (sessions end when the service restarts).
    os.environ.setdefault("STOCKPILE_CONSOLE_SECRET", secrets.token_hex(32))
    if settings.workers > 1:
        _count_across_processes()
    print(f"stockpile serving on http://{settings.host}:{settings.port} (API docs at /docs)", flush=True)
    from stockpile.logs import logging_config

    # proxy_headers off: a forwarded client address is believed only from STOCKPILE_TRUSTED_PROXIES,
    # decided in one place (stockpile.api.auth.RequestLimits.client_address), not by uvicorn.
    uvicorn.run(
        "stockpile.api.app:app_from_env", factory=True, host=settings.host, port=settings.port,
        workers=settings.workers, log_level=settings.log_level, access_log=False, lifespan="on",
        log_config=logging_config(settings.log_level), proxy_headers=False,
    )
    return 0


def _count_across_processes() -> None:
    """Several API processes: Prometheus's multiprocess mode, so a scrape of any of them counts all.
    The directory is this instance's own (``PROMETHEUS_MULTIPROC_DIR`` if set), its count files
    removed at start: counts of an earlier run must not be added to this one's."""
    import tempfile

    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        os.makedirs(directory, exist_ok=True)
        for counts in Path(directory).glob("*.db"):
            counts.unlink()
    else:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="stockpile-metrics-")


async def _first_look(settings: Settings, url: str) -> None:
    """Plan rotation, evaluate alerts and take a metrics snapshot once, so a newcomer sees orders,
    alerts and metrics before a worker runs."""
    from stockpile.jobs.catalog import catalog
    from stockpile.jobs.runs import manual_slot, run_slot
    from stockpile.store.db import Database

    db = Database(url, pool_size=2)
    try:
        jobs = catalog(settings)
        for name in ("plan-rotation", "evaluate-alerts", "evaluate-sensors", "refresh-metrics"):
            await run_slot(db, jobs[name], slot=manual_slot())
    finally:
        await db.dispose()


def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    from stockpile.store.engine import head_revision, upgrade

    upgrade(database_url(settings))
    print(f"database at revision {head_revision()}")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from stockpile.demo import DemoRefused, load_demo
    from stockpile.store.engine import upgrade

    url = database_url(settings)
    upgrade(url)
    try:
        print(_run(load_demo(url)).report())
    except DemoRefused as exc:
        print(f"demo not loaded: {exc}", file=sys.stderr)
        return 1
    _run(_first_look(settings, url))
    return 0


def os_user() -> str:
    """Who runs the command, as the operating system says (the ``cli:<user>`` of audit rows)."""
    import getpass

    return getpass.getuser()


def cli_principal_name() -> str:
    """``cli:<user>``: the name a command run without ``--as`` is attributed to."""
    return f"{CLI_PREFIX}{os_user()}"


async def cli_audit(pg, action: str, target: str | None, details: dict, principal=None) -> None:
    """Record a state-changing CLI action in the audit trail (in the caller's transaction): under the
    principal it ran ``--as``, or under ``cli:<user>``."""
    from datetime import datetime, timezone

    from stockpile.store import audit

    if principal is None:
        actor, roles = cli_principal_name(), []
    else:
        actor, roles, details = principal.name, sorted(principal.roles), {**details, "os_user": os_user()}
    await audit.append(
        pg, at=datetime.now(timezone.utc), actor=actor, roles=roles, action=f"cli {action}",
        target=target, outcome="ok", status=None, client=None, request_id=None, details=details,
    )


async def _in_transaction(url: str, work):
    from stockpile.store.db import Database

    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as tx:
            return await work(tx.pg)
    finally:
        await db.dispose()


def _refused(run):
    """Run a unit of work: ``(None, what it returned)``; or, when the reserve's rules refuse it,
    ``(exit status, None)`` with the refusal printed (1: nothing of that name, 2: refused) and
    nothing written."""
    from stockpile.domain.errors import DomainError, NotFound

    try:
        return None, run()
    except DomainError as exc:
        print(exc.detail, file=sys.stderr)
        return 1 if isinstance(exc, NotFound) else 2, None


def _asked_rights(args: argparse.Namespace):
    """The rights a ``token create`` names, ``None`` when it names none."""
    from stockpile.domain.principals import Rights

    if not (args.role or args.clearance or args.warehouse or args.region):
        return None
    return Rights.of(args.role, args.clearance, args.warehouse, args.region)


def cmd_token_create(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import datetime, timedelta, timezone

    from stockpile.services import principals

    asked = _asked_rights(args)

    async def work(pg):
        expires_at = datetime.now(timezone.utc) + timedelta(days=args.expires_in_days) if args.expires_in_days else None
        done = await principals.issue_token(pg, args.name, asked, widen=args.widen, label=args.label,
                                            expires_at=expires_at)
        details = {"token_id": done.record["id"], "created": done.created,
                   **(asked.described() if asked else {})}
        if not done.added.empty:
            details["widened"] = done.added.described()
        await cli_audit(pg, "token create", args.name, details)
        return done

    status, done = _refused(lambda: _run(_in_transaction(database_url(settings), work)))
    if status is not None:
        return status
    if not done.added.empty:
        print(f"{args.name} widened: added {done.added.text()}")
    roles = ", ".join(done.record["roles"]) or "none"
    print(f"token {done.record['id']} for {args.name} (roles: {roles}"
          + (f"; clearance {done.record['clearance']}" if done.record["clearance"] else "")
          + "); it is shown only once:")
    print(done.token)
    return 0


def cmd_token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from stockpile.store import tokens

    async def work(pg):
        count = await tokens.revoke(pg, token=args.token, token_id=args.id, principal=args.name, by=cli_principal_name())
        await cli_audit(pg, "token revoke", args.name or (str(args.id) if args.id else "token"), {"revoked": count})
        return count

    if not (args.token or args.id or args.name):
        print("give --token, --id or --name", file=sys.stderr)
        return 2
    count = _run(_in_transaction(database_url(settings), work))
    print(f"revoked {count} token(s)")
    return 0 if count else 1


def _moment(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def _token_lines(rows) -> list[str]:
    """Tokens as an aligned table (never their values: only hashes are stored)."""
    table = [("id", "principal", "roles", "label", "created", "expires", "revoked")]
    table += [(str(r["id"]), r["principal"] + (" (disabled)" if r["principal_disabled_at"] else ""),
               ",".join(r["roles"]) or "-", r["label"] or "-", _moment(r["created_at"]), _moment(r["expires_at"]),
               _moment(r["revoked_at"])) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]


def cmd_token_list(args: argparse.Namespace, settings: Settings) -> int:
    from stockpile.services import principals

    async def work(pg):
        return await principals.tokens_of(pg, args.name, include_all=args.all)

    status, rows = _refused(lambda: _run(_in_transaction(database_url(settings), work)))
    if status is not None:
        return status
    print("\n".join(_token_lines(rows)))
    return 0


def cmd_principal_show(args: argparse.Namespace, settings: Settings) -> int:
    from stockpile.services import principals

    async def work(pg):
        return await principals.show(pg, args.name)

    status, p = _refused(lambda: _run(_in_transaction(database_url(settings), work)))
    if status is not None:
        return status
    print(f"principal  {p['name']}")
    print(f"roles      {', '.join(p['roles']) or '-'}")
    print(f"clearance  {p['clearance'] or '-'}")
    print(f"warehouses {', '.join(p['warehouses']) or '-'}")
    print(f"regions    {', '.join(p['regions']) or '-'}")
    print(f"created    {_moment(p['created_at'])}")
    print(f"disabled   {_moment(p['disabled_at']) if p['disabled_at'] else 'no'}")
    print("tokens:" if p["tokens"] else "tokens:    none")
    if p["tokens"]:
        print("\n".join("  " + line for line in _token_lines(p["tokens"])))
    return 0


def _principal_change(settings: Settings, action: str, name: str, change, done: str, nothing: str) -> int:
    """Apply one change to a principal and audit it in the same transaction; exit 1 when it changed
    nothing (and nothing is audited)."""
    async def work(pg):
        result = await change(pg)
        if result:
            await cli_audit(pg, action, name, result if isinstance(result, dict) else {})
        return result

    status, changed = _refused(lambda: _run(_in_transaction(database_url(settings), work)))
    if status is not None:
        return status
    print(done if changed else nothing, file=sys.stdout if changed else sys.stderr)
    return 0 if changed else 1


def cmd_principal_revoke_role(args: argparse.Namespace, settings: Settings) -> int:
    from stockpile.services import principals

    async def change(pg):
        return await principals.revoke_role(pg, args.name, args.role) and {"role": args.role}

    return _principal_change(settings, "principal revoke-role", args.name, change,
                             f"{args.name} no longer holds the role {args.role} (nor does any token of it)",
                             f"{args.name} did not hold the role {args.role}; nothing changed")


def cmd_principal_revoke_clearance(args: argparse.Namespace, settings: Settings) -> int:
    from stockpile.services import principals

    async def change(pg):
        return await principals.revoke_clearance(pg, args.name) and {"clearance": "military"}

    return _principal_change(settings, "principal revoke-clearance", args.name, change,
                             f"{args.name} is no longer cleared for military stock",
                             f"{args.name} held no clearance; nothing changed")


def cmd_principal_ungrant(args: argparse.Namespace, settings: Settings) -> int:
    from stockpile.services import principals

    asked = sorted(set(args.warehouse or []) | set(args.region or []))
    removed = []

    async def change(pg):
        removed.extend(await principals.ungrant(pg, args.name, args.warehouse or [], args.region or []))
        return removed and {"warehouses": sorted(set(removed) & set(args.warehouse or [])),
                            "regions": sorted(set(removed) & set(args.region or []))}

    status = _principal_change(settings, "principal ungrant", args.name, change,
                               f"{args.name}: grants removed", f"{args.name} held none of {', '.join(asked)}; "
                                                               "nothing changed")
    if status == 0:
        print(f"removed: {', '.join(removed)}")
        if set(asked) - set(removed):
            print(f"not granted (left alone): {', '.join(sorted(set(asked) - set(removed)))}")
    return status


def cmd_principal_disable(args: argparse.Namespace, settings: Settings) -> int:
    from stockpile.services import principals

    disable = args.principal_command == "disable"

    async def change(pg):
        return await principals.set_disabled(pg, args.name, disable) and {"disabled": disable}

    state = "disabled" if disable else "enabled"
    return _principal_change(settings, f"principal {args.principal_command}", args.name, change,
                             f"{args.name} {state}" + (": none of its tokens authenticates any more" if disable else ""),
                             f"{args.name} was already {state}; nothing changed")


def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    from stockpile.services.audit import AnchorUnreadable, verify

    try:
        report = _run(verify(database_url(settings), key=settings.audit_key_bytes, anchor_file=args.anchor,
                             expect_seq=args.expect_seq))
    except AnchorUnreadable as exc:
        print(f"audit anchor unreadable: {exc}", file=sys.stderr)
        return 2
    print(report.text())
    for warning in report.warnings:
        print(f"WARNING: {warning}", file=sys.stderr)
    return 0 if report.ok else 1


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from stockpile.jobs.scheduler import run_worker

    _run(run_worker(settings, database_url(settings)))
    return 0


def cmd_job_run(args: argparse.Namespace, settings: Settings) -> int:
    from stockpile.jobs.catalog import catalog
    from stockpile.jobs.runs import manual_slot, run_slot
    from stockpile.store.db import Database

    jobs = catalog(settings)
    if args.name not in jobs:
        print(f"unknown job {args.name!r}; jobs: {', '.join(sorted(jobs))}", file=sys.stderr)
        return 2

    async def work():
        db = Database(database_url(settings), pool_size=2)
        try:
            return await run_slot(db, jobs[args.name], slot=manual_slot())
        finally:
            await db.dispose()

    outcome = _run(work())
    print(f"{outcome.job}: {outcome.outcome} in {outcome.seconds:.3f} s")
    print(json.dumps(outcome.detail, indent=2, default=str))
    return 0 if outcome.outcome == "ok" else 1


def cmd_drill(args: argparse.Namespace, settings: Settings) -> int:
    """Run a drill from a YAML or JSON scenario (the body of POST /api/v1/drills) and print its report."""
    import msgspec
    import yaml

    from stockpile.domain.errors import DomainError
    from stockpile.services import commands as c
    from stockpile.services import drills
    from stockpile.domain.moments import Clock
    from stockpile.services import principals
    from stockpile.services.planning import Limits

    try:
        with open(args.file, encoding="utf-8") as f:
            raw = yaml.safe_load(f)  # JSON is YAML too
        scenario = msgspec.convert(raw, c.DrillIn, strict=False)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        print(f"cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    except msgspec.ValidationError as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 2

    async def work():
        from stockpile.store.db import Database

        db = Database(database_url(settings), pool_size=2)
        try:
            actor = None  # the trusted command line plans every request and sees the whole report
            # --as is looked up once, before the solve (refused before it, not after it): its scope and
            # clearance apply to the solve and to the record alike
            if args.as_name:
                async with db.transaction() as tx:
                    actor = await principals.acting_as(tx.pg, args.as_name, PLANNERS, "run drills")
            report = await drills.on_snapshot(db, scenario, Clock.utc().today, Limits.of(settings), actor)
            async with db.transaction() as tx:
                principal = actor or await principals.command_line(tx.pg, os_user())
                stored = await drills.record(tx.pg, scenario, report, principal.id, actor)
                await cli_audit(tx.pg, "drill", scenario.name or None, {"id": stored["id"]}, actor)
            return stored
        finally:
            await db.dispose()

    try:
        report = _run(work())
    except DomainError as exc:
        print(f"the drill was refused: {exc.detail}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2, default=str) if args.json else drills.readable(report))
    return 0


def _progress(done: int, total: int) -> None:
    """A progress bar on stderr (a line per step when stderr is not a terminal)."""
    width = 30
    filled = width * done // max(total, 1)
    bar = f"[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} rows"
    if sys.stderr.isatty():
        print(f"\r{bar}", end="" if done < total else "\n", file=sys.stderr, flush=True)
    else:
        print(bar, file=sys.stderr, flush=True)


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    from stockpile.domain.errors import DomainError
    from stockpile.services.imports import ImportError_, run_import

    try:
        with open(args.file, encoding="utf-8-sig", newline="") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    master_data = args.resource not in (None, "movements")

    async def work():
        from stockpile.store.db import Database

        db = Database(database_url(settings), pool_size=1)
        try:
            async with (await db.pool()).acquire() as pg:
                tx = pg.transaction()
                await tx.start()
                try:
                    principal, named = await _acting(
                        pg, args.as_name, CAPACITY_SURVEYORS if args.resource == "capacities"
                        else MASTER_DATA_WRITERS if master_data else MOVEMENT_POSTERS,
                        "import master data" if master_data else "import movements")
                    report = await run_import(pg, text, principal, resource=args.resource, per_row=args.per_row,
                                              progress=_progress)
                    if report.committed:
                        await cli_audit(pg, f"import {report.resource}", args.file,
                                        {"rows": report.rows, "written": report.written,
                                         "refused": len(report.refused), "per_row": args.per_row},
                                        principal if named else None)
                except BaseException:
                    await tx.rollback()
                    raise
                await (tx.commit() if report.committed else tx.rollback())
                return report
        finally:
            await db.dispose()

    try:
        report = _run(work())
    except ImportError_ as exc:
        print(f"{args.file}: {exc}", file=sys.stderr)
        return 2
    except DomainError as exc:  # --as a principal that may not import this
        print(f"the import was refused: {exc.detail}", file=sys.stderr)
        return 2
    if report.already_imported_at:
        print(f"{args.file} was already imported ({report.already_imported_at}); nothing written")
        return 0
    for refusal in report.refused:
        print(f"line {refusal.line}: {refusal.problem}", file=sys.stderr)
    if report.refused and not args.per_row:
        print(f"{len(report.refused)} of {report.rows} {report.resource} rows refused; nothing written "
              "(fix them, or --per-row to write the others)")
        return 1
    print(f"{report.written} of {report.rows} {report.resource} rows written"
          + (f", {len(report.refused)} refused" if report.refused else ""))
    return 1 if report.refused else 0


def cmd_simulate_sensors(args: argparse.Namespace, settings: Settings) -> int:
    """Post realistic readings for every registered sensor (see ``services.sensor_simulation``): the
    last ``--hours`` now, then — with ``--follow`` — one round every ``--step-seconds`` until stopped."""
    import time as clock
    from datetime import datetime, timedelta, timezone

    from stockpile.services import principals
    from stockpile.services.sensor_simulation import Scenario, simulate

    scenario = Scenario(excursion=args.excursion or None, leak=args.leak or None)
    step = timedelta(seconds=args.step_seconds)

    async def round_(start: datetime, end: datetime, seed: int):
        async def work(pg):
            principal = await principals.command_line(pg, os_user())
            done = await simulate(pg, principal, scenario, start=start, end=end, step=step, seed=seed,
                                  retention_days=settings.readings_retention_days)
            await cli_audit(pg, "simulate-sensors", None, {"accepted": done.accepted, "duplicates": done.duplicates,
                                                           "refused": len(done.refused)})
            return done

        return await _in_transaction(database_url(settings), work)

    end = datetime.now(timezone.utc).replace(microsecond=0)
    end -= timedelta(seconds=end.timestamp() % args.step_seconds)  # on the step: a rerun resends, stores nothing twice
    start, seed = end - timedelta(hours=args.hours), args.seed
    while True:
        done = _run(round_(start, end, seed))
        print(f"{end.isoformat()}: {done.accepted} readings stored, {done.duplicates} already there"
              + (f", {len(done.refused)} refused" if done.refused else ""), flush=True)
        if not args.follow:
            return 0
        try:
            clock.sleep(args.step_seconds)
        except KeyboardInterrupt:
            return 0
        start, end, seed = end + step, end + step, seed + 1


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    """Write a list as CSV (as ``Accept: text/csv`` answers it) to a file or to stdout."""
    from stockpile.api import exports
    from stockpile.domain.errors import DomainError, Invalid

    export = exports.catalog().get(args.resource)
    if export is None:
        print(f"no export {args.resource!r}; one of: {', '.join(exports.catalog())}", file=sys.stderr)
        return 2
    given: dict[str, str] = {}
    for pair in args.filter or []:
        name, sep, value = pair.partition("=")
        if not sep or name in given:
            print(f"--filter {pair!r}: give each filter once, as NAME=VALUE", file=sys.stderr)
            return 2
        given[name] = value
    try:
        filters = exports.decode_filters(export, given)
    except Invalid as exc:
        print(f"--filter: {exc.detail} (filters of {export.name}: {', '.join(export.filters.__struct_fields__)})",
              file=sys.stderr)
        return 2

    async def work(out) -> int:
        from stockpile.store.db import Database

        db = Database(database_url(settings), pool_size=1)
        try:
            async with db.transaction() as tx:
                principal, _ = await _acting(tx.pg, args.as_name, tuple(sorted(export.needs)), f"read {export.name}")
            return await exports.write(db, settings, export, principal, filters, out)
        finally:
            await db.dispose()

    target = Path(args.output) if args.output else None
    partial = target.with_name(f".{target.name}.partial") if target else None
    try:
        if partial is None:
            rows = _run(work(sys.stdout.buffer))
            sys.stdout.flush()
        else:
            with open(partial, "wb") as out:
                rows = _run(work(out))
            partial.replace(target)  # the file appears whole, or not at all
    except DomainError as exc:  # --as a principal that may not read this
        print(f"the export was refused: {exc.detail}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"cannot write {args.output or 'standard output'}: {exc}", file=sys.stderr)
        return 2
    finally:
        if partial is not None:
            partial.unlink(missing_ok=True)
    print(f"{rows} {export.name} rows exported" + (f" to {target}" if target else ""), file=sys.stderr)
    return 0


AS_HELP = ("act as this existing principal: its roles, scope and clearance apply and the audit names it "
           "(default: the trusted command line, recorded as cli:<OS user>)")


async def _acting(pg, name: str | None, needs: tuple[str, ...], doing: str):
    """The principal a command acts as, and whether it was named with ``--as``: that principal
    (refused if it may not), or the trusted command line attributed to ``cli:<OS user>``."""
    from stockpile.services import principals

    if name:
        return await principals.acting_as(pg, name, needs, doing), True
    return await principals.command_line(pg, os_user()), False


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stockpile", description="National reserve stock service.")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API (embedded PostgreSQL when DATABASE_URL is unset)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, help="uvicorn worker processes (default STOCKPILE_WORKERS or 1)")
    demo_choice = serve.add_mutually_exclusive_group()
    demo_choice.add_argument("--demo", action="store_true",
                             help="load demo data into an empty database even when it is DATABASE_URL's")
    demo_choice.add_argument("--no-demo", action="store_true", help="do not load demo data into an empty database")
    serve.set_defaults(func=cmd_serve)

    db = sub.add_parser("db", help="database maintenance").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply migrations up to the latest").set_defaults(func=cmd_db_upgrade)

    sub.add_parser("demo", help="load the demo data set into an empty database").set_defaults(func=cmd_demo)
    sub.add_parser("worker", help="run the scheduled jobs (APScheduler; several replicas may run)") \
        .set_defaults(func=cmd_worker)
    job = sub.add_parser("job", help="scheduled jobs").add_subparsers(dest="job_command", required=True)
    job_run = job.add_parser("run", help="run one job now and print what it did")
    job_run.add_argument("name")
    job_run.set_defaults(func=cmd_job_run)

    simulate_sensors = sub.add_parser("simulate-sensors", help="post realistic readings for the registered sensors "
                                                            "(the demo's: one cold-chain excursion, one slow leak)")
    simulate_sensors.add_argument("--hours", type=float, default=1.0, help="readings of the last H hours first (default 1)")
    simulate_sensors.add_argument("--follow", action="store_true", help="then keep posting, one round a step, until stopped")
    simulate_sensors.add_argument("--step-seconds", type=int, default=60, help="time between readings (default 60)")
    simulate_sensors.add_argument("--seed", type=int, default=11)
    simulate_sensors.add_argument("--excursion", default="TEMP-W02-COLD",
                                  help="the probe in a cold-chain excursion ('' for none)")
    simulate_sensors.add_argument("--leak", default="GAUGE-N01-DIESEL", help="the gauge with a slow leak ('' for none)")
    simulate_sensors.set_defaults(func=cmd_simulate_sensors)

    imp = sub.add_parser("import", help="import movements or master data from a CSV file (all or nothing by default)")
    imp.add_argument("file", help="CSV with a header of API member names (nested ones dotted: lot.code)")
    imp.add_argument("--resource", choices=["movements", "parties", "regions", "warehouses", "materials",
                                            "capacities"],
                     help="what the file holds (default: movements when it has a kind column)")
    imp.add_argument("--per-row", action="store_true", help="write the rows that pass and report the refused ones")
    imp.add_argument("--as", dest="as_name", metavar="NAME", help=AS_HELP)
    imp.set_defaults(func=cmd_import)
    exp = sub.add_parser("export", help="write a list as CSV (stock, lots, movements, transfers, coverage, alerts, "
                                        "rotation-orders, allocation-requests, audit-events)")
    exp.add_argument("resource", help="the list, named as its path (rotation-orders, audit-events, …)")
    exp.add_argument("--filter", action="append", metavar="NAME=VALUE",
                     help="a filter of the list, as its query parameter (repeatable): --filter warehouse=WH-N-01")
    exp.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: standard output)")
    exp.add_argument("--as", dest="as_name", metavar="NAME", help=AS_HELP)
    exp.set_defaults(func=cmd_export)
    drill = sub.add_parser("drill", help="run a drill from a YAML/JSON scenario and print its report (posts nothing)")
    drill.add_argument("file", help="scenario: readiness overrides, requests, lost_warehouses (as POST /api/v1/drills)")
    drill.add_argument("--json", action="store_true", help="print the full report as JSON")
    drill.add_argument("--as", dest="as_name", metavar="NAME", help=AS_HELP)
    drill.set_defaults(func=cmd_drill)
    token = sub.add_parser("token", help="API tokens").add_subparsers(dest="token_command", required=True)
    create = token.add_parser("create", help="create a token (printed once, alone on the last line)")
    create.add_argument("--name", required=True, help="the principal (person or system) the token belongs to")
    create.add_argument("--role", action="append", choices=ROLES,
                        help="a role (repeatable; needed for a new principal; leave the rights out for a token "
                             "for an existing principal as it is)")
    create.add_argument("--warehouse", action="append", help="grant a warehouse scope (repeatable)")
    create.add_argument("--region", action="append", help="grant a region scope (repeatable)")
    create.add_argument("--clearance", choices=["military"])
    create.add_argument("--label", help="what the token is for")
    create.add_argument("--expires-in-days", type=int, help="the token stops working after this many days")
    create.add_argument("--widen", action="store_true",
                        help="add these rights to an existing principal (and so to every token of it); "
                             "without it a request that differs from the principal's rights is refused")
    create.set_defaults(func=cmd_token_create)
    listing = token.add_parser("list", help="tokens (never their values): live ones unless --all")
    listing.add_argument("--name", help="only this principal's")
    listing.add_argument("--all", action="store_true", help="revoked and expired tokens too")
    listing.set_defaults(func=cmd_token_list)
    revoke = token.add_parser("revoke", help="revoke a token (by value or id) or every token of a principal")
    revoke.add_argument("--token", help="the token itself")
    revoke.add_argument("--id", type=int, help="the token's id (from GET /api/v1/tokens)")
    revoke.add_argument("--name", help="revoke every live token of this principal")
    revoke.set_defaults(func=cmd_token_revoke)

    principal = sub.add_parser("principal", help="principals: their rights, narrowed or disabled") \
        .add_subparsers(dest="principal_command", required=True)
    show = principal.add_parser("show", help="roles, clearance, grants, disabled, and its tokens")
    show.add_argument("name")
    show.set_defaults(func=cmd_principal_show)
    revoke_role = principal.add_parser("revoke-role", help="take a role from a principal and every token of it")
    revoke_role.add_argument("name")
    revoke_role.add_argument("--role", required=True, choices=ROLES)
    revoke_role.set_defaults(func=cmd_principal_revoke_role)
    revoke_clearance = principal.add_parser("revoke-clearance", help="take the military clearance from a principal")
    revoke_clearance.add_argument("name")
    revoke_clearance.set_defaults(func=cmd_principal_revoke_clearance)
    ungrant = principal.add_parser("ungrant", help="remove warehouse or region grants from a principal")
    ungrant.add_argument("name")
    ungrant.add_argument("--warehouse", action="append", help="a granted warehouse code (repeatable)")
    ungrant.add_argument("--region", action="append", help="a granted region code (repeatable)")
    ungrant.set_defaults(func=cmd_principal_ungrant)
    for verb, what in (("disable", "no token of the principal authenticates any more (its tokens are kept)"),
                       ("enable", "its live tokens work again")):
        toggle = principal.add_parser(verb, help=what)
        toggle.add_argument("name")
        toggle.set_defaults(func=cmd_principal_disable)

    audit = sub.add_parser("audit", help="the audit trail").add_subparsers(dest="audit_command", required=True)
    verify = audit.add_parser("verify", help="seal pending events, then walk the hash chain and check its signed "
                                             "checkpoints; exit 1 if it is broken or cut short")
    verify.add_argument("--anchor", type=Path, metavar="FILE",
                        help="the latest checkpoint kept outside the database: checked, then moved on when all holds")
    verify.add_argument("--expect-seq", type=int, metavar="N", help="the chain must reach at least position N")
    verify.set_defaults(func=cmd_audit_verify)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        settings = get_settings()
    except ValueError as exc:  # a setting that cannot work: refuse to start, saying which and why
        print(f"stockpile: configuration refused: {exc}", file=sys.stderr)
        sys.exit(2)
    _configure_logging(settings.log_level)
    from stockpile.store.engine import EmbeddedUnavailable

    try:
        sys.exit(args.func(args, settings))
    except EmbeddedUnavailable as exc:
        print(f"stockpile: {exc}", file=sys.stderr)
        sys.exit(2)

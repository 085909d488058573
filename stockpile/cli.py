"""The ``stockpile`` command (also ``python -m stockpile``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import warnings
from dataclasses import replace

from stockpile.config import Settings, get_settings
from stockpile.domain.access import ROLES

log = logging.getLogger("stockpile")


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), stream=sys.stderr,
        format="ts=%(asctime)s level=%(levelname)s logger=%(name)s msg=%(message)s",
    )
    for quiet in ("pgserver", "alembic"):
        logging.getLogger(quiet).setLevel(logging.WARNING)
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

    db = Database(url, pool_size=1)
    try:
        async with db.transaction() as tx:
            return not await tx.pg.fetchval("SELECT EXISTS (SELECT 1 FROM parties)")
    finally:
        await db.dispose()


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from stockpile.store.engine import upgrade

    settings = replace(
        settings,
        host=args.host or settings.host, port=args.port or settings.port,
        workers=args.workers or settings.workers, demo=settings.demo and not args.no_demo,
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
    os.environ["STOCKPILE_HOST"], os.environ["STOCKPILE_PORT"] = settings.host, str(settings.port)
    print(f"stockpile serving on http://{settings.host}:{settings.port} (API docs at /docs)", flush=True)
    uvicorn.run(
        "stockpile.api.app:app_from_env", factory=True, host=settings.host, port=settings.port,
        workers=settings.workers, log_level=settings.log_level, access_log=False, lifespan="on",
    )
    return 0


async def _first_look(settings: Settings, url: str) -> None:
    """Plan rotation, evaluate alerts and take a metrics snapshot once, so a newcomer sees orders,
    alerts and metrics before a worker runs."""
    from stockpile.jobs.catalog import catalog
    from stockpile.jobs.runs import manual_slot, run_slot
    from stockpile.store.db import Database

    db = Database(url, pool_size=2)
    try:
        jobs = catalog(settings)
        for name in ("plan-rotation", "evaluate-alerts", "refresh-metrics"):
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


async def cli_audit(pg, action: str, target: str | None, details: dict) -> None:
    """Record a state-changing CLI action in the audit trail (in the caller's transaction)."""
    import getpass
    from datetime import datetime, timezone

    from stockpile.store import audit

    await audit.append(
        pg, at=datetime.now(timezone.utc), actor=f"cli:{getpass.getuser()}", roles=[], action=f"cli {action}",
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


async def _create_token(url: str, args: argparse.Namespace) -> str:
    from datetime import datetime, timedelta, timezone

    from stockpile.store import tokens

    async def work(pg):
        principal_id = await tokens.upsert_principal(pg, args.name, sorted(set(args.role)), args.clearance)
        missing = await tokens.grant(pg, principal_id, args.warehouse or [], args.region or [])
        if missing:
            raise SystemExit(f"unknown warehouse or region codes: {', '.join(missing)}")
        expires_at = datetime.now(timezone.utc) + timedelta(days=args.expires_in_days) if args.expires_in_days else None
        token = await tokens.issue_token(pg, principal_id, args.label, expires_at)
        await cli_audit(pg, "token create", args.name, {"roles": sorted(set(args.role)), "clearance": args.clearance,
                                                        "warehouses": args.warehouse or [], "regions": args.region or []})
        return token

    return await _in_transaction(url, work)


def cmd_token_create(args: argparse.Namespace, settings: Settings) -> int:
    url = database_url(settings)
    token = _run(_create_token(url, args))
    print(f"token for {args.name} (roles: {', '.join(sorted(set(args.role)))}); it is shown only once:")
    print(token)
    return 0


def cmd_token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from stockpile.store import tokens

    async def work(pg):
        count = await tokens.revoke(pg, token=args.token, token_id=args.id, principal=args.name, by="cli")
        await cli_audit(pg, "token revoke", args.name or (str(args.id) if args.id else "token"), {"revoked": count})
        return count

    if not (args.token or args.id or args.name):
        print("give --token, --id or --name", file=sys.stderr)
        return 2
    count = _run(_in_transaction(database_url(settings), work))
    print(f"revoked {count} token(s)")
    return 0 if count else 1


def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    from stockpile.services.audit import verify

    report = _run(verify(database_url(settings)))
    print(report.text())
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
    import getpass

    import msgspec
    import yaml

    from stockpile.domain.errors import DomainError
    from stockpile.services import commands as c
    from stockpile.services import drills
    from stockpile.services.movements import Clock
    from stockpile.services.planning import Limits
    from stockpile.store import tokens

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
            report = await drills.on_snapshot(db, scenario, Clock.utc().today, Limits.of(settings))
            async with db.transaction() as tx:
                principal_id = await tokens.upsert_principal(tx.pg, f"cli:{getpass.getuser()}", ["planner"], "military")
                stored = await drills.record(tx.pg, scenario, report, principal_id)
                await cli_audit(tx.pg, "drill", scenario.name or None, {"id": stored["id"]})
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
    import getpass

    from stockpile.domain.access import Principal
    from stockpile.services.imports import ImportError_, run_import
    from stockpile.store import tokens

    try:
        with open(args.file, encoding="utf-8-sig", newline="") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    name = f"cli:{getpass.getuser()}"

    async def work():
        from stockpile.store.db import Database

        db = Database(database_url(settings), pool_size=1)
        try:
            async with (await db.pool()).acquire() as pg:
                tx = pg.transaction()
                await tx.start()
                try:
                    # The importing person acts nationally, as anyone with database access can.
                    principal_id = await tokens.upsert_principal(pg, name, ["admin"], "military")
                    principal = Principal(principal_id, name, frozenset({"admin"}), "military")
                    report = await run_import(pg, text, principal, resource=args.resource, per_row=args.per_row,
                                              progress=_progress)
                    if report.committed:
                        await cli_audit(pg, f"import {report.resource}", args.file,
                                        {"rows": report.rows, "written": report.written,
                                         "refused": len(report.refused), "per_row": args.per_row})
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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stockpile", description="National reserve stock service.")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API (embedded PostgreSQL when DATABASE_URL is unset)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, help="uvicorn worker processes (default STOCKPILE_WORKERS or 1)")
    serve.add_argument("--no-demo", action="store_true", help="do not load demo data into an empty database")
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

    imp = sub.add_parser("import", help="import movements or master data from a CSV file (all or nothing by default)")
    imp.add_argument("file", help="CSV with a header of API member names (nested ones dotted: lot.code)")
    imp.add_argument("--resource", choices=["movements", "parties", "regions", "warehouses", "materials"],
                     help="what the file holds (default: movements when it has a kind column)")
    imp.add_argument("--per-row", action="store_true", help="write the rows that pass and report the refused ones")
    imp.set_defaults(func=cmd_import)
    drill = sub.add_parser("drill", help="run a drill from a YAML/JSON scenario and print its report (posts nothing)")
    drill.add_argument("file", help="scenario: readiness overrides, requests, lost_warehouses (as POST /api/v1/drills)")
    drill.add_argument("--json", action="store_true", help="print the full report as JSON")
    drill.set_defaults(func=cmd_drill)
    token = sub.add_parser("token", help="API tokens").add_subparsers(dest="token_command", required=True)
    create = token.add_parser("create", help="create a token (printed once, alone on the last line)")
    create.add_argument("--name", required=True, help="the principal (person or system) the token belongs to")
    create.add_argument("--role", required=True, action="append", choices=ROLES)
    create.add_argument("--warehouse", action="append", help="grant a warehouse scope (repeatable)")
    create.add_argument("--region", action="append", help="grant a region scope (repeatable)")
    create.add_argument("--clearance", choices=["military"])
    create.add_argument("--label", help="what the token is for")
    create.add_argument("--expires-in-days", type=int, help="the token stops working after this many days")
    create.set_defaults(func=cmd_token_create)
    revoke = token.add_parser("revoke", help="revoke a token (by value or id) or every token of a principal")
    revoke.add_argument("--token", help="the token itself")
    revoke.add_argument("--id", type=int, help="the token's id (from GET /api/v1/tokens)")
    revoke.add_argument("--name", help="revoke every live token of this principal")
    revoke.set_defaults(func=cmd_token_revoke)

    audit = sub.add_parser("audit", help="the audit trail").add_subparsers(dest="audit_command", required=True)
    audit.add_parser("verify", help="seal pending events, then walk the hash chain; exit 1 if it is broken") \
        .set_defaults(func=cmd_audit_verify)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    settings = get_settings()
    _configure_logging(settings.log_level)
    sys.exit(args.func(args, settings))

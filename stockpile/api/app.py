"""The Litestar application factory."""

from __future__ import annotations

import asyncio
import gc
import logging
import os

from litestar import Controller, Litestar, Request, Response, get
from litestar.datastructures import State
from litestar.exceptions import PermissionDeniedException
from litestar.middleware import DefineMiddleware
from prometheus_client import CONTENT_TYPE_LATEST

from stockpile.api import openapi, problems, tasks
from stockpile.api.audit import DenialCounts, record_failure
from stockpile.api.auth import ApiTokenAuthenticator, BearerAuthMiddleware, RequestLimits, authenticate_bearer
from stockpile.api.request_log import log_response, request_log
from stockpile.api.controllers.alerts import AlertController
from stockpile.api.controllers.capacities import CapacityController, PotentialController, TaskingController
from stockpile.api.controllers.allocation import DrillController, PlanController, RequestController
from stockpile.api.controllers.access import AuditController, AuditDenialController, TokenController
from stockpile.api.controllers.health import HealthController
from stockpile.api.controllers.ledger import MovementController, TransferController
from stockpile.api.controllers.masterdata import CONTROLLERS as MASTER_DATA
from stockpile.api.controllers.readiness import ObligationController, ReadinessController, RuleController
from stockpile.api.controllers.sensors import ReadingController, SensorController
from stockpile.api.controllers.rotation import RotationOrderController, RotationPolicyController, ShelfLifeController
from stockpile.api.controllers.stock import LotController, StockController
from stockpile.api.controllers.targets import CoverageController, TargetController
from stockpile.api.presenters.movements import present_posted
from stockpile.api.problems import problem_body
from stockpile.config import Settings, get_settings
from stockpile.console import ConsolePlugin
from stockpile.services.posting import GroupCommit, Presenters
from stockpile.metrics import SCRAPE_CLEARED, SNAPSHOT, api_exposition, process_exited
from stockpile.store import snapshots
from stockpile.store.db import Database

log = logging.getLogger("stockpile.api")

PUBLIC_PATHS = ["^/health", "^/docs", "^/schema", "^/metrics"]


class MetricsController(Controller):
    """``/metrics``: Prometheus text, for a ``metrics``-role token (or open if configured): every
    process of this instance (multiprocess mode) and the business snapshot once."""

    path = "/metrics"

    @get(include_in_schema=False)
    async def get(self, request: Request, state: State) -> Response:
        principal = None
        if not state.settings.metrics_public:
            principal = await authenticate_bearer(request, "/metrics needs a bearer token of role metrics")
            if not principal.has_any({"metrics", "admin"}):
                raise PermissionDeniedException("/metrics needs the metrics role")
        # Series counting military stock go only to a token cleared for it (open metrics: never).
        cleared = SCRAPE_CLEARED.set(principal is not None and principal.cleared_military)
        try:
            return Response(api_exposition(), media_type=CONTENT_TYPE_LATEST)
        finally:
            SCRAPE_CLEARED.reset(cleared)


@get("/docs", include_in_schema=False, media_type="text/html")
async def docs(request: Request) -> Response:
    """Interactive API docs (Swagger UI, its assets served by the service: see stockpile.api.openapi)."""
    schema = request.app.openapi_schema.to_schema()
    return Response(content=openapi.docs_plugin().render(request, schema), media_type="text/html")


def create_app(settings: Settings | None = None, database_url: str | None = None, *, serving: bool = False) -> Litestar:
    """The application. ``serving``: this process serves it until it exits (``stockpile serve``'s
    workers; see ``freeze_startup_heap``), unlike a test that builds many apps in one process."""
    settings = settings or get_settings()
    url = database_url or settings.database_url
    if url is None:
        raise RuntimeError("no database URL: `stockpile serve` starts the embedded server and sets DATABASE_URL")
    db = Database(url, pool_size=settings.db_pool_size)

    async def reload_snapshot() -> None:
        """Keep this process's copy of the business-metrics snapshot fresh (scrapes never query)."""
        while True:
            try:
                async with db.transaction() as tx:
                    loaded = await snapshots.load(tx.pg, "business")
                if loaded is not None:
                    SNAPSHOT.taken_at, SNAPSHOT.samples = loaded
            except Exception:  # noqa: BLE001 - the next round tries again; /health/ready reports the database
                log.warning("metrics snapshot reload failed", exc_info=True)
            await asyncio.sleep(settings.metrics_reload_seconds)

    async def on_startup(app: Litestar) -> None:
        app.state.snapshot_task = asyncio.create_task(reload_snapshot())

    def freeze_startup_heap() -> None:
        """The last startup step: what starting built (modules, the app and its routes, the OpenAPI
        document) lives as long as the process, so it is moved out of the garbage collector's reach.
        Otherwise every full collection walks those ~170,000 objects again: about 100 ms each,
        ten or more times in 20 s under load, each one pausing every request of the process — and,
        within a group commit, holding its locks while it runs."""
        gc.collect()
        gc.freeze()

    async def on_shutdown(app: Litestar) -> None:
        await tasks.stop(getattr(app.state, "snapshot_task", None))
        await db.dispose()
        process_exited(os.getpid())

    limits, denials = RequestLimits(db, settings), DenialCounts(db)
    return Litestar(
        route_handlers=[docs, HealthController, MetricsController, MovementController, TransferController,
                        StockController, LotController, *MASTER_DATA, TokenController, AuditController, AuditDenialController, TargetController, CoverageController, AlertController,
                        ReadinessController, RuleController, ObligationController, RequestController, PlanController,
                        DrillController,
                        RotationPolicyController, RotationOrderController, ShelfLifeController,
                        CapacityController, PotentialController, TaskingController,
                        SensorController, ReadingController,
                        openapi.docs_assets()],
        state=State({"db": db, "settings": settings,
                     "authenticators": [ApiTokenAuthenticator(db, settings.token_cache_seconds, settings.token_cache_size)],
                     "limits": limits, "denials": denials,
                     "ledger": GroupCommit(db, Presenters(movement=present_posted, problem=problem_body))}),
        middleware=[
            request_log,
            DefineMiddleware(BearerAuthMiddleware, exclude=PUBLIC_PATHS, exclude_http_methods=[]),
        ],
        exception_handlers=problems.HANDLERS,
        after_exception=[record_failure],
        before_send=[log_response],
        openapi_config=openapi.config(),
        request_max_body_size=settings.max_body_bytes,
        on_startup=[on_startup, limits.start, denials.start, openapi.finish, *([freeze_startup_heap] if serving else [])],
        on_shutdown=[limits.stop, denials.stop, on_shutdown],
        debug=False,
        plugins=[ConsolePlugin(settings)],
        logging_config=None,  # every process logs as stockpile.logs configures it (JSON lines)
    )


def app_from_env() -> Litestar:
    """Entry point for ``uvicorn --factory`` (each worker process builds its own app). The URL is
    read from the environment now, not from the cached settings: ``stockpile serve`` exports the
    embedded server's URL after the settings were first read."""
    return create_app(database_url=os.environ.get("DATABASE_URL"), serving=True)

"""Logs: one JSON object per line, configured the same way in every process.

Each line has ``time`` (UTC, RFC 3339), ``level``, ``logger`` and ``message``; a line written while
a request is served also has its ``request_id``, and the API's one line per request adds
``principal``, ``route`` (the route template, never an id), ``method``, ``status``, ``duration_ms``
and ``client``. ``stockpile serve`` hands the same configuration to uvicorn, so its worker
processes log alike. The scheduler's routine lines (a job started, a job done) are DEBUG: at INFO a
worker logs what changed, not that time passed. Tokens and request bodies are never logged.
"""

from __future__ import annotations

import logging
import traceback
from contextvars import ContextVar
from datetime import datetime, timezone
from typing import Any

import msgspec

REQUEST_ID: ContextVar[str | None] = ContextVar("log_request_id", default=None)

# Members a caller may add with ``extra=``; anything else on a record stays out of the line.
FIELDS = ("request_id", "principal", "route", "method", "status", "duration_ms", "client")
QUIET = ("pgserver", "alembic", "asyncio")


# A value JSON has no form for is written as its ``str()``.
_ENCODER = msgspec.json.Encoder(enc_hook=str)


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON.

    Its lines never name a thread, a process or the calling function, so a process logging through
    it does not gather them for each record (the logging module's documented optimisation)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
        logging._srcfile = None  # no caller lookup: a walk up the stack for every record

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["error"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return _ENCODER.encode(line).decode()


class RoutineAtDebug(logging.Filter):
    """The scheduler says at INFO that it ran a job, every few seconds per job: such lines are
    routine, so they are shown as DEBUG, and only when the level is ``debug``."""

    ROUTINE = "apscheduler"

    def __init__(self, level: str = "info") -> None:
        super().__init__()
        self.threshold = logging.getLevelName(level.upper())

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(self.ROUTINE) and record.levelno == logging.INFO:
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return self.threshold <= logging.DEBUG
        return True


def logging_config(level: str) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of every process (the CLI, the worker, each uvicorn worker)."""
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "stockpile.logs.JsonFormatter"}},
        "filters": {"routine": {"()": "stockpile.logs.RoutineAtDebug", "level": level}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr",
                                "formatter": "json", "filters": ["routine"]}},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            # uvicorn's loggers carry handlers of their own unless told otherwise: one handler, the root's
            **{name: {"level": level, "handlers": [], "propagate": True}
               for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
            **{name: {"level": "WARNING"} for name in QUIET},
        },
    }


def configure(level: str) -> None:
    """Configure this process's logging (see the module docstring)."""
    import logging.config

    logging.config.dictConfig(logging_config(level))

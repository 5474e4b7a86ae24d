"""Process logging: one JSON object per line (or readable text) on stderr, with context.

Every marketq process calls ``configure_logging`` once: the API from its app factory,
the worker and beat from Celery's ``setup_logging`` signal (``connect_celery_logging``),
which also stops Celery from installing its own handlers. Pool children inherit the
handler through the fork.

A JSON line carries ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message`` and,
when known, ``run_id``, ``job_name``, ``queue``, ``trace_id`` and ``span_id``; an
exception adds ``exc_info``. Fields come from ``extra=`` first, then from the Celery
task running in this process and the current span. The context is looked up per log
record, never per task, so a process that logs nothing pays nothing.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from marketq.common import tracing

LogFormat = Literal["json", "text"]
CONTEXT_FIELDS = ("run_id", "job_name", "queue", "trace_id", "span_id")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s"
# Loggers that install their own handlers; theirs are dropped so every line goes
# through the root handler (and its format) exactly once.
_OWN_HANDLERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "celery")


def _celery_task_context() -> dict[str, Any]:
    # Imported lazily: the API has Celery installed but runs no tasks.
    from celery._state import get_current_task

    task = get_current_task()
    if task is None or task.request.id is None:
        return {}
    request = task.request
    return {
        "run_id": request.id,
        "job_name": task.name,
        "queue": (request.delivery_info or {}).get("routing_key"),
    }


class ContextFilter(logging.Filter):
    """Adds run, job, queue and trace ids to each record that lacks them."""

    def __init__(self, with_celery: bool) -> None:
        super().__init__()
        self._with_celery = with_celery

    def filter(self, record: logging.LogRecord) -> bool:
        fields = record.__dict__
        if self._with_celery and "run_id" not in fields:
            for key, value in _celery_task_context().items():
                fields.setdefault(key, value)
            data = fields.get("data")
            if "run_id" not in fields and isinstance(data, dict) and "id" in data:
                # Celery's own task lines in the worker's main process ("received", a
                # child lost) name the task in ``extra={"data": ...}``.
                fields["run_id"] = data["id"]
                fields.setdefault("job_name", data.get("name"))
        if "trace_id" not in fields:
            ids = tracing.current_trace_ids()
            if ids is not None:
                fields["trace_id"], fields["span_id"] = ids
        return True


class TextFormatter(logging.Formatter):
    """Readable lines for a terminal (``make up``); context as ``key=value`` at the end."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        pairs = [
            f"{key}={record.__dict__[key]}"
            for key in CONTEXT_FIELDS
            if record.__dict__.get(key) is not None
        ]
        record.context = f" [{' '.join(pairs)}]" if pairs else ""
        return super().format(record)


def json_formatter() -> logging.Formatter:
    return JsonFormatter(
        "{levelname}{name}{message}",
        style="{",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",  # ISO 8601 in UTC, from the record's creation time
        # uvicorn repeats each message with terminal colours as an extra field.
        reserved_attrs=[*RESERVED_ATTRS, "color_message"],
        json_ensure_ascii=False,
    )


def configure_logging(
    level: str = "INFO", fmt: LogFormat = "json", *, with_celery: bool = False
) -> logging.Handler:
    """Route every logger of this process to one stderr handler in the chosen format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ContextFilter(with_celery))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)  # warnings become log lines too, not bare stderr text
    for name in _OWN_HANDLERS:
        logger = logging.getLogger(name)
        if logger.handlers:  # a logger silenced on purpose (--no-access-log) stays silent
            for old in list(logger.handlers):
                logger.removeHandler(old)
            logger.propagate = True
    return handler


def celery_quiet_option(fmt: LogFormat) -> list[str]:
    """``celery --quiet`` drops the start-up banner, which Celery prints to stdout rather
    than logs: with JSON logs every line a process writes is then one JSON object."""
    return ["--quiet"] if fmt == "json" else []


def connect_celery_logging() -> None:
    """Configure logging from Celery's ``setup_logging`` signal (worker and beat).

    With a receiver connected Celery leaves logging alone, so this is the only set-up;
    the level is Celery's ``--loglevel``, the format ``MARKETQ_LOG_FORMAT``.
    """
    from celery import signals

    from marketq.common.settings import get_settings

    def _setup(loglevel: Any = None, **_: Any) -> None:
        settings = get_settings()
        level = logging.getLevelName(loglevel) if isinstance(loglevel, int) else loglevel
        configure_logging(str(level or settings.log_level), settings.log_format, with_celery=True)

    signals.setup_logging.connect(_setup, weak=False, dispatch_uid="marketq.logs.setup")


__all__ = [
    "CONTEXT_FIELDS",
    "ContextFilter",
    "LogFormat",
    "TextFormatter",
    "celery_quiet_option",
    "configure_logging",
    "connect_celery_logging",
    "json_formatter",
]

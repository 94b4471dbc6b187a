"""Log format and the fields every log line carries (README, "Logs").

LOG_FORMAT=plain (the default, for `make run`) writes one human line per
record; LOG_FORMAT=json writes one JSON object per line (python-json-logger),
with the record's `extra` fields as keys. daphne and Celery's worker and beat
all log through this configuration (config.celery keeps Celery from replacing it).

Context fields: a request or socket binds its ids once (`log_bind`), and every
line logged by the same asyncio task afterwards carries them: `request_id` or
`conn_id`, `room`, `user_id`. A task started from a socket's task (the room's
fan-out, a presence refresh) inherits the context variable but not the
binding, so a room's lines are never attributed to the socket that happened to
open it. Code running in a worker thread for the request (a database call) does
carry it.
"""

import asyncio
import contextvars
import logging
import logging.config
from typing import Any

# (owner task or None, fields). The owner check keeps child tasks from inheriting.
_context: contextvars.ContextVar[tuple[asyncio.Task[Any] | None, dict[str, Any]] | None] = contextvars.ContextVar(
    "log_context", default=None
)

# The fields README documents; JSON lines carry whichever apply.
FIELDS = ("request_id", "conn_id", "room", "user_id", "seq", "event_id", "code", "close_code")


def _task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop: a worker thread
        return None


def log_bind(**fields: Any) -> None:
    """Attach fields to every later log line of the current request, socket or thread."""
    task = _task()
    current = _context.get()
    if current is not None and current[0] is task:
        current[1].update(fields)
    else:
        _context.set((task, dict(fields)))


def log_fields() -> dict[str, Any]:
    """The fields bound for the code running now (empty in an unrelated task)."""
    current = _context.get()
    if current is None:
        return {}
    owner, fields = current
    task = _task()
    # A thread (no task) runs on behalf of whoever called it; a task only for itself.
    if task is not None and owner is not task:
        return {}
    return fields


class ContextFilter(logging.Filter):
    """Copies the bound fields onto each record (explicit `extra` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in log_fields().items():
            # "_" keys are state kept with the binding (config.metrics), not fields.
            if not key.startswith("_") and not hasattr(record, key):
                setattr(record, key, value)
        return True


class PlainFormatter(logging.Formatter):
    """The plain line, followed by whichever context fields the record carries."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = " ".join(f"{key}={getattr(record, key)}" for key in FIELDS if getattr(record, key, None) is not None)
        if not extra:
            return line
        head, sep, rest = line.partition("\n")  # a traceback stays below the line
        return f"{head} [{extra}]{sep}{rest}"


def logging_config(*, fmt: str, level: str) -> dict[str, Any]:
    """Django's LOGGING for LOG_FORMAT (`plain` or `json`) and LOG_LEVEL."""
    if fmt not in ("plain", "json"):
        raise ValueError(f"LOG_FORMAT must be 'plain' or 'json', not {fmt!r}")
    formatters: dict[str, Any] = {
        "plain": {"()": PlainFormatter, "format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": ["levelname", "name", "message"],
            "rename_fields": {"levelname": "level", "name": "logger"},
            "timestamp": "time",
            "json_ensure_ascii": False,
        },
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}},
        "formatters": formatters,
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": fmt, "filters": ["context"]}},
        "root": {"handlers": ["console"], "level": level},
    }


def configure(config: dict[str, Any]) -> None:
    """settings.LOGGING_CONFIG: apply LOGGING, and send Python's warnings through
    it too, so that stderr stays one record per line."""
    logging.config.dictConfig(config)
    logging.captureWarnings(True)

"""Structured logs: one JSON object per line, for log collectors; text stays the default.

Every line has ``time`` (UTC, ISO 8601), ``level``, ``logger`` and ``message``, then whatever
the call site passed as ``extra=`` — by convention ``stage``, ``article_id``, ``partition`` and
``offset`` when known, so that a dead letter's log line can be joined with its record and its
document — and ``exception`` with the traceback when there is one.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Literal

LogFormat = Literal["text", "json"]
#: The human format, the default for every command.
TEXT_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"

#: Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(
            (key, value)
            for key, value in vars(record).items()
            if key not in _STANDARD and value is not None
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def use_format(log_format: LogFormat, logger: logging.Logger | None = None) -> None:
    """Switch the handlers of ``logger`` (the root logger by default) to JSON lines.

    ``text`` keeps the handlers as configured (``newsflow.cli`` sets the human format); their
    filters are kept either way.
    """
    if log_format == "text":
        return
    for handler in (logger or logging.getLogger()).handlers:
        handler.setFormatter(JsonFormatter())


class QuietBeamImport(logging.Filter):
    """Beam warns at import that Google Cloud's apitools is missing; we never use GCP."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


def configure(log_format: LogFormat = "text") -> None:
    """The process's logging as every newsflow process has it: warnings, newsflow's own info
    lines, Beam's import noise filtered, in ``log_format``. Also run by child processes
    (``pipeline.stage_process``), so their lines look like their parent's."""
    logging.basicConfig(level=logging.WARNING, format=TEXT_FORMAT)
    logging.getLogger("newsflow").setLevel(logging.INFO)
    for handler in logging.getLogger().handlers:
        handler.addFilter(QuietBeamImport())
    use_format(log_format)


def current_format() -> LogFormat:
    """The format the root logger's handlers write now."""
    handlers = logging.getLogger().handlers
    return "json" if any(isinstance(h.formatter, JsonFormatter) for h in handlers) else "text"

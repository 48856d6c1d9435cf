"""Process logging: JSON or text lines, the request id on each, exception messages left out."""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType

from tenantcrm.settings import Settings

ACCESS_LOGGER = "tenantcrm.access"
REQUEST_ID: ContextVar[str | None] = ContextVar("tenantcrm_request_id", default=None)
# A proxy's id (nginx's $request_id, a UUID) is taken over; anything else could carry what a
# client typed, so it is replaced.
REQUEST_ID_PATTERN = re.compile(r"^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})$")
# Fields an access line carries besides its message; set with `extra=`.
FIELDS = ("method", "route", "status", "duration_ms", "tenant")
_OURS = "_tenantcrm_handler"

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def _exception_without_message(exc_info: ExcInfo) -> str:
    """The type and the frames: an exception's message may quote a customer's data."""
    kind, _, tb = exc_info
    frames = "".join(traceback.format_tb(tb)) if tb else ""
    return f"Traceback (most recent call last):\n{frames}{kind.__name__}"


class JsonFormatter(logging.Formatter):
    """One JSON object a line, for a log collector."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or REQUEST_ID.get()
        if request_id:
            entry["request_id"] = request_id
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info and record.exc_info[0] is not None:
            entry["exception"] = record.exc_info[0].__name__
            entry["stack"] = _exception_without_message(record.exc_info)  # type: ignore[arg-type]
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """Readable lines for a terminal; exceptions without their messages, as in JSON."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = REQUEST_ID.get()
        return f"{line} [{request_id}]" if request_id else line

    def formatException(self, ei) -> str:
        return _exception_without_message(ei)


def configure_logging(settings: Settings) -> None:
    """Send every logger's records (uvicorn's included) to stderr in the configured format.

    Safe to call again: the handler it installed before is replaced, not doubled.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, _OURS, False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    setattr(handler, _OURS, True)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True

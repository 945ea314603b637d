"""Structured logs: the correlation fields of the work in hand, and a JSON formatter.

Owns the `log_context` context variable (command_id, correlation_id, tenant), set by the
API gateway, the command handler and the bus decorator for the duration of one piece of
work, and the formatter that puts it, the current trace and span ids and the record on one
JSON line. Does not decide levels or handlers beyond `configure_logging` at the edge.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from opentelemetry import trace

CONTEXT_FIELDS = ("command_id", "correlation_id", "tenant")
_EMPTY: Mapping[str, str] = MappingProxyType({})
_context: ContextVar[Mapping[str, str]] = ContextVar("ledger_log_context", default=_EMPTY)


def current_log_context() -> dict[str, str]:
    """The correlation fields bound in this task right now."""
    return dict(_context.get())


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Bind correlation fields for the block (empty values are left out); restored after."""
    merged = {**_context.get(), **{k: v for k, v in fields.items() if v}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Copies the bound correlation fields onto every record (for any formatter)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _context.get().items():
            setattr(record, name, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, correlation and trace ids."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(_context.get())
        for name in CONTEXT_FIELDS:
            # Records made elsewhere (another task) keep what the filter copied onto them.
            if name not in entry and isinstance(getattr(record, name, None), str):
                entry[name] = getattr(record, name)
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            entry["trace_id"] = format(span_context.trace_id, "032x")
            entry["span_id"] = format(span_context.span_id, "016x")
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: str, log_format: str) -> None:
    """Root handler on stderr in `json` or `text`; the project's loggers at `level`.

    Raises:
        ValueError: an unknown format.
    """
    if log_format not in ("json", "text"):
        raise ValueError(f"LEDGER_LOG_FORMAT must be json or text, not {log_format!r}")
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("mcp_ledger").setLevel(level.upper())

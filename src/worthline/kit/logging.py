"""Structured logs (structlog) carrying the request's trace id."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from typing import Any

import orjson
import structlog


def _dumps(event: dict[str, Any], default: Callable[[Any], Any]) -> bytes:
    """orjson, a fifth of a request's logging CPU; the standard library for what orjson
    refuses (an integer beyond 64 bits, a key that is not a string)."""
    try:
        return orjson.dumps(event, default=default)
    except TypeError:
        return json.dumps(event, default=default).encode()


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # The standard library's loggers format text; structlog's own JSON lines are bytes from
    # orjson, written and flushed one by one as print would (unless stderr is a text-only
    # stand-in, such as a StringIO).
    text = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    binary = getattr(sys.stderr, "buffer", None)
    renderer: Any = text
    factory: Any = structlog.PrintLoggerFactory(sys.stderr)
    if fmt == "json" and binary is not None:
        renderer = structlog.processors.JSONRenderer(serializer=_dumps)
        factory = structlog.BytesLoggerFactory(binary)
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    # Route the standard library's loggers (uvicorn, sqlalchemy, alembic) through the same format.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                text,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # The access log is ours (with trace id and timing); uvicorn's would be a duplicate.
    logging.getLogger("uvicorn.access").disabled = True


log = structlog.get_logger("worthline")

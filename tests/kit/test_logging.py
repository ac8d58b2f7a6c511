"""Structured logs: one JSON object per line on stderr, whatever the values logged."""

from __future__ import annotations

import json
import logging
from decimal import Decimal

import pytest
import structlog

from worthline.kit.logging import configure_logging


@pytest.fixture(autouse=True)
def _restore_logging():
    """configure_logging is process-wide: the other tests get the defaults back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    root.handlers[:], root.level = handlers, level


def _lines(err: str) -> list[dict]:
    return [json.loads(line) for line in err.splitlines() if line.strip()]


def test_json_lines_carry_the_bound_trace_id_and_any_value(capfd):
    configure_logging("INFO", "json")
    log = structlog.get_logger("worthline.test")
    structlog.contextvars.bind_contextvars(trace_id="abc123")
    try:
        log.info("request", path="/x", status=200)
        log.info("big", amount=2**70, price=Decimal("1.10"), keys={1: "one"})
        log.debug("hidden")  # below the level
    finally:
        structlog.contextvars.clear_contextvars()
    request, big = _lines(capfd.readouterr().err)
    assert request["event"] == "request"
    assert (request["trace_id"], request["path"], request["status"]) == ("abc123", "/x", 200)
    assert request["level"] == "info" and request["timestamp"].endswith("Z")
    assert big["amount"] == 2**70  # beyond orjson's 64 bits: written exactly all the same
    assert big["price"] in ("1.10", "Decimal('1.10')")
    assert big["keys"] == {"1": "one"}


def test_standard_library_loggers_write_the_same_json(capfd):
    configure_logging("INFO", "json")
    logging.getLogger("uvicorn.error").warning("started %s", "here")
    (line,) = _lines(capfd.readouterr().err)
    assert line["event"] == "started here"
    assert line["level"] == "warning"


def test_console_format_is_text(capfd):
    configure_logging("INFO", "console")
    structlog.get_logger("worthline.test").info("hello", who="you")
    err = capfd.readouterr().err
    assert "hello" in err and "who" in err
    assert not err.lstrip().startswith("{")

"""Shared Pydantic types for the API's conventions (ISO 8601 dates, UTC timestamps with `Z`)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, PlainSerializer

_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_text(value: object) -> object:
    # API.md: dates and timestamps are ISO 8601 text. Pydantic alone would also read a number,
    # or a string of digits, as seconds since 1970 (`0` becomes 1970-01-01) and store that.
    if isinstance(value, date) or (isinstance(value, str) and _ISO_DAY.match(value)):
        return value
    raise ValueError("must be ISO 8601 text such as 2025-01-31 or 2025-01-31T09:00:00Z")


def _to_utc(value: datetime) -> datetime:
    # API.md: a timestamp given without a zone is read as UTC.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # 0001-01-01T00:00+05:00 has no UTC instant
        raise ValueError("timestamp is out of range once converted to UTC") from exc


def _iso_z(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


Timestamp = Annotated[
    datetime,
    BeforeValidator(_iso_text),
    AfterValidator(_to_utc),
    PlainSerializer(_iso_z, return_type=str, when_used="json"),
]
"""An ISO 8601 instant in UTC, written with a `Z` suffix."""

Day = Annotated[date, BeforeValidator(_iso_text)]
"""An ISO 8601 calendar date, `YYYY-MM-DD`."""

"""Shared Pydantic types for the API's conventions (UTC timestamps with `Z`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, PlainSerializer


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
    AfterValidator(_to_utc),
    PlainSerializer(_iso_z, return_type=str, when_used="json"),
]
"""An ISO 8601 instant in UTC, written with a `Z` suffix."""

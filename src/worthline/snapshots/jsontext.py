"""Snapshot JSON as the API writes it, with no dependency on the rest of the package: the
money text, the body encoder, and the head each snapshot stores when it is inserted."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Context, Decimal, Inexact, InvalidOperation
from typing import Any

import orjson

_QUANTUM = {exponent: Decimal(1).scaleb(exponent) for exponent in range(-18, 1)}
# Stored amounts are quantized to the account's exponent, so writing them never rounds; this
# context makes sure of it (a digit that would be dropped raises instead).
_EXACT = Context(prec=60, traps=[Inexact, InvalidOperation])


def money(value: Decimal | None, exponent: int) -> str | None:
    """`Decimal("22500.00000000")`, -2 → `"22500.00"`: exactly the account's decimals."""
    if value is None:
        return None
    text = format(value.quantize(_QUANTUM[exponent], context=_EXACT), "f")
    return text[1:] if text[0] == "-" and not value else text  # never "-0.00"


def _utc(value: datetime) -> datetime:
    """As the column gives it back: in UTC (orjson would keep another zone's offset)."""
    return value if value.tzinfo is None else value.astimezone(UTC)


def snapshot_head(row: Mapping[str, Any], account_public_id: uuid.UUID, exponent: int) -> str:
    """The unchanging part of a snapshot's JSON: what `snapshot_json` and `dumps` write for it,
    up to (without) `,"change_amount"`, from the row about to be inserted (the model's column
    names). Stored with the snapshot (`BalanceSnapshot.json_head`); a read appends the change
    and the closing brace. The database writes the same text for rows without one
    (`repository._snapshot_head`); tests hold the two to each other, byte for byte."""
    body = dumps(
        {
            "id": str(row["id"]),
            "account_id": str(account_public_id),
            "balance": money(row["balance_amount"], exponent),
            "available_balance": money(row["available_balance_amount"], exponent),
            "holdings_value": money(row["holdings_value_amount"], exponent),
            "cash_value": money(row["cash_value_amount"], exponent),
            "currency": row["currency"],
            "source": row["source"],
            "captured_at": _utc(row["captured_at"]),
            "created_at": _utc(row["created_at"]),
        }
    )
    return body[:-1].decode()


def _uuid_subclass(value: object) -> str:
    # asyncpg returns its own uuid.UUID subclass, which orjson does not take as a UUID.
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(body: dict[str, Any]) -> bytes:
    """JSON as the models describe it: UUIDs as strings, datetimes in UTC with `Z` (a naive
    one, as SQLite's driver returns them, is UTC)."""
    return orjson.dumps(
        body, default=_uuid_subclass, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC
    )

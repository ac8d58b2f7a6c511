"""Exact money: integers in minor units inside the ledger, decimal strings at the edges."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Annotated

from pydantic import BeforeValidator, Field

# ASCII digits only, to the very end (`\d` takes any script's digits, `$` a final newline).
_DECIMAL = re.compile(r"-?[0-9]{1,30}(?:\.[0-9]{1,18})?\Z")


def to_minor(amount: Decimal, exponent: int) -> int:
    """Decimal → integer minor units; refuses (never rounds) more decimals than `exponent`."""
    scaled = amount.scaleb(-exponent)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more than {-exponent} decimal places")
    return int(scaled)


def from_minor(minor: int, exponent: int) -> Decimal:
    return Decimal(minor).scaleb(exponent)


def format_minor(minor: int, exponent: int) -> str:
    """`12345, -2` → `"123.45"`: always exactly the account's number of decimals."""
    sign = "-" if minor < 0 else ""
    digits = str(abs(minor))
    places = -exponent
    if places == 0:
        return sign + digits
    digits = digits.rjust(places + 1, "0")
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


_PERCENT = Context(prec=60, rounding=ROUND_HALF_UP)
_CENT = Decimal("0.01")


def percent_change(
    change: Decimal | int | str | None, previous: Decimal | int | None
) -> float | None:
    """`change` as a percentage of `previous`'s magnitude, rounded half away from zero to two
    decimals, as a float for JSON; None when either is missing or `previous` is zero. A
    `change` past 64 bits comes from SQLite as exact decimal text (`kit.sql.difference_percent`).

    Exact: the quotient is taken to 60 digits, far past where it could sit on a rounding tie
    it does not reach. Integers work too (scaled integers: the scale cancels). The magnitude
    keeps the sign of the change: a debt going from -1000 to -500 is +50 %."""
    if change is None or previous is None or not previous:
        return None
    ratio = _PERCENT.divide(_PERCENT.multiply(Decimal(change), 100), abs(Decimal(previous)))
    return float(ratio.quantize(_CENT, context=_PERCENT))


def _decimal_string(value: object) -> object:
    if isinstance(value, Decimal):
        return value
    if not isinstance(value, str):
        raise ValueError('money is a decimal string such as "25000.00", never a JSON number')
    if not _DECIMAL.match(value):
        raise ValueError(f"{value!r} is not a decimal number such as 25000.00")
    return Decimal(value)


DecimalString = Annotated[
    Decimal,
    BeforeValidator(_decimal_string),
    Field(json_schema_extra={"type": "string", "examples": ["25000.00"]}),
]
"""A decimal given as a JSON string (API.md: money is never a JSON number)."""

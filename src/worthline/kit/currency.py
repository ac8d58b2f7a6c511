"""ISO 4217 currencies and their minor units, from the `iso4217` package (kept current)."""

from __future__ import annotations

from functools import cache
from typing import Annotated

from iso4217 import Currency
from pydantic import AfterValidator

# Codes that are not money (funds, precious metals, test and "no currency" codes).
_NOT_MONEY = frozenset(
    {
        "XXX",
        "XTS",
        "XAU",
        "XAG",
        "XPD",
        "XPT",
        "XBA",
        "XBB",
        "XBC",
        "XBD",
        "XDR",
        "XSU",
        "XUA",
        "BOV",
        "CHE",
        "CHW",
        "CLF",
        "COU",
        "MXV",
        "USN",
        "UYI",
        "UYW",
    }
)


@cache
def _codes() -> dict[str, int]:
    return {
        c.code: c.exponent for c in Currency if c.code not in _NOT_MONEY and c.exponent is not None
    }


def is_currency(code: str) -> bool:
    return code in _codes()


def minor_unit(code: str) -> int:
    """Digits after the decimal point (GBP 2, JPY 0, BHD 3)."""
    return _codes()[code]


def _check(code: str) -> str:
    if not is_currency(code):
        raise ValueError(f"{code!r} is not an ISO 4217 currency code")
    return code


CurrencyCode = Annotated[str, AfterValidator(_check)]
"""An active ISO 4217 code, upper case (`GBP`). Lower case is refused, not guessed."""

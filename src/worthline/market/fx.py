"""Currency conversion at the rate in force on a day: the pair's latest rate on or before it.

A rate is found directly (`base → quote`), as the inverse of the opposite pair, or as a cross
through a pivot currency (`base → USD → quote`, each leg direct or inverse). When several are
known, the freshest wins (a cross is as old as its older leg); on a tie, direct before inverse
before cross. Rates are exact rationals (`Fraction`): an inverse or a cross is never rounded,
so a converted amount is rounded once, at the very end, to the target currency's places.
There is no fallback rate: a pair with no rate on or before the day converts to nothing.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal
from fractions import Fraction

DEFAULT_PIVOTS = ("USD", "EUR")
MEMO_SIZE = 20_000
"""Rates an `FxTable` remembers at most (about 7 MB): ten years of days for five currencies."""
STALE_AFTER = timedelta(days=7)
"""A price or a rate older than this (before the day it is used for) is stale."""


def is_stale(as_of: date | None, day: date) -> bool:
    return as_of is not None and as_of < day - STALE_AFTER


_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
"""Never rounds: the default context's 28 digits would round a large value a second time."""


_Leg = tuple[date, str, tuple[str, str], int]
"""One leg of a rate: as of, "direct" or "inverse", the stored pair, index in its series."""


@dataclass(frozen=True, slots=True)
class Rate:
    """`1 base = value quote`, as known on `as_of` (the oldest rate it was derived from)."""

    base: str
    quote: str
    value: Fraction
    as_of: date | None
    via: str  # "identity", "direct", "inverse" or "cross:<pivot>"

    def convert(self, amount: Decimal | Fraction | int) -> Fraction:
        return Fraction(amount) * self.value


class FxTable:
    """The rates of a few pairs over a period, as loaded in one query (`market.repository`)."""

    def __init__(
        self,
        rows: Iterable[tuple[str, str, date, Decimal]],
        pivots: Iterable[str] = DEFAULT_PIVOTS,
    ) -> None:
        series: dict[tuple[str, str], list[tuple[date, Decimal]]] = {}
        for base, quote, day, rate in rows:
            series.setdefault((base, quote), []).append((day, rate))
        self._dates: dict[tuple[str, str], list[date]] = {}
        self._rates: dict[tuple[str, str], list[Fraction]] = {}
        for pair, points in series.items():
            points.sort()
            self._dates[pair] = [d for d, _ in points]
            self._rates[pair] = [Fraction(r) for _, r in points]  # converted once
        self.pivots = tuple(pivots)
        self._memo: dict[tuple[str, str, date], Rate | None] = {}
        self._all_dates: list[date] | None = None

    def dates(self) -> list[date]:
        """Every date on which one of the table's rates takes effect, ascending: between two
        of them (and after the last), `rate` gives the same answer for any day."""
        if self._all_dates is None:
            self._all_dates = sorted({day for dates in self._dates.values() for day in dates})
        return self._all_dates

    def _latest(self, base: str, quote: str, day: date) -> tuple[date, int] | None:
        """The date and index of the pair's latest rate on or before `day`."""
        dates = self._dates.get((base, quote))
        if not dates:
            return None
        i = bisect.bisect_right(dates, day)
        if i == 0:
            return None
        return dates[i - 1], i - 1

    def _leg(self, base: str, quote: str, day: date) -> _Leg | None:
        direct = self._latest(base, quote, day)
        inverse = self._latest(quote, base, day)
        if direct is not None and (inverse is None or direct[0] >= inverse[0]):
            return direct[0], "direct", (base, quote), direct[1]
        if inverse is not None:
            return inverse[0], "inverse", (quote, base), inverse[1]
        return None

    def _value(self, leg: _Leg) -> Fraction:
        """A leg's rate, computed only for a leg that is used (an inverse divides)."""
        _, via, pair, i = leg
        value = self._rates[pair][i]
        return value if via == "direct" else 1 / value

    def rate(self, base: str, quote: str, day: date) -> Rate | None:
        """The rate in force on `day`, or None when no rate (direct, inverse, cross) is known.
        Remembered: a table kept by a process answers the same questions for many requests."""
        key = (base, quote, day)
        if key in self._memo:
            return self._memo[key]
        found = self._rate(base, quote, day)
        if len(self._memo) < MEMO_SIZE:
            self._memo[key] = found
        return found

    def _rate(self, base: str, quote: str, day: date) -> Rate | None:
        if base == quote:
            return Rate(base, quote, Fraction(1), None, "identity")
        best: Rate | None = None
        leg = self._leg(base, quote, day)
        if leg is not None:
            best = Rate(base, quote, self._value(leg), leg[0], leg[1])
        for pivot in self.pivots:
            if pivot in (base, quote):
                continue
            first = self._leg(base, pivot, day)
            second = self._leg(pivot, quote, day) if first is not None else None
            if first is None or second is None:
                continue
            as_of = min(first[0], second[0])
            if best is None or (best.as_of is not None and as_of > best.as_of):
                value = self._value(first) * self._value(second)
                best = Rate(base, quote, value, as_of, f"cross:{pivot}")
        return best


def round_to(value: Fraction, places: int) -> Decimal:
    """An exact rational rounded half-to-even to `places` decimals (the one rounding step)."""
    return round_ratio(value.numerator, value.denominator, places)


def round_ratio(numerator: int, denominator: int, places: int) -> Decimal:
    """`numerator / denominator` (denominator > 0) rounded half-to-even to `places` decimals,
    in integers: what `round_to` does without building a `Fraction` (no gcd)."""
    whole, rest = divmod(numerator * 10**places, denominator)  # floor: 0 <= rest < denominator
    if 2 * rest > denominator or (2 * rest == denominator and whole % 2):
        whole += 1
    return Decimal(whole).scaleb(-places, _EXACT)


def rate_decimal(value: Fraction, places: int = 10) -> Decimal:
    """A rate for display: exact when it terminates within `places`, else rounded half-even
    (once, from the exact rational; trailing zeros dropped)."""
    return round_to(value, places).normalize(_EXACT)

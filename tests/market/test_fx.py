"""FxTable without a database: direct, inverse (exact rationals), cross through a pivot, the
freshest rate winning (ties: direct, then inverse, then cross), the rate in force on a day,
and the one rounding step for display."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worthline.market.fx import FxTable, Rate, rate_decimal, round_ratio, round_to

D1, D2, D3, D4 = date(2025, 1, 2), date(2025, 1, 3), date(2025, 1, 6), date(2025, 1, 7)


def table(*rows: tuple[str, str, date, str], pivots: tuple[str, ...] = ("USD", "EUR")) -> FxTable:
    return FxTable([(b, q, d, Decimal(r)) for b, q, d, r in rows], pivots)


def test_direct_rate_is_the_stored_decimal_exactly():
    fx = table(("GBP", "USD", D1, "1.2718"))
    assert fx.rate("GBP", "USD", D1) == Rate("GBP", "USD", Fraction(12718, 10000), D1, "direct")


def test_inverse_is_an_exact_rational_never_rounded():
    fx = table(("USD", "JPY", D1, "3"))
    rate = fx.rate("JPY", "USD", D1)
    assert rate == Rate("JPY", "USD", Fraction(1, 3), D1, "inverse")
    assert isinstance(rate.value, Fraction)
    # 3 JPY is exactly 1 USD: a rounded 0.3333333333 would give 0.9999999999.
    assert rate.convert(Decimal(3)) == 1
    assert rate.convert(Decimal("0.3")) == Fraction(1, 10)


def test_cross_through_the_pivot_multiplies_the_legs_and_is_as_old_as_the_older():
    fx = table(("GBP", "USD", D1, "1.25"), ("USD", "JPY", D2, "150"))
    assert fx.rate("GBP", "JPY", D3) == Rate("GBP", "JPY", Fraction(375, 2), D1, "cross:USD")
    # Both legs inverted: 1 / (1.25 * 150) = 2/375 exactly.
    assert fx.rate("JPY", "GBP", D3) == Rate("JPY", "GBP", Fraction(2, 375), D1, "cross:USD")


def test_cross_leg_may_itself_be_an_inverse():
    # GBP→USD is only known as USD→GBP 0.8; USD→CHF direct 0.9.
    fx = table(("USD", "GBP", D2, "0.8"), ("USD", "CHF", D1, "0.9"))
    assert fx.rate("GBP", "CHF", D2) == Rate("GBP", "CHF", Fraction(9, 8), D1, "cross:USD")


def test_second_pivot_when_the_first_has_no_legs():
    fx = table(("GBP", "EUR", D1, "1.2"), ("EUR", "CHF", D1, "0.95"))
    assert fx.rate("GBP", "CHF", D1) == Rate("GBP", "CHF", Fraction(114, 100), D1, "cross:EUR")


def test_on_equal_dates_the_first_pivot_wins_and_a_fresher_second_one_beats_it():
    same = table(
        ("GBP", "USD", D1, "1.25"),
        ("USD", "CHF", D1, "0.9"),
        ("GBP", "EUR", D1, "1.2"),
        ("EUR", "CHF", D1, "0.95"),
    )
    assert same.rate("GBP", "CHF", D2).via == "cross:USD"
    fresher = table(
        ("GBP", "USD", D1, "1.25"),
        ("USD", "CHF", D1, "0.9"),
        ("GBP", "EUR", D2, "1.2"),
        ("EUR", "CHF", D2, "0.95"),
    )
    assert fresher.rate("GBP", "CHF", D3) == Rate("GBP", "CHF", Fraction(114, 100), D2, "cross:EUR")


def test_freshest_wins_an_inverse_newer_than_the_direct_rate():
    fx = table(("GBP", "USD", D1, "1.25"), ("USD", "GBP", D2, "0.8"))
    assert fx.rate("GBP", "USD", D3) == Rate("GBP", "USD", Fraction(5, 4), D2, "inverse")
    assert fx.rate("GBP", "USD", D1) == Rate("GBP", "USD", Fraction(5, 4), D1, "direct")


def test_tie_direct_before_inverse():
    fx = table(("GBP", "USD", D1, "1.25"), ("USD", "GBP", D1, "0.81"))
    assert fx.rate("GBP", "USD", D1) == Rate("GBP", "USD", Fraction(5, 4), D1, "direct")
    assert fx.rate("USD", "GBP", D1) == Rate("USD", "GBP", Fraction(81, 100), D1, "direct")


def test_tie_inverse_before_cross():
    fx = table(("JPY", "GBP", D2, "0.005"), ("GBP", "USD", D2, "1.25"), ("USD", "JPY", D2, "150"))
    assert fx.rate("GBP", "JPY", D2) == Rate("GBP", "JPY", Fraction(200), D2, "inverse")


def test_tie_direct_before_cross_and_fresher_cross_beats_direct():
    rows = [("GBP", "USD", D2, "1.25"), ("USD", "JPY", D2, "150")]
    tied = table(("GBP", "JPY", D2, "190"), *rows)
    assert tied.rate("GBP", "JPY", D3) == Rate("GBP", "JPY", Fraction(190), D2, "direct")
    older = table(("GBP", "JPY", D1, "190"), *rows)
    assert older.rate("GBP", "JPY", D3) == Rate("GBP", "JPY", Fraction(375, 2), D2, "cross:USD")


def test_the_rate_in_force_is_the_latest_on_or_before_the_day():
    fx = table(("GBP", "USD", D3, "1.30"), ("GBP", "USD", D1, "1.25"))
    assert fx.rate("GBP", "USD", D1).value == Fraction(5, 4)
    assert fx.rate("GBP", "USD", D2) == Rate("GBP", "USD", Fraction(5, 4), D1, "direct")
    assert fx.rate("GBP", "USD", D3) == Rate("GBP", "USD", Fraction(13, 10), D3, "direct")
    assert fx.rate("GBP", "USD", date(2030, 1, 1)).as_of == D3


def test_nothing_before_the_first_rate_and_nothing_for_an_unknown_pair():
    fx = table(("GBP", "USD", D2, "1.25"), ("USD", "JPY", D1, "150"))
    assert fx.rate("GBP", "USD", D1) is None
    assert fx.rate("USD", "GBP", D1) is None
    assert fx.rate("GBP", "JPY", D1) is None  # one leg missing: no cross
    assert fx.rate("GBP", "CHF", D4) is None
    assert FxTable([]).rate("GBP", "USD", D4) is None


def test_identity_needs_no_rate():
    assert FxTable([]).rate("GBP", "GBP", D1) == Rate("GBP", "GBP", Fraction(1), None, "identity")


def test_without_pivots_there_is_no_cross():
    fx = table(("GBP", "USD", D1, "1.25"), ("USD", "JPY", D1, "150"), pivots=())
    assert fx.rate("GBP", "JPY", D1) is None


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Fraction(1, 3), "0.3333333333"),
        (Fraction(2, 3), "0.6666666667"),
        (Fraction(1, 8), "0.125"),
        (Fraction(5, 4), "1.25"),
        (Fraction(150), "150"),
        (Fraction(375, 2), "187.5"),
        (Fraction(2, 375), "0.0053333333"),
        (Fraction(1, 2 * 10**10), "0"),  # 0.00000000005: half to even, down
        (Fraction(3, 2 * 10**10), "0.0000000002"),  # 0.00000000015: half to even, up
        (Fraction(10**18 + 5, 10**11) + Fraction(1, 10**40), "10000000.0000000001"),
        (Fraction(10**19, 3), "3333333333333333333.3333333333"),
    ],
)
def test_rate_decimal_is_exact_or_rounded_once_half_even(value, shown):
    assert format(rate_decimal(value), "f") == shown


def test_round_to_rounds_once_half_even_and_keeps_every_digit():
    assert round_to(Fraction(5, 2), 0) == Decimal(2)
    assert round_to(Fraction(7, 2), 0) == Decimal(4)
    assert round_to(Fraction(-5, 2), 0) == Decimal(-2)
    assert str(round_to(Fraction(1, 200), 2)) == "0.00"
    assert str(round_to(Fraction(3, 200), 2)) == "0.02"
    assert str(round_to(Fraction(10**30 + 1), 2)) == "1000000000000000000000000000001.00"


@given(
    numerator=st.integers(-(10**40), 10**40),
    denominator=st.integers(1, 10**30),
    places=st.integers(0, 12),
)
def test_round_ratio_is_python_s_exact_half_even_rounding(numerator, denominator, places):
    expected = round(Fraction(numerator, denominator) * 10**places)  # Fraction: half to even
    assert round_ratio(numerator, denominator, places) == Decimal(f"{expected}E-{places}")
    assert round_ratio(numerator, denominator, places).as_tuple().exponent == -places

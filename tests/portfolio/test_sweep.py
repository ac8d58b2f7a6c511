"""The net-worth series' sweep (one pass over the days with running totals) equals a brute-force
valuation of every point from scratch, for random cash changes, holdings, prices and rates."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import example, given, settings
from hypothesis import strategies as st

from worthline.market.fx import FxTable, is_stale, round_to
from worthline.portfolio.networth import _sweep, epoch_day, points

START = date(2026, 1, 1)
CURRENCIES = ("GBP", "USD", "EUR")
ASSETS = {1: ("AAA", "GBP"), 2: ("BBB", "USD"), 3: ("CCC", "EUR")}

days = st.integers(min_value=-10, max_value=40).map(lambda n: START + timedelta(days=n))
money = st.integers(min_value=-(10**7), max_value=10**7).map(lambda n: Decimal(n).scaleb(-2))
positive = st.integers(min_value=1, max_value=10**6).map(lambda n: Decimal(n).scaleb(-2))
# Few distinct steps, so that positions often return to exactly zero.
quantity = st.sampled_from([Decimal(s) for s in ("-1.5", "-1", "-0.5", "0.5", "1", "1.5")])


def brute(dates, changes, qty_changes, price_rows, fx, target):
    out = []
    for point in dates:
        cash: dict[str, Decimal] = {}
        for day, cur, amount in changes:
            if day <= point:
                cash[cur] = cash.get(cur, Decimal(0)) + amount
        held: dict[int, Decimal] = {}
        for day, asset_id, delta in qty_changes:
            if day <= point:
                held[asset_id] = held.get(asset_id, Decimal(0)) + delta
        flags = set()
        native = dict(cash)
        for asset_id, qty in held.items():
            if qty == 0:
                continue
            known = [(d, c) for d, a, c in price_rows if a == asset_id and d <= point]
            symbol, cur = ASSETS[asset_id]
            if not known:
                flags.add(f"price:{symbol}")
                continue
            day, close = max(known)
            if is_stale(day, point):
                flags.add(f"price:{symbol}")
            native[cur] = native.get(cur, Decimal(0)) + qty * close
        total = Fraction(0)
        for cur, amount in native.items():
            if amount == 0:
                continue
            rate = fx.rate(cur, target, point)
            if rate is None or is_stale(rate.as_of, point):
                flags.add(f"fx:{cur}/{target}")
            if rate is not None:
                total += rate.convert(amount)
        out.append((point, round_to(total, 2), sorted(flags)))
    return out


@settings(max_examples=150, deadline=None)
@given(
    changes=st.lists(st.tuples(days, st.sampled_from(CURRENCIES), money), max_size=15),
    qty_changes=st.lists(st.tuples(days, st.sampled_from(list(ASSETS)), quantity), max_size=10),
    price_rows=st.dictionaries(
        st.tuples(days, st.sampled_from(list(ASSETS))), positive, max_size=20
    ),
    rates=st.dictionaries(
        st.tuples(days, st.sampled_from([("USD", "GBP"), ("GBP", "EUR"), ("EUR", "USD")])),
        positive,
        max_size=8,
    ),
    interval=st.sampled_from(["day", "week", "month"]),
    target=st.sampled_from(CURRENCIES),
)
@example(  # the 7-day boundary: a price 7 days old is fresh, 8 days old is stale
    changes=[],
    qty_changes=[(START, 1, Decimal(1))],
    price_rows={(START, 1): Decimal(10), (START + timedelta(days=9), 1): Decimal(11)},
    rates={},
    interval="day",
    target="GBP",
)
def test_the_sweep_equals_valuing_every_point_from_scratch(
    changes, qty_changes, price_rows, rates, interval, target
):
    # A quantity is never negative in the database: drop changes that would make it so.
    running: dict[int, Decimal] = {}
    kept = []
    for day, asset_id, delta in sorted(qty_changes):
        if running.get(asset_id, Decimal(0)) + delta >= 0:
            running[asset_id] = running.get(asset_id, Decimal(0)) + delta
            kept.append((day, asset_id, delta))
    prices = [(day, asset_id, close) for (day, asset_id), close in price_rows.items()]
    fx = FxTable([(b, q, day, r) for (day, (b, q)), r in rates.items()], ("USD",))
    dates = points(START, START + timedelta(days=30), interval)
    series: dict[int, tuple[list[int], list[int]]] = {}
    for day, asset_id, close in sorted(prices):
        days, closes = series.setdefault(asset_id, ([], []))
        days.append(epoch_day(day))
        closes.append(int(close.scaleb(8)))
    swept = _sweep(dates, list(changes), list(kept), series, ASSETS, fx, target)
    assert [(p.day, p.net_worth, p.stale) for p in swept] == brute(
        dates, changes, kept, prices, fx, target
    )

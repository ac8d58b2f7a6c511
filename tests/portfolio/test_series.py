"""The net-worth series' projections, as properties.

1. `walk` (one asset from a day on) equals valuing the asset day by day.
2. On both engines, for random histories of movements (backdated and future-dated), journal
   imports, holdings syncs (with broker prices), price upserts (new days, corrections,
   backfills) and the deletion of an account with holdings, each written through the service
   layer in its own unit of work: the maintained tables equal the tables built from scratch,
   and every point of `GET /net-worth/history`'s series equals a brute-force valuation of
   that day from the raw movements, holdings history, prices and rates.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from portfolio.helpers import series_tables
from worthline.auth.models import User
from worthline.kit.db import Database, unit_of_work
from worthline.ledger import service as ledger
from worthline.ledger.journal_io import import_journal
from worthline.ledger.models import Account, Movement
from worthline.market import repository as market_repo
from worthline.market import service as market
from worthline.market.fx import is_stale, round_to
from worthline.market.models import Asset, Price
from worthline.portfolio import series
from worthline.portfolio.holdings import HoldingIn, sync_holdings
from worthline.portfolio.models import HoldingHistory, NetWorthState
from worthline.portfolio.networth import market_moved

# ------------------------------------------------------------------------------ walk

quantities = st.sampled_from([0, 0, 50_000_000, 100_000_000, 150_000_000])


@settings(max_examples=300, deadline=None)
@given(
    horizon=st.integers(5, 40),
    steps=st.dictionaries(st.integers(0, 40), quantities, max_size=6),
    prices=st.dictionaries(st.integers(0, 40), st.integers(1, 10**9), max_size=8),
    cut=st.integers(1, 40),
)
@example(horizon=30, steps={0: 100_000_000}, prices={0: 10, 9: 11}, cut=5)  # 7 days fresh, 8 stale
def test_walk_equals_valuing_each_day(horizon, steps, prices, cut):
    last = max([horizon, *steps, *prices]) + 12  # past every change and staleness onset

    def state(day: int) -> tuple[int, int | None, int | None]:
        qty = next((steps[d] for d in sorted(steps, reverse=True) if d <= day), 0)
        known = [d for d in prices if d <= day]
        return (qty, max(known), prices[max(known)]) if known else (qty, None, None)

    def value(day: int) -> int:
        qty, _, close = state(day)
        return qty * close if close is not None else 0

    def stale(day: int) -> bool:
        qty, price_day, _ = state(day)
        return bool(qty) and (price_day is None or price_day < day - 7)

    first = min(cut, last)
    running = first - 1 if stale(first - 1) else None
    while running is not None and running - 1 >= 0 and stale(running - 1):
        running -= 1
    qty, price_day, close = state(first - 1)
    got = series.walk(
        first,
        qty,
        sorted((d, q) for d, q in steps.items() if d >= first),
        (price_day, close) if price_day is not None else None,
        sorted(d for d in prices if d >= first),
        [prices[d] for d in sorted(prices) if d >= first],
        running,
    )
    want = {d: value(d) - value(d - 1) for d in range(first, last + 1) if value(d) != value(d - 1)}
    assert got.changes == want
    flagged = {d for a, b in got.spans for d in range(a, last + 1 if b is None else b)}
    since = first if running is None else running
    assert flagged == {d for d in range(since, last + 1) if stale(d)}
    assert all(b is None or a < b for a, b in got.spans)
    # maximal runs: no two spans touch
    assert all(b is not None and b < c for (_, b), (c, _) in itertools.pairwise(got.spans))


# ------------------------------------------------------------------------------ maintained

TODAY = datetime.now(UTC).date()
START = TODAY - timedelta(days=45)
ASSETS = (("GBP", 0), ("USD", 1), ("EUR", 2))  # (currency, index)
days_back = st.integers(1, 45).map(lambda n: TODAY - timedelta(days=n))
close = st.integers(1, 50_000).map(lambda n: Decimal(n).scaleb(-2))

operation = st.one_of(
    st.tuples(  # a movement into (or out of) an Asset/Liability account, maybe future-dated
        st.just("move"),
        st.integers(0, 3),  # 3: an account with exponent -18
        st.integers(-50_000, 100_000).filter(bool),
        st.integers(-45, 4),
    ),
    st.tuples(  # a holdings sync: quantity per asset (0: not listed), maybe a broker price
        st.just("sync"),
        st.integers(0, 1),
        st.lists(st.sampled_from(["0", "1", "2.5"]), min_size=3, max_size=3),
        days_back,
        st.one_of(st.none(), close),
    ),
    st.tuples(st.just("price"), st.integers(0, 2), st.dictionaries(days_back, close, max_size=6)),
    st.tuples(
        st.just("delete"),
    ),
)


async def _setup(db: Database) -> tuple[uuid.UUID, dict[str, Account], list[str]]:
    tag = uuid.uuid4().hex[:8].upper()
    async with unit_of_work(db) as session:
        user = User(email=f"{tag}@example.com", password_hash="x", base_currency="GBP")
        session.add(user)
        await session.flush()
        made = {}
        for key, path, currency in (
            ("bank", "Asset:Bank", "GBP"),
            ("dollars", "Asset:Dollars", "USD"),
            ("card", "Liability:Card", "GBP"),
            ("gbp", "Equity:Opening", "GBP"),
            ("usd", "Equity:OpeningUSD", "USD"),
            ("isa", "Asset:Broker:ISA", "GBP"),
            ("gia", "Asset:Broker:GIA", "USD"),
            ("dust", "Asset:Dust", "GBP"),
            ("dust-in", "Equity:Dust", "GBP"),
        ):
            exponent = -18 if key.startswith("dust") else None
            made[key] = await ledger.create_account(
                session, user.id, ledger.NewAccount(path, currency, exponent), datetime.now(UTC)
            )
        symbols = [f"S{i}{tag}" for i in range(3)]
        for symbol, (currency, _) in zip(symbols, ASSETS, strict=True):
            await market.create_asset(session, market.NewAsset(symbol, symbol, "equity", currency))
        await market.upsert_fx_rates(
            session,
            [
                market.FxRateIn(START, "USD", "GBP", Decimal("0.8")),
                market.FxRateIn(START + timedelta(days=20), "USD", "GBP", Decimal("0.75")),
                market.FxRateIn(START + timedelta(days=3), "EUR", "USD", Decimal("1.1")),
            ],
        )
        await series.build(session, user.id)  # maintained from here on
    return user.id, made, symbols


async def _apply(db, user_id, accounts, symbols, op, last_sync, deleted) -> None:
    kind = op[0]
    async with unit_of_work(db) as session:
        if kind == "move":
            _, which, cents, offset = op
            names = (("bank", "gbp"), ("dollars", "usd"), ("card", "gbp"), ("dust", "dust-in"))
            target, source = (accounts[name] for name in names[which])
            if cents < 0:
                source, target = target, source
            value_time = datetime.combine(TODAY + timedelta(days=offset), time(12), UTC)
            spec = ledger.NewMovement(
                source.public_id,
                target.public_id,
                Decimal(abs(cents)).scaleb(target.exponent),
                value_time=value_time,
            )
            await ledger.record_movements(session, user_id, [spec])
        elif kind == "sync":
            _, which, amounts, day, broker_price = op
            name = ("isa", "gia")[which]
            if name in deleted:
                return
            day = max(day, last_sync.get(name, day))  # a sync is never older than the last
            last_sync[name] = day
            items = [
                HoldingIn(symbol, Decimal(q), price=broker_price if i == 0 else None)
                for i, (symbol, q) in enumerate(zip(symbols, amounts, strict=True))
                if q != "0"
            ]
            as_of = datetime.combine(day, time(18), UTC)
            await sync_holdings(session, user_id, accounts[name].public_id, items, as_of=as_of)
        elif kind == "price":
            _, which, closes = op
            if not closes:
                return
            asset = await market.get_asset(session, symbols[which])
            await market.upsert_prices(
                session, asset, [market.PriceIn(d, c) for d, c in closes.items()]
            )
            await market_moved(session, prices={asset.id: min(closes)})
        elif kind == "import":
            _, cents, offset = op
            day = TODAY + timedelta(days=offset)
            lines = [
                f"{day} * Transfer",
                f"  Equity:Opening -> Asset:Bank {Decimal(cents).scaleb(-2)} GBP",
            ]
            await import_journal(session, user_id, lines)
        elif "isa" not in deleted:  # delete the ISA: it has holdings but no movements
            deleted.add("isa")
            await ledger.delete_account(session, user_id, accounts["isa"].public_id)


async def _brute(db: Database, user_id: uuid.UUID, dates: list[date]) -> list[tuple]:
    """Every point valued from the raw rows alone."""
    async with db.read_session() as session:
        accounts = {
            a.id: a
            for a in await session.scalars(select(Account).where(Account.user_id == user_id))
        }
        moves = [
            (m.value_time.date(), m.from_account_id, m.to_account_id, m.amount)
            for m in await session.scalars(
                select(Movement).where(
                    Movement.from_account_id.in_(list(accounts))
                    | Movement.to_account_id.in_(list(accounts))
                )
            )
        ]
        history = (
            await session.execute(
                select(
                    HoldingHistory.account_id,
                    HoldingHistory.asset_id,
                    HoldingHistory.effective_date,
                    HoldingHistory.quantity,
                ).where(HoldingHistory.account_id.in_(list(accounts)))
            )
        ).all()
        asset_ids = {asset_id for _, asset_id, _, _ in history}
        assets = {
            a.id: a for a in await session.scalars(select(Asset).where(Asset.id.in_(asset_ids)))
        }
        prices = (
            await session.execute(
                select(Price.asset_id, Price.price_date, Price.close).where(
                    Price.asset_id.in_(list(asset_ids))
                )
            )
        ).all()
        fx = await market_repo.fx_table(session, {"GBP", "USD", "EUR"}, dates[0], dates[-1])
    out = []
    for point in dates:
        native: dict[str, Decimal] = {}
        for day, source, target, amount in moves:
            if day > point:
                continue
            for account_id, sign in ((source, -1), (target, 1)):
                account = accounts[account_id]
                if account.account_type in ("Asset", "Liability"):
                    native[account.currency] = native.get(account.currency, Decimal(0)) + (
                        sign * Decimal(amount).scaleb(account.exponent)
                    )
        held: dict[int, Decimal] = {}
        for (account_id, asset_id), rows in itertools.groupby(
            sorted(history), key=lambda r: (r[0], r[1])
        ):
            in_force = [q for _, _, day, q in rows if day <= point]
            if in_force and accounts[account_id].account_type in ("Asset", "Liability"):
                held[asset_id] = held.get(asset_id, Decimal(0)) + in_force[-1]
        flags = set()
        for asset_id, quantity in held.items():
            if not quantity:
                continue
            asset = assets[asset_id]
            known = sorted((d, c) for a, d, c in prices if a == asset_id and d <= point)
            if not known or is_stale(known[-1][0], point):
                flags.add(f"price:{asset.symbol}")
            if known:
                native[asset.currency] = native.get(asset.currency, Decimal(0)) + (
                    quantity * known[-1][1]
                )
        total = Fraction(0)
        for currency, amount in native.items():
            if not amount:
                continue
            rate = fx.rate(currency, "GBP", point)
            if rate is None or is_stale(rate.as_of, point):
                flags.add(f"fx:{currency}/GBP")
            if rate is not None:
                total += rate.convert(amount)
        out.append((point, round_to(total, 2), sorted(flags)))
    return out


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=st.lists(operation, min_size=1, max_size=10))
@example(operations=[("import", 12345, -3), ("move", 0, 500, -2)])
@example(  # 10,000,000.005000000000000001 GBP: exact, it rounds up (a float would lose the tail)
    operations=[("move", 0, 1_000_000_000, -2), ("move", 3, 5_000_000_000_000_001, -1)]
)
@example(  # a sync, a price backfill under it, a newer sync, then the account goes
    operations=[
        ("sync", 0, ["1", "2.5", "0"], TODAY - timedelta(days=30), Decimal("10.00")),
        (
            "price",
            0,
            {
                TODAY - timedelta(days=40): Decimal("9.00"),
                TODAY - timedelta(days=20): Decimal("11.00"),
            },
        ),
        ("sync", 0, ["2.5", "0", "1"], TODAY - timedelta(days=10), None),
        ("price", 1, {TODAY - timedelta(days=25): Decimal("3.00")}),
        ("delete",),
    ]
)
async def test_maintained_series_equals_a_rebuild_and_brute_force(db, operations, monkeypatch):
    monkeypatch.setattr(series, "STREAM_PARTITION", 2)  # the rebuild streams across accounts
    user_id, accounts, symbols = await _setup(db)
    last_sync: dict[str, date] = {}
    deleted: set[str] = set()
    for op in operations:
        await _apply(db, user_id, accounts, symbols, op, last_sync, deleted)
    maintained = await series_tables(db, user_id)
    async with unit_of_work(db) as session:
        await series.build(session, user_id)
    assert maintained == await series_tables(db, user_id)

    dates = series.points(START - timedelta(days=2), TODAY + timedelta(days=12), "day")
    async with db.read_session() as session:
        got = await series.history(session, user_id, "GBP", dates)
    assert [(p.day, p.net_worth, p.stale) for p in got] == await _brute(db, user_id, dates)


async def test_a_day_s_cash_beyond_64_bits_stays_exact(db):
    """Three movements of 2⁶² − 1 yen into three accounts on one day: each fits the ledger,
    their day's sum does not fit 64 bits. The series keeps it exact, maintained and rebuilt."""
    async with unit_of_work(db) as session:
        user = User(email=f"{uuid.uuid4().hex}@example.com", password_hash="x", base_currency="JPY")
        session.add(user)
        await session.flush()
        now = datetime.now(UTC)
        pairs = [
            (
                await ledger.create_account(
                    session, user.id, ledger.NewAccount(f"Equity:E{i}", "JPY"), now
                ),
                await ledger.create_account(
                    session, user.id, ledger.NewAccount(f"Asset:A{i}", "JPY"), now
                ),
            )
            for i in range(3)
        ]
        await series.build(session, user.id)
    big = Decimal(2**62 - 1)
    day = datetime.combine(TODAY - timedelta(days=2), time(12), UTC)
    for source, target in pairs:
        async with unit_of_work(db) as session:
            spec = ledger.NewMovement(source.public_id, target.public_id, big, value_time=day)
            await ledger.record_movements(session, user.id, [spec])
    dates = [TODAY - timedelta(days=3), TODAY]
    async with db.read_session() as session:
        got = await series.history(session, user.id, "JPY", dates)
    assert [p.net_worth for p in got] == [Decimal(0), 3 * big]
    maintained = await series_tables(db, user.id)
    async with unit_of_work(db) as session:
        await series.build(session, user.id)
    assert await series_tables(db, user.id) == maintained


async def test_a_broker_price_from_one_user_s_sync_moves_other_holders(db):
    """A sync's broker price fills the shared price table: every other holder's series and
    net worth follow it, not only the syncing user's."""
    b_user, b_accounts, symbols = await _setup(db)
    a_user, a_accounts, _ = await _setup(db)
    symbol = symbols[0]  # GBP-priced
    old_day, new_day = TODAY - timedelta(days=20), TODAY - timedelta(days=1)
    async with unit_of_work(db) as session:
        asset = await market.get_asset(session, symbol)
        await market.upsert_prices(session, asset, [market.PriceIn(old_day, Decimal("10.00"))])
    for user_id, accounts in ((b_user, b_accounts), (a_user, a_accounts)):
        async with unit_of_work(db) as session:
            await sync_holdings(
                session,
                user_id,
                accounts["isa"].public_id,
                [HoldingIn(symbol, Decimal(2))],
                as_of=datetime.combine(old_day, time(18), UTC),
            )
    async with unit_of_work(db) as session:  # A's broker says 12.50 yesterday
        await sync_holdings(
            session,
            a_user,
            a_accounts["isa"].public_id,
            [HoldingIn(symbol, Decimal(2), price=Decimal("12.50"))],
            as_of=datetime.combine(new_day, time(18), UTC),
        )
    maintained = await series_tables(db, b_user)
    async with unit_of_work(db) as session:
        await series.build(session, b_user)
    assert await series_tables(db, b_user) == maintained
    async with db.read_session() as session:
        state = await session.get(NetWorthState, b_user)
        [point] = await series.history(session, b_user, "GBP", [TODAY])
    assert point.net_worth == Decimal("25.00") and point.stale == []
    assert state is not None and state.net_worth == "25.00"


async def test_a_first_sync_while_a_price_is_being_written(db):
    """A price upsert holding its transaction open while a user's first sync of that asset
    arrives: the writer's list of holders cannot include the user yet, so on PostgreSQL the
    sync waits for the asset's lock and values the holding once the price is committed."""
    user_id, accounts, symbols = await _setup(db)
    symbol, day = symbols[0], TODAY - timedelta(days=1)
    wrote = asyncio.Event()

    async def price() -> None:
        async with unit_of_work(db) as session:
            asset = await market.get_asset(session, symbol)
            await market.upsert_prices(session, asset, [market.PriceIn(day, Decimal("5"))])
            await market_moved(session, prices={asset.id: day})  # no holder yet
            wrote.set()
            await asyncio.sleep(0.5)  # the sync arrives while this is uncommitted

    async def sync() -> None:
        await wrote.wait()
        async with unit_of_work(db) as session:
            await sync_holdings(
                session,
                user_id,
                accounts["isa"].public_id,
                [HoldingIn(symbol, Decimal(2))],
                as_of=datetime.combine(day - timedelta(days=3), time(12), UTC),
            )

    await asyncio.gather(price(), sync())
    maintained = await series_tables(db, user_id)
    async with unit_of_work(db) as session:
        await series.build(session, user_id)
    assert await series_tables(db, user_id) == maintained
    async with db.read_session() as session:
        [point] = await series.history(session, user_id, "GBP", [day])
    assert point.net_worth == Decimal("10.00") and point.stale == []

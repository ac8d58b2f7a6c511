"""Net-worth history benchmark (issue 5). Prints figures; record them in docs/benchmarks.md.

    .venv/bin/python benchmarks/bench_networth.py                        # SQLite
    .venv/bin/python benchmarks/bench_networth.py --engine postgresql --profile 25
    .venv/bin/python benchmarks/bench_networth.py --gc-freeze [--keep | --reuse URL]

Target: GET /api/v1/net-worth/history over 10 years, daily, for a user with 50 accounts in
3 currencies and 200 holdings: under 150 ms.

1. A fresh database (a temp SQLite file, or a throwaway PostgreSQL database on 127.0.0.1,
   migrated, dropped at the end unless `--keep`) is filled through the service layer, with value
   times in the past:
   - `--assets` assets (create_asset) priced in GBP, USD and EUR, with daily weekday OHLCV
     closes (a random walk; one asset in 25 misses two weeks, one stopped 20 days ago, so that
     some days carry stale flags) from a month and a half before the range on
     (`kit.bulk.bulk_insert`, the import path: ~528,000 rows at the defaults), and daily
     weekday USD/GBP and EUR/USD rates (upsert_fx_rates): EUR → GBP needs a cross via USD;
   - the measured user (registered through the API, base currency GBP): `--accounts` Asset and
     Liability accounts in GBP/USD/EUR, `--brokers` of them broker accounts, with about
     `--per-week` movements per account and week over the years (one `.goluca` journal
     imported through `import_journal`), and the broker accounts' holdings synced
     (`sync_holdings`, one unit of work each, in time order) `--syncs-per-year` times a year:
     `--holdings` positions in all, quantities changing, one position swapped now and then;
   - `--noise-users` other users, each with 50 accounts, one movement per account and week
     and two broker accounts synced yearly (other users' rows in the same tables).
   PostgreSQL is then VACUUM ANALYZEd (what autovacuum would have done); SQLite is left as an
   application leaves it (no ANALYZE).
2. The user's series tables (`portfolio.series`) are built once, as the first read of the
   series does for a user who has none (timed: "series build").
3. For interval day, week and month over the whole range: GET /api/v1/net-worth/history
   through the app in-process (httpx ASGITransport, as the tests' client) and the bare
   `series.history()` on a read session: a warm-up, then `--runs` timed runs each; p50, p95,
   p99, max and the garbage collector's pauses per run. Then one instrumented run per
   interval: time and rows of each statement `history()` sends (rows fetched and decoded) and
   the Python around them; with `--profile N`, a cProfile of one daily call (top N by own
   time). `--gc-freeze`: gc.freeze() once the app and the data are set up, as the server does
   after starting (`kit.middleware`), which the in-process client does not run.
4. What keeping the series costs the writes that maintain it, each in its own unit of work
   through the service layer: a holdings sync of one broker account today, today's close for
   every asset (`upsert_prices` + `market_moved`: every holder's series from today on), a
   movement on an Asset account, and a price correction 5 years back for one held asset
   (its holders' series recomputed from then on). Each is timed `--write-runs` times.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import math
import os
import pstats
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

PG_ADMIN = os.environ.get("BENCH_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432")
EMAIL = "bench@example.com"
PASSWORD = "bench-Horse-Battery-7"
CURRENCIES = ("GBP", "USD", "EUR")
TARGET_MS = 150.0
Q4 = Decimal("0.0001")


def log(message: str) -> None:
    print(message, flush=True)


async def _pg(sql: str) -> None:
    from sqlalchemy import text

    from worthline.kit.db import create_engine

    engine = create_engine(f"{PG_ADMIN}/postgres", isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(sql))
    await engine.dispose()


def load_avg() -> float:
    return os.getloadavg()[0]


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1)]


def weekdays(first: date, last: date) -> list[date]:
    days = (first + timedelta(days=i) for i in range((last - first).days + 1))
    return [d for d in days if d.weekday() < 5]


# --------------------------------------------------------------------------- market data


async def market_data(db: Any, args: argparse.Namespace, first: date, last: date) -> list[Any]:
    """Assets, their daily weekday prices and the USD/GBP and EUR/USD rates."""
    from worthline.kit.bulk import bulk_insert
    from worthline.kit.db import unit_of_work
    from worthline.market import service as market
    from worthline.market.models import Price

    rng = random.Random(7)
    days = weekdays(first, last)
    async with unit_of_work(db) as session:
        assets = [
            await market.create_asset(
                session,
                market.NewAsset(
                    f"BN{i:04d}",
                    f"Bench asset {i}",
                    "etf" if i % 5 == 0 else "equity",
                    # 40 % USD, 30 % GBP, 30 % EUR
                    "USD" if i % 10 < 4 else "GBP" if i % 10 < 7 else "EUR",
                ),
            )
            for i in range(args.assets)
        ]
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    count = 0

    async def flush() -> None:
        nonlocal rows, count
        async with unit_of_work(db) as session:
            await bulk_insert(session, Price.__table__, rows)
        count += len(rows)
        rows = []

    for n, asset in enumerate(assets):
        close = rng.uniform(5, 500)
        drift, vol = rng.uniform(-0.0001, 0.0006), rng.uniform(0.008, 0.025)
        # A few gaps, so that some days carry stale-price flags: one asset in 25 misses two
        # weeks of prices somewhere (a suspension); one stopped being priced 20 days ago.
        gap = rng.randrange(len(days) - 10) if n % 25 == 7 else -100
        stop = len(days) - 14 if n == 3 else len(days)
        for i, day in enumerate(days[:stop]):
            if gap <= i < gap + 10:
                continue
            opening = close
            close = max(0.01, close * math.exp(rng.gauss(drift, vol)))
            o, c = Decimal(opening).quantize(Q4), Decimal(close).quantize(Q4)
            spread = Decimal(close * rng.uniform(0, 0.01)).quantize(Q4)
            rows.append(
                {
                    "asset_id": asset.id,
                    "price_date": day,
                    "open": o,
                    "high": max(o, c) + spread,
                    "low": max(Q4, min(o, c) - spread),
                    "close": c,
                    "volume": Decimal(rng.randint(1_000, 5_000_000)),
                }
            )
        if len(rows) >= 50_000:
            await flush()
    await flush()
    log(
        f"  {len(assets)} assets, {count:,} prices (up to {len(days)} weekdays each) "
        f"in {time.perf_counter() - started:.1f} s"
    )
    usd_gbp, eur_usd = 0.65, 1.35
    rates = []
    for day in days:
        usd_gbp = min(0.95, max(0.55, usd_gbp * math.exp(rng.gauss(0, 0.004))))
        eur_usd = min(1.6, max(0.95, eur_usd * math.exp(rng.gauss(0, 0.004))))
        rates.append(market.FxRateIn(day, "USD", "GBP", Decimal(usd_gbp).quantize(Q4)))
        rates.append(market.FxRateIn(day, "EUR", "USD", Decimal(eur_usd).quantize(Q4)))
    async with unit_of_work(db) as session:
        await market.upsert_fx_rates(session, rates)
    log(f"  {len(rates):,} FX rates (USD/GBP, EUR/USD)")
    return assets


# --------------------------------------------------------------------------- ledger


def journal(
    path: Path,
    rng: random.Random,
    specs: list[tuple[str, str]],
    first: datetime,
    last: datetime,
    per_week: float,
) -> int:
    """A `.goluca` journal: `specs` (path, currency) opened on `first`, about `per_week`
    movements per account and week until `last` against income and expense accounts, about one
    transaction in ten with a second movement. Returns the number of movements."""
    seconds = (last - first).total_seconds()
    weeks = seconds / (7 * 86_400)
    entries: list[tuple[datetime, str]] = []
    moves = 0
    for account, currency in specs:
        kind = account.split(":")[0]
        broker = ":Broker:" in account
        income, expense = f"Income:Salary:{currency}", f"Expense:Living:{currency}"
        for _ in range(max(1, round(per_week * weeks))):
            when = first + timedelta(seconds=rng.uniform(0, seconds))
            if broker:  # deposits, now and then a withdrawal
                lines = (
                    [(income, account, rng.randint(10_000, 500_000))]
                    if rng.random() < 0.8
                    else [(account, expense, rng.randint(1_000, 100_000))]
                )
            elif kind == "Liability":  # charges, and repayments
                lines = (
                    [(account, expense, rng.randint(500, 50_000))]
                    if rng.random() < 0.8
                    else [(income, account, rng.randint(10_000, 200_000))]
                )
            else:  # income in, spending out
                lines = (
                    [(income, account, rng.randint(5_000, 300_000))]
                    if rng.random() < 0.35
                    else [(account, expense, rng.randint(500, 30_000))]
                )
            if rng.random() < 0.1:  # a split
                lines.append((account, expense, rng.randint(100, 5_000)))
            moves += len(lines)
            text = [f"{when:%Y-%m-%dT%H:%M:%S}Z * Payee {rng.randrange(1000)}"]
            text += [f"  {a} -> {b} {c // 100}.{c % 100:02d} {currency}" for a, b, c in lines]
            entries.append((when, "\n".join(text)))
    entries.sort()
    with path.open("w") as out:
        out.write("option operating-currency GBP\n")
        for currency in CURRENCIES:
            out.write(f"{first:%Y-%m-%d} commodity {currency}\n  exponent: -2\n")
        opened = {a: c for a, c in specs}
        for currency in CURRENCIES:
            opened[f"Income:Salary:{currency}"] = currency
            opened[f"Expense:Living:{currency}"] = currency
        for account, currency in opened.items():
            out.write(f"{first:%Y-%m-%d} open {account} {currency}\n")
        for _, text in entries:
            out.write(f"\n{text}\n")
    return moves


def account_specs(accounts: int, brokers: int) -> list[tuple[str, str]]:
    """Broker accounts first, then current/savings accounts, one in four a liability."""
    specs = [(f"Asset:Broker:B{b:02d}", CURRENCIES[b % 3]) for b in range(brokers)]
    for i in range(accounts - brokers):
        currency = CURRENCIES[i % 3]
        if i % 4 == 3:
            specs.append((f"Liability:{'Card' if i % 8 == 3 else 'Loan'}:L{i:03d}", currency))
        else:
            specs.append((f"Asset:{'Bank' if i % 2 else 'Savings'}:A{i:03d}", currency))
    return specs


async def import_ledger(db: Any, user_id: uuid.UUID, path: Path) -> None:
    from worthline.kit.db import unit_of_work
    from worthline.ledger.journal_io import import_journal

    async with unit_of_work(db) as session:
        with path.open(encoding="utf-8") as handle:
            await import_journal(session, user_id, handle)


# --------------------------------------------------------------------------- holdings


async def sync_all(
    db: Any,
    rng: random.Random,
    user_id: uuid.UUID,
    brokers: list[uuid.UUID],
    assets: list[Any],
    per_broker: int,
    first: datetime,
    last: datetime,
    per_year: int,
    stagger_days: int,
) -> int:
    """Each broker holds `per_broker` positions out of its own block of assets plus two of the
    next block's; synced `per_year` times a year from its first sync on (staggered by
    `stagger_days` per broker), in time order over all brokers. Returns the number of syncs."""
    from worthline.kit.db import unit_of_work
    from worthline.portfolio.holdings import HoldingIn, sync_holdings

    n = len(assets)
    step = timedelta(days=365.25 / per_year)
    plans = []
    for b, public_id in enumerate(brokers):
        universe = [assets[(b * per_broker + k) % n] for k in range(per_broker + 2)]
        held = {a.id: Decimal(rng.randint(5, 800)) for a in universe[:per_broker]}
        plans.append((public_id, universe, held, first + timedelta(days=b * stagger_days)))
    syncs = 0
    when = first
    while when <= last:
        for public_id, universe, held, start in plans:
            if when < start:
                continue
            if rng.random() < 0.5:  # sell one position, buy another of the universe
                out = rng.choice(sorted(held))
                candidates = [a.id for a in universe if a.id not in held]
                del held[out]
                held[rng.choice(candidates)] = Decimal(rng.randint(5, 800))
            for asset_id in held:
                if rng.random() < 0.8:
                    held[asset_id] = (held[asset_id] * Decimal(rng.uniform(0.9, 1.15))).quantize(Q4)
            symbol = {a.id: a.symbol for a in universe}
            items = [
                HoldingIn(symbol[a], q, cost_basis=(q * 37).quantize(Q4)) for a, q in held.items()
            ]
            async with unit_of_work(db) as session:
                await sync_holdings(session, user_id, public_id, items, as_of=when)
            syncs += 1
        when += step
    return syncs


# --------------------------------------------------------------------------- users


async def noise_user(
    db: Any, rng: random.Random, n: int, assets: list[Any], window: tuple, scratch: Path
) -> None:
    from sqlalchemy import select

    from worthline.auth.models import User
    from worthline.kit.db import unit_of_work
    from worthline.ledger.models import Account

    first, last = window
    async with unit_of_work(db) as session:
        user = User(email=f"noise{n}@example.com", password_hash="x", base_currency="USD")
        session.add(user)
        await session.flush()
        user_id = user.id
    path = scratch / f"noise{n}.goluca"
    journal(path, rng, account_specs(50, 2), first, last, 1.0)
    await import_ledger(db, user_id, path)
    path.unlink()
    async with db.read_session() as session:
        brokers = list(
            await session.scalars(
                select(Account.public_id)
                .where(Account.user_id == user_id, Account.full_path.like("Asset:Broker:%"))
                .order_by(Account.full_path)
            )
        )
    shuffled = assets[:]
    rng.shuffle(shuffled)
    await sync_all(db, rng, user_id, brokers, shuffled, 20, first, last, 1, 0)


async def build(ctx: Any, client: Any, args: argparse.Namespace, scratch: Path) -> None:
    """All the data: market data, the measured user (registered through the API), others."""
    from sqlalchemy import func, select, text

    from worthline.ledger.models import Account, BalanceLive, Movement
    from worthline.market.models import Price
    from worthline.portfolio.models import HoldingHistory

    db = ctx.db
    now = datetime.now(UTC)
    today = now.date()
    start = today - timedelta(days=round(365.25 * args.years))
    first = datetime.combine(start - timedelta(days=45), datetime.min.time(), tzinfo=UTC)
    last = now - timedelta(hours=1)
    rng = random.Random(42)
    phases: dict[str, float] = {}

    t0 = time.perf_counter()
    assets = await market_data(db, args, start - timedelta(days=45), today)
    phases["market data"] = time.perf_counter() - t0

    r = await client.post(
        "/auth/register", json={"email": EMAIL, "password": PASSWORD, "base_currency": "GBP"}
    )
    assert r.status_code == 201, r.text
    user_id, _ = await login(client)

    t0 = time.perf_counter()
    path = scratch / "user.goluca"
    specs = account_specs(args.accounts, args.brokers)
    moves = journal(path, rng, specs, first, last, args.per_week)
    generated = time.perf_counter() - t0
    t0 = time.perf_counter()
    await import_ledger(db, user_id, path)
    phases["journal import"] = time.perf_counter() - t0
    log(
        f"  user: {len(specs)} accounts, {moves:,} movements "
        f"({path.stat().st_size / 1e6:.1f} MB journal generated in {generated:.1f} s, "
        f"imported in {phases['journal import']:.1f} s)"
    )
    path.unlink()

    t0 = time.perf_counter()
    async with db.read_session() as session:
        brokers = list(
            await session.scalars(
                select(Account.public_id)
                .where(Account.user_id == user_id, Account.full_path.like("Asset:Broker:%"))
                .order_by(Account.full_path)
            )
        )
    syncs = await sync_all(
        db,
        rng,
        user_id,
        brokers,
        assets,
        args.holdings // args.brokers,
        first + timedelta(days=20),
        last,
        args.syncs_per_year,
        30,
    )
    phases["holdings syncs"] = time.perf_counter() - t0
    log(f"  user: {syncs} holdings syncs in {phases['holdings syncs']:.1f} s")

    t0 = time.perf_counter()
    for n in range(args.noise_users):
        await noise_user(db, rng, n, assets, (first, last), scratch)
    phases["noise users"] = time.perf_counter() - t0
    if args.noise_users:
        log(f"  {args.noise_users} noise users in {phases['noise users']:.1f} s")

    if db.dialect == "postgresql":
        t0 = time.perf_counter()
        async with db.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))
        phases["vacuum analyze"] = time.perf_counter() - t0
    async with db.read_session() as session:

        async def count(model: Any, *where: Any) -> int:
            return int(await session.scalar(select(func.count()).select_from(model).where(*where)))

        mine = select(Account.id).where(Account.user_id == user_id).scalar_subquery()
        log(
            "  rows: "
            f"movements {await count(Movement):,} "
            f"(user {await count(Movement, Movement.from_account_id.in_(mine)):,}), "
            f"balances_live {await count(BalanceLive):,} "
            f"(user {await count(BalanceLive, BalanceLive.account_id.in_(mine)):,}), "
            f"holding_history {await count(HoldingHistory):,} "
            f"(user {await count(HoldingHistory, HoldingHistory.account_id.in_(mine)):,}), "
            f"asset_prices {await count(Price):,}"
        )
    log("  data phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()))


# --------------------------------------------------------------------------- timing


class GcPauses:
    """Time the garbage collector spends while installed (gc.callbacks), in ms."""

    def __init__(self) -> None:
        self.total = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.total += (time.perf_counter() - self._started) * 1000

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


async def timed(call: Callable[[], Awaitable[int]], runs: int, warmup: int) -> dict[str, Any]:
    for _ in range(warmup):
        await call()
    before = load_avg()
    samples = []
    points = 0
    with GcPauses() as pauses:
        for _ in range(runs):
            t0 = time.perf_counter()
            points = await call()
            samples.append((time.perf_counter() - t0) * 1000)
    return {
        "p50": pct(samples, 50),
        "p95": pct(samples, 95),
        "p99": pct(samples, 99),
        "max": max(samples),
        "points": points,
        "runs": runs,
        "load": (before + load_avg()) / 2,
        "gc_ms": pauses.total / runs,
    }


class Fetched(list):
    """Rows fetched in full, usable as the result they came from (`.all()`, iteration)."""

    def all(self) -> list[Any]:
        return list(self)


class CountingSession:
    """A session (and its connection) whose `execute` fetches and decodes every row at once,
    timing it and counting the rows: what `history()` does with each result anyway."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self.log: list[tuple[float, int]] = []

    async def execute(self, *a: Any, **kw: Any) -> Fetched:
        return await self._timed(self._session.execute(*a, **kw))

    async def scalar(self, *a: Any, **kw: Any) -> Any:
        rows = await self._timed(self._session.execute(*a, **kw))
        return rows[0][0] if rows else None

    async def connection(self) -> Any:
        connection = await self._session.connection()
        outer = self

        class Counting:
            async def execute(self, *a: Any, **kw: Any) -> Fetched:
                return await outer._timed(connection.execute(*a, **kw))

        return Counting()

    async def _timed(self, pending: Awaitable[Any]) -> Fetched:
        t0 = time.perf_counter()
        rows = Fetched((await pending).all())
        self.log.append(((time.perf_counter() - t0) * 1000, len(rows)))
        return rows

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


STATEMENTS = (
    "1 cash changes (net_worth_cash)",
    "2 holdings value changes (net_worth_held)",
    "3 stale spans (net_worth_stale)",
    "4 fx rates version token (the rates themselves: kept by the process)",
)


async def phases(db: Any, user_id: uuid.UUID, start: date, end: date, interval: str) -> list:
    """One instrumented `series.history()` run: (what, ms, rows) per statement, then the rest."""
    from worthline.portfolio import series

    dates = series.points(start, end, interval)
    async with db.read_session() as session:
        counting = CountingSession(session)
        t0 = time.perf_counter()
        await series.history(counting, user_id, "GBP", dates)  # type: ignore[arg-type]
        total = (time.perf_counter() - t0) * 1000
    names = STATEMENTS if len(counting.log) == len(STATEMENTS) else None
    rows = [
        (names[i] if names else f"statement {i + 1}", ms, n)
        for i, (ms, n) in enumerate(counting.log)
    ]
    queries = sum(ms for _, ms, _ in rows)
    rows.append(("Python (sums, rates, flags, rounding)", total - queries, None))
    rows.append(("total", total, None))
    return rows


async def profile(db: Any, user_id: uuid.UUID, start: date, end: date, top: int) -> None:
    from worthline.portfolio import series

    dates = series.points(start, end, "day")
    async with db.read_session() as session:
        profiler = cProfile.Profile()
        profiler.enable()
        await series.history(session, user_id, "GBP", dates)
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    log("  cProfile of one daily history() call, by own time:")
    for line in out.getvalue().splitlines():
        if line.strip() and not line.startswith("   Ordered by"):
            log(f"    {line.rstrip()}")


async def measure(ctx: Any, client: Any, user_id: uuid.UUID, headers: dict, args: Any) -> dict:
    from worthline.portfolio import series

    end = datetime.now(UTC).date()
    start = end - timedelta(days=round(365.25 * args.years))
    figures: dict[str, Any] = {}
    for interval in ("day", "week", "month"):

        async def http(interval: str = interval) -> int:
            r = await client.get(
                f"/net-worth/history?start_date={start}&end_date={end}&interval={interval}",
                headers=headers,
            )
            assert r.status_code == 200, r.text
            return len(r.json()["points"])

        async def bare(interval: str = interval) -> int:
            dates = series.points(start, end, interval)
            async with ctx.db.read_session() as session:
                out = await series.history(session, user_id, "GBP", dates)
            return len(out)

        for name, call in (("GET /net-worth/history", http), ("history()", bare)):
            f = await timed(call, args.runs, args.warmup)
            figures[f"{name} {interval}"] = f
            log(
                f"  {name:<23} {interval:<5} {f['points']:>5} points: p50 {f['p50']:7.1f} ms  "
                f"p95 {f['p95']:7.1f}  p99 {f['p99']:7.1f}  max {f['max']:7.1f}  "
                f"(GC {f['gc_ms']:.0f} ms/run; {f['runs']} runs, load {f['load']:.2f})"
            )
        rows = await phases(ctx.db, user_id, start, end, interval)
        figures[f"phases {interval}"] = rows
        log(f"  where the time goes, interval={interval} (one instrumented run):")
        for what, ms, n in rows:
            log(f"    {what:<52} {ms:8.1f} ms" + (f"  {n:>8,} rows" if n is not None else ""))
    if args.profile:
        await profile(ctx.db, user_id, start, end, args.profile)
    return figures


# --------------------------------------------------------------------------- writes


async def writes(ctx: Any, user_id: uuid.UUID, args: argparse.Namespace) -> dict:
    """What maintaining the series costs the writes that move it (see the module docstring)."""
    from sqlalchemy import func, select

    from worthline.kit.db import unit_of_work
    from worthline.ledger import service as ledger
    from worthline.ledger.models import Account
    from worthline.market import service as market
    from worthline.market.models import Asset, Price
    from worthline.portfolio.holdings import HoldingIn, sync_holdings
    from worthline.portfolio.models import Holding
    from worthline.portfolio.networth import market_moved

    db = ctx.db
    today = datetime.now(UTC).date()
    async with db.read_session() as session:
        broker = await session.scalar(
            select(Account)
            .where(Account.user_id == user_id, Account.full_path.like("Asset:Broker:%"))
            .order_by(Account.full_path)
            .limit(1)
        )
        bank = await session.scalar(
            select(Account)
            .where(Account.user_id == user_id, Account.full_path.like("Asset:Bank:%"))
            .order_by(Account.full_path)
            .limit(1)
        )
        opening = await session.scalar(
            select(Account).where(
                Account.user_id == user_id, Account.full_path == f"Income:Salary:{bank.currency}"
            )
        )
        held = (
            await session.execute(
                select(Asset.symbol, Holding.quantity)
                .join(Holding, Holding.asset_id == Asset.id)
                .where(Holding.account_id == broker.id, Holding.is_active.is_(True))
                .order_by(Asset.symbol)
            )
        ).all()
        assets = list(await session.scalars(select(Asset).order_by(Asset.id)))
        latest = dict(
            (
                await session.execute(
                    select(Price.asset_id, func.max(Price.close)).group_by(Price.asset_id)
                )
            ).all()
        )
        held_asset = await session.scalar(
            select(Asset).where(Asset.symbol == held[0][0]) if held else select(Asset).limit(1)
        )
    figures: dict[str, Any] = {}

    async def sync(n: int) -> None:
        items = [
            HoldingIn(symbol, quantity + Decimal(n + 1) if i == 0 else quantity)
            for i, (symbol, quantity) in enumerate(held)
        ]
        async with unit_of_work(db) as session:
            await sync_holdings(session, user_id, broker.public_id, items)

    async def closes(n: int) -> None:
        async with unit_of_work(db) as session:
            for asset in assets:
                price = latest.get(asset.id, Decimal(10)) + Decimal(n) / 100
                await market.upsert_prices(session, asset, [market.PriceIn(today, price)])
            await market_moved(session, prices={a.id: today for a in assets})

    async def movement(n: int) -> None:
        async with unit_of_work(db) as session:
            spec = ledger.NewMovement(opening.public_id, bank.public_id, Decimal("1.00"))
            await ledger.record_movements(session, user_id, [spec])

    async def backfill(n: int) -> None:
        day = today - timedelta(days=5 * 365 + n)
        async with unit_of_work(db) as session:
            await market.upsert_prices(session, held_asset, [market.PriceIn(day, Decimal(50 + n))])
            await market_moved(session, prices={held_asset.id: day})

    for name, call in (
        (f"holdings sync today ({len(held)} positions)", sync),
        (f"today's close for all {len(assets)} assets, one transaction", closes),
        ("one movement on an Asset account", movement),
        ("a price correction 5 years back (one held asset)", backfill),
    ):
        samples = []
        for n in range(args.write_runs):
            t0 = time.perf_counter()
            await call(n)
            samples.append((time.perf_counter() - t0) * 1000)
        figures[name] = samples
        log(
            f"  write: {name:<58} p50 {pct(samples, 50):8.1f} ms  max {max(samples):8.1f} ms"
            f"  ({len(samples)} runs, load {load_avg():.2f})"
        )
    return figures


# --------------------------------------------------------------------------- main


async def login(client: Any) -> tuple[uuid.UUID, dict]:
    r = await client.post("/auth/login", json={"email": EMAIL, "password": PASSWORD})
    assert r.status_code == 200, r.text
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = await client.get("/users/me", headers=headers)
    return uuid.UUID(r.json()["id"]), headers


async def run(url: str, args: argparse.Namespace, data_dir: Path, reuse: bool) -> dict:
    import httpx

    from worthline.app import create_app
    from worthline.kit.config import Settings
    from worthline.kit.context import AppContext
    from worthline.kit.logging import configure_logging

    configure_logging("WARNING")  # no access log line per request on the console
    settings = Settings(
        database_url=url,
        data_dir=data_dir,
        jwt_signing_key="bench-signing-key-0123456789abcdef-0123456789abcdef",
        password_hash_time_cost=1,
        password_hash_memory_kib=64,
        rate_limit_api_read="0",
        rate_limit_api_write="0",
        rate_limit_auth="0",
        demo_data="off",
        log_level="WARNING",
    )
    ctx = AppContext.build(settings)
    app = create_app(settings, ctx)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench/api/v1", timeout=120
        ) as client:
            if not reuse:
                started = time.perf_counter()
                await build(ctx, client, args, data_dir.parent)
                log(f"  data built in {time.perf_counter() - started:.1f} s, load {load_avg():.2f}")
            user_id, headers = await login(client)
            from worthline.portfolio import series

            t0 = time.perf_counter()
            await series.ensure_built(ctx.db, user_id)
            log(
                f"  series build (the first read's one-time work): {time.perf_counter() - t0:.2f} s"
            )
            if args.gc_freeze:  # what a worker could do once started: see the notes
                gc.collect()
                gc.freeze()
                log(f"  gc.freeze(): {gc.get_freeze_count():,} objects out of the collector's way")
            if not args.runs:
                return {}
            figures = await measure(ctx, client, user_id, headers, args)
            if args.write_runs:
                figures["writes"] = await writes(ctx, user_id, args)
            return figures
    finally:
        await ctx.close()


class Database:
    """A fresh, migrated database (dropped or deleted at the end unless kept), or a kept one."""

    def __init__(self, engine: str, keep: bool, reuse: str | None) -> None:
        self.keep, self.reuse = keep, reuse
        self.dir = Path(tempfile.mkdtemp(prefix="wl-bench-nw-"))
        self.name = None
        if reuse:
            self.url = reuse
        elif engine == "sqlite":
            self.url = f"sqlite+aiosqlite:///{self.dir}/bench.db"
        else:
            self.name = f"wl_bench_nw_{uuid.uuid4().hex[:8]}"
            self.url = f"{PG_ADMIN}/{self.name}"

    def __enter__(self) -> Database:
        from worthline.kit import migrate

        if self.reuse:
            return self
        if self.name:
            asyncio.run(_pg(f'CREATE DATABASE "{self.name}"'))
        migrate.upgrade(self.url)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.keep or self.reuse:
            log(f"  kept: --reuse {self.url}")
        if self.keep:
            return
        if self.reuse:
            shutil.rmtree(self.dir, ignore_errors=True)  # only this run's data directory
            return
        if self.name:
            asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        shutil.rmtree(self.dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--accounts", type=int, default=50, help="Asset/Liability accounts")
    parser.add_argument("--brokers", type=int, default=10, help="of which broker accounts")
    parser.add_argument("--holdings", type=int, default=200, help="positions over all brokers")
    parser.add_argument("--assets", type=int, default=200)
    parser.add_argument("--per-week", type=float, default=4.0, help="movements/account/week")
    parser.add_argument("--syncs-per-year", type=int, default=4)
    parser.add_argument("--noise-users", type=int, default=2)
    parser.add_argument("--runs", type=int, default=20, help="timed runs per case")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print top N")
    parser.add_argument(
        "--write-runs", type=int, default=5, help="timed runs per maintaining write (0: none)"
    )
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() once the app and data are set up, before timing",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", metavar="URL", help="measure a database kept by --keep")
    args = parser.parse_args()
    if args.holdings % args.brokers or args.assets < args.holdings // args.brokers + 2:
        parser.error(
            "need --holdings divisible by --brokers, and 2 more assets than a broker holds"
        )

    log(
        f"bench_networth: engine {args.engine}; python {sys.version.split()[0]}; "
        f"{os.cpu_count()} cores; load {load_avg():.2f}; {args.years} years, "
        f"{args.accounts} accounts ({args.brokers} brokers), {args.holdings} holdings over "
        f"{args.assets} assets, {args.per_week}/week/account, "
        f"{args.syncs_per_year} syncs/year, {args.noise_users} noise users"
    )
    with Database(args.engine, args.keep, args.reuse) as database:
        figures = asyncio.run(run(database.url, args, database.dir / "data", bool(args.reuse)))
    if not args.runs:
        return
    day = figures["GET /net-worth/history day"]
    verdict = "met" if day["p95"] < TARGET_MS else "MISSED"
    log(
        f"target: daily {args.years}-year history over HTTP < {TARGET_MS:.0f} ms: {verdict} "
        f"(p50 {day['p50']:.0f} ms, p95 {day['p95']:.0f} ms)"
    )


if __name__ == "__main__":
    main()

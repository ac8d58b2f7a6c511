"""Ledger benchmarks (issue 3). Prints figures; record them in docs/benchmarks.md.

    python benchmarks/bench_ledger.py movements --engine sqlite --count 5000 --writers 1
    python benchmarks/bench_ledger.py movements --engine postgresql --writers 4 --users 4
    python benchmarks/bench_ledger.py import --engine postgresql --movements 1000000

`movements`: single movements with projections, one transaction each, through the service
layer (`ledger.direct.record_movement`, what `POST /movements` calls), spread over 100 accounts
per user; `--writers` concurrent writers (SQLite serialises them; PostgreSQL runs them in
parallel, except that the writes of one user take turns on its event lock), spread over
`--users` users (writer i writes for user i mod users); on uvloop, as the server runs, unless
`--loop asyncio`.

`import`: generates a `.goluca` journal (N movements over 1,000 accounts and three years; the
generation is not timed), imports it in a child process (time and peak RSS of that process),
then on the imported ledger times daily balances for three years of one busy account and a
movement backdated one year on it (median and p99 of repeated runs).

Databases are created fresh (a temp SQLite file, or a throwaway PostgreSQL database on
127.0.0.1) and removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

PG_ADMIN = os.environ.get("BENCH_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432")


# --------------------------------------------------------------------------- databases


async def _pg(sql: str) -> None:
    from sqlalchemy import text

    from worthline.kit.db import create_engine

    engine = create_engine(f"{PG_ADMIN}/postgres", isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(sql))
    await engine.dispose()


class Scratch:
    """A fresh, migrated database for one benchmark run."""

    def __init__(self, engine: str) -> None:
        self.engine = engine
        self.dir = tempfile.mkdtemp(prefix="wl-bench-")
        if engine == "sqlite":
            self.url = f"sqlite+aiosqlite:///{self.dir}/bench.db"
        else:
            self.name = f"wl_bench_{uuid.uuid4().hex[:8]}"
            self.url = f"{PG_ADMIN}/{self.name}"

    def __enter__(self) -> Scratch:
        from worthline.kit import migrate

        if self.engine == "postgresql":
            asyncio.run(_pg(f'CREATE DATABASE "{self.name}"'))
        migrate.upgrade(self.url)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.engine == "postgresql":
            asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        subprocess.run(["rm", "-rf", self.dir], check=False)


async def _user_and_accounts(db, count: int, currency: str = "GBP"):  # type: ignore[no-untyped-def]
    from worthline.auth.models import User
    from worthline.kit.db import unit_of_work
    from worthline.ledger import service

    async with unit_of_work(db) as session:
        user = User(email=f"bench-{uuid.uuid4().hex[:6]}@example.com", password_hash="x")
        session.add(user)
        await session.flush()
        accounts = [
            await service.create_account(
                session,
                user.id,
                service.NewAccount(f"Asset:Bench:A{i:04d}", currency),
                datetime.now(UTC),
            )
            for i in range(count)
        ]
    return user.id, accounts


def _machine_cpu() -> float:
    """Seconds of CPU the whole machine has spent (Linux `/proc/stat`; 0 elsewhere)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    busy = sum(int(f) for f in fields[:8]) - int(fields[3]) - int(fields[4])  # not idle, iowait
    return busy / os.sysconf("SC_CLK_TCK")


def _cpu_check() -> float:
    """Milliseconds for a fixed piece of pure Python (the best of three): how fast this VM runs
    right now, to compare figures taken at different times (a shared VM's speed changes by a
    third from one hour to the next; the figures move with it)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        sum(range(10_000_000))
        best = min(best, time.perf_counter() - started)
    return best * 1000


def _pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# --------------------------------------------------------------------------- movements


def random_movement(rng: random.Random, accounts: list, now: datetime):  # type: ignore[no-untyped-def]
    """A movement between two of `accounts` (0.01 to 1,000.00), value time up to 30 days back."""
    from worthline.ledger import service

    a, b = rng.sample(accounts, 2)
    return service.NewMovement(
        a.public_id,
        b.public_id,
        Decimal(rng.randint(1, 100_000)) / 100,
        value_time=now - timedelta(days=rng.randint(0, 30)),
    )


async def _movements(url: str, count: int, writers: int, users: int) -> None:
    from worthline.kit.db import Database
    from worthline.ledger import direct

    db = Database(url)
    owners = [await _user_and_accounts(db, 100) for _ in range(users)]
    now = datetime.now(UTC)
    latencies: list[float] = []

    def specs(seed: int, n: int) -> tuple[uuid.UUID, list]:  # drawn before the clock starts
        rng = random.Random(seed)
        user_id, accounts = owners[seed % users]
        return user_id, [random_movement(rng, accounts, now) for _ in range(n)]

    async def writer(user_id: uuid.UUID, todo: list) -> None:
        for spec in todo:
            started = time.perf_counter()
            await direct.record_movement(db, user_id, spec)  # one transaction each
            latencies.append(time.perf_counter() - started)

    for user in range(users):  # warm-up: connections, statement caches, each net worth
        await writer(*specs(1000 + user, 200 // users))
    latencies.clear()
    work = [specs(s, count // writers) for s in range(writers)]
    cpu, machine, started = time.process_time(), _machine_cpu(), time.perf_counter()
    await asyncio.gather(*(writer(*todo) for todo in work))
    elapsed = time.perf_counter() - started
    cpu, machine = time.process_time() - cpu, _machine_cpu() - machine
    done = len(latencies)
    print(
        f"movements: {done} in {elapsed:.2f} s = {done / elapsed:,.0f}/s "
        f"({writers} writer(s), {users} user(s)); per transaction "
        f"p50 {_pct(latencies, 50) * 1000:.2f} ms, p99 {_pct(latencies, 99) * 1000:.2f} ms"
    )
    if machine:  # where the time goes: this process, and the rest (the database, mostly)
        print(
            f"CPU per movement: {cpu / done * 1000:.2f} ms in this process, "
            f"{max(machine - cpu, 0) / done * 1000:.2f} ms elsewhere on the machine"
        )
    await db.dispose()


# --------------------------------------------------------------------------- import


def generate_journal(path: Path, movements: int, accounts: int, years: int) -> date:
    """Movements between random accounts, in time order, one per transaction."""
    rng = random.Random(42)
    start = date(2022, 1, 1)
    seconds = years * 365 * 86_400
    step = seconds / movements
    names = [f"Asset:Bank:Acct{i:04d}" for i in range(accounts)]
    with path.open("w") as out:
        out.write(f"option operating-currency GBP\n{start} commodity GBP\n  exponent: -2\n")
        for name in names:
            out.write(f"{start} open {name} GBP\n")
        base = datetime(2022, 1, 1, tzinfo=UTC)
        # A few busy accounts (a tenth of all traffic goes through account 0).
        for i in range(movements):
            when = base + timedelta(seconds=int(i * step))
            a = 0 if i % 10 == 0 else rng.randrange(accounts)
            b = rng.randrange(accounts - 1)
            b = b + 1 if b >= a else b
            pence = rng.randint(1, 500_000)
            out.write(
                f"\n{when:%Y-%m-%dT%H:%M:%S}Z * Payment {i}\n"
                f"  {names[a]} -> {names[b]} {pence // 100}.{pence % 100:02d} GBP\n"
            )
    return start


async def _import_child(url: str, journal: str) -> None:
    """Runs in a child process so that its peak RSS is the import's own."""
    from worthline.kit.db import Database, unit_of_work
    from worthline.ledger.journal_io import import_journal

    db = Database(url)
    user_id, _ = await _user_and_accounts(db, 0)
    started = time.perf_counter()
    async with unit_of_work(db) as session:
        # The importer reads the file line by line, blocking briefly: it is the thing timed.
        with open(journal, encoding="utf-8") as handle:  # noqa: ASYNC230
            result = await import_journal(session, user_id, handle)
    elapsed = time.perf_counter() - started
    await db.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"import: {result.movements_recorded:,} movements in {elapsed:.1f} s = "
        f"{result.movements_recorded / elapsed:,.0f} movements/s; peak RSS {peak:.0f} MB"
    )
    print(f"USER {user_id}")


async def _queries(url: str, user_id: uuid.UUID, start: date, years: int) -> None:
    from sqlalchemy import func, select

    from worthline.kit.db import Database, unit_of_work
    from worthline.ledger import direct, service
    from worthline.ledger import repository as repo
    from worthline.ledger.models import Account, Movement

    db = Database(url)
    async with db.read_session() as session:
        busy = await session.scalar(
            select(Account).where(
                Account.user_id == user_id, Account.full_path == "Asset:Bank:Acct0000"
            )
        )
        other = await session.scalar(
            select(Account).where(
                Account.user_id == user_id, Account.full_path == "Asset:Bank:Acct0001"
            )
        )
        moves = await session.scalar(
            select(func.count()).select_from(Movement).where(Movement.from_account_id == busy.id)
        )
    end = start + timedelta(days=years * 365 - 1)
    daily: list[float] = []
    for _ in range(60):
        async with db.read_session() as session:
            started = time.perf_counter()
            rows = await repo.daily_closing_balances(session, busy.id, start, end)
            daily.append(time.perf_counter() - started)
    print(
        f"daily balances, {len(rows)} days of an account with {moves:,}+ outgoing movements: "
        f"median {statistics.median(daily) * 1000:.2f} ms, p99 {_pct(daily, 99) * 1000:.2f} ms"
    )

    when = datetime.combine(end - timedelta(days=365), datetime.min.time(), tzinfo=UTC)

    def backdated(i: int) -> service.NewMovement:
        return service.NewMovement(
            other.public_id, busy.public_id, Decimal("1.00"), value_time=when + timedelta(minutes=i)
        )

    # As `POST /movements` records it (the first computes the net worth in full: not timed),
    # then through the regular path (a unit of work around `record_movements`).
    await direct.record_movement(db, user_id, backdated(0))
    timings: dict[str, list[float]] = {"POST /movements path": [], "regular path": []}
    for i in range(1, 41):
        started = time.perf_counter()
        await direct.record_movement(db, user_id, backdated(i))
        timings["POST /movements path"].append(time.perf_counter() - started)
    for i in range(41, 81):
        started = time.perf_counter()
        async with unit_of_work(db) as session:
            await service.record_movements(session, user_id, [backdated(i)])
        timings["regular path"].append(time.perf_counter() - started)
    for name, samples in timings.items():
        print(
            f"movement backdated one year on that account (updates ~365 later rows), {name}, "
            f"commit included: median {statistics.median(samples) * 1000:.2f} ms, "
            f"p99 {_pct(samples, 99) * 1000:.2f} ms"
        )
    await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="what", required=True)
    m = sub.add_parser("movements")
    m.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    m.add_argument("--count", type=int, default=5000)
    m.add_argument("--writers", type=int, default=1)
    m.add_argument("--users", type=int, default=1)
    m.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    i = sub.add_parser("import")
    i.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    i.add_argument("--movements", type=int, default=1_000_000)
    i.add_argument("--accounts", type=int, default=1000)
    i.add_argument("--years", type=int, default=3)
    c = sub.add_parser("_import_child")
    c.add_argument("url")
    c.add_argument("journal")
    args = parser.parse_args()

    if args.what == "_import_child":
        asyncio.run(_import_child(args.url, args.journal))
        return
    print(
        f"engine: {args.engine}; python {sys.version.split()[0]}; {os.cpu_count()} cores; "
        f"CPU check {_cpu_check():.0f} ms"
    )
    with Scratch(args.engine) as scratch:
        if args.what == "movements":
            run = asyncio.run
            if args.loop == "uvloop":  # what `worthline serve` runs on (uvicorn picks it)
                import uvloop

                run = uvloop.run
            run(_movements(scratch.url, args.count, args.writers, args.users))
            return
        journal = Path(scratch.dir) / "bench.goluca"
        started = time.perf_counter()
        start = generate_journal(journal, args.movements, args.accounts, args.years)
        print(
            f"generated {journal.stat().st_size / 1e6:.0f} MB journal in "
            f"{time.perf_counter() - started:.1f} s (not timed below)"
        )
        child = subprocess.run(
            [sys.executable, __file__, "_import_child", scratch.url, str(journal)],
            capture_output=True,
            text=True,
            check=True,
        )
        lines = child.stdout.strip().splitlines()
        print("\n".join(line for line in lines if not line.startswith("USER")))
        user_id = uuid.UUID(lines[-1].split()[1])
        asyncio.run(_queries(scratch.url, user_id, start, args.years))


if __name__ == "__main__":
    main()

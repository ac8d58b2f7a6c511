"""The floor under single movements (issue 3): the same SQL without the Python around it.

    python benchmarks/bench_write_floor.py --engine sqlite --count 2000
    python benchmarks/bench_write_floor.py --engine postgresql --count 2000

1. A fresh database with one user and 100 accounts is cloned (the SQLite file copied; on
   PostgreSQL `CREATE DATABASE ... TEMPLATE`), so both copies hold the same ids.
2. `--count` single movements are recorded in the first copy through the regular path
   (`ledger.service.record_movements`, one unit of work each; random pairs of the 100
   accounts, value times up to 30 days back), and every statement each transaction sends to
   the driver is captured with its parameters, as the driver received them. (On SQLite,
   `bench_ledger.py movements` and `POST /movements` now take `ledger.direct` instead: these
   statements, run on the driver, as the replay below does.)
3. Those transactions are replayed on the clone straight on the driver: the same statements
   and parameters, on the same rows, each transaction committed (sqlite3 with the app's
   pragmas on the calling thread; one asyncpg connection). Nothing else runs: no SQLAlchemy,
   no ORM, no validation, no event payloads, no thread hand-offs.

It prints both rates, the statements per movement and the time each kind of statement takes
in the replay. The difference between the two rates is what the Python around the SQL costs:
the part a faster write path could remove; the replay's rate is the ceiling of this SQL.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sqlite3
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ledger import PG_ADMIN, Scratch, _pct, _pg, _user_and_accounts, random_movement

Transaction = list[tuple[str, Any, bool]]  # (statement, parameters, executemany)


async def _record(url: str, count: int) -> tuple[float, list[Transaction], list[float]]:
    """Record `count` movements through the service, capturing each transaction's SQL."""
    from sqlalchemy import event

    from worthline.kit.db import Database, unit_of_work
    from worthline.ledger import service

    db = Database(url)
    async with db.read_session() as session:
        from sqlalchemy import select

        from worthline.auth.models import User
        from worthline.ledger.models import Account

        user_id = await session.scalar(select(User.id))
        accounts = list(await session.scalars(select(Account).order_by(Account.id)))
    captured: list[tuple[str, Any, bool]] = []

    def before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool):  # type: ignore[no-untyped-def]
        # An executemany that SQLAlchemy sends row by row (insertmanyvalues with RETURNING)
        # reaches the driver as single executes: only a list of rows is an executemany.
        rows = many and bool(params) and isinstance(params[0], list | tuple | dict)
        captured.append((statement, params, rows))

    event.listen(db.engine.sync_engine, "before_cursor_execute", before)
    rng = random.Random(7)
    now = datetime.now(UTC)
    transactions: list[Transaction] = []
    latencies: list[float] = []
    started = time.perf_counter()
    for _ in range(count):
        spec = random_movement(rng, accounts, now)
        captured.clear()
        began = time.perf_counter()
        async with unit_of_work(db) as session:
            await service.record_movements(session, user_id, [spec])  # type: ignore[arg-type]
        latencies.append(time.perf_counter() - began)
        transactions.append(list(captured))
    elapsed = time.perf_counter() - started
    event.remove(db.engine.sync_engine, "before_cursor_execute", before)
    await db.dispose()
    return count / elapsed, transactions, latencies


def _kind(statement: str) -> str:
    """The verb and table of a statement, for the breakdown."""
    words = statement.replace("(", " ").split()
    verb = words[0]
    if statement.startswith("SELECT pg_advisory"):
        return "SELECT pg_advisory_xact_lock"
    after = {"SELECT": "FROM", "INSERT": "INTO", "UPDATE": "UPDATE", "DELETE": "FROM"}.get(verb)
    table = words[words.index(after) + 1] if after in words[: len(words) - 1] else ""
    return f"{verb} {table}".strip()


def _replay_sqlite(path: Path, transactions: list[Transaction]) -> tuple[float, dict[str, float]]:
    from worthline.kit import db as kit_db

    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA foreign_keys=ON",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA busy_timeout=30000",
    ):
        conn.execute(pragma)
    conn.create_function(kit_db.SQLITE_PERCENT_FUNCTION, 2, kit_db.percent_change)
    conn.create_function(kit_db.SQLITE_JSON_NUMBER_FUNCTION, 1, kit_db._json_number)
    conn.create_function(kit_db.SQLITE_ADD_INTEGERS_FUNCTION, 2, kit_db._add_integers)
    spent: dict[str, float] = defaultdict(float)
    started = time.perf_counter()
    for transaction in transactions:
        for statement, params, many in transaction:
            began = time.perf_counter()
            if many:
                conn.executemany(statement, params)
            else:
                conn.execute(statement, params).fetchall()
            spent[_kind(statement)] += time.perf_counter() - began
        began = time.perf_counter()
        conn.execute("COMMIT")
        spent["COMMIT"] += time.perf_counter() - began
    elapsed = time.perf_counter() - started
    conn.close()
    return len(transactions) / elapsed, spent


async def _replay_postgres(
    url: str, transactions: list[Transaction]
) -> tuple[float, dict[str, float]]:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    await conn.execute("SET timezone = 'UTC'")
    spent: dict[str, float] = defaultdict(float)
    started = time.perf_counter()
    for transaction in transactions:
        began = time.perf_counter()
        await conn.execute("BEGIN")
        spent["BEGIN"] += time.perf_counter() - began
        for statement, params, many in transaction:
            began = time.perf_counter()
            if many:
                await conn.executemany(statement, params)
            else:
                await conn.fetch(statement, *(params or ()))
            spent[_kind(statement)] += time.perf_counter() - began
        began = time.perf_counter()
        await conn.execute("COMMIT")
        spent["COMMIT"] += time.perf_counter() - began
    elapsed = time.perf_counter() - started
    await conn.close()
    return len(transactions) / elapsed, spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    print(f"engine: {args.engine}; {args.count} movements; python {sys.version.split()[0]}")
    with Scratch(args.engine) as scratch:
        from worthline.kit.db import Database

        async def setup() -> None:
            db = Database(scratch.url)
            await _user_and_accounts(db, 100)
            await db.dispose()

        asyncio.run(setup())
        clone_name = f"{scratch.name}_replay" if args.engine == "postgresql" else ""
        clone_path = Path(scratch.dir) / "replay.db"
        if args.engine == "sqlite":
            source = sqlite3.connect(Path(scratch.dir) / "bench.db")
            source.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            source.close()
            shutil.copyfile(Path(scratch.dir) / "bench.db", clone_path)
        else:
            asyncio.run(_pg(f'CREATE DATABASE "{clone_name}" TEMPLATE "{scratch.name}"'))
        try:
            rate, transactions, latencies = asyncio.run(_record(scratch.url, args.count))
            if args.engine == "sqlite":
                floor, spent = _replay_sqlite(clone_path, transactions)
            else:
                floor, spent = asyncio.run(
                    _replay_postgres(f"{PG_ADMIN}/{clone_name}", transactions)
                )
        finally:
            if args.engine == "postgresql":
                asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{clone_name}" WITH (FORCE)'))
    statements = sum(len(t) for t in transactions) / len(transactions)
    print(
        f"through the service: {rate:,.0f} movements/s "
        f"(p50 {_pct(latencies, 50) * 1000:.2f} ms, p99 {_pct(latencies, 99) * 1000:.2f} ms)"
    )
    print(
        f"the same SQL on the driver: {floor:,.0f} movements/s "
        f"({statements:.1f} statements per movement, plus BEGIN/COMMIT)"
    )
    total = sum(spent.values())
    for kind, seconds in sorted(spent.items(), key=lambda item: -item[1]):
        share = 100 * seconds / total
        print(f"  {seconds / len(transactions) * 1e6:8.1f} µs  {share:4.1f} %  {kind}")


if __name__ == "__main__":
    main()

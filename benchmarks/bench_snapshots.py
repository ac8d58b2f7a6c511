"""Balance snapshot benchmarks (issue 4), on PostgreSQL. Prints figures; record them in
docs/benchmarks.md.

    .venv/bin/python benchmarks/bench_snapshots.py                       # 10,000,000 snapshots
    .venv/bin/python benchmarks/bench_snapshots.py --snapshots 1000000 --accounts 1000

1. A throwaway database (created on 127.0.0.1, migrated, dropped at the end) is filled inside
   PostgreSQL with `generate_series`: `--accounts` accounts, 50 per user, and `--snapshots`
   daily snapshots spread evenly over them (1,000 days each at the default sizes). The plain
   indexes are dropped during the load and rebuilt after it, then the table is analysed.
2. Queries, timed through SQLAlchemy on one connection (median and p99 of `--runs` runs, a
   random user or account each run, after a warm-up; every user's latest snapshots are read
   once first, and those cache-warming reads are reported on their own line):
   - latest snapshot per account for a user with 50 accounts, as `GET /balance-snapshots`
     runs it (`repository.latest_per_account`: two index probes per account), against the
     "max(captured_at) per account, then join back" pattern and a ROW_NUMBER() window;
   - one year (365 daily snapshots) of history for one account (`repository.history`), and
     the same as the JSON array balance-history answers with (`repository.history_array`).
3. HTTP: `worthline serve` (one worker, rate limits set very high, stderr to a log file)
   against that database; `wrk -t1 -c50` (or a bounded Python client when wrk is missing)
   on GET /accounts/{id}/balance-history for one year of daily snapshots.

Targets: each query < 10 ms p99; balance-history >= 400 requests/s on one worker.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_auth_read import Server, run_python, run_wrk

PG_ADMIN = os.environ.get("BENCH_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432")
PASSWORD = "bench-Horse-Battery-7"
PER_USER = 50
FIRST_DAY = datetime(2023, 1, 1, 6, 0, tzinfo=UTC)
HUGE_LIMIT = "100000000/minute"
TARGET_MS = 10.0
TARGET_RPS = 400.0


def log(message: str) -> None:
    print(message, flush=True)


def _pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def _admin(sql: str) -> None:
    from sqlalchemy import text

    from worthline.kit.db import create_engine

    engine = create_engine(f"{PG_ADMIN}/postgres", isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(sql))
    await engine.dispose()


# --------------------------------------------------------------------------- data


def _head_sql() -> str:
    """`repository.written_head` over the generator's columns (`g`), as PostgreSQL SQL: the
    text `jsontext.snapshot_head` stores when the app inserts a snapshot (a test holds the two
    to each other)."""
    from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.types import Uuid

    from worthline.kit.sql import uuid_text
    from worthline.snapshots.repository import Amount, written_head

    g = Table(
        "g",
        MetaData(),
        Column("id", Uuid()),
        Column("balance_amount", Amount),
        Column("available_balance_amount", Amount),
        Column("holdings_value_amount", Amount),
        Column("cash_value_amount", Amount),
        Column("currency", String()),
        Column("source", String()),
        Column("captured_at", DateTime(timezone=True)),
        Column("created_at", DateTime(timezone=True)),
        Column("public_id", Uuid()),
        Column("exponent", Integer()),
    )
    head = written_head(g, uuid_text(g.c.public_id), -g.c.exponent)
    compiled = head.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    return str(compiled)


async def load(url: str, accounts: int, snapshots: int) -> dict[str, float]:
    """Users, accounts and snapshots generated inside PostgreSQL; returns phase timings."""
    from argon2 import PasswordHasher
    from sqlalchemy import text

    from worthline.kit.db import create_engine

    users = -(-accounts // PER_USER)
    per_account = snapshots // accounts
    password_hash = PasswordHasher().hash(PASSWORD)
    engine = create_engine(url)
    timings: dict[str, float] = {}
    async with engine.begin() as conn:
        started = time.perf_counter()
        await conn.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
        await conn.execute(text("SET LOCAL synchronous_commit = off"))
        await conn.execute(
            text(
                "INSERT INTO users (id, email, password_hash, base_currency, created_at) "
                "SELECT md5('u' || u)::uuid, 'bench' || u || '@example.com', :hash, 'GBP', now() "
                "FROM generate_series(1, :users) AS u"
            ),
            {"hash": password_hash, "users": users},
        )
        await conn.execute(
            text(
                "INSERT INTO accounts (id, public_id, user_id, full_path, account_type, product, "
                "account_id, address, is_pending, currency, exponent, name, opened_on, metadata, "
                "created_at) "
                "SELECT a, md5('a' || a)::uuid, md5('u' || ((a - 1) / :per_user + 1))::uuid, "
                "'Asset:Bench:A' || lpad(a::text, 6, '0'), 'Asset', 'Bench', "
                "'A' || lpad(a::text, 6, '0'), NULL, false, 'GBP', -2, NULL, DATE '2023-01-01', "
                "'{}', now() FROM generate_series(1, :accounts) AS a"
            ),
            {"per_user": PER_USER, "accounts": accounts},
        )
        await conn.execute(
            text("SELECT setval(pg_get_serial_sequence('accounts', 'id'), :n)"), {"n": accounts}
        )
        timings["users_and_accounts_s"] = time.perf_counter() - started

        # Plain indexes are rebuilt after the load (far faster than maintaining them per row).
        definitions = list(
            (
                await conn.execute(
                    text(
                        "SELECT indexname, indexdef FROM pg_indexes "
                        "WHERE tablename = 'balance_snapshots' AND indexname NOT IN "
                        "(SELECT conname FROM pg_constraint "
                        " WHERE conrelid = 'balance_snapshots'::regclass)"
                    )
                )
            ).all()
        )
        for name, _ in definitions:
            await conn.execute(text(f'DROP INDEX "{name}"'))
        started = time.perf_counter()
        # Daily snapshots at 06:00 UTC, a random walk-ish balance with two decimals, each with
        # the JSON head the app stores at insert, written by the app's own SQL for it.
        await conn.execute(
            text(
                "INSERT INTO balance_snapshots (id, account_id, balance_amount, "  # noqa: S608
                "available_balance_amount, holdings_value_amount, cash_value_amount, currency, "
                "source, captured_at, scheduled_on, created_at, provider_metadata, json_head) "
                "SELECT g.id, g.account_id, g.balance_amount, g.available_balance_amount, "
                "g.holdings_value_amount, g.cash_value_amount, g.currency, g.source, "
                "g.captured_at, (g.captured_at AT TIME ZONE 'UTC')::date, g.created_at, "
                f'\'{{"basis": "ledger"}}\'::jsonb, {_head_sql()} FROM ('
                "SELECT gen_random_uuid() AS id, a AS account_id, b AS balance_amount, "
                "b AS available_balance_amount, NULL::numeric AS holdings_value_amount, "
                "b AS cash_value_amount, 'GBP' AS currency, 'scheduled_sync' AS source, "
                "at AS captured_at, at AS created_at, md5('a' || a)::uuid AS public_id, "
                "-2 AS exponent "
                "FROM generate_series(1, :accounts) AS a, generate_series(0, :days - 1) AS d, "
                "LATERAL (SELECT CAST(:first AS timestamptz) + d * interval '1 day' AS at, "
                "round((1000 + a % 97 * 100 + d * 1.37 "
                "+ (a * 7919 + d * 104729) % 1000 / 10.0)::numeric, 2) AS b) AS v) AS g"
            ),
            {"first": FIRST_DAY, "accounts": accounts, "days": per_account},
        )
        timings["snapshots_insert_s"] = time.perf_counter() - started
        started = time.perf_counter()
        for _, definition in definitions:
            await conn.execute(text(definition))
        timings["index_build_s"] = time.perf_counter() - started
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        started = time.perf_counter()
        await conn.execute(text("VACUUM ANALYZE balance_snapshots"))
        await conn.execute(text("ANALYZE accounts"))
        timings["vacuum_analyze_s"] = time.perf_counter() - started
        count = await conn.scalar(text("SELECT count(*) FROM balance_snapshots"))
        size = await conn.scalar(
            text("SELECT pg_size_pretty(pg_total_relation_size('balance_snapshots'))")
        )
    await engine.dispose()
    log(f"  loaded {count:,} snapshots over {accounts:,} accounts ({users:,} users): {size}")
    return timings


# --------------------------------------------------------------------------- queries

MAX_JOIN_BACK = """
SELECT s.* FROM balance_snapshots s
JOIN (SELECT b.account_id, max(b.captured_at) AS latest
      FROM balance_snapshots b JOIN accounts a ON a.id = b.account_id
      WHERE a.user_id = :user GROUP BY b.account_id) m
  ON s.account_id = m.account_id AND s.captured_at = m.latest
"""

ROW_NUMBER = """
SELECT * FROM (
  SELECT s.*, row_number() OVER (PARTITION BY s.account_id
                                 ORDER BY s.captured_at DESC, s.id DESC) AS rn,
         lag(s.balance_amount) OVER (PARTITION BY s.account_id
                                     ORDER BY s.captured_at, s.id) AS previous
  FROM balance_snapshots s JOIN accounts a ON a.id = s.account_id
  WHERE a.user_id = :user) ranked
WHERE rn = 1
"""


async def time_queries(url: str, accounts: int, runs: int) -> dict[str, dict[str, float]]:
    from sqlalchemy import select, text

    from worthline.kit.db import Database
    from worthline.ledger.models import Account
    from worthline.snapshots import repository as repo

    users = -(-accounts // PER_USER)
    rng = random.Random(4)
    # Two: the session keeps one, `history_array` (a driver call, as the endpoint runs it)
    # takes the other; with one, each call would open and close an overflow connection.
    db = Database(url, pool_size=2)
    out: dict[str, dict[str, float]] = {}
    async with db.read_session() as session:
        user_ids = [uuid.UUID(bytes=bytes.fromhex(_md5(f"u{u}"))) for u in range(1, users + 1)]

        async def latest_ours() -> int:
            return len(await repo.latest_per_account(session, rng.choice(user_ids)))

        async def latest_join_back() -> int:
            rows = await session.execute(text(MAX_JOIN_BACK), {"user": rng.choice(user_ids)})
            return len(rows.all())

        async def latest_row_number() -> int:
            rows = await session.execute(text(ROW_NUMBER), {"user": rng.choice(user_ids)})
            return len(rows.all())

        owners = (await session.execute(select(Account.user_id, Account.public_id))).all()
        first = await session.scalar(select(Account.id).order_by(Account.id).limit(1))
        days = await session.scalar(
            text("SELECT count(*) FROM balance_snapshots WHERE account_id = :a"), {"a": first}
        )
        span = min(365, int(days))
        start = FIRST_DAY + timedelta(days=max(0, int(days) - span))
        end = start + timedelta(days=span - 1)

        # The heads the generator stored give exactly the body the row path writes.
        from worthline.snapshots.jsontext import dumps
        from worthline.snapshots.schemas import history_array_json, history_json

        user_id, public_id = owners[0]
        rows = await repo.history(session, user_id, public_id, start, end, None, 10_001)
        array = await repo.history_array(db, user_id, public_id, start, end, None, 10_001)
        by_rows = dumps(history_json("GBP", -2, rows, newest_first=False))
        assert dumps(history_array_json("GBP", -2, array)) == by_rows, "stored heads differ"

        async def history_year() -> int:
            user_id, public_id = rng.choice(owners)
            rows = await repo.history(session, user_id, public_id, start, end, None, 10_001)
            return len(rows)

        async def history_year_json() -> int:
            user_id, public_id = rng.choice(owners)
            found = await repo.history_array(db, user_id, public_id, start, end, None, 10_001)
            return found.total_count

        cases = {
            "latest_per_account (ours: 2 index probes per account)": (latest_ours, PER_USER),
            "latest: max(captured_at) per account, join back": (latest_join_back, PER_USER),
            "history, as balance-history runs it (JSON written by the database)": (
                history_year_json,
                span,
            ),
            f"history: {span} daily snapshots of one account, as rows": (history_year, span),
            # Last: its sorts spill to temporary files, whose write-back slows what follows.
            "latest: ROW_NUMBER() window over all rows": (latest_row_number, PER_USER),
        }
        # As the server does once it has started (kit/middleware.py): a full collection would
        # otherwise walk every module and statement loaded here, inside some timed run.
        gc.collect()
        gc.freeze()
        # Warming, reported on its own: every user's newest snapshots once, and a year of 500
        # random accounts once (a running server has them in memory; a fresh process on this
        # machine answers its first few hundred reads 2-5 times slower).
        warming: dict[str, list[float]] = {"latest_per_account": [], "history (JSON)": []}
        for user_id in user_ids:
            started = time.perf_counter()
            await repo.latest_per_account(session, user_id)
            warming["latest_per_account"].append((time.perf_counter() - started) * 1000)
        for _ in range(500):
            user_id, public_id = rng.choice(owners)
            started = time.perf_counter()
            await repo.history_array(db, user_id, public_id, start, end, None, 10_001)
            warming["history (JSON)"].append((time.perf_counter() - started) * 1000)
        for label, samples in warming.items():
            name = f"{label}: first reads (warming)"
            out[name] = {"median_ms": statistics.median(samples), "p99_ms": _pct(samples, 99)}
            log(
                f"  {name}: median {out[name]['median_ms']:.2f} ms, "
                f"p99 {out[name]['p99_ms']:.2f} ms ({len(samples)} reads)"
            )
        for name, (query, rows) in cases.items():
            for _ in range(min(20, runs)):  # warm-up
                await query()
            samples = []
            for _ in range(runs):
                started = time.perf_counter()
                got = await query()
                samples.append((time.perf_counter() - started) * 1000)
                assert got == rows, (name, got, rows)
            out[name] = {
                "median_ms": statistics.median(samples),
                "p99_ms": _pct(samples, 99),
                "rows": rows,
            }
            log(
                f"  {name}: median {out[name]['median_ms']:.2f} ms, "
                f"p99 {out[name]['p99_ms']:.2f} ms ({rows} rows, {runs} runs)"
            )
    await db.dispose()
    return out


def _md5(text: str) -> str:
    import hashlib

    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - ids, not security


async def explain(url: str) -> None:
    """The plans, for the record (the user of the first id)."""
    from worthline.kit.db import create_engine
    from worthline.snapshots import repository as repo

    user = uuid.UUID(bytes=bytes.fromhex(_md5("u1")))
    engine = create_engine(url)
    # Ours exactly as the app sends it (asyncpg's $1 style), and the alternative.
    compiled = repo._LATEST.compile(dialect=engine.dialect)
    bound = compiled.construct_params({"user_id": user})
    ours = (str(compiled), [bound[name] for name in compiled.positiontup or ()])
    join_back = (MAX_JOIN_BACK.replace(":user", "$1::uuid"), [user])
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        for name, (sql, args) in (("ours", ours), ("max + join back", join_back)):
            rows = await driver.fetch(  # type: ignore[union-attr]
                f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF, TIMING OFF) {sql}", *args
            )
            log(f"  plan, {name}:")
            for row in rows:
                log(f"    {row[0]}")
    await engine.dispose()


# --------------------------------------------------------------------------- http


def http_history(url: str, args: argparse.Namespace, logs: Path) -> dict[str, object]:
    wrk = shutil.which("wrk")
    with tempfile.TemporaryDirectory(prefix="worthline-bench-snapshots-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WORTHLINE_")}
        env.update(
            WORTHLINE_DATA_DIR=str(Path(tmp) / "data"),
            WORTHLINE_DATABASE_URL=url,
            WORTHLINE_RATE_LIMIT_API_READ=HUGE_LIMIT,
            WORTHLINE_RATE_LIMIT_API_WRITE=HUGE_LIMIT,
            WORTHLINE_RATE_LIMIT_AUTH=HUGE_LIMIT,
        )
        server = Server(env, logs / "server-snapshots.log")
        try:
            server.wait_healthy()
            token = _login(server.base)
            account = _first_account(server.base, token)
            start, end = _year_range(server.base, token, account)
            path = f"/api/v1/accounts/{account}/balance-history?start_date={start}&end_date={end}"
            body = _get(server.base + path, token)
            assert body["total_count"] == 365, body["total_count"]
            log(f"  {path}: {body['total_count']} snapshots, {len(json.dumps(body)):,} bytes")
            load_avg = os.getloadavg()[0]
            if wrk:
                run_wrk(wrk, server.base + path, token, args.connections, 1, 3)  # warm-up
                cpu_before = _cpu_seconds(server.proc.pid)
                result = run_wrk(wrk, server.base + path, token, args.connections, 1, args.duration)
                client = "wrk -t1"
            else:
                cpu_before = _cpu_seconds(server.proc.pid)
                result = _python(server.port, token, path, args)
                client = "python asyncio client"
            cpu = _cpu_seconds(server.proc.pid) - cpu_before
            result["server_cpu_pct"] = 100 * cpu / args.duration
            result["cpu_ms_per_request"] = 1000 * cpu / max(1, result["requests"])
            result["load_avg_before"] = load_avg
        finally:
            server.stop()
    result["client"] = client
    result["connections"] = args.connections
    result["duration_s"] = args.duration
    log(
        f"  balance-history (365 snapshots), {client} -c{args.connections}: "
        f"{result['rps']:.0f} requests/s, p50 {result['p50_ms']:.1f} ms, "
        f"p99 {result['p99_ms']:.1f} ms, errors {result['errors'] or 'none'}; server CPU "
        f"{result['server_cpu_pct']:.0f} % of a core, {result['cpu_ms_per_request']:.2f} ms "
        f"per request; load average before {result['load_avg_before']:.2f}"
    )
    return result


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _python(port: int, token: str, path: str, args: argparse.Namespace) -> dict:
    import bench_auth_read

    bench_auth_read.PATH = path  # the fallback client reads its path from the module
    return run_python(port, token, args.connections, args.duration)


def _request(method: str, url: str, token: str | None = None, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def _get(url: str, token: str) -> dict:
    return _request("GET", url, token)


def _login(base: str) -> str:
    body = {"email": "bench1@example.com", "password": PASSWORD}
    return _request("POST", f"{base}/api/v1/auth/login", body=body)["access_token"]


def _first_account(base: str, token: str) -> str:
    return _get(f"{base}/api/v1/balance-snapshots", token)["snapshots"][0]["account_id"]


def _year_range(base: str, token: str, account: str) -> tuple[str, str]:
    latest = _get(f"{base}/api/v1/accounts/{account}/balance-snapshots?limit=1", token)
    end = datetime.fromisoformat(latest["snapshots"][0]["captured_at"].replace("Z", "+00:00"))
    start = end - timedelta(days=364)
    return start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--snapshots", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=500, help="timed runs per query")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of HTTP load")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--explain", action="store_true", help="print the query plans")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reuse", metavar="DATABASE", help="a database kept by --keep with the same sizes"
    )
    args = parser.parse_args()
    if args.snapshots < args.accounts * 365:
        parser.error("need at least 365 snapshots per account (one year of daily history)")

    from worthline.kit import migrate

    name = args.reuse or f"wl_bench_snap_{uuid.uuid4().hex[:8]}"
    url = f"{PG_ADMIN}/{name}"
    logs = Path(tempfile.mkdtemp(prefix="worthline-bench-logs-"))
    log(
        f"bench_snapshots: {args.snapshots:,} snapshots, {args.accounts:,} accounts, "
        f"{platform.node()} ({os.cpu_count()} CPUs), database {name}"
    )
    figures: dict[str, object] = {"accounts": args.accounts, "snapshots": args.snapshots}
    if not args.reuse:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        if not args.reuse:
            migrate.upgrade(url)
            started = time.perf_counter()
            figures["load"] = asyncio.run(load(url, args.accounts, args.snapshots))
            log(f"  load: {time.perf_counter() - started:.1f} s {figures['load']}")
        figures["queries"] = asyncio.run(time_queries(url, args.accounts, args.runs))
        if args.explain:
            asyncio.run(explain(url))
        if not args.skip_http:
            figures["http"] = http_history(url, args, logs)
    finally:
        if args.keep:
            log(f'  kept database {name} (drop it with: DROP DATABASE "{name}")')
        else:
            asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    queries = figures["queries"]
    assert isinstance(queries, dict)
    timed = [n for n in queries if ("ours" in n or "history" in n) and "warming" not in n]
    slow = [n for n in timed if queries[n]["p99_ms"] > TARGET_MS]
    log(f"targets: queries p99 < {TARGET_MS} ms: {'MISSED ' + str(slow) if slow else 'met'}")
    if "http" in figures:
        rps = figures["http"]["rps"]  # type: ignore[index]
        log(f"         balance-history >= {TARGET_RPS:.0f} requests/s: {rps:.0f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":
    main()

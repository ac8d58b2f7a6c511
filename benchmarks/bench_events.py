"""Live events over SSE (issue 5). Prints figures; record them in docs/benchmarks.md.

    python benchmarks/bench_events.py --streams 1000 --users 100 --rate 100 --seconds 30

Starts one `worthline serve` worker (a fresh SQLite file by default, or a throwaway PostgreSQL
database with `--engine postgresql`; in-process fan-out), creates `--users` users with two
accounts each, then runs a separate client process that opens `--streams` SSE streams over
loopback (spread evenly over the users; the per-user stream cap is raised to fit) and, once
every stream is open, posts movements through the API at `--rate` per second, round robin
over the users.

Latency is measured in the client process, on one clock: from just before a movement's POST is
sent to the arrival of its `portfolio.balance.updated` event on each stream of that user. It
therefore includes the whole write (request, transaction, commit) on top of commit → delivery:
an upper bound of what the target (p99 commit → delivery < 250 ms) asks for. The POST's own
round trip is printed alongside, so the difference can be read off.

Commit → delivery itself is measured too, from the other side: the client notes the wall-clock
arrival of every event by its SSE id, and after the run the orchestrator reads each event's
`created_at` from the event log (set in the write's transaction, just before its commit; the
server runs on this machine's clock). Arrival minus `created_at` bounds commit → delivery from
above by the rest of the transaction (the net-worth update and the commit itself).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

PG_ADMIN = os.environ.get("BENCH_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432")
PASSWORD = "bench password 0123456789"
WORTHLINE = str(Path(sys.executable).with_name("worthline"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _pg(sql: str) -> None:
    from sqlalchemy import text

    from worthline.kit.db import create_engine

    engine = create_engine(f"{PG_ADMIN}/postgres", isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(sql))
    await engine.dispose()


# --------------------------------------------------------------------------- orchestrator


async def _setup_users(base: str, users: int) -> list[dict[str, str]]:
    import httpx

    out = []
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        for n in range(users):
            email = f"bench{n}@example.com"
            r = await client.post("/auth/register", json={"email": email, "password": PASSWORD})
            assert r.status_code == 201, r.text
            r = await client.post("/auth/login", json={"email": email, "password": PASSWORD})
            token = r.json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            ids = []
            for path in ("Asset:Bank", "Income:Salary"):
                r = await client.post(
                    "/accounts", json={"full_path": path, "currency": "GBP"}, headers=headers
                )
                assert r.status_code == 201, r.text
                ids.append(r.json()["id"])
            out.append({"token": token, "bank": ids[0], "salary": ids[1]})
    return out


def orchestrate(args: argparse.Namespace) -> int:
    import httpx

    scratch = Path(tempfile.mkdtemp(prefix="wl-bench-events-"))
    pg_name = None
    if args.engine == "postgresql":
        pg_name = f"worthline_bench_events_{uuid.uuid4().hex[:8]}"
        asyncio.run(_pg(f'CREATE DATABASE "{pg_name}"'))
        database_url = f"{PG_ADMIN}/{pg_name}"
    else:
        database_url = f"sqlite+aiosqlite:///{scratch}/bench.db"
    per_user = -(-args.streams // args.users)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORTHLINE_")}
    env.update(
        {
            "WORTHLINE_DATABASE_URL": database_url,
            "WORTHLINE_DATA_DIR": str(scratch / "data"),
            "WORTHLINE_DEMO_DATA": "off",
            "WORTHLINE_RATE_LIMIT_API_READ": "0",
            "WORTHLINE_RATE_LIMIT_API_WRITE": "0",
            "WORTHLINE_RATE_LIMIT_AUTH": "0",
            "WORTHLINE_PASSWORD_HASH_TIME_COST": "1",
            "WORTHLINE_PASSWORD_HASH_MEMORY_KIB": "1024",
            "WORTHLINE_SSE_MAX_STREAMS_PER_USER": str(per_user),
            "WORTHLINE_LOG_LEVEL": "WARNING",
        }
    )
    port = _free_port()
    command = [WORTHLINE, "serve", "--port", str(port)]
    if args.profile:  # cProfile of the server's event loop thread, written when it stops
        command = [sys.executable, "-m", "cProfile", "-o", args.profile, *command]
    server = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit("the server did not start")
        users = asyncio.run(_setup_users(f"{base}/api/v1", args.users))
        plan = scratch / "plan.json"
        plan.write_text(
            json.dumps(
                {
                    "port": port,
                    "users": users,
                    "streams": args.streams,
                    "rate": args.rate,
                    "seconds": args.seconds,
                }
            )
        )
        print(
            f"engine {args.engine}, one worker, {args.streams} streams over {args.users} users "
            f"({per_user} each), {args.rate} movements/s for {args.seconds} s",
            flush=True,
        )
        code = subprocess.call([sys.executable, __file__, "--client", str(plan)])
        arrivals = scratch / "arrivals.json"
        if code == 0 and arrivals.exists():
            _report_recorded_to_delivered(database_url, json.loads(arrivals.read_text()))
        return code
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        if pg_name:
            asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
        shutil.rmtree(scratch, ignore_errors=True)


async def _created_at(database_url: str) -> dict[int, float]:
    from sqlalchemy import text

    from worthline.kit.db import create_engine

    engine = create_engine(database_url)
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT id, created_at FROM events"))).all()
    await engine.dispose()
    out = {}
    for event_id, created in rows:
        if isinstance(created, str):  # SQLite: naive UTC text
            created = datetime.fromisoformat(created).replace(tzinfo=UTC)
        out[int(event_id)] = created.timestamp()
    return out


def _report_recorded_to_delivered(database_url: str, arrivals: list[list[float]]) -> None:
    """Each balance event's arrival minus its `created_at` in the log (see the module doc)."""
    created = asyncio.run(_created_at(database_url))
    spans = sorted(at - created[int(event_id)] for event_id, at in arrivals)
    if len(spans) < 2:
        return
    cuts = statistics.quantiles(spans, n=1000)
    print(
        f"recorded in the log -> delivered (>= commit -> delivered), {len(spans)} deliveries: "
        f"p50 {cuts[499] * 1000:.1f} ms  p99 {cuts[989] * 1000:.1f} ms  "
        f"max {spans[-1] * 1000:.1f} ms"
    )


# --------------------------------------------------------------------------- client process


class Latencies:
    def __init__(self) -> None:
        self.sent: dict[str, float] = {}  # movement key -> perf_counter before POST
        self.answered: dict[str, float] = {}  # movement key -> perf_counter at its 201
        self.before_answer = 0  # deliveries that arrived before the POST's own response
        self.after_answer: list[float] = []  # how long after the response the others came
        self.delivery: list[float] = []
        self.received = 0
        self.post: list[float] = []
        self.networth = 0  # portfolio.networth.updated events received (one per movement)
        self.arrivals: list[tuple[int, float]] = []  # (SSE id, wall clock) per balance event


async def _stream(port: int, token: str, ready: asyncio.Event, opened: list[int], lat: Latencies):
    """A minimal SSE client on a raw socket (cheap enough to hold a thousand)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            f"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    status = await reader.readline()
    if b" 200 " not in status:
        raise RuntimeError(f"stream refused: {status!r}")
    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
        pass  # headers
    opened[0] += 1
    if opened[0] == opened[1]:
        ready.set()
    event_id = None
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            if line.startswith(b"id: "):
                event_id = int(line[4:])
                continue
            # Chunked transfer encoding: chunk-size lines and blank lines pass by; data lines
            # are what we want.
            if line.startswith(b"data: "):
                now = time.perf_counter()
                wall = time.time()
                data = json.loads(line[6:])
                if "account_id" not in data:  # portfolio.networth.updated: counted, not timed
                    lat.networth += 1
                    continue
                key = f"{data['account_id']}:{data['new_balance']}"
                sent = lat.sent.get(key)
                if event_id is not None:
                    lat.arrivals.append((event_id, wall))
                if sent is not None:
                    lat.delivery.append(now - sent)
                    lat.received += 1
                    answered = lat.answered.get(key)
                    if answered is None:
                        lat.before_answer += 1
                    else:
                        lat.after_answer.append(now - answered)
    finally:
        writer.close()


async def _client(plan: dict) -> Latencies:
    import httpx

    port, users, streams = plan["port"], plan["users"], plan["streams"]
    lat = Latencies()
    ready = asyncio.Event()
    opened = [0, streams]
    tasks = [
        asyncio.create_task(_stream(port, users[n % len(users)]["token"], ready, opened, lat))
        for n in range(streams)
    ]
    started = time.perf_counter()
    await asyncio.wait_for(ready.wait(), 120)
    print(f"{streams} streams open in {time.perf_counter() - started:.1f} s", flush=True)
    per_user = [
        streams // len(users) + (1 if n < streams % len(users) else 0) for n in range(len(users))
    ]

    balances = [0] * len(users)
    expected = 0
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}/api/v1", timeout=30, limits=limits
    ) as client:

        async def post(n: int) -> None:
            nonlocal expected
            user = users[n]
            balances[n] += 1  # one penny more each time: new balances identify movements
            key = f"{user['bank']}:{balances[n] // 100}.{balances[n] % 100:02d}"
            t0 = time.perf_counter()
            lat.sent[key] = t0
            r = await client.post(
                "/movements",
                json={
                    "from_account_id": user["salary"],
                    "to_account_id": user["bank"],
                    "amount": "0.01",
                },
                headers={"Authorization": f"Bearer {user['token']}"},
            )
            lat.answered[key] = time.perf_counter()
            lat.post.append(lat.answered[key] - t0)
            assert r.status_code == 201, r.text
            expected += per_user[n]

        interval = 1.0 / plan["rate"]
        total = int(plan["rate"] * plan["seconds"])
        pending = []
        t_start = time.perf_counter()
        for i in range(total):
            delay = t_start + i * interval - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            pending.append(asyncio.create_task(post(i % len(users))))
        await asyncio.gather(*pending)
        elapsed = time.perf_counter() - t_start
    await asyncio.sleep(2)  # let the last deliveries arrive
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)

    def q(values: list[float], p: float) -> float:
        return statistics.quantiles(values, n=1000)[int(p * 10) - 1] * 1000

    d, w = sorted(lat.delivery), sorted(lat.post)
    print(f"{total} movements posted in {elapsed:.1f} s ({total / elapsed:.0f}/s)")
    print(f"deliveries (bank-account events): {lat.received} of {expected} expected")
    print(f"net-worth events (portfolio.networth.updated): {lat.networth} of {expected} expected")
    print(
        f"POST /movements round trip:   p50 {q(w, 50):.1f} ms  p99 {q(w, 99):.1f} ms  "
        f"max {w[-1] * 1000:.1f} ms"
    )
    print(
        f"POST sent -> event delivered: p50 {q(d, 50):.1f} ms  p99 {q(d, 99):.1f} ms  "
        f"max {d[-1] * 1000:.1f} ms"
    )
    late = sorted(lat.after_answer)
    print(
        f"delivered before the POST's 201 reached the client: {lat.before_answer} of "
        f"{lat.received}; the rest came {q(late, 50) if len(late) > 1 else 0:.1f} ms (p50) / "
        f"{q(late, 99) if len(late) > 1 else 0:.1f} ms (p99) after it"
    )
    return lat


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--engine", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--profile", help="write a cProfile of the server to this file")
    args = parser.parse_args()
    if args.client:
        plan = Path(args.client)
        lat = asyncio.run(_client(json.loads(plan.read_text())))
        plan.with_name("arrivals.json").write_text(json.dumps(lat.arrivals))
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    raise SystemExit(main())

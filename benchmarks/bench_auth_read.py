"""Load benchmark of an authenticated read, GET /api/v1/users/me, against ONE server worker.

Two configurations, each on a fresh server subprocess (stderr to a log file):

  sqlite    the embedded default: a SQLite file in a fresh temporary data dir, no Redis
            (in-process rate limits);
  postgres  PostgreSQL (a throwaway database, created here and dropped afterwards) + Redis
            (rate limits shared through Redis).

Each run: start `worthline serve`, wait for /health, register a user, log in, check one
response (200, X-Trace-Id, X-RateLimit-*), warm up, then drive N concurrent keep-alive
connections for a fixed duration and report requests/s, p50/p99 latency and errors. Rate
limits stay ON, set very high, so that the limiter's cost is part of what is measured; every
request verifies the JWT and checks in the database that its session is not revoked.

The load generator is `wrk` (apt-get install wrk): it is C and needs little CPU, which matters
on a small machine where the client competes with the server. Without it, a bounded Python
asyncio client is used instead and its figures are labelled as such (they understate the
server: the client takes CPU from it).

Target (issue): >= 1,500 requests/s and p99 < 25 ms on one worker at 50 connections.

    .venv/bin/python benchmarks/bench_auth_read.py                 # both, 2 runs each
    .venv/bin/python benchmarks/bench_auth_read.py --config sqlite --runs 1 --duration 5
    .venv/bin/python benchmarks/bench_auth_read.py --in-process 5000   # CPU/request, no HTTP

`--in-process N` measures the app alone: no server, no HTTP, no client process. In a child
process (same settings and storage as above, log lines to a file), the ASGI app is called N
times by `--connections` concurrent tasks, `--runs` times; it reports the process CPU time per
request (aiosqlite's threads included), the least noisy figure on a shared machine.

Only loopback addresses are used: the server listens on 127.0.0.1, and the PostgreSQL and
Redis URLs are refused unless they point at the local machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
HOST = "127.0.0.1"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
PATH = "/api/v1/users/me"
TARGET_RPS = 1500.0
TARGET_P99_MS = 25.0
HUGE_LIMIT = "100000000/minute"
PG_DB = "worthline_bench"
RL_PREFIX = "worthline-rl"  # RateLimiter's Redis key prefix
MAX_DURATION = 300  # seconds; bounds every loop in here
PASSWORD = "bench-Horse-Battery-7"


# ---------------------------------------------------------------------------- results


@dataclass
class Result:
    config: str
    run: int
    client: str
    duration_s: float
    connections: int
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    error_detail: dict[str, int] = field(default_factory=dict)
    server_cpu_pct: float | None = None  # of one core, during the measured window
    cpu_ms_per_request: float | None = None  # server CPU time / requests: robust to sharing
    loadavg_before: float | None = None

    @property
    def meets_target(self) -> bool:
        return self.errors == 0 and self.rps >= TARGET_RPS and self.p99_ms < TARGET_P99_MS


# ---------------------------------------------------------------------------- helpers


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def require_loopback(url: str, what: str) -> None:
    host = urlsplit(url).hostname
    if host not in LOOPBACK:
        sys.exit(f"{what} must point at a loopback address, not {host!r}: {url}")


def http(method: str, url: str, body: dict | None = None, token: str | None = None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback http
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback http
            return resp.status, dict(resp.headers), json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode(errors="replace")


def proc_cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def loadavg() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError):
        return None


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


# ---------------------------------------------------------------------------- backing stores


def pg_admin_dsn(pg_url: str) -> str:
    """postgresql+asyncpg://user@host:port/whatever -> asyncpg DSN for the `postgres` db."""
    parts = urlsplit(pg_url.replace("postgresql+asyncpg://", "postgresql://", 1))
    return parts._replace(path="/postgres").geturl()


async def _pg_exec(dsn: str, *statements: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


def pg_create(pg_url: str) -> str:
    dsn = pg_admin_dsn(pg_url)
    asyncio.run(
        _pg_exec(
            dsn, f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)', f'CREATE DATABASE "{PG_DB}"'
        )
    )
    parts = urlsplit(pg_url)
    return parts._replace(path=f"/{PG_DB}").geturl()


def pg_drop(pg_url: str) -> None:
    try:
        asyncio.run(
            _pg_exec(pg_admin_dsn(pg_url), f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
        )
    except Exception as exc:
        log(f"  warning: could not drop database {PG_DB}: {exc}")


def redis_clear(redis_url: str) -> None:
    """Delete only the limiter's keys (the database may be shared)."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        keys = list(client.scan_iter(match=f"{RL_PREFIX}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


# ---------------------------------------------------------------------------- server


class Server:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.base = f"http://{HOST}:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "worthline"), "serve", "--host", HOST, "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
        )

    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.proc.returncode}; see {self.log_path}"
                )
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.base}/health", timeout=2) as resp,  # noqa: S310
            ):
                if resp.status == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"server not healthy after {timeout:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


def login(base: str) -> str:
    email = f"bench-{os.getpid()}-{time.time_ns()}@example.com"
    status, _, body = http(
        "POST", f"{base}/api/v1/auth/register", {"email": email, "password": PASSWORD}
    )
    if status != 201:
        raise RuntimeError(f"register answered {status}: {body}")
    status, _, body = http(
        "POST", f"{base}/api/v1/auth/login", {"email": email, "password": PASSWORD}
    )
    if status != 200:
        raise RuntimeError(f"login answered {status}: {body}")
    token = body["access_token"]
    status, headers, body = http("GET", f"{base}{PATH}", token=token)
    lower = {k.lower(): v for k, v in headers.items()}
    if status != 200 or "x-trace-id" not in lower or "x-ratelimit-limit" not in lower:
        raise RuntimeError(f"sanity check failed: {status} {headers} {body}")
    log(
        f"  sanity: 200, x-trace-id={lower['x-trace-id']}, "
        f"x-ratelimit-limit={lower['x-ratelimit-limit']} "
        f"remaining={lower.get('x-ratelimit-remaining')}"
    )
    return token


# ---------------------------------------------------------------------------- load: wrk

_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(f"unparsable latency {text!r}")
    return float(m.group(1)) * _UNIT_MS[m.group(2)]


def parse_wrk(out: str) -> dict:
    pct = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M))
    total = re.search(r"^\s+(\d+) requests in ([\d.]+)(\w+),", out, re.M)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    if not (pct and total and rps):
        raise ValueError(f"unexpected wrk output:\n{out}")
    errors: dict[str, int] = {}
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sock:
        for name, value in zip(("connect", "read", "write", "timeout"), sock.groups(), strict=True):
            if int(value):
                errors[name] = int(value)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        errors["non-2xx"] = int(non2xx.group(1))
    return {
        "requests": int(total.group(1)),
        "rps": float(rps.group(1)),
        "p50_ms": _ms(pct["50"]),
        "p99_ms": _ms(pct["99"]),
        "errors": errors,
    }


def run_wrk(wrk: str, url: str, token: str, connections: int, threads: int, seconds: float) -> dict:
    cmd = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "--latency",
        "-H",
        f"Authorization: Bearer {token}",
        url,
    ]
    out = subprocess.run(
        cmd, capture_output=True, text=True, timeout=seconds + 60, check=True
    ).stdout
    return parse_wrk(out)


# ---------------------------------------------------------------------------- load: python fallback


async def _python_load(port: int, token: str, connections: int, seconds: float) -> dict:
    """Keep-alive HTTP/1.1 over raw asyncio streams; bounded by a deadline."""
    request = (
        f"GET {PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
        f"Authorization: Bearer {token}\r\nConnection: keep-alive\r\n\r\n"
    ).encode()
    latencies: list[float] = []
    errors: dict[str, int] = {}
    deadline = time.perf_counter() + seconds

    def error(kind: str) -> None:
        errors[kind] = errors.get(kind, 0) + 1

    async def worker() -> None:
        reader = writer = None
        while time.perf_counter() < deadline:
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(HOST, port)
                started = time.perf_counter()
                writer.write(request)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
                status = int(head.split(b" ", 2)[1])
                length = int(re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head).group(1))
                await asyncio.wait_for(reader.readexactly(length), timeout=5)
                latencies.append(time.perf_counter() - started)
                if status >= 400:
                    error("non-2xx")
                if re.search(rb"(?i)\r\nconnection:\s*close", head):
                    writer.close()
                    writer = None
            except (TimeoutError, OSError, asyncio.IncompleteReadError, AttributeError, ValueError):
                error("socket")
                if writer is not None:
                    writer.close()
                writer = None
                await asyncio.sleep(0.01)
        if writer is not None:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    if not latencies:
        raise RuntimeError(f"no successful requests; errors: {errors}")
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": cuts[49] * 1000,
        "p99_ms": cuts[98] * 1000,
        "errors": errors,
    }


def run_python(port: int, token: str, connections: int, seconds: float) -> dict:
    return asyncio.run(_python_load(port, token, connections, seconds))


# ---------------------------------------------------------------------------- one run


def base_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORTHLINE_")}
    env.update(
        WORTHLINE_DATA_DIR=str(data_dir),
        WORTHLINE_RATE_LIMIT_API_READ=HUGE_LIMIT,
        WORTHLINE_RATE_LIMIT_API_WRITE=HUGE_LIMIT,
        WORTHLINE_RATE_LIMIT_AUTH=HUGE_LIMIT,
        # Argon2 at its defaults; only two hashes per run, so no need to cheapen it.
    )
    return env


def one_run(config: str, run: int, args: argparse.Namespace, wrk: str | None, logs: Path) -> Result:
    with tempfile.TemporaryDirectory(prefix=f"worthline-bench-{config}-") as tmp:
        env = base_env(Path(tmp) / "data")
        if config == "postgres":
            env["WORTHLINE_DATABASE_URL"] = pg_create(args.pg_url)
            env["WORTHLINE_REDIS_URL"] = args.redis_url
            redis_clear(args.redis_url)
        log_path = logs / f"server-{config}-run{run}.log"
        server = Server(env, log_path)
        try:
            server.wait_healthy()
            log(f"  server pid {server.proc.pid} on {server.base} (log: {log_path})")
            token = login(server.base)
            url = f"{server.base}{PATH}"
            load = (
                (lambda s: run_wrk(wrk, url, token, args.connections, args.threads, s))
                if wrk
                else (lambda s: run_python(server.port, token, args.connections, s))
            )
            if args.warmup > 0:
                load(args.warmup)
            before_load = loadavg()
            cpu0, t0 = proc_cpu_seconds(server.proc.pid), time.monotonic()
            figures = load(args.duration)
            cpu1, t1 = proc_cpu_seconds(server.proc.pid), time.monotonic()
            cpu_pct = cpu_per_req = None
            if cpu0 is not None and cpu1 is not None:
                cpu_pct = round(100 * (cpu1 - cpu0) / (t1 - t0), 1)
                cpu_per_req = round(1000 * (cpu1 - cpu0) / max(1, figures["requests"]), 3)
            if server.proc.poll() is not None:
                raise RuntimeError(f"server died during the run; see {log_path}")
        finally:
            server.stop()
            if config == "postgres":
                pg_drop(args.pg_url)
                with contextlib.suppress(Exception):
                    redis_clear(args.redis_url)
    return Result(
        config=config,
        run=run,
        client="wrk" if wrk else "python-asyncio (fallback; shares CPU with the server)",
        duration_s=args.duration,
        connections=args.connections,
        requests=figures["requests"],
        rps=round(figures["rps"], 1),
        p50_ms=round(figures["p50_ms"], 2),
        p99_ms=round(figures["p99_ms"], 2),
        errors=sum(figures["errors"].values()),
        error_detail=figures["errors"],
        server_cpu_pct=cpu_pct,
        cpu_ms_per_request=cpu_per_req,
        loadavg_before=before_load,
    )


# ---------------------------------------------------------------------------- in-process


def in_process_child(requests: int, connections: int, runs: int) -> None:
    """Runs in a child process whose environment holds the settings; prints one JSON line."""
    import uvloop

    async def measure() -> dict:
        import httpx

        from worthline.app import create_app
        from worthline.kit import migrate
        from worthline.kit.config import Settings
        from worthline.kit.logging import configure_logging

        settings = Settings()
        configure_logging(settings.log_level, settings.log_format)  # as `worthline serve`
        await asyncio.to_thread(migrate.upgrade, settings.effective_database_url)
        app = create_app(settings)
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://b") as client:
                user = {"email": "bench@example.com", "password": PASSWORD}
                await client.post("/api/v1/auth/register", json=user)
                token = (await client.post("/api/v1/auth/login", json=user)).json()
                token = token["access_token"]
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "GET",
                "scheme": "http",
                "path": PATH,
                "raw_path": PATH.encode(),
                "root_path": "",
                "query_string": b"",
                "headers": [(b"host", b"b"), (b"authorization", f"Bearer {token}".encode())],
                "client": (HOST, 50000),
                "server": (HOST, 8000),
            }
            statuses: dict[int, int] = {}

            async def receive() -> dict:
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message: dict) -> None:
                if message["type"] == "http.response.start":
                    statuses[message["status"]] = statuses.get(message["status"], 0) + 1

            async def drive(n: int) -> None:
                todo = iter(range(n))

                async def worker() -> None:
                    for _ in todo:
                        await app(dict(scope), receive, send)

                await asyncio.gather(*(worker() for _ in range(connections)))

            await drive(min(requests, 1000))  # warm-up
            cpu_ms = []
            for _ in range(runs):
                started = time.process_time()
                await drive(requests)
                cpu_ms.append(1000 * (time.process_time() - started) / requests)
            return {"cpu_ms_per_request": cpu_ms, "statuses": statuses}
        finally:
            await app.state.ctx.close()

    print(json.dumps(uvloop.run(measure())))


def in_process(config: str, args: argparse.Namespace, logs: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"worthline-bench-{config}-") as tmp:
        env = base_env(Path(tmp) / "data")
        if config == "postgres":
            env["WORTHLINE_DATABASE_URL"] = pg_create(args.pg_url)
            env["WORTHLINE_REDIS_URL"] = args.redis_url
            redis_clear(args.redis_url)
        log_path = logs / f"in-process-{config}.log"
        try:
            with open(log_path, "wb") as log_file:
                before = loadavg()
                child = [sys.executable, __file__, "--_in-process-child", str(args.in_process)]
                out = subprocess.run(
                    [*child, "--connections", str(args.connections), "--runs", str(args.runs)],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=log_file,
                    timeout=MAX_DURATION * 4,
                    check=True,
                ).stdout
        finally:
            if config == "postgres":
                pg_drop(args.pg_url)
                with contextlib.suppress(Exception):
                    redis_clear(args.redis_url)
    return {**json.loads(out), "loadavg_before": before, "log": str(log_path)}


# ---------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--runs", type=int, default=2, help="runs per configuration (1-10)")
    parser.add_argument("--duration", type=float, default=15, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=3, help="warm-up seconds per run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "WORTHLINE_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432"
        ),
        help=f"server to create the throwaway database {PG_DB!r} on",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("WORTHLINE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
    )
    parser.add_argument(
        "--logs", type=Path, default=None, help="server log dir (default: a temp dir)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument(
        "--in-process",
        type=int,
        default=0,
        metavar="N",
        help="instead: CPU per request of the app alone, N requests per run (no HTTP)",
    )
    parser.add_argument("--_in-process-child", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._in_process_child:
        in_process_child(args._in_process_child, args.connections, args.runs)
        return 0

    if not 1 <= args.runs <= 10:
        parser.error("--runs must be between 1 and 10")
    if not (1 <= args.duration <= MAX_DURATION and 0 <= args.warmup <= 60):
        parser.error(f"--duration must be 1..{MAX_DURATION} s and --warmup 0..60 s")
    if not 1 <= args.connections <= 1000 or not 1 <= args.threads <= 8:
        parser.error("--connections must be 1..1000 and --threads 1..8")
    if args.threads > args.connections:
        parser.error("--threads must not exceed --connections")
    require_loopback(args.pg_url, "--pg-url")
    require_loopback(args.redis_url, "--redis-url")

    if args.in_process:
        if not 100 <= args.in_process <= 1_000_000:
            parser.error("--in-process must be 100..1000000 requests")
        configs = ("sqlite", "postgres") if args.config == "both" else (args.config,)
        logs = args.logs or Path(tempfile.mkdtemp(prefix="worthline-bench-logs-"))
        logs.mkdir(parents=True, exist_ok=True)
        print(
            f"GET {PATH} in-process (ASGI, no HTTP): {args.in_process} requests x {args.runs} "
            f"runs, {args.connections} concurrent tasks; {os.cpu_count()} CPUs ({cpu_model()})"
        )
        results = {}
        for config in configs:
            result = results[config] = in_process(config, args, logs)
            runs = ", ".join(f"{ms:.3f}" for ms in result["cpu_ms_per_request"])
            print(
                f"{config:<9} CPU ms/request: {runs} (min "
                f"{min(result['cpu_ms_per_request']):.3f}); statuses {result['statuses']}; "
                f"load before {result['loadavg_before']}"
            )
        print(f"log lines: {logs}")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        return 0

    wrk = shutil.which("wrk") if args.client in ("auto", "wrk") else None
    if wrk is None and args.client != "python":
        log(
            "wrk not found: install it for trustworthy figures\n"
            "  Debian/Ubuntu: apt-get update && apt-get install -y wrk\n"
            "  macOS:         brew install wrk"
        )
        if args.client == "wrk":
            return 2
        log(
            "Falling back to the bounded Python asyncio client; its figures are LABELLED as "
            "such and understate the server, because the client competes with it for CPU."
        )

    configs = ("sqlite", "postgres") if args.config == "both" else (args.config,)
    logs = args.logs or Path(tempfile.mkdtemp(prefix="worthline-bench-logs-"))
    logs.mkdir(parents=True, exist_ok=True)
    client = "wrk" if wrk else "python-asyncio fallback"
    log(
        f"GET {PATH}: {args.connections} connections, {args.warmup:g} s warm-up + "
        f"{args.duration:g} s measured, client {client}"
        + (f" -t{args.threads}" if wrk else "")
        + f"; {os.cpu_count()} CPUs ({cpu_model()}); rate limits {HUGE_LIMIT}"
    )

    results: list[Result] = []
    for config in configs:
        for run in range(1, args.runs + 1):
            log(f"[{config} run {run}/{args.runs}]")
            try:
                result = one_run(config, run, args, wrk, logs)
            except Exception as exc:
                log(f"  FAILED: {type(exc).__name__}: {exc}")
                continue
            results.append(result)
            log(
                f"  {result.rps:,.0f} req/s  p50 {result.p50_ms:.2f} ms  "
                f"p99 {result.p99_ms:.2f} ms  errors {result.errors}  "
                f"server CPU {result.server_cpu_pct}%"
            )

    print()
    print(
        f"GET {PATH}, one worker, {args.connections} connections, "
        f"{args.warmup:g} s warm-up + {args.duration:g} s per run, client: {client}"
    )
    print(f"machine: {os.cpu_count()} CPUs, {cpu_model()}, load average now {loadavg()}")
    print(f"target: >= {TARGET_RPS:,.0f} req/s and p99 < {TARGET_P99_MS:g} ms")
    header = (
        f"{'config':<9} {'run':>3} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} "
        f"{'srv CPU':>8} {'CPU/req':>8} {'load':>5}  target"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        cpu = f"{r.server_cpu_pct:.0f}%" if r.server_cpu_pct is not None else "-"
        per = f"{r.cpu_ms_per_request:.2f}ms" if r.cpu_ms_per_request is not None else "-"
        load = f"{r.loadavg_before:.2f}" if r.loadavg_before is not None else "-"
        print(
            f"{r.config:<9} {r.run:>3} {r.rps:>9,.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
            f"{r.errors:>6} {cpu:>8} {per:>8} {load:>5}  {'met' if r.meets_target else 'NOT met'}"
        )
    print(
        "(srv CPU: the server process's CPU time over the measured window, % of one core; "
        "CPU/req: that CPU time per request, the least noisy figure on a shared machine, "
        "1000/CPU/req being the ceiling of one worker on one whole core; load: 1-minute load "
        "average just before the run)"
    )
    if not wrk:
        print("(figures from the Python fallback client: they understate the server)")
    print(f"server logs: {logs}")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    return 0 if len(results) == args.runs * len(configs) else 1


if __name__ == "__main__":
    sys.exit(main())

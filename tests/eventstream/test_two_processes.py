"""Two `worthline serve` processes sharing one PostgreSQL database and Redis: a client on the
first receives, in order, the events of movements posted through the second, and reconnecting
with Last-Event-ID gets exactly what it missed. `worthline events tail` follows them too.

Runs once (not per engine): it brings its own throwaway PostgreSQL database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine.url import make_url

from conftest import PG_URL, register_and_login, unavailable
from eventstream.support import open_stream, summary
from ledger.factories import account, move
from worthline.kit.db import create_engine
from worthline.kit.migrate import upgrade_engine

WORTHLINE = str(Path(sys.executable).with_name("worthline"))
pytestmark = pytest.mark.redis


@pytest.fixture
async def pg_database() -> AsyncIterator[str]:
    url = make_url(PG_URL).set(database=f"worthline_evt2p_{uuid.uuid4().hex[:10]}")
    admin = create_engine(
        url.set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    except Exception as exc:
        await admin.dispose()
        unavailable("PostgreSQL", f"{type(exc).__name__}: {exc}")
    rendered = url.render_as_string(hide_password=False)
    engine = create_engine(rendered)
    await upgrade_engine(engine)
    await engine.dispose()
    try:
        yield rendered
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        await admin.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _env(database_url: str, redis_url: str | None, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORTHLINE_")}
    env.update(
        {
            "WORTHLINE_DATABASE_URL": database_url,
            "WORTHLINE_DATA_DIR": str(data_dir),
            "WORTHLINE_JWT_SIGNING_KEY": "two-process-signing-key-0123456789abcdef-0123456789",
            "WORTHLINE_DEMO_DATA": "off",
            "WORTHLINE_PASSWORD_HASH_TIME_COST": "1",
            "WORTHLINE_PASSWORD_HASH_MEMORY_KIB": "64",
            "WORTHLINE_RATE_LIMIT_API_READ": "10000/minute",
            "WORTHLINE_RATE_LIMIT_API_WRITE": "10000/minute",
            "WORTHLINE_RATE_LIMIT_AUTH": "10000/minute",
            "WORTHLINE_LOG_LEVEL": "WARNING",
        }
    )
    if redis_url:
        env["WORTHLINE_REDIS_URL"] = redis_url
    return env


@contextlib.asynccontextmanager
async def _process(*args: str, env: dict[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        WORTHLINE,
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()


@contextlib.asynccontextmanager
async def _server(env: dict[str, str]) -> AsyncIterator[str]:
    port = _free_port()
    async with _process("serve", "--port", str(port), "--no-migrate", env=env) as process:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=2) as probe:
            for _ in range(300):
                if process.returncode is not None:
                    err = (await process.stderr.read()).decode()  # type: ignore[union-attr]
                    raise AssertionError(f"worthline serve exited: {err[-2000:]}")
                with contextlib.suppress(httpx.TransportError):
                    if (await probe.get("/health")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("worthline serve did not start within 30 s")
        yield f"{base}/api/v1"


async def _lines(process: asyncio.subprocess.Process, count: int) -> list[str]:
    assert process.stdout is not None and process.stderr is not None
    try:
        return [
            (await asyncio.wait_for(process.stdout.readline(), 15)).decode() for _ in range(count)
        ]
    except TimeoutError:
        process.terminate()
        err = (await process.stderr.read()).decode()
        raise AssertionError(f"no output from worthline events tail: {err[-3000:]}") from None


async def _wait_for(process: asyncio.subprocess.Process, text: bytes) -> bytes:
    """Read the process's stderr until `text` shows up; returns what was read."""
    assert process.stderr is not None
    seen = b""
    while text not in seen.replace(b"\n", b" "):
        line = await asyncio.wait_for(process.stderr.readline(), 30)
        if not line:
            raise AssertionError(f"the process ended: {seen.decode()[-3000:]}")
        seen += line
    return seen


async def test_a_client_on_one_process_follows_writes_through_another(
    pg_database: str, redis_url: str, tmp_path: Path
):
    env = _env(pg_database, redis_url, tmp_path / "data")
    async with (
        _server(env) as url_1,
        _server(env) as url_2,
        httpx.AsyncClient(base_url=url_1, timeout=10) as one,
        httpx.AsyncClient(base_url=url_2, timeout=10) as two,
    ):
        auth = await register_and_login(two)
        headers = auth["headers"]
        bank = await account(two, headers, "Asset:Bank")
        salary = await account(two, headers, "Income:Salary")

        async with open_stream(one, headers) as stream:
            for amount in ("1.00", "2.00", "3.00"):
                await move(two, headers, salary, bank, amount)
            seen = await stream.take(9, within=10)
        assert summary(seen) == [
            "balance 1.00",
            "balance -1.00",
            "networth 1.00",
            "balance 3.00",
            "balance -3.00",
            "networth 3.00",
            "balance 6.00",
            "balance -6.00",
            "networth 6.00",
        ]
        ids = [int(m.id) for m in seen]
        assert ids == sorted(set(ids))

        # Disconnected: two more movements through process 2, then resume on process 1.
        for amount in ("4.00", "5.00"):
            await move(two, headers, salary, bank, amount)
        async with open_stream(one, headers | {"Last-Event-ID": str(ids[-1])}) as stream:
            missed = await stream.take(6, within=10)
            assert summary(missed) == [
                "balance 10.00",
                "balance -10.00",
                "networth 10.00",
                "balance 15.00",
                "balance -15.00",
                "networth 15.00",
            ]
            assert [int(m.id) for m in missed] == sorted(set(int(m.id) for m in missed))
            assert int(missed[0].id) > ids[-1]
            await move(two, headers, salary, bank, "6.00")
            live = await stream.take(3, within=10)
            assert summary(live) == ["balance 21.00", "balance -21.00", "networth 21.00"]
            assert int(live[0].id) > int(missed[-1].id)
            assert await stream.nothing_within(0.5)

        # An operator follows the same user from a third process.
        async with _process("events", "tail", "--user", "ada@example.com", env=env) as tail:
            await _wait_for(tail, b"through Redis")  # subscribed
            await move(two, headers, salary, bank, "0.50")
            lines = await _lines(tail, 2)
        assert all(" portfolio.balance.updated " in line for line in lines)
        assert '"new_balance":"21.50"' in lines[0]


async def test_tail_without_redis_polls_the_event_log(client, auth, settings, tmp_path: Path):
    headers = auth["headers"]
    bank = await account(client, headers, "Asset:Bank")
    salary = await account(client, headers, "Income:Salary")
    await move(client, headers, salary, bank, "1.00")  # before the tail: not printed
    env = _env(settings.effective_database_url, None, tmp_path / "tail-data")
    async with _process("events", "tail", "--user", "ada@example.com", env=env) as tail:
        notice = await _wait_for(tail, b"Following")
        assert b"polled every second" in notice.replace(b"\n", b" ")
        await move(client, headers, salary, bank, "2.00")
        lines = await _lines(tail, 2)
    assert '"new_balance":"3.00"' in lines[0] and '"new_balance":"-3.00"' in lines[1]


async def test_shutting_down_ends_open_streams(tmp_path: Path):
    """SIGTERM with a stream open: the stream ends (uvicorn's graceful shutdown is not held up
    by it) and the process exits cleanly."""
    env = _env(f"sqlite+aiosqlite:///{tmp_path / 'shutdown.db'}", None, tmp_path / "data")
    env["WORTHLINE_LOG_LEVEL"] = "INFO"
    port = _free_port()
    async with _process("serve", "--port", str(port), env=env) as process:
        base = f"http://127.0.0.1:{port}/api/v1"
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            for _ in range(300):
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"http://127.0.0.1:{port}/health")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            auth = await register_and_login(client)
            async with open_stream(client, auth["headers"]) as stream:
                started = asyncio.get_running_loop().time()
                process.terminate()
                with pytest.raises(EOFError):
                    while True:
                        await stream.next(10, comments=True)
                assert asyncio.get_running_loop().time() - started < 10
        # uvicorn re-raises the SIGTERM once its graceful shutdown is done.
        assert await asyncio.wait_for(process.wait(), 15) in (0, -15)
        assert process.stderr is not None
        log = (await process.stderr.read()).decode()
        assert "Application shutdown complete" in log, log[-3000:]

"""Test fixtures: real engines, never mocks.

Every test that takes `db` (directly, or through `app`/`client`) runs twice: on SQLite and on
PostgreSQL. The schema comes from the Alembic history, applied once per engine; each test then
starts from empty tables (a fresh copy of the migrated SQLite file; TRUNCATE on PostgreSQL).

PostgreSQL and Redis are expected at WORTHLINE_TEST_POSTGRES_URL / WORTHLINE_TEST_REDIS_URL
(defaults: this machine's 127.0.0.1 services). Without them, their tests are skipped with a
visible line, except under CI=true, where a missing service fails the run.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine.url import make_url

from worthline.app import create_app
from worthline.kit.config import Settings
from worthline.kit.context import AppContext
from worthline.kit.db import Base, Database, create_engine
from worthline.kit.migrate import upgrade_engine
from worthline.models import load_all

load_all()

IN_CI = os.environ.get("CI", "").lower() == "true"
PG_URL = os.environ.get(
    "WORTHLINE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/worthline_test"
)
REDIS_URL = os.environ.get("WORTHLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ENGINES = ("sqlite", "postgresql")
PASSWORD = "correct horse battery staple"


def unavailable(what: str, why: object) -> None:
    message = f"{what} unavailable ({why})"
    if IN_CI:
        pytest.fail(f"{message}: CI=true requires it", pytrace=False)
    pytest.skip(message)


# ---------------------------------------------------------------- engines


@pytest.fixture(scope="session")
async def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await upgrade_engine(engine)
    await engine.dispose()
    return path


_pg_state: dict[str, object] = {}


async def _prepare_postgres() -> str:
    """Create the test database afresh and migrate it; once per session."""
    if "url" in _pg_state:
        return _pg_state["url"]  # type: ignore[return-value]
    if "error" in _pg_state:
        unavailable("PostgreSQL", _pg_state["error"])
    # One database per test run, so that concurrent runs (or xdist workers) never collide.
    url = make_url(PG_URL)
    url = url.set(database=f"{url.database}_{os.getpid()}")
    admin = create_engine(
        url.set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    except Exception as exc:
        _pg_state["error"] = f"{type(exc).__name__}: {exc}"
        unavailable("PostgreSQL", _pg_state["error"])
    finally:
        await admin.dispose()
    rendered = url.render_as_string(hide_password=False)
    engine = create_engine(rendered)
    await upgrade_engine(engine)
    await engine.dispose()
    _pg_state["url"] = rendered
    return rendered


@pytest.fixture(scope="session", autouse=True)
async def _drop_postgres_at_end() -> AsyncIterator[None]:
    yield
    if "url" not in _pg_state:
        return
    url = make_url(str(_pg_state["url"]))
    admin = create_engine(
        url.set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    finally:
        await admin.dispose()


TABLES = ", ".join(f'"{t.name}"' for t in reversed(Base.metadata.sorted_tables))


@pytest.fixture(params=ENGINES)
async def database_url(
    request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path
) -> AsyncIterator[str]:
    if request.param == "sqlite":
        path = tmp_path / "worthline.db"
        shutil.copyfile(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    url = await _prepare_postgres()
    yield url
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {TABLES} CASCADE"))
    await engine.dispose()


@pytest.fixture
def engine_name(database_url: str) -> str:
    return "sqlite" if database_url.startswith("sqlite") else "postgresql"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    yield database
    await database.dispose()


# ---------------------------------------------------------------- redis


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    import redis.asyncio as redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
        await client.flushdb()
    except Exception as exc:
        await client.aclose()
        unavailable("Redis", f"{type(exc).__name__}: {exc}")
    yield REDIS_URL
    await client.flushdb()
    await client.aclose()


# ---------------------------------------------------------------- app


def make_settings(database_url: str, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "data_dir": tmp_path / "data",
        "jwt_signing_key": "test-signing-key-0123456789abcdef-0123456789abcdef",
        # Cheap argon2 parameters keep the suite fast; the algorithm and code path are the same.
        "password_hash_time_cost": 1,
        "password_hash_memory_kib": 64,
        "rate_limit_api_read": "10000/minute",
        "rate_limit_api_write": "10000/minute",
        "rate_limit_auth": "10000/minute",
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path)


@pytest.fixture
async def ctx(settings: Settings) -> AsyncIterator[AppContext]:
    context = AppContext.build(settings)
    yield context
    await context.close()


@pytest.fixture
def app(settings: Settings, ctx: AppContext):  # type: ignore[no-untyped-def]
    return create_app(settings, ctx)


@pytest.fixture
async def client(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test/api/v1") as c:
        yield c


async def register_and_login(
    client: httpx.AsyncClient, email: str = "ada@example.com", password: str = PASSWORD
) -> dict[str, Any]:
    """A user with a session; returns the token pair plus an Authorization header."""
    response = await client.post("/auth/register", json={"email": email, "password": password})
    assert response.status_code == 201, response.text
    response = await client.post("/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    tokens = response.json()
    return {**tokens, "headers": {"Authorization": f"Bearer {tokens['access_token']}"}}


@pytest.fixture
async def auth(client: httpx.AsyncClient) -> dict[str, Any]:
    return await register_and_login(client)


# ---------------------------------------------------------------- cli


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run `worthline ...` with its data in tmp_path (and no stray .env or WORTHLINE_* vars)."""
    from typer.testing import CliRunner

    from worthline.cli import app as cli_app

    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("WORTHLINE_")]:
        monkeypatch.delenv(name)
    env = {
        "WORTHLINE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "WORTHLINE_DATA_DIR": str(tmp_path / "data"),
        "WORTHLINE_PASSWORD_HASH_TIME_COST": "1",
        "WORTHLINE_PASSWORD_HASH_MEMORY_KIB": "64",
        "COLUMNS": "160",  # Rich tables keep their rows on one line
    }
    runner = CliRunner()

    def run(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(cli_app, list(args), env=env)

    return run


def sqlite_rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    import sqlite3

    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


# ---------------------------------------------------------------- reporting


_engine_of: dict[str, str] = {}
_outcomes: Counter[tuple[str, str]] = Counter()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep, drop = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        engine = params.params.get("database_url") if params else None
        if (engine == "sqlite" and item.get_closest_marker("postgres_only")) or (
            engine == "postgresql" and item.get_closest_marker("sqlite_only")
        ):
            drop.append(item)
            continue
        keep.append(item)
        _engine_of[item.nodeid] = engine or "no database"
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        outcome = "xfailed" if hasattr(report, "wasxfail") else report.outcome
        _outcomes[(_engine_of.get(report.nodeid, "no database"), outcome)] += 1


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    terminalreporter.section("tests per engine")
    for engine in (*ENGINES, "no database"):
        counts = {o: _outcomes[(engine, o)] for o in ("passed", "failed", "skipped", "xfailed")}
        terminalreporter.write_line(
            f"{engine:>12}: {counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['skipped']} skipped, {counts['xfailed']} xfailed"
        )
    skipped = [r for r in terminalreporter.stats.get("skipped", [])]
    reasons = {str(r.longrepr[2]) for r in skipped if isinstance(r.longrepr, tuple)}
    for reason in sorted(r for r in reasons if "unavailable" in r):
        terminalreporter.write_line(f"SERVICE NOT TESTED: {reason}", yellow=True, bold=True)

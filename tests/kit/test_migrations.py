"""The Alembic history: up, down to nothing and up again on a fresh database of each engine, and
it agrees with the models."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.engine.url import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import PASSWORD, make_settings
from tests.kit.helpers import app_client
from worthline.kit.db import Base, create_engine
from worthline.kit.migrate import alembic_config, downgrade_engine, upgrade_engine
from worthline.models import load_all

load_all()
APP_TABLES = {t.name for t in Base.metadata.sorted_tables}


@pytest.fixture
async def fresh_engine(
    database_url: str, engine_name: str, tmp_path: Path
) -> AsyncIterator[AsyncEngine]:
    """An engine on an empty database of its own (not the suite's migrated one)."""
    if engine_name == "sqlite":
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}")
        yield engine
        await engine.dispose()
        return
    url = make_url(database_url)
    name = f"worthline_migr_test_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        url.set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(url.set(database=name).render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        await engine.dispose()
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


async def _version(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars())


def _schema_drift(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, Base.metadata)


async def test_upgrade_downgrade_upgrade(fresh_engine):
    assert await _tables(fresh_engine) == set()

    await upgrade_engine(fresh_engine)
    assert await _tables(fresh_engine) == APP_TABLES | {"alembic_version"}
    assert await _version(fresh_engine) == [_head()]

    await downgrade_engine(fresh_engine, "base")
    assert await _tables(fresh_engine) == {"alembic_version"}
    assert await _version(fresh_engine) == []

    await upgrade_engine(fresh_engine)
    assert await _tables(fresh_engine) == APP_TABLES | {"alembic_version"}
    assert await _version(fresh_engine) == [_head()]

    # Upgrading at head changes nothing.
    await upgrade_engine(fresh_engine)
    assert await _version(fresh_engine) == [_head()]


async def test_every_step_goes_down_and_up(fresh_engine):
    """Each revision's downgrade undoes exactly its upgrade (checked one step at a time)."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    revisions = [r.revision for r in reversed(list(script.walk_revisions()))]
    seen: list[set[str]] = [await _tables(fresh_engine)]
    for revision in revisions:
        await upgrade_engine(fresh_engine, revision)
        assert await _version(fresh_engine) == [revision]
        seen.append(await _tables(fresh_engine))
    for index in range(len(revisions) - 1, -1, -1):
        target = revisions[index - 1] if index else "base"
        await downgrade_engine(fresh_engine, target)
        tables = await _tables(fresh_engine)
        assert tables - {"alembic_version"} == seen[index] - {"alembic_version"}


async def test_migrated_schema_matches_the_models(fresh_engine):
    await upgrade_engine(fresh_engine)
    async with fresh_engine.connect() as conn:
        drift = await conn.run_sync(_schema_drift)
    assert drift == []


async def test_the_app_works_on_a_freshly_migrated_database(fresh_engine, tmp_path):
    """Down to nothing and back up leaves a database the app can use."""
    await upgrade_engine(fresh_engine)
    await downgrade_engine(fresh_engine, "base")
    await upgrade_engine(fresh_engine)
    url = fresh_engine.url.render_as_string(hide_password=False)
    async with app_client(make_settings(url, tmp_path)) as (client, _):
        registered = await client.post(
            "/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
        )
        login = await client.post(
            "/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
        )
    assert registered.status_code == 201
    assert login.status_code == 200

"""The event log: retention purge (ids are never handed out again, even once every row is
gone), the purge horizon, expired tickets, and `worthline events purge`."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, insert, select
from typer.testing import CliRunner

from worthline.cli import app as cli_app
from worthline.eventstream import service
from worthline.eventstream.events import AccountBalanceUpdated
from worthline.eventstream.models import EventRecord, EventTicket
from worthline.kit.db import unit_of_work


async def _user(client, auth) -> uuid.UUID:
    return uuid.UUID((await client.get("/users/me", headers=auth["headers"])).json()["id"])


def _event(user_id: uuid.UUID) -> AccountBalanceUpdated:
    return AccountBalanceUpdated(
        user_id, uuid.uuid4(), Decimal("1.00"), Decimal("2.00"), Decimal("1.00"), "GBP"
    )


async def test_purge_keeps_the_retention_period_and_never_reuses_ids(ctx, client, auth):
    user_id = await _user(client, auth)
    now = datetime.now(UTC)
    async with unit_of_work(ctx.db) as session:
        await session.execute(
            insert(EventRecord),
            [
                {"user_id": user_id, "type": "X", "payload": {}, "created_at": t}
                for t in (now - timedelta(days=31), now - timedelta(days=30, seconds=1))
            ],
        )
        recent = await service.record(session, [_event(user_id)])
        await service.issue_ticket(session, user_id, now - timedelta(minutes=5))
        await service.issue_ticket(session, user_id, now)

    async with unit_of_work(ctx.db) as session:
        result = await service.purge(session, 30, now)
    assert (result.events, result.tickets) == (2, 1)
    assert result.purged_through == recent[0].id - 1
    async with ctx.db.read_session() as session:
        assert list(await session.scalars(select(EventRecord.id))) == [recent[0].id]
        assert await session.scalar(select(func.count()).select_from(EventTicket)) == 1
        assert await service.purged_through(session) == result.purged_through

    # Everything purged: the next id is still higher (a client's Last-Event-ID stays valid).
    async with unit_of_work(ctx.db) as session:
        everything = await service.purge(session, 1, now + timedelta(days=2))
    assert everything.events == 1
    async with unit_of_work(ctx.db) as session:
        again = await service.record(session, [_event(user_id)])
    assert again[0].id > recent[0].id

    async with unit_of_work(ctx.db) as session:  # nothing old: nothing happens
        assert (await service.purge(session, 30)).events == 0


async def test_purge_removes_the_old_events_before_the_first_one_kept(ctx, client, auth):
    """In id order: an event older than the period written after a newer one stays for a
    later purge (ids are the order of writing); none inside the period ever goes."""
    user_id = await _user(client, auth)
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=31), now - timedelta(days=29)
    async with unit_of_work(ctx.db) as session:
        await session.execute(
            insert(EventRecord),
            [
                {"user_id": user_id, "type": f"X{i}", "payload": {}, "created_at": t}
                for i, t in enumerate((old, old, recent, old, recent))
            ],
        )
    async with unit_of_work(ctx.db) as session:
        result = await service.purge(session, 30, now)
    async with ctx.db.read_session() as session:
        rows = (await session.execute(select(EventRecord.id, EventRecord.type))).all()
    assert result.events == 2
    assert sorted(kind for _, kind in rows) == ["X2", "X3", "X4"]
    assert result.purged_through == min(event_id for event_id, _ in rows) - 1

    async with unit_of_work(ctx.db) as session:  # two days on, the rest is old
        assert (await service.purge(session, 30, now + timedelta(days=2))).events == 3


def test_events_purge_command(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("WORTHLINE_")]:
        monkeypatch.delenv(name)
    env = {
        "WORTHLINE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "WORTHLINE_DATA_DIR": str(tmp_path / "data"),
    }
    runner = CliRunner()
    assert runner.invoke(cli_app, ["db", "upgrade"], env=env).exit_code == 0
    result = runner.invoke(cli_app, ["events", "purge", "--days", "7"], env=env)
    assert result.exit_code == 0, result.output
    assert "Purged 0 events older than 7 days and 0 expired tickets" in result.output

"""Reads that take several statements see one snapshot: a figure composed of balances,
holdings and prices never mixes states from before and after a concurrent write."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, insert, select, text

from worthline.auth.models import User
from worthline.kit.db import Database, utcnow
from worthline.kit.deps import Session


async def _count(session) -> int:  # type: ignore[no-untyped-def]
    return int(await session.scalar(select(func.count()).select_from(User)))


async def _add_user(db: Database) -> None:
    async with db.write_session() as other:
        await other.execute(
            insert(User).values(
                id=uuid.uuid4(),
                email=f"{uuid.uuid4().hex}@example.com",
                password_hash="x",
                base_currency="GBP",
                created_at=utcnow(),
            )
        )
        await other.commit()


async def test_a_snapshot_session_keeps_its_snapshot_while_others_commit(db):
    async with db.snapshot_session() as session:
        before = await _count(session)
        await _add_user(db)
        assert await _count(session) == before
    async with db.read_session() as session:
        assert await _count(session) == before + 1


@pytest.mark.postgres_only
async def test_a_postgres_snapshot_session_is_repeatable_read_and_read_only(db):
    async with db.snapshot_session() as session:
        result = await session.execute(text("SHOW transaction_read_only"))
        assert result.scalar() == "on"
        result = await session.execute(text("SHOW transaction_isolation"))
        assert result.scalar() == "repeatable read"


async def test_get_endpoints_read_one_snapshot(app, client, ctx):
    """The `Session` of a GET request: a write committed between two of its statements is
    not seen by the second."""

    @app.get("/api/v1/test/two-reads")
    async def two_reads(session: Session) -> dict[str, int]:
        first = await _count(session)
        await _add_user(ctx.db)
        return {"first": first, "second": await _count(session)}

    response = await client.get("/test/two-reads")
    assert response.status_code == 200
    body = response.json()
    assert body["first"] == body["second"]

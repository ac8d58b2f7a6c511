"""The driver reads (kit/driver_reads.py) behind the per-request authorisation check, on both
engines: the same answers as the ORM, revocations seen by the very next request, the SQLite
fallback and the PostgreSQL pool bound.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from datetime import UTC, timedelta
from typing import Any

import jwt
import pytest
from sqlalchemy import event, update

from conftest import PASSWORD
from tests.kit.helpers import assert_unauthorized, bearer
from worthline.auth import repository as repo
from worthline.auth.models import AuthSession, PersonalToken, User
from worthline.auth.repository import UserRecord
from worthline.kit.db import utcnow
from worthline.kit.driver_reads import driver_reads
from worthline.kit.security import digest


def _ids(auth: dict[str, Any]) -> tuple[uuid.UUID, uuid.UUID]:
    claims = jwt.decode(auth["access_token"], options={"verify_signature": False})
    return uuid.UUID(claims["sub"]), uuid.UUID(claims["sid"])


async def _revoke_sessions(db: Any) -> None:
    """Straight in the database, through another engine than the app's."""
    async with db.write_session() as session:
        await session.execute(update(AuthSession).values(revoked_at=utcnow(), revoked_reason="t"))
        await session.commit()


async def test_session_lookup_answers_what_the_orm_holds(client, auth, db, ctx):
    user_id, session_id = _ids(auth)
    record = await repo.user_for_session(ctx.db, user_id, session_id)
    async with db.read_session() as session:
        user = await session.get(User, user_id)
    assert user is not None
    assert record == UserRecord(user.id, user.email, user.base_currency, user.created_at)
    assert record.created_at.tzinfo is UTC
    assert await repo.user_for_session(ctx.db, user_id, uuid.uuid4()) is None
    assert await repo.user_for_session(ctx.db, uuid.uuid4(), session_id) is None


async def test_personal_token_lookup_checks_revocation_and_expiry(client, auth, db, ctx):
    created = await client.post(
        "/auth/tokens",
        json={"name": "s", "scopes": ["read"], "expires_in_days": 1},
        headers=auth["headers"],
    )
    assert created.status_code == 201
    token_digest = digest(created.json()["token"])
    found = await repo.user_for_personal_token(ctx.db, token_digest, utcnow())
    assert found is not None
    assert found[0].id == _ids(auth)[0]
    assert found[1] == "read"
    later = utcnow() + timedelta(days=2)
    assert await repo.user_for_personal_token(ctx.db, token_digest, later) is None
    async with db.write_session() as session:
        await session.execute(update(PersonalToken).values(revoked_at=utcnow()))
        await session.commit()
    assert await repo.user_for_personal_token(ctx.db, token_digest, utcnow()) is None


async def test_a_revoked_session_is_refused_by_the_very_next_request(client, auth, db, settings):
    assert (await client.get("/users/me", headers=auth["headers"])).status_code == 200
    await _revoke_sessions(db)
    assert_unauthorized(await client.get("/users/me", headers=auth["headers"]), settings)
    patch = await client.patch("/users/me", json={"base_currency": "EUR"}, headers=auth["headers"])
    assert_unauthorized(patch, settings)


async def test_a_personal_token_revoked_in_the_database_is_refused_at_once(
    client, auth, db, settings
):
    created = await client.post(
        "/auth/tokens", json={"name": "s", "scopes": ["read"]}, headers=auth["headers"]
    )
    pat = bearer(created.json()["token"])
    assert (await client.get("/users/me", headers=pat)).status_code == 200
    async with db.write_session() as session:
        await session.execute(update(PersonalToken).values(revoked_at=utcnow()))
        await session.commit()
    assert_unauthorized(await client.get("/users/me", headers=pat), settings)


async def test_patch_changes_the_user_in_its_own_unit_of_work(client, auth, db):
    response = await client.patch(
        "/users/me", json={"base_currency": "EUR"}, headers=auth["headers"]
    )
    assert response.status_code == 200
    assert response.json()["base_currency"] == "EUR"
    me = await client.get("/users/me", headers=auth["headers"])
    assert me.json()["base_currency"] == "EUR"
    async with db.read_session() as session:
        user = await session.get(User, _ids(auth)[0])
    assert user is not None
    assert user.base_currency == "EUR"


SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
async def test_sqlite_falls_back_to_a_read_session_when_the_fast_read_fails(
    client, auth, db, ctx, settings, monkeypatch
):
    reads = driver_reads(ctx.db)

    def locked() -> sqlite3.Connection:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(reads._sqlite, "get", locked)
    assert (await client.get("/users/me", headers=auth["headers"])).status_code == 200
    await _revoke_sessions(db)
    assert_unauthorized(await client.get("/users/me", headers=auth["headers"]), settings)


@SQLITE_ONLY
async def test_sqlite_reopens_its_connection_after_dispose(client, auth, ctx):
    user_id, session_id = _ids(auth)
    reads = driver_reads(ctx.db)
    assert await repo.user_for_session(ctx.db, user_id, session_id) is not None
    before = dict(reads._sqlite._connections)
    assert before
    await ctx.db.dispose()  # a new pool: the file may have been replaced meanwhile
    assert await repo.user_for_session(ctx.db, user_id, session_id) is not None
    assert set(reads._sqlite._connections.values()).isdisjoint(before.values())
    for conn in before.values():
        with pytest.raises(sqlite3.ProgrammingError):
            conn.execute("SELECT 1")


@pytest.mark.postgres_only
async def test_postgres_lookups_never_exceed_the_pool(client, auth, ctx):
    """Beyond pool_size at once, the pool would open overflow connections and close them again
    at check-in: a new connection per lookup under load. Lookups wait for a pooled one."""
    user_id, session_id = _ids(auth)
    engine = ctx.db.engine.sync_engine
    out = {"now": 0, "max": 0}

    def checkout(*_: Any) -> None:
        out["now"] += 1
        out["max"] = max(out["max"], out["now"])

    def checkin(*_: Any) -> None:
        out["now"] -= 1

    event.listen(engine, "checkout", checkout)
    event.listen(engine, "checkin", checkin)
    try:
        found = await asyncio.gather(
            *(repo.user_for_session(ctx.db, user_id, session_id) for _ in range(100))
        )
    finally:
        event.remove(engine, "checkout", checkout)
        event.remove(engine, "checkin", checkin)
    assert all(record is not None for record in found)
    assert 1 <= out["max"] <= engine.pool.size()  # type: ignore[attr-defined]


@pytest.mark.postgres_only
async def test_postgres_checks_of_one_turn_go_in_one_query_and_each_gets_its_own_answer(
    client, auth, db, ctx, monkeypatch
):
    """Concurrent requests' session checks share a round trip (kit.coalesce); a revoked
    session, an unknown one and a token naming another user are refused within the batch."""
    user_id, session_id = _ids(auth)
    other = await client.post(
        "/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    _, revoked_id = _ids(other.json())
    async with db.write_session() as session:
        await session.execute(
            update(AuthSession)
            .where(AuthSession.id == revoked_id)
            .values(revoked_at=utcnow(), revoked_reason="t")
        )
        await session.commit()
    reads = driver_reads(ctx.db)
    batches: list[Any] = []
    original = reads.all

    async def counted(stmt: Any, params: Any) -> Any:
        batches.append(params)
        return await original(stmt, params)

    monkeypatch.setattr(reads, "all", counted)
    asks = [
        (user_id, session_id),
        (user_id, revoked_id),
        (user_id, uuid.uuid4()),
        (uuid.uuid4(), session_id),  # a session of another user
        (user_id, session_id),
    ]
    found = await asyncio.gather(*(repo.user_for_session(ctx.db, u, s) for u, s in asks))
    assert len(batches) == 1
    assert [record is not None for record in found] == [True, False, False, False, True]
    assert found[0] == found[4]
    assert found[0] is not None and found[0].id == user_id

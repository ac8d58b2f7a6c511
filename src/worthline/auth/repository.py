"""Statements for users, sessions and tokens. Each lookup by a secret is one indexed query."""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import any_, bindparam, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from worthline.auth.models import AuthSession, PersonalToken, RefreshToken, User
from worthline.kit.coalesce import Coalescer
from worthline.kit.db import Database
from worthline.kit.driver_reads import driver_reads


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == email))


@dataclass(frozen=True, slots=True)
class UserRecord:
    """The caller, as every authenticated request loads it: plain values, no ORM state. An
    endpoint that changes the user loads the `User` entity in its own unit of work."""

    id: uuid.UUID
    email: str
    base_currency: str
    created_at: datetime


_USER_COLUMNS = (User.id, User.email, User.base_currency, User.created_at)

# Run on every authenticated request: Core statements built once with bound parameters, run as
# one driver call each (`lookup.DriverReads`; no session, no identity map).
_USER_FOR_SESSION = (
    select(*_USER_COLUMNS)
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(
        User.id == bindparam("user_id"),
        AuthSession.id == bindparam("session_id"),
        AuthSession.revoked_at.is_(None),
    )
)
# PostgreSQL: the checks of one event-loop turn in one query (`kit.coalesce`).
_USERS_FOR_SESSIONS = (
    select(AuthSession.id, *_USER_COLUMNS)
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(
        AuthSession.id == any_(bindparam("session_ids", type_=ARRAY(AuthSession.id.type))),
        AuthSession.revoked_at.is_(None),
    )
)
_USER_FOR_PERSONAL_TOKEN = (
    select(*_USER_COLUMNS, PersonalToken.scopes)
    .join(PersonalToken, PersonalToken.user_id == User.id)
    .where(
        PersonalToken.token_digest == bindparam("token_digest"),
        PersonalToken.revoked_at.is_(None),
        or_(PersonalToken.expires_at.is_(None), PersonalToken.expires_at > bindparam("now")),
    )
)


async def user_for_session(
    db: Database, user_id: uuid.UUID, session_id: uuid.UUID
) -> UserRecord | None:
    """The user behind an access token, provided its login session is not revoked.

    SQLite answers in microseconds on the calling thread; PostgreSQL checks the sessions of
    concurrent requests in one round trip."""
    if db.dialect == "postgresql":
        return await _session_checks(db)((user_id, session_id))
    row = await driver_reads(db).first(
        _USER_FOR_SESSION, {"user_id": user_id, "session_id": session_id}
    )
    return UserRecord(*row) if row is not None else None


SessionCheck = tuple[uuid.UUID, uuid.UUID]  # (user id, session id), both from a verified token
_CHECKS: weakref.WeakKeyDictionary[Database, Coalescer[SessionCheck, UserRecord | None]] = (
    weakref.WeakKeyDictionary()
)


def _session_checks(db: Database) -> Coalescer[SessionCheck, UserRecord | None]:
    checks = _CHECKS.get(db)
    if checks is None:
        reads = driver_reads(db)

        async def load(items: Sequence[SessionCheck]) -> list[UserRecord | None]:
            rows = await reads.all(
                _USERS_FOR_SESSIONS, {"session_ids": list({s for _, s in items})}
            )
            users = {row[0]: UserRecord(*row[1:]) for row in rows}
            found = [users.get(session_id) for _, session_id in items]
            # A session belongs to one user: a token naming another is refused.
            return [
                user if user is not None and user.id == user_id else None
                for user, (user_id, _) in zip(found, items, strict=True)
            ]

        checks = _CHECKS[db] = Coalescer(load)
    return checks


async def user_for_personal_token(
    db: Database, token_digest: bytes, now: datetime
) -> tuple[UserRecord, str] | None:
    """The user behind a personal access token that is neither revoked nor expired, and the
    token's scopes."""
    row = await driver_reads(db).first(
        _USER_FOR_PERSONAL_TOKEN, {"token_digest": token_digest, "now": now}
    )
    return (UserRecord(*row[:4]), row[4]) if row is not None else None


async def refresh_token_by_digest(
    session: AsyncSession, token_digest: bytes
) -> tuple[RefreshToken, AuthSession] | None:
    row = (
        await session.execute(
            select(RefreshToken, AuthSession)
            .join(AuthSession, AuthSession.id == RefreshToken.session_id)
            .where(RefreshToken.token_digest == token_digest)
        )
    ).first()
    return (row[0], row[1]) if row else None


async def claim_refresh_token(session: AsyncSession, token_id: uuid.UUID, now: datetime) -> bool:
    """Mark a refresh token rotated, atomically: only one caller can ever win it."""
    result = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token_id, RefreshToken.rotated_at.is_(None))
        .values(rotated_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


async def revoke_session(
    session: AsyncSession, session_id: uuid.UUID, now: datetime, reason: str
) -> None:
    await session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
        .execution_options(synchronize_session=False)
    )


async def personal_tokens(
    session: AsyncSession, user_id: uuid.UUID, now: datetime
) -> list[PersonalToken]:
    """The user's active tokens: neither revoked nor expired at `now`."""
    result = await session.scalars(
        select(PersonalToken)
        .where(
            PersonalToken.user_id == user_id,
            PersonalToken.revoked_at.is_(None),
            or_(PersonalToken.expires_at.is_(None), PersonalToken.expires_at > now),
        )
        .order_by(PersonalToken.created_at, PersonalToken.id)
    )
    return list(result)


async def personal_token(
    session: AsyncSession, user_id: uuid.UUID, token_id: uuid.UUID
) -> PersonalToken | None:
    return await session.scalar(
        select(PersonalToken).where(
            PersonalToken.id == token_id,
            PersonalToken.user_id == user_id,
            PersonalToken.revoked_at.is_(None),
        )
    )

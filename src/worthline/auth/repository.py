"""Statements for users, sessions and tokens. Each lookup by a secret is one indexed query."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from worthline.auth.models import AuthSession, PersonalToken, RefreshToken, User


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(select(User).where(User.email == email))


# Runs on every authenticated request: built once, so each call only binds two parameters
# (no statement construction, and the compiled-SQL cache key is memoised on this object).
_USER_FOR_SESSION = (
    select(User)
    .join(AuthSession, AuthSession.user_id == User.id)
    .where(
        User.id == bindparam("user_id"),
        AuthSession.id == bindparam("session_id"),
        AuthSession.revoked_at.is_(None),
    )
)


async def user_for_session(
    session: AsyncSession, user_id: uuid.UUID, session_id: uuid.UUID
) -> User | None:
    """The user behind an access token, provided its login session is not revoked."""
    return await session.scalar(_USER_FOR_SESSION, {"user_id": user_id, "session_id": session_id})


async def user_for_personal_token(
    session: AsyncSession, token_digest: bytes, now: datetime
) -> tuple[User, str] | None:
    row = (
        await session.execute(
            select(User, PersonalToken.scopes)
            .join(PersonalToken, PersonalToken.user_id == User.id)
            .where(
                PersonalToken.token_digest == token_digest,
                PersonalToken.revoked_at.is_(None),
                or_(PersonalToken.expires_at.is_(None), PersonalToken.expires_at > now),
            )
        )
    ).first()
    return (row[0], row[1]) if row else None


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


async def personal_tokens(session: AsyncSession, user_id: uuid.UUID) -> list[PersonalToken]:
    result = await session.scalars(
        select(PersonalToken)
        .where(PersonalToken.user_id == user_id, PersonalToken.revoked_at.is_(None))
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

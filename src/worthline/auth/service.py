"""Registration, login, token rotation and personal access tokens. Services flush; the edge
commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from worthline.auth import repository as repo
from worthline.auth.models import AuthSession, PersonalToken, RefreshToken, User
from worthline.kit.problems import Conflict, NotFound, Unauthorized
from worthline.kit.security import (
    PERSONAL_PREFIX,
    REFRESH_PREFIX,
    AccessClaims,
    AccessTokens,
    Passwords,
    digest,
    new_secret,
)

FULL_SCOPES = frozenset({"read", "write"})


class EmailTaken(Conflict):
    slug, title = "email-taken", "Email Already Registered"


class InvalidCredentials(Unauthorized):
    slug, title = "invalid-credentials", "Invalid Credentials"


class InvalidRefreshToken(Unauthorized):
    slug, title = "invalid-refresh-token", "Invalid Refresh Token"


class RefreshTokenReused(InvalidRefreshToken):
    """A rotated token came back: someone holds a copy. Its whole family is revoked (and that
    revocation must be committed even though the request fails)."""

    slug, title = "refresh-token-reused", "Refresh Token Reused"


class PersonalTokenNotFound(NotFound):
    pass


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    access_token: str
    refresh_token: str
    expires_in: int


@dataclass(frozen=True, slots=True)
class Auth:
    passwords: Passwords
    access_tokens: AccessTokens
    refresh_ttl: timedelta

    async def register(
        self, session: AsyncSession, email: str, password: str, base_currency: str, now: datetime
    ) -> User:
        email = email.lower()
        if await repo.user_by_email(session, email) is not None:
            raise EmailTaken(f"{email} is already registered")
        user = User(
            email=email,
            password_hash=await self.passwords.hash(password),
            base_currency=base_currency,
            created_at=now,
        )
        session.add(user)
        try:
            await session.flush()
        except IntegrityError as exc:  # a concurrent registration won the unique index
            raise EmailTaken(f"{email} is already registered") from exc
        return user

    async def login(
        self, session: AsyncSession, email: str, password: str, now: datetime
    ) -> IssuedTokens:
        user = await repo.user_by_email(session, email.strip().lower())
        # Unknown email and wrong password cost the same and answer the same.
        if not await self.passwords.verify(user.password_hash if user else None, password):
            raise InvalidCredentials("Email or password is wrong")
        assert user is not None
        auth_session = AuthSession(user_id=user.id, created_at=now)
        session.add(auth_session)
        await session.flush()
        return await self._issue(session, user.id, auth_session.id, now)

    async def refresh(self, session: AsyncSession, token: str, now: datetime) -> IssuedTokens:
        found = await repo.refresh_token_by_digest(session, digest(token))
        if found is None:
            raise InvalidRefreshToken("Unknown refresh token")
        refresh, auth_session = found
        if auth_session.revoked_at is not None:
            raise InvalidRefreshToken("This session has been revoked")
        if not await repo.claim_refresh_token(session, refresh.id, now):
            await repo.revoke_session(session, auth_session.id, now, "refresh-token-reuse")
            raise RefreshTokenReused(
                "This refresh token was already used; its session has been revoked"
            )
        if refresh.expires_at <= now:
            raise InvalidRefreshToken("Refresh token expired")
        return await self._issue(session, auth_session.user_id, auth_session.id, now)

    async def logout(self, session: AsyncSession, token: str, now: datetime) -> None:
        found = await repo.refresh_token_by_digest(session, digest(token))
        if found is None:
            raise InvalidRefreshToken("Unknown refresh token")
        await repo.revoke_session(session, found[1].id, now, "logout")

    async def _issue(
        self, session: AsyncSession, user_id: uuid.UUID, session_id: uuid.UUID, now: datetime
    ) -> IssuedTokens:
        secret = new_secret(REFRESH_PREFIX)
        session.add(
            RefreshToken(
                session_id=session_id,
                token_digest=digest(secret),
                issued_at=now,
                expires_at=now + self.refresh_ttl,
            )
        )
        await session.flush()
        access = self.access_tokens.issue(AccessClaims(user_id, session_id, FULL_SCOPES), now)
        return IssuedTokens(access, secret, int(self.access_tokens.ttl.total_seconds()))


async def create_personal_token(
    session: AsyncSession,
    user_id: uuid.UUID,
    name: str,
    scopes: list[str],
    expires_in_days: int | None,
    now: datetime,
) -> tuple[PersonalToken, str]:
    secret = new_secret(PERSONAL_PREFIX)
    token = PersonalToken(
        user_id=user_id,
        name=name,
        scopes=" ".join(sorted(scopes)),
        token_digest=digest(secret),
        created_at=now,
        expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    session.add(token)
    await session.flush()
    return token, secret


async def revoke_personal_token(
    session: AsyncSession, user_id: uuid.UUID, token_id: uuid.UUID, now: datetime
) -> None:
    token = await repo.personal_token(session, user_id, token_id)
    if token is None:
        raise PersonalTokenNotFound("Personal access token not found")
    token.revoked_at = now
    await session.flush()

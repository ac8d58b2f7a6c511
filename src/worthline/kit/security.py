"""Passwords (argon2id), access tokens (JWT, HS256) and opaque secrets stored as digests."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio.to_thread
import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

ALGORITHM = "HS256"
AUDIENCE = "worthline-api"
REFRESH_PREFIX = "wl_rt_"
PERSONAL_PREFIX = "wl_pat_"


class Passwords:
    """argon2id hashing, run off the event loop (a hash takes tens of milliseconds by design)."""

    def __init__(self, time_cost: int, memory_kib: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        # Verifying against this when the email is unknown makes both failures cost the same.
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hasher.hash, password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        def check() -> bool:
            try:
                return self._hasher.verify(stored_hash or self._dummy, password)
            except (VerificationError, InvalidHashError):
                return False

        return await anyio.to_thread.run_sync(check) and stored_hash is not None


def new_secret(prefix: str) -> str:
    """A random 256-bit token, prefixed so that a leaked one is recognisable (and scannable)."""
    return prefix + secrets.token_urlsafe(32)


def digest(token: str) -> bytes:
    """What is stored for a refresh or personal token: its SHA-256, looked up by an index.

    The token carries 256 bits of entropy, so an unsalted fast hash is the right tool: nothing
    to brute-force, and an equality lookup needs no constant-time compare of secrets."""
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: uuid.UUID
    session_id: uuid.UUID  # the refresh-token family; revoking it revokes its access tokens
    scopes: frozenset[str]


class InvalidToken(Exception):
    """The token is not one of ours, or no longer valid. The reason is for logs, not clients."""


class AccessTokens:
    def __init__(self, key: str, issuer: str, ttl: timedelta) -> None:
        self._key = key
        self._issuer = issuer
        self.ttl = ttl

    def issue(self, claims: AccessClaims, now: datetime) -> str:
        payload = {
            "iss": self._issuer,
            "aud": AUDIENCE,
            "sub": str(claims.user_id),
            "sid": str(claims.session_id),
            "scope": " ".join(sorted(claims.scopes)),
            "iat": now,
            "nbf": now,
            "exp": now + self.ttl,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(payload, self._key, algorithm=ALGORITHM, headers={"typ": "at+jwt"})

    def verify(self, token: str) -> AccessClaims:
        try:
            # `algorithms` is pinned: `none`, RS256-with-our-secret and friends are refused.
            payload = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=self._issuer,
                options={"require": ["exp", "iat", "nbf", "sub", "sid", "iss", "aud"]},
            )
            return AccessClaims(
                user_id=uuid.UUID(payload["sub"]),
                session_id=uuid.UUID(payload["sid"]),
                scopes=frozenset(str(payload.get("scope", "")).split()),
            )
        except (jwt.PyJWTError, ValueError, TypeError, AttributeError) as exc:
            raise InvalidToken(type(exc).__name__) from exc

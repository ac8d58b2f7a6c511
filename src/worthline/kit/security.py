"""Passwords (argon2id), access tokens (JWT, HS256) and opaque secrets stored as digests."""

from __future__ import annotations

import hashlib
import secrets
import time
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
    VERIFIED_MAX = 4096
    """Tokens whose signature and claims were verified, remembered with their time claims."""

    def __init__(self, key: str, issuer: str, ttl: timedelta) -> None:
        self._key = key
        self._issuer = issuer
        self.ttl = ttl
        # token -> (claims, iat, nbf, exp). Everything PyJWT checks but the time is a function of
        # the token string and our key alone, so a token seen valid need not be parsed and
        # HMAC'd again: each call re-checks the time claims exactly as PyJWT does (no leeway)
        # and any doubt goes back through PyJWT. This is not an authorisation cache: whether
        # the session is revoked is still asked of the database on every request.
        self._verified: dict[str, tuple[AccessClaims, int, int, int]] = {}

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
        seen = self._verified.get(token)
        if seen is not None:
            claims, iat, nbf, exp = seen
            now = time.time()
            if iat <= now and nbf <= now and now < exp:
                return claims
            self._verified.pop(token, None)  # expired (or the clock went back): PyJWT says why
        claims, iat, nbf, exp = self._decode(token)
        if len(self._verified) >= self.VERIFIED_MAX:
            self._verified.pop(next(iter(self._verified)), None)  # the oldest
        self._verified[token] = (claims, iat, nbf, exp)
        return claims

    def _decode(self, token: str) -> tuple[AccessClaims, int, int, int]:
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
            claims = AccessClaims(
                user_id=uuid.UUID(payload["sub"]),
                session_id=uuid.UUID(payload["sid"]),
                scopes=frozenset(str(payload.get("scope", "")).split()),
            )
            # As PyJWT compares them: int() of each, against the current Unix time.
            times = int(payload["iat"]), int(payload["nbf"]), int(payload["exp"])
            return claims, *times
        except (jwt.PyJWTError, ValueError, TypeError, AttributeError, OverflowError) as exc:
            raise InvalidToken(type(exc).__name__) from exc

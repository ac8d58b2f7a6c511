"""The process-wide objects an app needs, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass

from worthline.auth.service import Auth
from worthline.kit.config import Settings
from worthline.kit.db import Database
from worthline.kit.eventbus import EventBus, build_bus
from worthline.kit.ratelimit import RateLimiter
from worthline.kit.security import AccessTokens, Passwords


@dataclass
class AppContext:
    settings: Settings
    db: Database
    limiter: RateLimiter
    auth: Auth
    bus: EventBus

    @property
    def access_tokens(self) -> AccessTokens:
        return self.auth.access_tokens

    @classmethod
    def build(cls, settings: Settings) -> AppContext:
        from worthline.eventstream.service import Dispatcher

        pool: dict[str, int] = {}
        if not settings.is_sqlite:
            pool = {"pool_size": settings.db_pool_size, "max_overflow": settings.db_max_overflow}
        db = Database(settings.effective_database_url, **pool)
        bus = build_bus(settings.redis_url, settings.sse_max_streams_per_user)
        db.on_commit = Dispatcher(bus)  # every edge's unit of work delivers its events
        return cls(
            settings=settings,
            db=db,
            bus=bus,
            limiter=RateLimiter(settings),
            auth=Auth(
                passwords=Passwords(
                    settings.password_hash_time_cost, settings.password_hash_memory_kib
                ),
                access_tokens=AccessTokens(
                    settings.signing_key, settings.jwt_issuer, settings.access_token_ttl
                ),
                refresh_ttl=settings.refresh_token_ttl,
            ),
        )

    async def close(self) -> None:
        await self.bus.close()
        await self.db.dispose()
        await _close_storage(self.limiter)


async def _close_storage(limiter: RateLimiter) -> None:
    close = getattr(limiter.storage, "aclose", None) or getattr(limiter.storage, "close", None)
    if close is None:
        return
    result = close()
    if hasattr(result, "__await__"):
        await result

"""Rate limits per API.md: in-process by default, in Redis when configured (shared by workers).

Built on `limits` (sliding-window counters). The limiter records what it decided in the request
state; `RequestContextMiddleware` turns that into `X-RateLimit-*` headers on every response,
problems included.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from enum import StrEnum

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from worthline.kit.config import Settings
from worthline.kit.problems import RateLimited


class Policy(StrEnum):
    API_READ = "api_read"
    API_WRITE = "api_write"
    AUTH = "auth"


@dataclass(frozen=True, slots=True)
class Quota:
    limit: int
    remaining: int
    reset_at: int  # Unix seconds when the quota is whole again

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }


def policy_for_method(method: str) -> Policy:
    return Policy.API_READ if method in ("GET", "HEAD", "OPTIONS") else Policy.API_WRITE


class RateLimiter:
    def __init__(self, settings: Settings) -> None:
        self.storage: Storage
        if settings.redis_url:
            uri = settings.redis_url.replace("redis://", "async+redis://", 1).replace(
                "rediss://", "async+rediss://", 1
            )
            self.storage = RedisStorage(uri, implementation="redispy", key_prefix="worthline-rl")
        else:
            self.storage = MemoryStorage()
        self._limiter = SlidingWindowCounterRateLimiter(self.storage)
        self._items: dict[Policy, RateLimitItem | None] = {
            Policy.API_READ: _item(settings.rate_limit_api_read),
            Policy.API_WRITE: _item(settings.rate_limit_api_write),
            Policy.AUTH: _item(settings.rate_limit_auth),
        }

    async def hit(self, policy: Policy, identity: str) -> Quota | None:
        """Count one request; raise 429 when over. `identity` must be verified (a token subject
        or the client address), never an unverified claim."""
        item = self._items[policy]
        if item is None:
            return None
        key = f"{policy.value}:{identity}"
        allowed = await self._limiter.hit(item, key)
        stats = await self._limiter.get_window_stats(item, key)
        quota = Quota(
            limit=item.amount,
            remaining=max(0, stats.remaining),
            reset_at=math.ceil(stats.reset_time),
        )
        if not allowed:
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
            raise RateLimited(
                f"Rate limit of {item.amount} per {item.get_expiry()} s exceeded; "
                f"retry in {retry_after} s",
                headers={**quota.headers(), "Retry-After": str(retry_after)},
            )
        return quota

    async def ping(self) -> None:
        if not await self.storage.check():
            raise ConnectionError("rate-limit storage unreachable")

    async def reset(self) -> None:
        await self.storage.reset()


def _item(value: str) -> RateLimitItem | None:
    return None if value == "0" else parse(value)

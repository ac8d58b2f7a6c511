"""Rate limits per API.md: in-process by default, in Redis when configured (shared by workers).

Built on `limits` (sliding-window counters). The limiter records what it decided in the request
state; `RequestContextMiddleware` turns that into `X-RateLimit-*` headers on every response,
problems included.

On Redis a hit is one script call: `limits` takes two (its acquire script, then a second script
for the window behind the headers); `_ACQUIRE_AND_WINDOW` runs both of its scripts' steps in one,
on the same keys, so the counts are the ones `limits` keeps and reads. The hits of one
event-loop turn go in one call (`kit.coalesce`), each counted on its own, in order.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

from limits import RateLimitItem, WindowStats, parse
from limits.aio.storage import (
    MemoryStorage,
    RedisStorage,
    SlidingWindowCounterSupport,
    Storage,
)

from worthline.kit.coalesce import Coalescer
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
        # The sliding-window counter strategy of `limits`, called at the storage level: what
        # SlidingWindowCounterRateLimiter.hit and .get_window_stats do, without the wrappers.
        self._sliding = cast(SlidingWindowCounterSupport, self.storage)
        self._redis_hit: Any = None  # the one-round-trip script, on Redis
        if isinstance(self.storage, RedisStorage):
            bridge = self.storage.bridge
            self._redis_hit = bridge.get_connection().register_script(_ACQUIRE_AND_WINDOW)
            self._redis_key = bridge.prefixed_key
            self._redis_hits = Coalescer(self._send_hits)
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
        if self._redis_hit is not None:
            allowed, stats = await self._hit_redis(item, key)
        else:
            limit_key, expiry = item.key_for(key), item.get_expiry()
            allowed = await self._sliding.acquire_sliding_window_entry(
                limit_key, item.amount, expiry, 1
            )
            stats = _window_stats(item, *await self._sliding.get_sliding_window(limit_key, expiry))
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

    async def _hit_redis(self, item: RateLimitItem, key: str) -> tuple[bool, WindowStats]:
        """`limits`' hit and get_window_stats, in one script call (same keys, same counts),
        shared with the other hits of this event-loop turn (`kit.coalesce`)."""
        acquired, window = await self._redis_hits((item, key))
        return acquired, _window_stats(item, *window)

    async def _send_hits(
        self, hits: Sequence[tuple[RateLimitItem, str]]
    ) -> list[tuple[bool, tuple[int, float, int, float]]]:
        storage = self.storage
        assert isinstance(storage, RedisStorage)
        keys: list[str] = []
        args: list[int] = []
        for item, key in hits:
            limit_key = item.key_for(key)
            keys += (
                self._redis_key(storage._previous_window_key(limit_key)),
                self._redis_key(storage._current_window_key(limit_key)),
            )
            args += (item.amount, item.get_expiry(), 1)
        reply = await self._redis_hit(keys=keys, args=args)
        # As limits' RedispyBridge.get_sliding_window reads the window (TTLs in milliseconds).
        return [
            (
                bool(reply[i]),
                (
                    int(reply[i + 1] or 0),
                    max(0.0, float(reply[i + 2] or 0)) / 1000,
                    int(reply[i + 3] or 0),
                    max(0.0, float(reply[i + 4] or 0)) / 1000,
                ),
            )
            for i in range(0, len(reply), 5)
        ]

    async def ping(self) -> None:
        if not await self.storage.check():
            raise ConnectionError("rate-limit storage unreachable")

    async def reset(self) -> None:
        await self.storage.reset()


def _window_stats(
    item: RateLimitItem,
    previous_count: int,
    previous_expires_in: float,
    current_count: int,
    current_expires_in: float,
) -> WindowStats:
    """`SlidingWindowCounterRateLimiter.get_window_stats` on a window already read."""
    expiry = item.get_expiry()
    weighted = previous_count * previous_expires_in / expiry + current_count
    remaining = max(0, item.amount - math.floor(weighted))
    now = time.time()
    if not (previous_count or current_count):
        return WindowStats(now, remaining)
    previous_reset_in = current_reset_in = math.inf
    if previous_count:
        previous_reset_in = previous_expires_in % (expiry / previous_count)
    if current_count:
        # A counter set in this very call has a TTL of exactly two windows, and x % expiry would
        # say 0 where a read a millisecond later (as limits' second call was) says a window.
        current_reset_in = current_expires_in % expiry or expiry
    return WindowStats(now + min(previous_reset_in, current_reset_in), remaining)


# limits' acquire_sliding_window.lua followed by its sliding_window.lua, in one call, for each
# of several hits in turn: KEYS are each hit's previous and current window keys, ARGV each
# hit's limit, expiry (s) and cost. Returns, per hit, {acquired (1/0), previous count,
# previous TTL (ms), current count, current TTL (ms)}, one flat list.
_ACQUIRE_AND_WINDOW = """
local reply = {}
for i = 0, #KEYS / 2 - 1 do
    local previous_key, current_key = KEYS[2 * i + 1], KEYS[2 * i + 2]
    local limit = tonumber(ARGV[3 * i + 1])
    local expiry = tonumber(ARGV[3 * i + 2]) * 1000
    local amount = tonumber(ARGV[3 * i + 3])

    local function shift()
        local current_ttl = tonumber(redis.call('pttl', current_key))
        if current_ttl > 0 and current_ttl < expiry then
            -- Current window expired, shift it to the previous window
            redis.call('rename', current_key, previous_key)
            redis.call('set', current_key, 0, 'PX', current_ttl + expiry)
        end
    end

    local function window()
        return tonumber(redis.call('get', previous_key)) or 0,
            tonumber(redis.call('pttl', previous_key)) or 0,
            tonumber(redis.call('get', current_key)) or 0,
            tonumber(redis.call('pttl', current_key)) or 0
    end

    local acquired = 0
    if amount <= limit then
        shift()
        local previous_count, previous_ttl, current_count, current_ttl = window()
        if previous_ttl <= 0 then
            previous_ttl = 0
        end
        if current_ttl <= 0 then
            current_ttl = 0
        end
        local weighted_count = math.floor(previous_count * previous_ttl / expiry) + current_count
        if (weighted_count + amount) <= limit then
            if redis.call('exists', current_key) == 1 then
                redis.call('incrby', current_key, amount)
            else
                redis.call('set', current_key, amount, 'PX', expiry * 2)
            end
            acquired = 1
        end
    end

    shift()
    local previous_count, previous_ttl, current_count, current_ttl = window()
    for _, value in ipairs({acquired, previous_count, previous_ttl, current_count, current_ttl}) do
        reply[#reply + 1] = value
    end
end
return reply
"""


def _item(value: str) -> RateLimitItem | None:
    return None if value == "0" else parse(value)

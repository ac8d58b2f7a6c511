"""Fan-out of committed events to the live streams of this process (and, with Redis, of every
worker process).

`EventBus` is the in-process default: one bounded queue per subscriber. `RedisEventBus`
publishes to one Redis pub/sub channel instead and delivers to its local subscribers what its
reader receives from that channel, its own publications included: so every process sees every
event in the order Redis relays them, and a client on one worker receives what another
committed. Pub/sub is best effort; the event log table is the record, and a stream that might
have missed something (a slow client overflowing its queue, a lost Redis connection) is closed,
so that its client reconnects with `Last-Event-ID` and replays from the log. Never a silent gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import orjson
import structlog

from worthline.kit.problems import RateLimited, ServiceUnavailable

log = structlog.get_logger("worthline.eventbus")

CHANNEL = "worthline:events"
QUEUE_LIMIT = 1000  # messages waiting for one client before its stream is closed
START_TIMEOUT = 5.0  # seconds to wait for the Redis subscription before refusing a stream


class StreamLimitReached(RateLimited):
    slug, title = "too-many-streams", "Too Many Event Streams"


@dataclass(frozen=True, slots=True)
class BusMessage:
    """One event as streams send it: log id, owner, SSE event name, JSON data, and `after`:
    the id of the owner's event before it in the log (0: none), which lets a stream see that
    one is still on its way from another process (`eventstream.service.in_order`); None where
    that is not known (a replay from the log, which is in order anyway)."""

    id: int
    user_id: uuid.UUID
    event: str
    data: str
    after: int | None = None


class Subscription:
    """The live events of one user for one stream. `get()` answers None once closed."""

    def __init__(self, bus: EventBus, user_id: uuid.UUID) -> None:
        self.bus = bus
        self.user_id = user_id
        self.closed_reason: str | None = None
        self._queue: asyncio.Queue[BusMessage | None] = asyncio.Queue()

    def deliver(self, message: BusMessage) -> None:
        if self.closed_reason is not None:
            return
        if self._queue.qsize() >= QUEUE_LIMIT:
            self.close("the client is not keeping up")
            return
        self._queue.put_nowait(message)

    async def get(self) -> BusMessage | None:
        if self.closed_reason is not None and self._queue.empty():
            return None
        return await self._queue.get()

    async def get_many(self, limit: int = 256) -> list[BusMessage | None]:
        """The next message (waiting for it) and whatever else is queued already, so that a
        busy stream writes them in one go; a None (closed) is always last."""
        batch = [await self.get()]
        while batch[-1] is not None and len(batch) < limit and not self._queue.empty():
            batch.append(self._queue.get_nowait())
        return batch

    def close(self, reason: str = "closed") -> None:
        """Stop the stream (idempotent); messages already queued are still read first."""
        if self.closed_reason is None:
            self.closed_reason = reason
            self._queue.put_nowait(None)
        self.bus._remove(self)


class EventBus:
    """In-process fan-out: a client sees the events committed by this process only."""

    shared = False

    def __init__(self, max_streams_per_user: int = 5) -> None:
        self.max_streams_per_user = max_streams_per_user
        self._subscribers: dict[uuid.UUID, set[Subscription]] = defaultdict(set)

    async def start(self) -> None:
        """Ready to deliver: after this returns, every later publication reaches subscribers."""

    def check_room(self, user_id: uuid.UUID) -> None:
        """429 when `user_id` has as many streams in this process as it may."""
        if self.streams(user_id) >= self.max_streams_per_user:
            raise StreamLimitReached(
                f"At most {self.max_streams_per_user} event streams per user; close one first",
                headers={"Retry-After": "5"},
            )

    async def subscribe(self, user_id: uuid.UUID) -> Subscription:
        """Register a stream for `user_id` (429 beyond the per-user limit of this process)."""
        await self.start()
        self.check_room(user_id)
        subscription = Subscription(self, user_id)
        self._subscribers[user_id].add(subscription)
        return subscription

    def streams(self, user_id: uuid.UUID | None = None) -> int:
        if user_id is not None:
            return len(self._subscribers.get(user_id, ()))
        return sum(len(s) for s in self._subscribers.values())

    async def publish(self, messages: list[BusMessage]) -> None:
        self._deliver(messages)

    def _deliver(self, messages: list[BusMessage]) -> None:
        for message in messages:
            for subscription in list(self._subscribers.get(message.user_id, ())):
                subscription.deliver(message)

    def _remove(self, subscription: Subscription) -> None:
        streams = self._subscribers.get(subscription.user_id)
        if streams is not None:
            streams.discard(subscription)
            if not streams:
                del self._subscribers[subscription.user_id]

    def close_all(self, reason: str) -> None:
        for streams in list(self._subscribers.values()):
            for subscription in list(streams):
                subscription.close(reason)

    async def close(self) -> None:
        self.close_all("the server is shutting down")


def _encode(messages: list[BusMessage]) -> bytes:
    return orjson.dumps([[m.id, str(m.user_id), m.event, m.data, m.after] for m in messages])


def _decode(raw: bytes | str) -> list[BusMessage]:
    # (A process of the previous version sends four fields: `after` unknown.)
    return [BusMessage(i, uuid.UUID(u), e, d, *after) for i, u, e, d, *after in orjson.loads(raw)]


class RedisEventBus(EventBus):
    """Fan-out across processes through one Redis pub/sub channel (every worker reads it and
    keeps what its own subscribers want)."""

    shared = True

    def __init__(self, url: str, max_streams_per_user: int = 5) -> None:
        super().__init__(max_streams_per_user)
        self.url = url
        self._redis: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()  # set while the channel subscription is confirmed

    def _client(self) -> Any:
        if self._redis is None:
            import redis.asyncio as redis

            self._redis = redis.Redis.from_url(self.url)
        return self._redis

    async def start(self) -> None:
        if self._ready.is_set():
            return
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(), name="worthline-eventbus")
        ready = asyncio.ensure_future(self._ready.wait())
        try:
            await asyncio.wait(
                {ready, self._reader}, timeout=START_TIMEOUT, return_when="FIRST_COMPLETED"
            )
        finally:
            ready.cancel()
        if self._reader.done() and not self._reader.cancelled():
            log.warning("eventbus.redis_unreachable", error=str(self._reader.exception()))
        if not self._ready.is_set():
            # Until the channel is subscribed again, a new stream could miss events: refuse it.
            raise ServiceUnavailable("The event bus (Redis) is unreachable; retry shortly")

    async def _read(self) -> None:
        backoff = 0.1
        first = True
        while True:
            pubsub = self._client().pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                # The subscription is confirmed before anyone is told the bus is ready.
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is not None and message["type"] == "subscribe":
                        break
                self._ready.set()
                first, backoff = False, 0.1
                async for message in pubsub.listen():
                    if message["type"] != "message":
                        continue
                    try:
                        self._deliver(_decode(message["data"]))
                    except (ValueError, TypeError):
                        log.error("eventbus.bad_message")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if first:
                    raise
                # Events published while we were away never reach our streams: close them, so
                # that their clients reconnect and replay from the event log.
                self._ready.clear()
                log.warning("eventbus.redis_lost", error=str(exc))
                self.close_all("the event bus lost its connection; reconnect to resume")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def publish(self, messages: list[BusMessage]) -> None:
        try:
            await self._client().publish(CHANNEL, _encode(messages))
        except Exception:
            # Committed but not relayed: this process's streams of these users resume from the
            # log on reconnect. (Other workers' streams catch up at their next reconnect.)
            for user_id in {m.user_id for m in messages}:
                for subscription in list(self._subscribers.get(user_id, ())):
                    subscription.close("an event could not be relayed; reconnect to resume")
            raise

    async def close(self) -> None:
        await super().close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
            self._reader = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


def build_bus(redis_url: str | None, max_streams_per_user: int) -> EventBus:
    if redis_url:
        return RedisEventBus(redis_url, max_streams_per_user)
    return EventBus(max_streams_per_user)

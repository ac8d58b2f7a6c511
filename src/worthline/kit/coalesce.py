"""Calls made in the same event-loop turn, sent to a server as one round trip.

Every authenticated request on PostgreSQL + Redis makes two round trips: the login-session
check (`auth.repository`) and the rate-limit hit (`kit.ratelimit`). Each costs this process
about 0.1 ms of CPU in the client libraries (pool, protocol, futures, wake-ups), most of a
request's CPU. Under load many requests wait on the same round trip in the same turn of the
event loop; a `Coalescer` sends their items as one call and hands each request its own
result. Alone, a request goes out in the next turn, as before.

Nothing is cached or shared between items: every item is sent and answered on its own, in
the order the calls were made. An item's call goes out after the call was made, so a
revocation committed before a request started is seen by it.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Load = Callable[[Sequence[T]], Awaitable[Sequence[R]]]


class _Batch(Generic[T, R]):
    __slots__ = ("futures", "items")

    def __init__(self) -> None:
        self.items: list[T] = []
        self.futures: list[asyncio.Future[R]] = []


class Coalescer(Generic[T, R]):
    """`await coalescer(item)`: `load` receives the items of one event-loop turn (at most
    `max_batch` per call) and returns one result per item, in order. If `load` raises, every
    caller of that batch gets the exception."""

    def __init__(self, load: Load[T, R], max_batch: int = 256) -> None:
        self._load = load
        self._max_batch = max_batch
        self._open: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Batch[T, R]] = (
            weakref.WeakKeyDictionary()
        )
        self._tasks: set[asyncio.Task[None]] = set()  # running loads (kept referenced)

    async def __call__(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        batch = self._open.get(loop)
        if batch is None:
            batch = self._open[loop] = _Batch()
            loop.call_soon(self._send, loop, batch)
        future: asyncio.Future[R] = loop.create_future()
        batch.items.append(item)
        batch.futures.append(future)
        if len(batch.items) >= self._max_batch:
            self._send(loop, batch)
        return await future

    def _send(self, loop: asyncio.AbstractEventLoop, batch: _Batch[T, R]) -> None:
        if self._open.get(loop) is not batch:
            return  # already sent (full)
        del self._open[loop]
        task = loop.create_task(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: _Batch[T, R]) -> None:
        # The load runs even when every caller has gone: a rate-limit hit sent is counted,
        # as it would be for a single request cancelled mid-round-trip.
        try:
            results = await self._load(batch.items)
            if len(results) != len(batch.items):
                raise RuntimeError(f"load returned {len(results)} results for {len(batch.items)}")
        except asyncio.CancelledError:
            for future in batch.futures:
                future.cancel()
            raise
        except Exception as exc:
            for future in batch.futures:
                if not future.done():
                    future.set_exception(exc)
            return
        for future, result in zip(batch.futures, results, strict=True):
            if not future.done():
                future.set_result(result)

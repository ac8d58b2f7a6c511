"""Periodic background jobs of a server process (scheduled capture, event purge)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress

import structlog

log = structlog.get_logger("worthline.tasks")


@asynccontextmanager
async def every(
    interval: float, job: Callable[[], Awaitable[object]], name: str
) -> AsyncIterator[None]:
    """Run `job` at once and then every `interval` seconds, in the background, for as long as
    the block lasts. A failing run is logged and the loop goes on: a job must never end the
    server. Leaving the block cancels the loop and waits for it."""

    async def loop() -> None:
        while True:
            try:
                await job()
            except Exception:
                log.exception("task-failed", task=name)
            await asyncio.sleep(interval)

    task = asyncio.create_task(loop(), name=name)
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task

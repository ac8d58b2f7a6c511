"""The periodic purge of the event log, run by the server in the background (and by
`worthline events purge` from cron). Any number of concurrent runs is harmless."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import structlog

from worthline.eventstream import service
from worthline.kit.db import Database, unit_of_work

log = structlog.get_logger("worthline.events")

PURGE_INTERVAL_SECONDS = 3600.0


async def purge_once(db: Database, retention_days: int) -> service.PurgeResult:
    async with unit_of_work(db) as session:
        return await service.purge(session, retention_days)


async def _purge_forever(db: Database, retention_days: int, interval: float) -> None:
    while True:
        try:
            result = await purge_once(db, retention_days)
            if result.events or result.tickets:
                log.info("events.purged", events=result.events, tickets=result.tickets)
        except Exception:  # a failed run must not end the loop, nor the server
            log.exception("events.purge_failed")
        await asyncio.sleep(interval)


@asynccontextmanager
async def periodic_purge(
    db: Database, retention_days: int, interval: float = PURGE_INTERVAL_SECONDS
) -> AsyncIterator[None]:
    task = asyncio.create_task(
        _purge_forever(db, retention_days, interval), name="worthline-event-purge"
    )
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task

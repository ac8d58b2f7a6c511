"""The periodic purge of the event log, run by the server in the background (and by
`worthline events purge` from cron). Any number of concurrent runs is harmless."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

import structlog

from worthline.eventstream import service
from worthline.kit.db import Database, unit_of_work
from worthline.kit.tasks import every

log = structlog.get_logger("worthline.events")

PURGE_INTERVAL_SECONDS = 3600.0


async def purge_once(db: Database, retention_days: int) -> service.PurgeResult:
    async with unit_of_work(db) as session:
        return await service.purge(session, retention_days)


async def _purge_and_log(db: Database, retention_days: int) -> None:
    result = await purge_once(db, retention_days)
    if result.events or result.tickets:
        log.info("events.purged", events=result.events, tickets=result.tickets)


def periodic_purge(
    db: Database, retention_days: int, interval: float = PURGE_INTERVAL_SECONDS
) -> AbstractAsyncContextManager[None]:
    """Purge the event log in the background for as long as the block lasts."""
    return every(interval, lambda: _purge_and_log(db, retention_days), "worthline-event-purge")

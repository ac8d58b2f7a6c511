"""The daily scheduled capture.

The embedded server (SQLite, one process) runs it in-process: at startup, then every hour, each
run capturing the accounts not yet captured that UTC day (so an hourly loop captures each account
once a day, and a server started at 23:59 still captures that day). A scaled-out deployment runs
`worthline snapshots capture` from cron instead; both call `capture_scheduled`, and the unique
(account, day) index makes any number of runs, even concurrent ones, capture once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import datetime

from worthline.kit.db import Database, unit_of_work, utcnow
from worthline.kit.logging import log
from worthline.snapshots import service
from worthline.snapshots.models import SCHEDULED_SYNC

INTERVAL_SECONDS = 3600.0


async def capture_scheduled(db: Database, now: datetime | None = None) -> int:
    """One scheduled run over every user's accounts, in its own transaction."""
    async with unit_of_work(db) as session:
        return await service.capture_all(session, SCHEDULED_SYNC, now or utcnow())


async def run_forever(db: Database, interval: float = INTERVAL_SECONDS) -> None:
    while True:
        try:
            captured = await capture_scheduled(db)
            log.info("snapshots.scheduled_capture", captured=captured)
        except Exception:  # a failed run must not end the loop, nor the server
            log.exception("snapshots.scheduled_capture_failed")
        await asyncio.sleep(interval)


@asynccontextmanager
async def daily_capture(db: Database, interval: float = INTERVAL_SECONDS) -> AsyncIterator[None]:
    """Run the scheduled capture in the background for as long as the block lasts."""
    task = asyncio.create_task(run_forever(db, interval), name="worthline-scheduled-capture")
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task

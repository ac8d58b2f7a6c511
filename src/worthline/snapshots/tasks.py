"""The daily scheduled capture.

The embedded server (SQLite, one process) runs it in-process: at startup, then every hour, each
run capturing the accounts not yet captured that UTC day (so an hourly loop captures each account
once a day, and a server started at 23:59 still captures that day). A scaled-out deployment runs
`worthline snapshots capture` from cron instead; both call `capture_scheduled`, and the unique
(account, day) index makes any number of runs, even concurrent ones, capture once.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from datetime import datetime

from worthline.kit.db import Database, unit_of_work, utcnow
from worthline.kit.logging import log
from worthline.kit.tasks import every
from worthline.snapshots import service
from worthline.snapshots.models import SCHEDULED_SYNC

INTERVAL_SECONDS = 3600.0


async def capture_scheduled(db: Database, now: datetime | None = None) -> int:
    """One scheduled run over every user's accounts, in its own transaction."""
    async with unit_of_work(db) as session:
        return await service.capture_all(session, SCHEDULED_SYNC, now or utcnow())


async def _capture_and_log(db: Database) -> None:
    captured = await capture_scheduled(db)  # looked up at call time (tests replace it)
    log.info("snapshots.scheduled_capture", captured=captured)


def daily_capture(
    db: Database, interval: float = INTERVAL_SECONDS
) -> AbstractAsyncContextManager[None]:
    """Run the scheduled capture in the background for as long as the block lasts."""
    return every(interval, lambda: _capture_and_log(db), "worthline-scheduled-capture")

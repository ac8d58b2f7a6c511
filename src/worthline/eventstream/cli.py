"""`worthline events`: follow a user's events live (operators), purge the event log (cron)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated

import typer

from worthline.kit.config import Settings

events_app = typer.Typer(help="Live events and the event log.", no_args_is_help=True)


def _print(event_id: int, name: str, data: str) -> None:
    print(f"{event_id} {name} {data}", flush=True)  # a line at a time, even into a pipe


@events_app.command("tail")
def tail(
    user: Annotated[str, typer.Option(help="Email of the user whose events to follow")],
) -> None:
    """Print a user's events as they are committed, one line each: `id event data`.
    With WORTHLINE_REDIS_URL, events committed by any process; otherwise the event log is
    polled every second."""
    from worthline.cli import _user_id, console
    from worthline.eventstream import service
    from worthline.kit.context import AppContext

    settings = Settings()

    async def run() -> None:
        ctx = AppContext.build(settings)
        try:
            async with ctx.db.read_session() as session:
                owner = await _user_id(session, user)
            if ctx.bus.shared:
                async with ctx.db.read_session() as session:
                    sent = await service.last_event_id(session, owner.id) or 0
                subscription = await ctx.bus.subscribe(owner.id)
                console.print(f"Following {owner.email} through Redis (Ctrl-C to stop)")
                while True:  # in log order, as `GET /events` sends them
                    batch = await subscription.get_many()
                    live = [m for m in batch if m is not None]
                    messages, sent = await service.in_order(ctx.db, owner.id, sent, live)
                    for message in messages:
                        _print(message.id, message.event, message.data)
                    if batch[-1] is None:
                        break
                console.print(f"[yellow]Stream closed: {subscription.closed_reason}[/]")
                return
            console.print(
                "[yellow]WORTHLINE_REDIS_URL is not set: the in-process bus would show only "
                "this process's events, so the event log is polled every second instead.[/]"
            )
            async with ctx.db.read_session() as session:
                last = await service.last_event_id(session, owner.id) or 0
            console.print(f"Following {owner.email} from event {last} (Ctrl-C to stop)")
            while True:
                for message in await service.from_log(ctx.db, owner.id, last):
                    _print(message.id, message.event, message.data)
                    last = message.id
                await asyncio.sleep(1.0)
        finally:
            await ctx.close()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


@events_app.command("purge")
def purge(
    days: Annotated[
        int | None, typer.Option(min=1, help="Keep this many days (default: the setting)")
    ] = None,
) -> None:
    """Delete events older than the retention period (WORTHLINE_EVENT_RETENTION_DAYS, 30) and
    expired stream tickets. Safe to run from cron, concurrently too."""
    from worthline.cli import console
    from worthline.eventstream.tasks import purge_once
    from worthline.kit.context import AppContext

    settings = Settings()
    keep = days or settings.event_retention_days

    async def run():  # type: ignore[no-untyped-def]
        ctx = AppContext.build(settings)
        try:
            return await purge_once(ctx.db, keep)
        finally:
            await ctx.close()

    result = asyncio.run(run())
    console.print(
        f"Purged {result.events} events older than {keep} days and {result.tickets} expired tickets"
    )

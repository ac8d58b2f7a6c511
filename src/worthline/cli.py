"""The `worthline` command: serve, db, users (and, as domains land, more)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from worthline.eventstream.cli import events_app
from worthline.kit.config import Settings
from worthline.market.cli import fx_app, prices_app

app = typer.Typer(
    help="Worthline: what your accounts and portfolios are worth, over time.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="User accounts.", no_args_is_help=True)
journal_app = typer.Typer(help="Plain-text .goluca journals.", no_args_is_help=True)
interest_app = typer.Typer(help="Daily interest.", no_args_is_help=True)
demo_app = typer.Typer(help="Demo data.", no_args_is_help=True)
snapshots_app = typer.Typer(help="Balance snapshots.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(journal_app, name="journal")
app.add_typer(interest_app, name="interest")
app.add_typer(demo_app, name="demo")
app.add_typer(snapshots_app, name="snapshots")
app.add_typer(events_app, name="events")
app.add_typer(prices_app, name="prices")
app.add_typer(fx_app, name="fx")
console = Console(stderr=True, emoji=False)  # ":Bank:" in a path is not an emoji


def _redact(url: str) -> str:
    from sqlalchemy.engine.url import make_url

    return make_url(url).render_as_string(hide_password=True)


def _settings() -> Settings:
    """The settings, or one line per bad `WORTHLINE_*` variable and exit code 2 (Typer would
    print a page of traceback around pydantic's error)."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        for error in exc.errors():  # the value is not repeated: it may be a secret
            name = "WORTHLINE_" + "_".join(map(str, error["loc"])).upper()
            typer.echo(f"worthline: bad setting {name}: {error['msg']}", err=True)
        raise typer.Exit(2) from None


@app.callback()
def _check_settings() -> None:
    # Before any command: a bad WORTHLINE_* variable is one line and exit code 2, whichever
    # command reads the settings (`_settings`).
    _settings()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (needs PostgreSQL + Redis)")] = 1,
    migrate: Annotated[bool, typer.Option(help="Apply migrations before starting")] = True,
) -> None:
    """Start the HTTP server (migrating the database first)."""
    import uvicorn

    from worthline.kit import migrate as migrations
    from worthline.kit.logging import configure_logging

    settings = _settings()
    configure_logging(settings.log_level, settings.log_format)
    if workers > 1 and settings.is_sqlite:
        console.print(
            "[yellow]Several workers on SQLite serialise every write; "
            "use PostgreSQL and Redis to scale out.[/]"
        )
    if migrate:
        migrations.upgrade(settings.effective_database_url)
    settings.signing_key  # noqa: B018 - create the key once, before workers race for it
    if settings.is_sqlite and settings.demo_data == "auto":
        asyncio.run(_load_demo_if_empty(settings))
    credentials = settings.data_dir / DEMO_CREDENTIALS
    if credentials.exists():
        console.print(f"[bold]Demo user[/] (from {credentials}): {credentials.read_text().strip()}")
    redis = _redact(settings.redis_url) if settings.redis_url else "not configured (in-process)"
    console.print(
        f"[bold green]Worthline[/] listening on [bold]http://{host}:{port}[/]  "
        f"(API http://{host}:{port}/api/v1, docs http://{host}:{port}/docs)\n"
        f"  database: {_redact(settings.effective_database_url)}\n"
        f"  redis:    {redis}"
    )
    uvicorn.run(
        "worthline.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
        proxy_headers=True,
    )


DEMO_CREDENTIALS = "demo-credentials.txt"


async def _load_demo_if_empty(settings: Settings) -> None:
    from worthline.kit.context import AppContext
    from worthline.kit.db import unit_of_work
    from worthline.ledger.demo import database_is_empty, load_demo

    ctx = AppContext.build(settings)
    try:
        async with unit_of_work(ctx.db) as session:
            if not await database_is_empty(session):
                return
            console.print("Empty database: loading the demo household ledger…")
            demo = await load_demo(session, ctx.auth)
        path = settings.data_dir / DEMO_CREDENTIALS
        path.write_text(f"email {demo.email}  password {demo.password}\n")
        path.chmod(0o600)
        console.print(f"Loaded {demo.movements} movements for {demo.email}")
    finally:
        await ctx.close()


async def _user_id(session, email: str):  # type: ignore[no-untyped-def]
    from worthline.auth import repository as auth_repo

    user = await auth_repo.user_by_email(session, email.strip().lower())
    if user is None:
        console.print(f"[red]No user {email}[/]")
        raise typer.Exit(1)
    return user


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    from worthline.kit import migrate as migrations

    settings = Settings()
    migrations.upgrade(settings.effective_database_url, revision)
    console.print(f"Database at {revision}: {_redact(settings.effective_database_url)}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="e.g. -1 or base")]) -> None:
    """Revert migrations down to REVISION."""
    from worthline.kit import migrate as migrations

    settings = Settings()
    migrations.downgrade(settings.effective_database_url, revision)
    console.print(f"Database downgraded to {revision}")


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Argument()],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    base_currency: Annotated[str, typer.Option()] = "GBP",
) -> None:
    """Create a user (the same rules as POST /auth/register)."""
    from pydantic import ValidationError

    from worthline.auth.schemas import RegisterIn
    from worthline.kit.context import AppContext
    from worthline.kit.db import unit_of_work, utcnow
    from worthline.kit.problems import Problem

    try:
        body = RegisterIn(email=email, password=password, base_currency=base_currency)
    except ValidationError as exc:
        for error in exc.errors():
            console.print(f"[red]{'.'.join(map(str, error['loc']))}: {error['msg']}[/]")
        raise typer.Exit(2) from exc

    async def run() -> str:
        ctx = AppContext.build(Settings())
        try:
            async with unit_of_work(ctx.db) as session:
                user = await ctx.auth.register(
                    session, body.email, body.password, body.base_currency, utcnow()
                )
            return str(user.id)
        finally:
            await ctx.close()

    try:
        user_id = asyncio.run(run())
    except Problem as exc:
        console.print(f"[red]{exc.detail}[/]")
        raise typer.Exit(1) from exc
    console.print(f"Created user {body.email.lower()} ({user_id})")


@journal_app.command("import")
def journal_import(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    user: Annotated[str, typer.Option(help="Email of the user who owns the ledger")],
) -> None:
    """Import a .goluca journal, atomically (all or nothing), with a progress bar."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from worthline.kit.context import AppContext
    from worthline.kit.db import unit_of_work
    from worthline.ledger.journal_io import JournalInvalid, import_journal
    from worthline.ledger.journal_io.text import JournalNotText, journal_lines

    size = path.stat().st_size

    async def run() -> tuple[int, int]:
        ctx = AppContext.build(Settings())
        try:
            with (
                Progress(
                    TextColumn("[bold]importing"),
                    BarColumn(),
                    TextColumn("{task.percentage:>3.0f}%"),
                    TextColumn("{task.fields[movements]:,} movements"),
                    TimeRemainingColumn(),
                    console=console,
                ) as progress,
                path.open("rb") as handle,  # read as POST /journal/import reads its body
            ):
                task = progress.add_task("import", total=size, movements=0)

                def lines():  # type: ignore[no-untyped-def]
                    for number, line in enumerate(journal_lines(handle), 1):
                        if number % 20_000 == 0:
                            progress.update(task, completed=handle.tell())
                        yield line
                    progress.update(task, completed=size)

                async with unit_of_work(ctx.db) as session:
                    owner = await _user_id(session, user)
                    result = await import_journal(
                        session,
                        owner.id,
                        lines(),
                        progress=lambda n: progress.update(task, movements=n),
                    )
            return result.accounts_created, result.movements_recorded
        finally:
            await ctx.close()

    try:
        created, recorded = asyncio.run(run())
    except (JournalInvalid, JournalNotText) as exc:
        console.print(f"[red]{path}:{exc.extra['line']}:{exc.extra['column']}: {exc.detail}[/]")
        console.print("Nothing was recorded.")
        raise typer.Exit(1) from exc
    console.print(f"Imported {recorded:,} movements ({created} new accounts)")


@journal_app.command("export")
def journal_export(
    user: Annotated[str, typer.Option(help="Email of the user whose ledger to export")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Default: stdout")] = None,
) -> None:
    """Write the ledger as a .goluca journal (streamed; any size)."""
    import sys

    from worthline.kit.context import AppContext
    from worthline.ledger.journal_io import export_journal

    async def run() -> None:
        ctx = AppContext.build(Settings())
        try:
            async with ctx.db.snapshot_session() as session:
                owner = await _user_id(session, user)
                target = output.open("w", encoding="utf-8") if output else sys.stdout
                try:
                    async for line in export_journal(session, owner.id, owner.base_currency):
                        target.write(line)
                finally:
                    if output:
                        target.close()
        finally:
            await ctx.close()

    asyncio.run(run())


@interest_app.command("run")
def interest_run(
    on: Annotated[datetime | None, typer.Option("--date", formats=["%Y-%m-%d"])] = None,
    start: Annotated[datetime | None, typer.Option("--from", formats=["%Y-%m-%d"])] = None,
    end: Annotated[datetime | None, typer.Option("--to", formats=["%Y-%m-%d"])] = None,
    user: Annotated[str | None, typer.Option(help="Only this user (default: everyone)")] = None,
) -> None:
    """Accrue daily interest for a day (--date, default yesterday) or a range (--from/--to).
    Idempotent: days already accrued are left alone, so it is safe to run from cron."""
    from pydantic import ValidationError
    from sqlalchemy import select

    from worthline.auth.models import User
    from worthline.kit.context import AppContext
    from worthline.kit.db import unit_of_work, utcnow
    from worthline.kit.problems import Problem
    from worthline.ledger.interest import run_interest
    from worthline.ledger.schemas import InterestRunIn

    yesterday = utcnow().date() - timedelta(days=1)
    if on and (start or end):
        console.print("[red]Give --date, or --from/--to[/]")
        raise typer.Exit(2)
    first = (on or start or datetime.combine(yesterday, datetime.min.time())).date()
    last = (on or end or datetime.combine(yesterday, datetime.min.time())).date()
    try:  # the limits of `POST /interest/run`
        InterestRunIn(start_date=first, end_date=last)
    except ValidationError as exc:
        reasons = (str(error["msg"]).removeprefix("Value error, ") for error in exc.errors())
        console.print(f"[red]{'; '.join(reasons)}[/]")
        raise typer.Exit(2) from None

    async def run() -> tuple[int, int, int]:
        ctx = AppContext.build(Settings())
        accounts = recorded = failed = 0
        try:
            async with ctx.db.read_session() as session:
                if user:
                    ids = [(await _user_id(session, user)).id]
                else:
                    ids = list(await session.scalars(select(User.id).order_by(User.id)))
            for user_id in ids:  # one transaction per user: a user's problem stops only theirs
                try:
                    async with unit_of_work(ctx.db) as session:
                        outcome = await run_interest(session, user_id, first, last)
                except Problem as exc:
                    failed += 1
                    console.print(f"[red]User {user_id}: nothing accrued: {exc.detail}[/]")
                    continue
                accounts += outcome.accounts
                recorded += outcome.movements_recorded
        finally:
            await ctx.close()
        return accounts, recorded, failed

    accounts, recorded, failed = asyncio.run(run())
    console.print(f"Interest {first}..{last}: {accounts} accounts, {recorded} movements recorded")
    if failed:
        console.print(f"[red]{failed} user(s) could not be accrued (above)[/]")
        raise typer.Exit(1)


@demo_app.command("load")
def demo_load() -> None:
    """Create the demo user (with a new random password) and load the household ledger."""
    from sqlalchemy import select

    from worthline.auth.models import User
    from worthline.kit.context import AppContext
    from worthline.kit.db import unit_of_work
    from worthline.ledger.demo import DEMO_EMAIL, load_demo

    settings = Settings()

    async def run():  # type: ignore[no-untyped-def]
        ctx = AppContext.build(settings)
        try:
            async with unit_of_work(ctx.db) as session:
                if await session.scalar(select(User.id).where(User.email == DEMO_EMAIL)):
                    console.print(f"[red]{DEMO_EMAIL} already exists[/]")
                    raise typer.Exit(1)
                return await load_demo(session, ctx.auth)
        finally:
            await ctx.close()

    demo = asyncio.run(run())
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    path = settings.data_dir / DEMO_CREDENTIALS
    path.write_text(f"email {demo.email}  password {demo.password}\n")
    path.chmod(0o600)
    console.print(f"Loaded {demo.movements} movements. Log in as {demo.email} / {demo.password}")


@snapshots_app.command("capture")
def snapshots_capture(
    user: Annotated[str | None, typer.Option(help="Only this user (default: everyone)")] = None,
    source: Annotated[
        str, typer.Option(help="scheduled_sync (once per account per UTC day) or manual_sync")
    ] = "scheduled_sync",
) -> None:
    """Capture a snapshot of every Asset and Liability account from the ledger. With
    scheduled_sync (the default) accounts already captured today are left alone, so it is safe
    to run from cron as often as you like."""
    from worthline.kit.context import AppContext
    from worthline.kit.db import unit_of_work
    from worthline.snapshots.service import BULK_SOURCES, capture_all

    if source not in BULK_SOURCES:
        console.print(f"[red]--source must be one of {', '.join(BULK_SOURCES)}[/]")
        raise typer.Exit(2)

    async def run() -> int:
        ctx = AppContext.build(Settings())
        try:
            async with unit_of_work(ctx.db) as session:
                owner = (await _user_id(session, user)).id if user else None
                return await capture_all(session, source, user_id=owner)
        finally:
            await ctx.close()

    captured = asyncio.run(run())
    console.print(f"Captured {captured} snapshots ({source})")


@snapshots_app.command("list")
def snapshots_list(
    account_id: Annotated[str, typer.Argument(help="The account's id (a UUID)")],
    limit: Annotated[int, typer.Option(min=1, max=100, help="How many, newest first")] = 30,
) -> None:
    """Show an account's most recent snapshots, newest first, with the change between them."""
    import uuid

    from rich import box
    from rich.table import Table
    from rich.text import Text

    from worthline.kit.context import AppContext
    from worthline.snapshots import repository as snapshots_repo

    try:
        public_id = uuid.UUID(account_id)
    except ValueError as exc:
        console.print(f"[red]{account_id} is not an account id (a UUID)[/]")
        raise typer.Exit(2) from exc

    async def run():  # type: ignore[no-untyped-def]
        ctx = AppContext.build(Settings())
        try:
            async with ctx.db.read_session() as session:
                account = await snapshots_repo.account_by_public_id(session, public_id)
                if account is None:
                    console.print(f"[red]No account {public_id}[/]")
                    raise typer.Exit(1)
                rows = await snapshots_repo.recent(
                    session, account.user_id, account.public_id, limit, None
                )
                return account, rows
        finally:
            await ctx.close()

    account, rows = asyncio.run(run())
    # Text, not a markup string: "Asset:Bank:…" must not become an emoji (":bank:").
    table = Table(title=Text(f"{account.full_path} ({account.currency})"), box=box.SIMPLE_HEAD)
    table.add_column("captured at (UTC)", no_wrap=True)
    table.add_column("source", no_wrap=True)
    for column in ("balance", "change", "change %"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(
            row.captured_at.strftime("%Y-%m-%d %H:%M:%S"),
            row.source,
            row.balance,
            row.change_amount or "",
            "" if row.change_percent is None else f"{row.change_percent:+.2f}",
        )
    Console(emoji=False, highlight=False).print(table)

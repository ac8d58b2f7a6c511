"""The `worthline` command: serve, db, users (and, as domains land, more)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from worthline.kit.config import Settings

app = typer.Typer(
    help="Worthline: what your accounts and portfolios are worth, over time.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
users_app = typer.Typer(help="User accounts.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
console = Console(stderr=True)


def _redact(url: str) -> str:
    from sqlalchemy.engine.url import make_url

    return make_url(url).render_as_string(hide_password=True)


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

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    if workers > 1 and settings.is_sqlite:
        console.print(
            "[yellow]Several workers on SQLite serialise every write; "
            "use PostgreSQL and Redis to scale out.[/]"
        )
    if migrate:
        migrations.upgrade(settings.effective_database_url)
    settings.signing_key  # noqa: B018 - create the key once, before workers race for it
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
    console.print(f"Created user {body.email} ({user_id})")

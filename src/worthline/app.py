"""Composition root: builds the FastAPI app from settings and wires every domain's router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from worthline import __version__
from worthline.auth.endpoints import router as auth_router
from worthline.eventstream.endpoints import router as events_router
from worthline.eventstream.tasks import periodic_purge
from worthline.kit.config import Settings
from worthline.kit.context import AppContext
from worthline.kit.health import router as health_router
from worthline.kit.middleware import RequestContextMiddleware
from worthline.kit.problems import document_body_problems, install_problem_handlers
from worthline.ledger.endpoints import router as ledger_router
from worthline.ledger.journal_endpoints import router as journal_router
from worthline.market.endpoints import router as market_router
from worthline.portfolio.endpoints import router as portfolio_router
from worthline.snapshots.endpoints import router as snapshots_router
from worthline.snapshots.tasks import daily_capture

API_PREFIX = "/api/v1"
LARGE_BODY_PATHS = (f"{API_PREFIX}/journal/import",)


class ProblemDetail(BaseModel):
    """RFC 9457 problem details, as every error is answered."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    trace_id: str
    errors: list[dict[str, Any]] | None = Field(default=None, description="422 only")


def create_app(settings: Settings | None = None, ctx: AppContext | None = None) -> FastAPI:
    settings = settings or Settings()
    ctx = ctx or AppContext.build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The embedded server runs the daily snapshot capture itself; scaled out, cron does.
        capture: AbstractAsyncContextManager[None] = (
            daily_capture(ctx.db) if settings.is_sqlite else nullcontext()
        )
        async with capture, periodic_purge(ctx.db, settings.event_retention_days):
            yield
        await ctx.close()  # after uvicorn has drained in-flight requests

    app = FastAPI(
        title="Worthline",
        version=__version__,
        summary="What your accounts and portfolios are worth, over time.",
        lifespan=lifespan,
        telemetry={
            "tracing": settings.opentelemetry,
            "metrics": settings.opentelemetry,
            "logs": settings.opentelemetry,
        },
    )
    app.state.ctx = ctx
    app.state.settings = settings
    install_problem_handlers(app)
    app.add_middleware(
        RequestContextMiddleware, settings=settings, large_body_paths=LARGE_BODY_PATHS
    )
    app.include_router(health_router)
    app.include_router(auth_router, prefix=API_PREFIX)
    app.include_router(ledger_router, prefix=API_PREFIX)
    app.include_router(journal_router, prefix=API_PREFIX)
    app.include_router(events_router, prefix=API_PREFIX)
    app.include_router(snapshots_router, prefix=API_PREFIX)
    app.include_router(portfolio_router, prefix=API_PREFIX)
    app.include_router(market_router, prefix=API_PREFIX)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, summary=app.summary, routes=app.routes
            )
            schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = (
                ProblemDetail.model_json_schema()
            )
            document_body_problems(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app

"""Composition root: builds the FastAPI app from settings and wires every domain's router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi.utils import get_value_or_default
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


def _add_routes(app: FastAPI, router: APIRouter, prefix: str = "") -> None:
    """What `app.include_router(router, prefix=prefix)` did before FastAPI 0.137: each route
    re-added to the app's own router, in order.

    `include_router` now keeps the router whole behind one `_IncludedRouter`, which scans the
    router's routes to decide whether it matches and scans them again to run the one that did:
    on `GET /users/me` an eighth of the request's CPU. Plain routes of the app are matched once,
    first match wins as before, and document the same OpenAPI operations. Our routers hold
    only path operations, with their tags and responses already on each route, and are
    included with no options but the prefix.
    """
    for route in router.routes:
        assert isinstance(route, APIRoute), f"{route!r}: only path operations are re-added"
        app.router.add_api_route(
            prefix + route.path,
            route.endpoint,
            response_model=route.response_model,
            status_code=route.status_code,
            tags=route.tags,
            dependencies=route.dependencies,
            summary=route.summary,
            description=route.description,
            response_description=route.response_description,
            responses=route.responses,
            deprecated=route.deprecated,
            methods=route.methods,
            operation_id=route.operation_id,
            response_model_include=route.response_model_include,
            response_model_exclude=route.response_model_exclude,
            response_model_by_alias=route.response_model_by_alias,
            response_model_exclude_unset=route.response_model_exclude_unset,
            response_model_exclude_defaults=route.response_model_exclude_defaults,
            response_model_exclude_none=route.response_model_exclude_none,
            include_in_schema=route.include_in_schema,
            response_class=get_value_or_default(
                route.response_class, router.default_response_class
            ),
            name=route.name,
            callbacks=route.callbacks,
            openapi_extra=route.openapi_extra,
            generate_unique_id_function=get_value_or_default(
                route.generate_unique_id_function, router.generate_unique_id_function
            ),
            strict_content_type=get_value_or_default(
                route.strict_content_type, router.strict_content_type
            ),
            max_body_size=route.max_body_size,
            form_limits=route.form_limits,
        )


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
    _add_routes(app, health_router)
    for router in (
        auth_router,
        ledger_router,
        journal_router,
        events_router,
        snapshots_router,
        portfolio_router,
        market_router,
    ):
        _add_routes(app, router, prefix=API_PREFIX)

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

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import ORJSONResponse

from worthline.kit.deps import Ctx
from worthline.kit.problems import ServiceUnavailable

router = APIRouter(tags=["operations"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is alive (it answers without touching the database)."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "A dependency is unreachable"}})
async def ready(ctx: Ctx) -> ORJSONResponse:
    """The database (and Redis, when configured) answer within two seconds."""
    checks: dict[str, str] = {}

    async def probe(name: str, call) -> None:  # type: ignore[no-untyped-def]
        try:
            await asyncio.wait_for(call(), timeout=2)
            checks[name] = "ok"
        except Exception as exc:
            checks[name] = f"unavailable: {type(exc).__name__}"

    await probe("database", ctx.db.ping)
    if ctx.settings.redis_url:
        await probe("redis", ctx.limiter.ping)
    if any(v != "ok" for v in checks.values()):
        raise ServiceUnavailable(
            "Not ready: " + ", ".join(f"{k} {v}" for k, v in checks.items()), checks=checks
        )
    return ORJSONResponse({"status": "ready", "checks": checks})


# HEAD answers like GET (load-balancer probes use it; the middleware drops a HEAD's body), and
# is left out of the OpenAPI document, which would list each operation twice.
router.add_api_route("/health", health, methods=["HEAD"], include_in_schema=False)
router.add_api_route("/ready", ready, methods=["HEAD"], include_in_schema=False)

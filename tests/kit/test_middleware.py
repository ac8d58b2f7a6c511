"""RequestContextMiddleware at start-up: the start-up heap leaves the garbage collector."""

from __future__ import annotations

import gc
from typing import Any

from conftest import make_settings
from worthline.kit.middleware import RequestContextMiddleware


async def test_the_start_up_heap_is_frozen_once_the_app_has_started(tmp_path):
    """A full collection walks every object; frozen at start-up, it no longer walks the
    modules, routes and mappers (~100 ms during which no request in flight moved)."""
    seen: list[tuple[str, int]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "lifespan"
        assert (await receive())["type"] == "lifespan.startup"
        seen.append(("before startup.complete", gc.get_freeze_count()))
        await send({"type": "lifespan.startup.complete"})
        assert (await receive())["type"] == "lifespan.shutdown"
        await send({"type": "lifespan.shutdown.complete"})

    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        seen.append((message["type"], gc.get_freeze_count()))

    settings = make_settings("sqlite+aiosqlite:///unused.db", tmp_path)
    gc.unfreeze()
    try:
        await RequestContextMiddleware(app, settings)({"type": "lifespan"}, receive, send)
    finally:
        gc.unfreeze()
    assert [name for name, _ in seen] == [
        "before startup.complete",
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
    assert seen[0][1] == 0
    assert seen[1][1] > 1000  # frozen before the server is told the app has started

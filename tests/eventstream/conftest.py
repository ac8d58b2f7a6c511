from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from eventstream.support import serving
from worthline.eventstream.events import RecordedEvent
from worthline.kit.context import AppContext


@pytest.fixture
def published(ctx: AppContext) -> list[RecordedEvent]:
    """Every event the app's units of work hand to the handlers, after commit, in order."""
    seen: list[RecordedEvent] = []
    dispatch = ctx.db.on_commit
    assert dispatch is not None

    async def spy(items: list[Any]) -> None:
        seen.extend(items)
        await dispatch(items)

    ctx.db.on_commit = spy
    return seen


@pytest.fixture
async def base_url(app) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    async with serving(app) as url:
        yield url


@pytest.fixture
async def http(base_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as client:
        yield client

"""Assertions and small builders shared by the foundation tests (auth, kit)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from worthline.app import create_app
from worthline.kit.config import Settings
from worthline.kit.context import AppContext
from worthline.kit.db import Database

PROBLEM_JSON = "application/problem+json"
NEW_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


def assert_problem(
    response: httpx.Response, status: int, slug: str, settings: Settings
) -> dict[str, Any]:
    """The response is an RFC 9457 problem of exactly this kind; returns the body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["type"] == settings.problem_type_base + slug, body
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["instance"] == response.request.url.path
    assert body["trace_id"] == response.headers["x-trace-id"]
    assert "Traceback" not in response.text
    return body


def assert_unauthorized(
    response: httpx.Response, settings: Settings, slug: str = "invalid-token"
) -> dict[str, Any]:
    body = assert_problem(response, 401, slug, settings)
    assert response.headers["www-authenticate"].startswith("Bearer")
    return body


def error_locs(body: dict[str, Any]) -> list[list[Any]]:
    return [error["loc"] for error in body["errors"]]


async def count_rows(db: Database, model: Any) -> int:
    async with db.read_session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def app_client(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """An app of its own (own AppContext, own limiter) over the same database as `settings`."""
    ctx = AppContext.build(settings)
    app = create_app(settings, ctx)
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test/api/v1") as client:
            yield client, app
    finally:
        await ctx.close()

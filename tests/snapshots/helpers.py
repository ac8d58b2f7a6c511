"""Plain-function factories and checks for the snapshot tests."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, select

from worthline.kit.db import Database
from worthline.snapshots.models import BalanceSnapshot

PROBLEM_BASE = "https://worthline.dev/problems/"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?Z$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

SNAPSHOT_FIELDS = [
    "id",
    "account_id",
    "balance",
    "available_balance",
    "holdings_value",
    "cash_value",
    "currency",
    "source",
    "captured_at",
    "created_at",
    "change_amount",
    "change_percent",
]
HISTORY_FIELDS = [
    "snapshots",
    "total_count",
    "start_balance",
    "end_balance",
    "total_change_amount",
    "total_change_percent",
    "currency",
]


async def report(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    account: dict[str, Any],
    balance: str,
    captured_at: str,
    source: str = "account_sync",
    **extra: Any,
) -> dict[str, Any]:
    response = await client.post(
        f"/accounts/{account['id']}/balance-snapshots",
        json={"balance": balance, "captured_at": captured_at, "source": source, **extra},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert list(body) == SNAPSHOT_FIELDS
    return body


async def sync(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    account: dict[str, Any],
    source: str | None = None,
) -> dict[str, Any]:
    response = await client.post(
        f"/accounts/{account['id']}/sync",
        json={} if source is None else {"source": source},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert list(body) == SNAPSHOT_FIELDS
    return body


async def get_ok(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], **params: Any
) -> dict[str, Any]:
    response = await client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def stored(db: Database) -> list[BalanceSnapshot]:
    """Every snapshot row, straight from the database (every user), oldest first."""
    async with db.read_session() as session:
        return list(
            await session.scalars(
                select(BalanceSnapshot).order_by(BalanceSnapshot.captured_at, BalanceSnapshot.id)
            )
        )


async def count(db: Database) -> int:
    async with db.read_session() as session:
        return int(await session.scalar(select(func.count()).select_from(BalanceSnapshot)) or 0)


def expected(
    snapshot: dict[str, Any], change_amount: str | None, change_percent: float | None
) -> dict[str, Any]:
    """A snapshot as a read endpoint shows it: as created, with its change."""
    return {**snapshot, "change_amount": change_amount, "change_percent": change_percent}


def problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    """Assert an RFC 9457 problem of this status and kind; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == "application/problem+json"
    body = response.json()
    assert body["type"] == PROBLEM_BASE + slug, body
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["instance"] == response.request.url.path
    assert body["trace_id"] == response.headers["x-trace-id"]
    return body


def validation(response: httpx.Response, slug: str = "validation-error") -> dict[str, Any]:
    """A 422 problem with a well-formed `errors` list."""
    body = problem(response, 422, slug)
    assert body["errors"], body
    for error in body["errors"]:
        assert isinstance(error["loc"], list) and error["loc"]
        assert isinstance(error["msg"], str) and error["msg"]
    return body


def parse_ts(text: str) -> datetime:
    assert TIMESTAMP.match(text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def now() -> datetime:
    return datetime.now(UTC)

"""Helpers shared by the ledger API tests: problem-detail checks and ledger snapshots that prove
rejected input changed nothing."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, select

from worthline.kit.db import Database
from worthline.ledger.models import Account, BalanceLive, Batch, Movement

PROBLEM_BASE = "https://worthline.dev/problems/"
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?Z$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
FAR_FUTURE = "2199-12-31T23:59:59Z"


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
    """A 422 problem whose `errors` list is present and well formed."""
    body = problem(response, 422, slug)
    assert body["errors"], body
    for error in body["errors"]:
        assert isinstance(error["loc"], list) and error["loc"]
        assert isinstance(error["msg"], str) and error["msg"]
    return body


def error_locs(body: dict[str, Any]) -> list[list[Any]]:
    return [e["loc"] for e in body["errors"]]


def parse_ts(text: str) -> datetime:
    assert TIMESTAMP.match(text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def now() -> datetime:
    return datetime.now(UTC)


async def all_movements(
    client: httpx.AsyncClient, headers: dict[str, str], account_id: str
) -> list[dict[str, Any]]:
    """Every movement of an account, walking all pages."""
    out: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 500}
        if cursor:
            params["cursor"] = cursor
        response = await client.get(
            f"/accounts/{account_id}/movements", params=params, headers=headers
        )
        assert response.status_code == 200, response.text
        page = response.json()
        out += page["movements"]
        cursor = page["next_cursor"]
        if cursor is None:
            return out


async def snapshot(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, Any]:
    """Everything the API says about a user's ledger: accounts with balances, every account's
    movements, and balances far in the future (so future-dated movements count too)."""
    response = await client.get("/accounts", headers=headers)
    assert response.status_code == 200, response.text
    accounts = response.json()
    state: dict[str, Any] = {"accounts": accounts, "movements": {}, "future": {}}
    for a in accounts["accounts"]:
        state["movements"][a["full_path"]] = await all_movements(client, headers, a["id"])
        balance = await client.get(
            f"/accounts/{a['id']}/balance", params={"at": FAR_FUTURE}, headers=headers
        )
        assert balance.status_code == 200, balance.text
        state["future"][a["full_path"]] = balance.json()["balance"]
    return state


async def row_counts(db: Database) -> dict[str, int]:
    """Rows in the ledger's tables, straight from the database (every user)."""
    async with db.read_session() as session:
        return {
            model.__tablename__: int(await session.scalar(select(func.count()).select_from(model)))
            for model in (Account, Movement, Batch, BalanceLive)
        }

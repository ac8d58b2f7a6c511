"""Plain-function factories and checks for the snapshot tests."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, select

# Shared with the ledger's API tests (re-exported for the snapshot tests).
from ledger.api_helpers import PROBLEM_BASE as PROBLEM_BASE
from ledger.api_helpers import parse_ts as parse_ts
from ledger.api_helpers import problem as problem
from ledger.api_helpers import validation as validation
from worthline.kit.db import Database
from worthline.snapshots.models import BalanceSnapshot

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


def now() -> datetime:
    return datetime.now(UTC)

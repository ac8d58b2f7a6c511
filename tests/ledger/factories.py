"""Plain-function factories for ledger tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from worthline.auth.models import User
from worthline.kit.db import Database, unit_of_work
from worthline.ledger import direct


async def account(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    path: str,
    currency: str = "GBP",
    **extra: Any,
) -> dict[str, Any]:
    response = await client.post(
        "/accounts", json={"full_path": path, "currency": currency, **extra}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


async def move(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    source: dict[str, Any],
    target: dict[str, Any],
    amount: str,
    **extra: Any,
) -> dict[str, Any]:
    response = await client.post(
        "/movements",
        json={
            "from_account_id": source["id"],
            "to_account_id": target["id"],
            "amount": amount,
            **extra,
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def new_user(db: Database) -> uuid.UUID:
    """A user straight in the database (no login), for tests below the API."""
    async with unit_of_work(db) as session:
        user = User(email=f"{uuid.uuid4().hex}@example.com", password_hash="x")
        session.add(user)
        await session.flush()
    return user.id


def count_direct(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """A list that grows by one for every movement `ledger.direct` records on the direct path
    (its last batch has run; not when it hands the movement to the regular path)."""
    taken: list[bool] = []
    record = direct._record

    async def counting(*args: Any) -> Any:
        result = await record(*args)
        taken.append(True)
        return result

    monkeypatch.setattr(direct, "_record", counting)
    return taken

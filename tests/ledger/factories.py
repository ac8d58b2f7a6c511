"""Plain-function factories for ledger tests."""

from __future__ import annotations

from typing import Any

import httpx


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

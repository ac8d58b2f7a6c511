"""Balances stay within what the ledger can store (±(2^63 − 1) minor units). A write that
would carry any balance or day's total past it is a 422 problem and changes nothing: never a
500, never a balance silently stored as a float (SQLite turns an overflowing integer sum into
one)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from ledger.api_helpers import problem, row_counts, snapshot
from ledger.factories import account, move

HALF = "46116860184273879.03"  # 2^62 - 1 minor units of SEK: the largest single amount


async def _two(client: Any, h: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    equity = await account(client, h, "Equity:Capital", "SEK")
    bank = await account(client, h, "Asset:Bank:Current", "SEK")
    return equity, bank


async def _refused(client: Any, h: dict[str, str], db: Any, body: dict[str, Any], path: str):  # type: ignore[no-untyped-def]
    before, counts = await snapshot(client, h), await row_counts(db)
    response = await client.post(path, json=body, headers=h)
    detail = problem(response, 422, "invalid-movement")
    assert "largest balance" in detail["detail"]
    assert await snapshot(client, h) == before
    assert await row_counts(db) == counts
    return detail


async def _integers_only(db: Any, engine_name: str) -> None:
    if engine_name != "sqlite":
        return  # bigint: PostgreSQL refuses anything else
    async with db.read_session() as session:
        kinds = await session.execute(text("SELECT DISTINCT typeof(balance) FROM balances_live"))
        assert {k for (k,) in kinds} <= {"integer"}


async def test_a_later_day_past_the_largest_balance_is_refused(client, auth, db, engine_name):
    h = auth["headers"]
    equity, bank = await _two(client, h)
    for _ in range(2):  # 2^63 - 2 on 2024-01-01
        await move(client, h, equity, bank, HALF, value_time="2024-01-01T10:00:00Z")
    body = {
        "from_account_id": equity["id"],
        "to_account_id": bank["id"],
        "amount": "1.00",
        "value_time": "2024-01-02T10:00:00Z",
    }
    await _refused(client, h, db, body, "/movements")
    await _integers_only(db, engine_name)


async def test_the_same_day_past_the_largest_balance_is_refused(client, auth, db, engine_name):
    h = auth["headers"]
    equity, bank = await _two(client, h)
    for _ in range(2):
        await move(client, h, equity, bank, HALF, value_time="2024-01-01T10:00:00Z")
    body = {
        "from_account_id": equity["id"],
        "to_account_id": bank["id"],
        "amount": HALF,
        "value_time": "2024-01-01T11:00:00Z",
    }
    await _refused(client, h, db, body, "/movements")
    await _integers_only(db, engine_name)


async def test_a_backdated_movement_that_lifts_later_balances_too_far_is_refused(
    client, auth, db, engine_name
):
    """The day itself stays in range; a later day's balance would not."""
    h = auth["headers"]
    equity, bank = await _two(client, h)
    await move(client, h, equity, bank, HALF, value_time="2024-03-01T10:00:00Z")
    await move(client, h, equity, bank, HALF, value_time="2024-03-02T10:00:00Z")
    body = {
        "from_account_id": equity["id"],
        "to_account_id": bank["id"],
        "amount": "1.00",
        "value_time": "2024-01-01T10:00:00Z",
    }
    await _refused(client, h, db, body, "/movements")
    await _integers_only(db, engine_name)


async def test_a_day_whose_inflows_pass_the_largest_total_is_recorded(client, auth, db):
    """In and out again within one day: the balance stays small, but that day's total of
    inflows passes 64 bits. A movement adds its amount to the day's row rather than summing
    the day again (SQLite's integer sum() would overflow; it once refused this), so both
    engines record it."""
    h = auth["headers"]
    equity, bank = await _two(client, h)
    day = "2024-01-01T10:00:00Z"
    for source, target in ((equity, bank), (bank, equity)) * 2:
        await move(client, h, source, target, HALF, value_time=day)
    body = {
        "from_account_id": equity["id"],
        "to_account_id": bank["id"],
        "amount": HALF,
        "value_time": day,
    }
    response = await client.post("/movements", json=body, headers=h)
    assert response.status_code == 201, response.text
    balance = await client.get(f"/accounts/{bank['id']}/balance", headers=h)
    assert balance.json()["balance"] == HALF
    daily = await client.get(
        f"/accounts/{bank['id']}/daily-balances",
        params={"start_date": "2024-01-01", "end_date": "2024-01-02"},
        headers=h,
    )
    assert [d["balance"] for d in daily.json()["balances"]] == [HALF, HALF], daily.text


async def test_known_at_balances_of_an_account_whose_inflows_passed_64_bits(client, auth):
    """The balance as known at a past moment stays exact when the account's gross inflows have
    passed 2^63 minor units over its life (SQLite's sum() raised: a 500 once)."""
    h = auth["headers"]
    equity, bank = await _two(client, h)
    days = [f"2024-01-0{n}T10:00:00Z" for n in range(1, 6)]
    pairs = [(equity, bank), (bank, equity)] * 2 + [(equity, bank)]
    for day, (source, target) in zip(days, pairs, strict=True):
        await move(client, h, source, target, HALF, value_time=day)
    known = datetime.now(UTC)
    await asyncio.sleep(0.01)
    await move(client, h, equity, bank, "1.00", value_time="2024-01-06T10:00:00Z")  # later
    await move(client, h, bank, equity, "2.00", value_time="2024-01-03T12:00:00Z")  # later

    async def balance(**params: str) -> str:
        response = await client.get(f"/accounts/{bank['id']}/balance", params=params, headers=h)
        assert response.status_code == 200, response.text
        return response.json()["balance"]

    assert await balance() == "46116860184273878.03"  # HALF + 1.00 - 2.00
    assert await balance(known_at=known.isoformat()) == HALF
    assert await balance(known_at=known.isoformat(), at="2024-01-04T11:00:00Z") == "0.00"
    assert await balance(at="2024-01-04T11:00:00Z") == "-2.00"


async def test_a_batch_past_the_largest_balance_is_refused_whole(client, auth, db, engine_name):
    h = auth["headers"]
    equity, bank = await _two(client, h)
    legs = [
        {"from_account_id": equity["id"], "to_account_id": bank["id"], "amount": HALF}
        for _ in range(3)
    ]
    await _refused(client, h, db, {"movements": legs}, "/movements/batch")
    await _integers_only(db, engine_name)


async def test_interest_that_would_pass_the_largest_balance_is_refused(client, auth, db):
    h = auth["headers"]
    equity = await account(client, h, "Equity:Capital", "SEK")
    savings = await account(client, h, "Asset:Bank:Savings", "SEK", annual_interest_rate="0.5")
    for _ in range(2):
        await move(client, h, equity, savings, HALF, value_time="2024-01-01T10:00:00Z")
    counts = await row_counts(db)
    response = await client.post(
        "/interest/run", json={"start_date": "2024-01-02", "end_date": "2024-01-31"}, headers=h
    )
    assert "largest balance" in problem(response, 422, "invalid-movement")["detail"]
    assert await row_counts(db) == counts

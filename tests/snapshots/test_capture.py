"""Snapshots captured from the ledger: POST /sync (manual_sync, initial_connection first), the
daily scheduled capture (once per account per day, also under a race, and in the embedded
server's background task), account_sync after a journal import; immutability in the database and
the cascade on account deletion."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from conftest import register_and_login
from ledger.factories import account, move
from portfolio.helpers import asset
from portfolio.helpers import sync as holdings_sync
from snapshots.helpers import (
    count,
    expected,
    get_ok,
    now,
    parse_ts,
    problem,
    report,
    stored,
    sync,
    validation,
)
from worthline.kit.db import unit_of_work
from worthline.snapshots.tasks import capture_scheduled, daily_capture

FAR_FUTURE = "2199-06-01T00:00:00Z"


def _ledger_metadata(captured_at: str, movement: dict | None, requested: str | None = None):
    meta = {
        "basis": "ledger",
        "ledger_balance_at": captured_at,
        "last_movement_id": movement["id"] if movement else None,
        "last_movement_value_time": movement["value_time"] if movement else None,
    }
    if requested:
        meta["requested_source"] = requested
    return meta


async def test_sync_captures_the_ledger_balance(client, auth, db):
    h = auth["headers"]
    equity = await account(client, h, "Equity:Capital")
    bank = await account(client, h, "Asset:Bank:Current")
    card = await account(client, h, "Liability:Card")
    food = await account(client, h, "Expense:Food")
    opening = await move(client, h, equity, bank, "1000.00", value_time="2026-01-10T12:00:00Z")
    await move(client, h, equity, bank, "5.00", value_time=FAR_FUTURE)  # not yet: left out
    spend = await move(client, h, card, food, "25.50", value_time="2026-01-11T12:00:00Z")

    before = now()
    first = await sync(client, h, bank)
    assert before <= parse_ts(first["captured_at"]) <= now()
    assert first == {
        "id": first["id"],
        "account_id": bank["id"],
        "balance": "1000.00",
        "available_balance": "1000.00",
        "holdings_value": None,
        "cash_value": "1000.00",
        "currency": "GBP",
        "source": "initial_connection",  # the account's first snapshot
        "captured_at": first["captured_at"],
        "created_at": first["captured_at"],
        "change_amount": None,
        "change_percent": None,
    }

    salary = await move(client, h, equity, bank, "200.00", value_time="2026-02-01T00:00:00Z")
    second = await sync(client, h, bank)
    assert second == {
        **first,
        "id": second["id"],
        "balance": "1200.00",
        "available_balance": "1200.00",
        "cash_value": "1200.00",
        "source": "manual_sync",
        "captured_at": second["captured_at"],
        "created_at": second["captured_at"],
        "change_amount": "200.00",
        "change_percent": 20.0,
    }
    third = await sync(client, h, bank, "account_sync")
    assert (third["source"], third["change_amount"], third["change_percent"]) == (
        "account_sync",
        "0.00",
        0.0,
    )
    assert (await sync(client, h, bank, "holdings_sync"))["source"] == "holdings_sync"
    # No body at all is a manual sync.
    bare = await client.post(f"/accounts/{bank['id']}/sync", headers=h)
    assert bare.status_code == 201, bare.text
    assert bare.json()["source"] == "manual_sync"

    owed = await sync(client, h, card)
    assert (owed["balance"], owed["available_balance"], owed["cash_value"], owed["source"]) == (
        "-25.50",
        "-25.50",
        "-25.50",  # the ledger balance, for a Liability as for an Asset
        "initial_connection",
    )

    rows = {str(r.id): r for r in await stored(db)}
    assert rows[first["id"]].provider_metadata == _ledger_metadata(
        first["captured_at"], opening, "manual_sync"
    )
    assert rows[second["id"]].provider_metadata == _ledger_metadata(second["captured_at"], salary)
    assert rows[owed["id"]].provider_metadata == _ledger_metadata(
        owed["captured_at"], spend, "manual_sync"
    )
    assert all(r.scheduled_on is None for r in rows.values())

    latest = await get_ok(client, "/balance-snapshots", h)
    assert latest["total_balance_by_currency"] == {"GBP": "1174.50"}


async def test_first_sync_of_an_account_without_movements(client, auth, db):
    h = auth["headers"]
    bank = await account(client, h, "Asset:Bank:Current", "JPY")
    first = await sync(client, h, bank, "account_sync")
    assert (first["balance"], first["source"]) == ("0", "initial_connection")
    [row] = await stored(db)
    assert row.provider_metadata == _ledger_metadata(first["captured_at"], None, "account_sync")


@pytest.mark.parametrize(
    ("body", "status", "slug"),
    [
        ({"source": "bank_feed"}, 400, "invalid-snapshot-source"),
        ({"source": "scheduled_sync"}, 400, "invalid-snapshot-source"),
        ({"source": "initial_connection"}, 400, "invalid-snapshot-source"),
        ({"source": ""}, 400, "invalid-snapshot-source"),
        ({"source": 5}, 422, "validation-error"),
        ({"when": "now"}, 422, "validation-error"),
    ],
)
async def test_bad_sync_records_nothing(client, auth, db, body, status, slug):
    h = auth["headers"]
    bank = await account(client, h, "Asset:Bank:Current")
    response = await client.post(f"/accounts/{bank['id']}/sync", json=body, headers=h)
    if status == 422:
        validation(response)
    else:
        problem(response, status, slug)
    assert await count(db) == 0


async def test_sync_of_another_users_account_is_not_found(client, auth, db):
    mine = await account(client, auth["headers"], "Asset:Bank:Current")
    other = await register_and_login(client, "bob@example.com")
    for account_id in (mine["id"], str(uuid.uuid4())):
        response = await client.post(f"/accounts/{account_id}/sync", headers=other["headers"])
        problem(response, 404, "account-not-found")
    assert await count(db) == 0


@pytest.mark.parametrize("path", ["Equity:Capital", "Income:Salary", "Expense:Food"])
async def test_sync_of_an_account_that_holds_no_value_is_refused(client, auth, db, path):
    """Only Asset and Liability accounts are captured (as the daily capture does): an Equity
    snapshot summed into total_balance_by_currency took the owner's capital off the total."""
    h = auth["headers"]
    other = await account(client, h, path)
    bank = await account(client, h, "Asset:Bank:Current")
    await move(client, h, other, bank, "118.00")
    await sync(client, h, bank)
    response = await client.post(f"/accounts/{other['id']}/sync", headers=h)
    body = validation(response, "invalid-snapshot")
    assert body["errors"][0]["loc"] == ["path", "account_id"]
    kind = path.split(":")[0]
    assert body["detail"] == (
        f"{path} is an {kind} account; snapshots are captured of Asset (or Liability) accounts"
    )
    assert await count(db) == 1
    latest = await get_ok(client, "/balance-snapshots", h)
    assert latest["total_balance_by_currency"] == {"GBP": "118.00"}


async def test_a_capture_with_any_amount_beyond_the_limit_is_not_stored(client, auth, ctx, db):
    """Balance within ±92.2 billion, holdings value beyond it (cash -60 billion, holdings 100
    billion): refused like a balance beyond it (422; the daily capture skips the account), on
    both engines; SQLite's 64-bit column could not store it (a 500)."""
    h = auth["headers"]
    broker = await account(client, h, "Asset:Broker")
    opening = await account(client, h, "Equity:Opening")
    await move(client, h, broker, opening, "60000000000.00")
    await asset(ctx, "BIG", "GBP", {datetime.now(UTC).date(): "100"})
    refused = await holdings_sync(
        client, h, broker, [{"symbol": "BIG", "quantity": "1000000000"}], expect=422
    )
    assert refused["type"].endswith("/invalid-snapshot")
    assert refused["errors"][0]["loc"] == ["path", "account_id"]
    assert await count(db) == 0
    # Holdings put there another way (a sync of half, then the other half) meet the same end.
    half = [{"symbol": "BIG", "quantity": "500000000"}]
    await holdings_sync(client, h, broker, half)
    assert await count(db) == 1
    async with unit_of_work(ctx.db) as session:
        await session.execute(text("UPDATE holdings SET quantity = quantity * 2"))
    body = validation(
        await client.post(f"/accounts/{broker['id']}/sync", headers=h), "invalid-snapshot"
    )
    assert body["errors"][0]["loc"] == ["path", "account_id"]
    assert await capture_scheduled(ctx.db, datetime.now(UTC)) == 0  # skipped, logged
    assert await count(db) == 1


async def test_account_too_fine_for_snapshots(client, auth, db):
    h = auth["headers"]
    gold = await account(client, h, "Asset:Bank:Fine", "GBP", exponent=-10)
    body = validation(
        await client.post(f"/accounts/{gold['id']}/sync", headers=h), "invalid-snapshot"
    )
    assert body["errors"][0]["loc"] == ["path", "account_id"]
    assert await count(db) == 0


# --------------------------------------------------------------------------- scheduled


async def test_scheduled_capture_runs_once_a_day(client, auth, ctx, db):
    h = auth["headers"]
    equity = await account(client, h, "Equity:Capital")
    bank = await account(client, h, "Asset:Bank:Current")
    card = await account(client, h, "Liability:Card")
    await account(client, h, "Expense:Food")
    await account(client, h, "Income:Salary")
    await move(client, h, equity, bank, "1000.00", value_time="2026-01-10T12:00:00Z")
    await move(client, h, equity, bank, "1.00", value_time="2026-03-01T09:00:00Z")
    other = await register_and_login(client, "bob@example.com")
    theirs = await account(client, other["headers"], "Asset:Bank:Current", "USD")

    morning = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    evening = datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC)
    assert await capture_scheduled(ctx.db, morning) == 3  # Asset and Liability accounts only
    assert await capture_scheduled(ctx.db, evening) == 0  # the same UTC day: nothing more
    rows = await stored(db)
    by_account = {(await _public_id(db, r.account_id)): r for r in rows}
    assert set(by_account) == {bank["id"], card["id"], theirs["id"]}
    for row in rows:
        assert (row.source, row.scheduled_on, row.captured_at) == (
            "initial_connection",
            date(2026, 3, 1),
            morning,
        )
        assert row.provider_metadata["requested_source"] == "scheduled_sync"
    # The balance at the capture's instant: 09:00's movement comes after 08:00.
    assert by_account[bank["id"]].balance_amount == Decimal("1000.00")

    # A manual sync does not stand in for the day's scheduled capture.
    await sync(client, h, bank)
    next_day = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
    assert await capture_scheduled(ctx.db, next_day) == 3
    assert await capture_scheduled(ctx.db, next_day) == 0
    later = [r for r in await stored(db) if r.scheduled_on == date(2026, 3, 2)]
    assert {r.source for r in later} == {"scheduled_sync"}
    assert sorted(r.balance_amount for r in later) == [0, 0, Decimal("1001.00")]
    assert all("requested_source" not in r.provider_metadata for r in later)
    assert await count(db) == 7


async def _public_id(db, account_id: int) -> str:
    async with db.read_session() as session:
        found = await session.scalar(
            text("SELECT public_id FROM accounts WHERE id = :id"), {"id": account_id}
        )
    return str(uuid.UUID(str(found)))


async def test_concurrent_scheduled_runs_capture_once(client, auth, ctx, db):
    h = auth["headers"]
    for n in range(5):
        await account(client, h, f"Asset:Bank:N{n}")
    when = datetime(2026, 4, 1, 6, 0, tzinfo=UTC)
    second = type(ctx.db)(ctx.db.url)
    try:
        results = await asyncio.gather(
            capture_scheduled(ctx.db, when), capture_scheduled(second, when)
        )
    finally:
        await second.dispose()
    assert sorted(results) == [0, 5]
    assert await count(db) == 5


async def test_embedded_server_runs_the_daily_capture(client, auth, app, db, engine_name):
    h = auth["headers"]
    bank = await account(client, h, "Asset:Bank:Current")
    async with app.router.lifespan_context(app):
        for _ in range(100):
            if await count(db):
                break
            await asyncio.sleep(0.02)
    if engine_name == "sqlite":  # the embedded default: in-process, at startup then hourly
        [row] = await stored(db)
        assert row.scheduled_on == row.captured_at.date()
        assert row.provider_metadata["requested_source"] == "scheduled_sync"
        latest = await get_ok(client, "/balance-snapshots", h)
        assert latest["snapshots"][0]["account_id"] == bank["id"]
    else:  # scaled out: cron runs `worthline snapshots capture`
        assert await count(db) == 0


async def test_daily_capture_task_survives_a_failed_run_and_stops_cleanly(ctx, db, monkeypatch):
    from worthline.snapshots import tasks

    calls = 0

    async def failing(db, now=None):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        raise RuntimeError("database away")

    monkeypatch.setattr(tasks, "capture_scheduled", failing)
    async with daily_capture(ctx.db, interval=0.01):
        for _ in range(100):
            if calls >= 3:
                break
            await asyncio.sleep(0.01)
    assert calls >= 3
    assert [t for t in asyncio.all_tasks() if t.get_name() == "worthline-scheduled-capture"] == []


# --------------------------------------------------------------------------- journal


JOURNAL = """\
2026-01-01 commodity GBP
  exponent: -2
2026-01-02 * Salary
  Income:Salary -> Asset:Bank:Current 2,000.00 GBP
2026-01-03 * Savings
  Asset:Bank:Current -> Asset:Bank:Savings 500.00 GBP
"""


async def _import(client, headers, journal: str):
    return await client.post(
        "/journal/import",
        content=journal.encode(),
        headers={**headers, "Content-Type": "text/plain"},
    )


async def test_journal_import_is_an_account_sync(client, auth, db):
    h = auth["headers"]
    bank = await account(client, h, "Asset:Bank:Current")
    connected = await sync(client, h, bank)
    response = await _import(client, h, JOURNAL)
    assert response.status_code == 200, response.text

    latest = await get_ok(client, "/balance-snapshots", h)
    accounts = {a["full_path"]: a for a in (await get_ok(client, "/accounts", h))["accounts"]}
    savings = accounts["Asset:Bank:Savings"]
    [bank_latest, savings_latest] = latest["snapshots"]
    assert bank_latest == {
        **connected,
        "id": bank_latest["id"],
        "balance": "1500.00",
        "available_balance": "1500.00",
        "cash_value": "1500.00",
        "source": "account_sync",
        "captured_at": bank_latest["captured_at"],
        "created_at": bank_latest["captured_at"],
        "change_amount": "1500.00",
        "change_percent": None,  # from 0.00
    }
    assert (savings_latest["account_id"], savings_latest["balance"], savings_latest["source"]) == (
        savings["id"],
        "500.00",
        "initial_connection",
    )
    assert latest["total_balance_by_currency"] == {"GBP": "2000.00"}  # Income is not captured
    rows = {str(r.id): r for r in await stored(db)}
    assert rows[savings_latest["id"]].provider_metadata["requested_source"] == "account_sync"
    assert rows[bank_latest["id"]].provider_metadata["basis"] == "ledger"
    assert len(rows) == 3

    # A journal that fails records no snapshot either.
    broken = await _import(client, h, JOURNAL + "2026-01-04 * Oops\n  Asset:Bank:Current ->\n")
    problem(broken, 400, "journal-invalid")
    assert await count(db) == 3


# --------------------------------------------------------------------------- immutability


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE balance_snapshots SET currency = 'EUR'",
        "UPDATE balance_snapshots SET balance_amount = 0",
        "UPDATE balance_snapshots SET source = source",
    ],
)
async def test_the_database_refuses_updates(client, auth, db, statement):
    h = auth["headers"]
    bank = await account(client, h, "Asset:Bank:Current")
    await report(client, h, bank, "10.00", "2025-01-01T00:00:00Z")
    with pytest.raises(DBAPIError, match="balance snapshots are immutable"):
        async with db.write_session() as session:
            await session.execute(text(statement))
            await session.commit()
    [row] = await stored(db)
    assert (row.currency, row.balance_amount, row.source) == ("GBP", 10, "account_sync")


async def test_deleting_an_account_deletes_its_snapshots(client, auth, db):
    h = auth["headers"]
    bank = await account(client, h, "Asset:Bank:Current")
    keep = await account(client, h, "Asset:Bank:Savings")
    await report(client, h, bank, "10.00", "2025-01-01T00:00:00Z")
    await sync(client, h, bank)
    kept = await report(client, h, keep, "1.00", "2025-01-01T00:00:00Z")
    response = await client.delete(f"/accounts/{bank['id']}", headers=h)
    assert response.status_code == 204, response.text
    assert [str(r.id) for r in await stored(db)] == [kept["id"]]
    problem(
        await client.get(f"/accounts/{bank['id']}/balance-snapshots", headers=h),
        404,
        "account-not-found",
    )
    latest = await get_ok(client, "/balance-snapshots", h)
    assert latest["snapshots"] == [expected(kept, None, None)]

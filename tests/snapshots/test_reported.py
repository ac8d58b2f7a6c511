"""Reported snapshots (POST /accounts/{id}/balance-snapshots): values from outside Worthline,
back-filling included; every kind of bad input is refused with the documented status and
records nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from conftest import register_and_login
from ledger.factories import account
from snapshots.helpers import count, now, parse_ts, problem, report, stored, sync, validation


async def test_reported_snapshot_is_stored_exactly(client, auth, db):
    h = auth["headers"]
    bank = await account(client, h, "Asset:Bank:Current")
    metadata = {"provider": "open-banking", "statement": {"id": "st-1", "lines": [1, 2.5, None]}}
    body = await report(
        client,
        h,
        bank,
        "100",
        "2024-02-29T23:00:00-01:00",
        "initial_connection",
        available_balance="-0.5",
        holdings_value="0",
        cash_value="100.10",
        currency="GBP",
        provider_metadata=metadata,
    )
    assert body == {
        "id": body["id"],
        "account_id": bank["id"],
        "balance": "100.00",  # quantized to the account's exponent
        "available_balance": "-0.50",
        "holdings_value": "0.00",
        "cash_value": "100.10",
        "currency": "GBP",
        "source": "initial_connection",
        "captured_at": "2024-03-01T00:00:00Z",
        "created_at": body["created_at"],
        "change_amount": None,
        "change_percent": None,
    }
    [row] = await stored(db)
    assert row.provider_metadata == {"basis": "reported", "provider": metadata}
    assert row.scheduled_on is None

    # Default captured_at: now; a timestamp without a zone is UTC.
    before = now()
    latest = await report(client, h, bank, "90.00", None, "manual_sync")  # type: ignore[arg-type]
    assert before <= parse_ts(latest["captured_at"]) <= now()
    assert (latest["change_amount"], latest["change_percent"]) == ("-10.00", -10.0)
    naive = await report(client, h, bank, "95.00", "2024-03-01T00:00:01", "account_sync")
    assert naive["captured_at"] == "2024-03-01T00:00:01Z"
    # Back-filled between the first two: its change is against the first, in time order.
    assert (naive["change_amount"], naive["change_percent"]) == ("-5.00", -5.0)


async def test_metadata_of_exactly_16_kb_is_accepted(client, auth, db):
    h = auth["headers"]
    bank = await account(client, h, "Asset:Bank:Current")
    filler = 16 * 1024 - len(orjson.dumps({"x": ""}))
    metadata = {"x": "a" * filler}
    assert len(orjson.dumps(metadata)) == 16 * 1024
    await report(client, h, bank, "1.00", "2025-01-01T00:00:00Z", provider_metadata=metadata)
    assert await count(db) == 1


@pytest.mark.parametrize(
    ("metadata", "loc"),
    [
        ('{"x": NaN, "y": Infinity}', ["body", "provider_metadata", "x"]),
        ('{"y": Infinity}', ["body", "provider_metadata", "y"]),
        ('{"a": {"b": [1, 2.5, -Infinity]}}', ["body", "provider_metadata", "a", "b", 2]),
    ],
    ids=["nan", "infinity", "nested-minus-infinity"],
)
async def test_metadata_with_non_finite_numbers_is_refused(client, auth, db, metadata, loc):
    """JSON has no NaN or Infinity (Python's parser takes them): stored, they broke the
    account's reconciliation for good on SQLite and failed the insert on PostgreSQL."""
    h = auth["headers"]
    bank = await account(client, h, "Asset:Bank:Current")
    body = f'{{"balance": "1.00", "source": "account_sync", "provider_metadata": {metadata}}}'
    response = await client.post(
        f"/accounts/{bank['id']}/balance-snapshots",
        content=body,
        headers={**h, "Content-Type": "application/json"},
    )
    refused = validation(response, "invalid-snapshot")
    assert [e["loc"] for e in refused["errors"]] == [loc]
    assert "provider_metadata" in refused["detail"]
    assert await count(db) == 0
    reconciliation = await client.get(f"/accounts/{bank['id']}/reconciliation", headers=h)
    assert reconciliation.status_code == 200, reconciliation.text
    assert reconciliation.json()["checked_count"] == 0


def _future() -> str:
    return (datetime.now(UTC) + timedelta(minutes=5)).isoformat()


BAD: list[tuple[str, dict[str, Any], int, str, list[Any] | None]] = [
    ("unknown source", {"source": "bank_feed"}, 400, "invalid-snapshot-source", None),
    ("empty source", {"source": ""}, 400, "invalid-snapshot-source", None),
    ("no source", {"source": None}, 422, "validation-error", ["body", "source"]),
    ("no balance", {"balance": None}, 422, "validation-error", ["body", "balance"]),
    ("number balance", {"balance": 100.5}, 422, "validation-error", ["body", "balance"]),
    ("text balance", {"balance": "lots"}, 422, "validation-error", ["body", "balance"]),
    ("over-precise", {"balance": "1.001"}, 422, "invalid-snapshot", ["body", "balance"]),
    (
        "over-precise available",
        {"available_balance": "0.001"},
        422,
        "invalid-snapshot",
        ["body", "available_balance"],
    ),
    (
        "over-precise cash",
        {"cash_value": "10.123"},
        422,
        "invalid-snapshot",
        ["body", "cash_value"],
    ),
    (
        "too large",
        {"balance": "100000000000.00"},
        422,
        "invalid-snapshot",
        ["body", "balance"],
    ),
    ("currency mismatch", {"currency": "USD"}, 422, "invalid-snapshot", ["body", "currency"]),
    ("future", {"captured_at": "FUTURE"}, 422, "invalid-snapshot", ["body", "captured_at"]),
    (
        "before 1900",
        {"captured_at": "1899-12-31T23:59:59Z"},
        422,
        "invalid-snapshot",
        ["body", "captured_at"],
    ),
    (
        "year 1 with an offset",
        {"captured_at": "0001-01-01T00:00:00+01:00"},
        422,
        "validation-error",
        ["body", "captured_at"],
    ),
    (
        "not a time",
        {"captured_at": "yesterday"},
        422,
        "validation-error",
        ["body", "captured_at"],
    ),
    (
        "metadata list",
        {"provider_metadata": [1, 2]},
        422,
        "validation-error",
        ["body", "provider_metadata"],
    ),
    (
        "metadata string",
        {"provider_metadata": "{}"},
        422,
        "validation-error",
        ["body", "provider_metadata"],
    ),
    (
        "metadata too large",
        {"provider_metadata": {"x": "a" * (16 * 1024)}},
        422,
        "invalid-snapshot",
        ["body", "provider_metadata"],
    ),
    ("unknown field", {"note": "hi"}, 422, "validation-error", ["body", "note"]),
]


@pytest.mark.parametrize(
    ("change", "status", "slug", "loc"),
    [case[1:] for case in BAD],
    ids=[case[0] for case in BAD],
)
async def test_bad_reported_snapshot_records_nothing(client, auth, db, change, status, slug, loc):
    h = auth["headers"]
    bank = await account(client, h, "Asset:Bank:Current")
    body: dict[str, Any] = {
        "balance": "10.00",
        "source": "account_sync",
        "captured_at": "2025-01-01T00:00:00Z",
    }
    body.update({k: (_future() if v == "FUTURE" else v) for k, v in change.items()})
    body = {k: v for k, v in body.items() if v is not None}
    response = await client.post(f"/accounts/{bank['id']}/balance-snapshots", json=body, headers=h)
    if status == 422:
        problem_body = validation(response, slug)
        assert loc in [e["loc"] for e in problem_body["errors"]], problem_body
    else:
        problem(response, status, slug)
    assert await count(db) == 0


async def test_currency_and_precision_follow_the_account(client, auth, db):
    h = auth["headers"]
    yen = await account(client, h, "Asset:Bank:Yen", "JPY")
    url = f"/accounts/{yen['id']}/balance-snapshots"
    refused = await client.post(url, json={"balance": "1.5", "source": "account_sync"}, headers=h)
    validation(refused, "invalid-snapshot")
    assert (await report(client, h, yen, "1500", "2025-01-01T00:00:00Z"))["balance"] == "1500"
    fine = await account(client, h, "Asset:Bank:Fine", "GBP", exponent=-10)
    too_fine = await client.post(
        f"/accounts/{fine['id']}/balance-snapshots",
        json={"balance": "1", "source": "account_sync"},
        headers=h,
    )
    assert validation(too_fine, "invalid-snapshot")["errors"][0]["loc"] == ["path", "account_id"]
    assert await count(db) == 1


async def test_reporting_on_another_users_account_is_not_found(client, auth, db):
    mine = await account(client, auth["headers"], "Asset:Bank:Current")
    other = await register_and_login(client, "bob@example.com")
    response = await client.post(
        f"/accounts/{mine['id']}/balance-snapshots",
        json={"balance": "1.00", "source": "account_sync"},
        headers=other["headers"],
    )
    problem(response, 404, "account-not-found")
    assert await count(db) == 0


async def test_a_read_only_token_cannot_write_snapshots(client, auth, db):
    h = auth["headers"]
    bank = await account(client, h, "Asset:Bank:Current")
    created = await client.post("/auth/tokens", json={"name": "ro", "scopes": ["read"]}, headers=h)
    assert created.status_code == 201, created.text
    read_only = {"Authorization": f"Bearer {created.json()['token']}"}
    problem(
        await client.post(f"/accounts/{bank['id']}/sync", headers=read_only),
        403,
        "insufficient-scope",
    )
    problem(
        await client.post(
            f"/accounts/{bank['id']}/balance-snapshots",
            json={"balance": "1.00", "source": "account_sync"},
            headers=read_only,
        ),
        403,
        "insufficient-scope",
    )
    assert await count(db) == 0
    await sync(client, h, bank)
    listed = await client.get(f"/accounts/{bank['id']}/balance-snapshots", headers=read_only)
    assert listed.status_code == 200 and listed.json()["total_count"] == 1

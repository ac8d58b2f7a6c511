"""The three read endpoints of the seed, field by field against hand-computed answers: latest per
account, balance history, recent snapshots; ties, date parsing, bad input, and a constant number
of SQL statements whatever the number of accounts."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event

from conftest import register_and_login
from ledger.factories import account
from snapshots.helpers import (
    HISTORY_FIELDS,
    SNAPSHOT_FIELDS,
    UUID,
    expected,
    get_ok,
    now,
    parse_ts,
    problem,
    report,
    validation,
)

SEED_RANGE = {"start_date": "2025-01-01T00:00:00Z", "end_date": "2025-12-31T23:59:59Z"}


async def _seed_account(client, h) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The seed's example: 20000.00 on 15 January, 22500.00 on 15 June."""
    broker = await account(client, h, "Asset:Broker:Main", "USD")
    first = await report(
        client,
        h,
        broker,
        "20000.00",
        "2025-01-15T10:00:00Z",
        "account_sync",
        available_balance="19500.00",
        holdings_value="17000.00",
        cash_value="3000.00",
        currency="USD",
    )
    second = await report(
        client,
        h,
        broker,
        "22500.00",
        "2025-06-15T10:00:00Z",
        "holdings_sync",
        available_balance="22000.00",
        holdings_value="19500.00",
        cash_value="3000.00",
    )
    return broker, first, second


async def test_seed_example_history(client, auth):
    h = auth["headers"]
    before = now()
    broker, first, second = await _seed_account(client, h)
    after = now()
    assert UUID.match(first["id"]) and UUID.match(second["id"])
    assert before <= parse_ts(first["created_at"]) <= after
    assert first == {
        "id": first["id"],
        "account_id": broker["id"],
        "balance": "20000.00",
        "available_balance": "19500.00",
        "holdings_value": "17000.00",
        "cash_value": "3000.00",
        "currency": "USD",
        "source": "account_sync",
        "captured_at": "2025-01-15T10:00:00Z",
        "created_at": first["created_at"],
        "change_amount": None,
        "change_percent": None,
    }
    assert second == {
        "id": second["id"],
        "account_id": broker["id"],
        "balance": "22500.00",
        "available_balance": "22000.00",
        "holdings_value": "19500.00",
        "cash_value": "3000.00",
        "currency": "USD",
        "source": "holdings_sync",
        "captured_at": "2025-06-15T10:00:00Z",
        "created_at": second["created_at"],
        "change_amount": "2500.00",
        "change_percent": 12.5,
    }

    body = await get_ok(client, f"/accounts/{broker['id']}/balance-history", h, **SEED_RANGE)
    assert list(body) == HISTORY_FIELDS
    assert [list(s) for s in body["snapshots"]] == [SNAPSHOT_FIELDS, SNAPSHOT_FIELDS]
    assert body == {
        "snapshots": [first, second],
        "total_count": 2,
        "start_balance": "20000.00",
        "end_balance": "22500.00",
        "total_change_amount": "2500.00",
        "total_change_percent": 12.5,
        "currency": "USD",
    }
    # JSON numbers for percentages, strings for money.
    response = await client.get(
        f"/accounts/{broker['id']}/balance-history", params=SEED_RANGE, headers=h
    )
    assert '"change_percent":12.5' in response.text
    assert '"total_change_percent":12.5' in response.text


async def test_latest_per_account(client, auth):
    h = auth["headers"]
    broker, _, broker_latest = await _seed_account(client, h)
    current = await account(client, h, "Asset:Bank:Current", "USD")
    current_only = await report(client, h, current, "1000.50", "2025-03-01T00:00:00Z")
    yen = await account(client, h, "Asset:Bank:Yen", "JPY")
    await report(client, h, yen, "100000", "2025-01-01T00:00:00Z")
    yen_latest = await report(client, h, yen, "90000", "2025-02-01T00:00:00Z")
    precise = await account(client, h, "Asset:Fund:Precise", "USD", exponent=-4)
    precise_only = await report(client, h, precise, "10.1234", "2025-01-01T00:00:00Z")
    card = await account(client, h, "Liability:Card", "GBP")
    await report(client, h, card, "-500.00", "2025-01-01T00:00:00Z")
    card_latest = await report(client, h, card, "-250", "2025-02-01T00:00:00Z")
    await account(client, h, "Asset:Bank:Empty", "GBP")  # no snapshot: not listed
    other = await register_and_login(client, "bob@example.com")
    theirs = await account(client, other["headers"], "Asset:Bank:Current", "USD")
    await report(client, other["headers"], theirs, "999.00", "2025-01-01T00:00:00Z")

    body = await get_ok(client, "/balance-snapshots", h)
    assert list(body) == ["snapshots", "total_count", "total_balance_by_currency"]
    assert body == {
        "snapshots": [  # by account path
            expected(current_only, None, None),
            expected(yen_latest, "-10000", -10.0),
            expected(broker_latest, "2500.00", 12.5),
            expected(precise_only, None, None),
            # A debt shrinking from 500.00 to 250.00 is +50 % of its magnitude.
            expected(card_latest, "250.00", 50.0),
        ],
        "total_count": 5,
        # USD accounts of exponent -2 and -4 sum exactly, written at the finest.
        "total_balance_by_currency": {"GBP": "-250.00", "JPY": "90000", "USD": "23510.6234"},
    }
    assert card_latest["balance"] == "-250.00"
    assert broker["id"] == broker_latest["account_id"]

    empty = await register_and_login(client, "carol@example.com")
    assert await get_ok(client, "/balance-snapshots", empty["headers"]) == {
        "snapshots": [],
        "total_count": 0,
        "total_balance_by_currency": {},
    }


async def test_ties_on_captured_at_give_one_latest_per_account(client, auth):
    h = auth["headers"]
    same = "2025-05-05T05:05:05Z"
    tied = {}
    for path in ("Asset:A", "Asset:B", "Asset:C"):
        acc = await account(client, h, path)
        rows = [await report(client, h, acc, f"{n}.00", same) for n in (10, 20, 30)]
        tied[acc["id"]] = rows
    body = await get_ok(client, "/balance-snapshots", h)
    assert body["total_count"] == 3
    assert [s["account_id"] for s in body["snapshots"]] == list(tied)
    for snapshot, rows in zip(body["snapshots"], tied.values(), strict=True):
        # Equal captured_at: the id (time-ordered UUIDv7) breaks the tie, so the last recorded.
        assert snapshot == expected(rows[2], "10.00", 50.0)
    acc_id, rows = next(iter(tied.items()))
    recent = await get_ok(client, f"/accounts/{acc_id}/balance-snapshots", h)
    assert [s["id"] for s in recent["snapshots"]] == [r["id"] for r in reversed(rows)]


async def _five(client, h) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    acc = await account(client, h, "Asset:Bank:Savings")
    plan = [
        ("100.00", "2025-01-01T10:00:00Z", "account_sync"),
        ("110.00", "2025-02-01T10:00:00Z", "holdings_sync"),
        ("0.00", "2025-03-01T10:00:00Z", "account_sync"),
        ("50.00", "2025-04-01T10:00:00Z", "holdings_sync"),
        ("75.00", "2025-05-01T10:00:00Z", "account_sync"),
    ]
    return acc, [await report(client, h, acc, b, t, s) for b, t, s in plan]


async def test_recent_snapshots(client, auth):
    h = auth["headers"]
    acc, (d1, d2, d3, d4, d5) = await _five(client, h)
    url = f"/accounts/{acc['id']}/balance-snapshots"

    body = await get_ok(client, url, h, limit=3)
    assert body == {
        "snapshots": [
            expected(d5, "25.00", 50.0),
            expected(d4, "50.00", None),  # from zero: no percentage
            expected(d3, "-110.00", -100.0),  # against d2, which is not on this page
        ],
        "total_count": 5,  # every snapshot of the account, not the page's 3
        # The balances and the change are the page's.
        "start_balance": "0.00",
        "end_balance": "75.00",
        "total_change_amount": "75.00",
        "total_change_percent": None,
        "currency": "GBP",
    }

    everything = await get_ok(client, url, h)  # default limit 30
    assert [s["id"] for s in everything["snapshots"]] == [x["id"] for x in (d5, d4, d3, d2, d1)]
    assert everything["snapshots"][-1] == expected(d1, None, None)
    assert everything["snapshots"][-2] == expected(d2, "10.00", 10.0)
    assert everything["total_count"] == 5
    assert (await get_ok(client, url, h, limit=5))["total_count"] == 5

    filtered = await get_ok(client, url, h, source="account_sync")
    assert filtered == {
        "snapshots": [
            expected(d5, "75.00", None),  # against d3 (0.00), the previous account_sync
            expected(d3, "-100.00", -100.0),
            expected(d1, None, None),
        ],
        "total_count": 3,
        "start_balance": "100.00",
        "end_balance": "75.00",
        "total_change_amount": "-25.00",
        "total_change_percent": -25.0,
        "currency": "GBP",
    }
    one = await get_ok(client, url, h, source="account_sync", limit=1)
    assert ([s["id"] for s in one["snapshots"]], one["total_count"]) == ([d5["id"]], 3)
    none = await get_ok(client, url, h, source="manual_sync")
    assert (none["snapshots"], none["total_count"]) == ([], 0)


async def test_balance_history(client, auth):
    h = auth["headers"]
    acc, (_d1, d2, d3, d4, _d5) = await _five(client, h)
    url = f"/accounts/{acc['id']}/balance-history"

    body = await get_ok(
        client, url, h, start_date="2025-02-01T10:00:00Z", end_date="2025-04-01T10:00:00Z"
    )
    assert body == {
        "snapshots": [
            expected(d2, None, None),  # the first in the range has no change, though d1 exists
            expected(d3, "-110.00", -100.0),
            expected(d4, "50.00", None),
        ],
        "total_count": 3,
        "start_balance": "110.00",
        "end_balance": "50.00",
        "total_change_amount": "-60.00",
        "total_change_percent": -54.55,  # -54.5454… rounded half-up
        "currency": "GBP",
    }

    holdings = await get_ok(
        client,
        url,
        h,
        start_date="2025-01-01T00:00:00Z",
        end_date="2025-12-31T00:00:00Z",
        source="holdings_sync",
    )
    assert holdings["snapshots"] == [expected(d2, None, None), expected(d4, "-60.00", -54.55)]

    # A plain date is midnight UTC: 1 April 10:00 is after the end.
    dates = await get_ok(client, url, h, start_date="2025-02-01", end_date="2025-04-01")
    assert [s["id"] for s in dates["snapshots"]] == [d2["id"], d3["id"]]
    # Offsets convert to UTC; a timestamp without a zone is UTC.
    zoned = await get_ok(
        client, url, h, start_date="2025-02-01T11:00:00+01:00", end_date="2025-03-01T10:00:00"
    )
    assert [s["id"] for s in zoned["snapshots"]] == [d2["id"], d3["id"]]

    empty = await get_ok(client, url, h, start_date="2000-01-01", end_date="2000-12-31")
    assert empty == {
        "snapshots": [],
        "total_count": 0,
        "start_balance": None,
        "end_balance": None,
        "total_change_amount": None,
        "total_change_percent": None,
        "currency": "GBP",
    }


@pytest.mark.parametrize(
    ("before", "after", "percent"),
    [
        ("3.00", "4.00", 33.33),
        ("3.00", "5.00", 66.67),
        ("200.00", "200.01", 0.01),  # 0.005 %: half-up, not half-even
        ("-200.00", "-200.01", -0.01),
        ("0.00", "5.00", None),
        ("5.00", "0.00", -100.0),
        ("1.00", "1000000.00", 99999900.0),
    ],
)
async def test_change_percent(client, auth, before, after, percent):
    h = auth["headers"]
    acc = await account(client, h, "Asset:Bank:Current")
    await report(client, h, acc, before, "2025-01-01T00:00:00Z")
    later = await report(client, h, acc, after, "2025-01-02T00:00:00Z")
    assert later["change_percent"] == percent
    latest = await get_ok(client, "/balance-snapshots", h)
    assert latest["snapshots"][0]["change_percent"] == percent


@pytest.mark.parametrize(
    ("params", "status", "slug"),
    [
        ({"start_date": "2025-06-01", "end_date": "2025-01-01"}, 400, "invalid-date-range"),
        (
            {"start_date": "2025-06-01T00:00:01Z", "end_date": "2025-06-01T00:00:00Z"},
            400,
            "invalid-date-range",
        ),
        ({"start_date": "banana", "end_date": "2025-01-01"}, 400, "invalid-date-range"),
        ({"start_date": "2025-01-01", "end_date": "2025-13-01"}, 400, "invalid-date-range"),
        ({"start_date": "1899-12-31", "end_date": "2025-01-01"}, 400, "invalid-date-range"),
        ({"start_date": "2025-01-01", "end_date": "2200-01-01"}, 400, "invalid-date-range"),
        (
            {"start_date": "0001-01-01T00:00:00+01:00", "end_date": "2025-01-01"},
            400,
            "invalid-date-range",
        ),
        (
            {"start_date": "2025-01-01", "end_date": "2025-02-01", "source": "bank_feed"},
            400,
            "invalid-snapshot-source",
        ),
        ({"start_date": "2025-01-01"}, 422, "validation-error"),
        ({"end_date": "2025-01-01"}, 422, "validation-error"),
    ],
)
async def test_bad_history_requests(client, auth, params, status, slug):
    h = auth["headers"]
    acc = await account(client, h, "Asset:Bank:Current")
    response = await client.get(f"/accounts/{acc['id']}/balance-history", params=params, headers=h)
    if status == 422:
        validation(response)
    else:
        problem(response, status, slug)


@pytest.mark.parametrize(
    ("params", "status", "slug"),
    [
        ({"limit": 0}, 422, "validation-error"),
        ({"limit": 101}, 422, "validation-error"),
        ({"limit": "ten"}, 422, "validation-error"),
        ({"source": "bank_feed"}, 400, "invalid-snapshot-source"),
    ],
)
async def test_bad_recent_requests(client, auth, params, status, slug):
    h = auth["headers"]
    acc = await account(client, h, "Asset:Bank:Current")
    response = await client.get(
        f"/accounts/{acc['id']}/balance-snapshots", params=params, headers=h
    )
    body = problem(response, status, slug)
    if status == 422:
        assert body["errors"][0]["loc"] == ["query", "limit"]
    ok = await client.get(f"/accounts/{acc['id']}/balance-snapshots?limit=100", headers=h)
    assert ok.status_code == 200


async def test_another_users_account_is_not_found(client, auth):
    h = auth["headers"]
    mine = await account(client, h, "Asset:Bank:Current")
    await report(client, h, mine, "10.00", "2025-01-01T00:00:00Z")
    other = await register_and_login(client, "bob@example.com")
    for path, params in (
        (f"/accounts/{mine['id']}/balance-history", SEED_RANGE),
        (f"/accounts/{mine['id']}/balance-snapshots", {}),
        (f"/accounts/{mine['id']}/reconciliation", {}),
        ("/accounts/00000000-0000-0000-0000-000000000000/balance-snapshots", {}),
    ):
        response = await client.get(path, params=params, headers=other["headers"])
        problem(response, 404, "account-not-found")
    assert (await get_ok(client, "/balance-snapshots", other["headers"]))["total_count"] == 0


async def test_latest_runs_a_constant_number_of_queries(client, auth, ctx):
    h = auth["headers"]
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    async def measure(accounts: int) -> int:
        statements.clear()
        event.listen(ctx.db.engine.sync_engine, "before_cursor_execute", count)
        try:
            body = await get_ok(client, "/balance-snapshots", h)
        finally:
            event.remove(ctx.db.engine.sync_engine, "before_cursor_execute", count)
        assert body["total_count"] == accounts
        return len(statements)

    async def add_accounts(first: int, last: int) -> None:
        for n in range(first, last):
            acc = await account(client, h, f"Asset:Bank:N{n:02d}")
            for day in (1, 2, 3):
                await report(client, h, acc, f"{n}.{day:02d}", f"2025-01-0{day}T00:00:00Z")

    await add_accounts(0, 2)
    with_two = await measure(2)
    await add_accounts(2, 20)
    with_twenty = await measure(20)
    assert with_two == with_twenty, (with_two, with_twenty)
    assert with_two <= 4  # the token's session and user, the snapshots (+ BEGIN on SQLite)

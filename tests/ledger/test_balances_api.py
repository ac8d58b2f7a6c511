"""Balances over HTTP: value time (`at`), knowledge time (`known_at`), daily closing balances
with gap filling, prefix totals per currency, and the zero-sum of double entry."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from ledger.api_helpers import error_locs, now, parse_ts, problem, validation
from ledger.factories import account, move


async def _balance(client, h, acc, **params) -> dict:
    response = await client.get(f"/accounts/{acc['id']}/balance", params=params, headers=h)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"account_id", "balance", "currency", "at", "known_at"}
    assert body["account_id"] == acc["id"]
    assert body["currency"] == acc["currency"]
    return body


async def test_balance_response_fields(client, auth):
    h = auth["headers"]
    equity = await account(client, h, "Equity:Capital", "JPY")
    bank = await account(client, h, "Asset:Bank", "JPY")
    await move(client, h, equity, bank, "1500", value_time="2025-01-01T00:00:00Z")
    before = now()
    body = await _balance(client, h, bank)
    after = now()
    assert body["balance"] == "1500"
    assert before <= parse_ts(body["at"]) <= after
    assert before <= parse_ts(body["known_at"]) <= after
    explicit = await _balance(
        client, h, bank, at="2025-01-01T02:00:00+02:00", known_at="2199-01-01T00:00:00"
    )
    assert explicit == {
        "account_id": bank["id"],
        "balance": "1500",
        "currency": "JPY",
        "at": "2025-01-01T00:00:00Z",
        "known_at": "2199-01-01T00:00:00Z",
    }
    empty = await account(client, h, "Asset:Empty", "BHD")
    assert (await _balance(client, h, empty))["balance"] == "0.000"


async def test_at_is_value_time_within_a_day(client, auth):
    h = auth["headers"]
    equity = await account(client, h, "Equity:Capital")
    bank = await account(client, h, "Asset:Bank")
    await move(client, h, equity, bank, "7.00", value_time="2025-04-09T18:00:00Z")
    await move(client, h, equity, bank, "50.00", value_time="2025-04-10T10:00:00Z")
    await move(client, h, bank, equity, "20.00", value_time="2025-04-10T15:30:00Z")
    await move(client, h, equity, bank, "0.01", value_time="2025-04-11T00:00:00Z")
    expected = {
        "2025-04-09T17:59:59.999999Z": "0.00",
        "2025-04-09T18:00:00Z": "7.00",
        "2025-04-10T00:00:00Z": "7.00",
        "2025-04-10T09:59:59.999999Z": "7.00",
        "2025-04-10T10:00:00Z": "57.00",  # `at` is inclusive
        "2025-04-10T15:29:59Z": "57.00",
        "2025-04-10T15:30:00Z": "37.00",
        "2025-04-10T23:59:59.999999Z": "37.00",
        "2025-04-11T00:00:00Z": "37.01",
        "2030-01-01T00:00:00Z": "37.01",
        "1900-01-01T00:00:00Z": "0.00",
    }
    for at, balance in expected.items():
        body = await _balance(client, h, bank, at=at)
        assert (body["at"], body["balance"]) == (at, balance)
        past = await _balance(client, h, bank, at=at, known_at=body["known_at"])
        assert past["balance"] == balance  # the same answer through the bitemporal path
    other = await _balance(client, h, equity, at="2025-04-10T12:00:00Z")
    assert other["balance"] == "-57.00"
    # A movement dated in the future is not in today's balance.
    await move(client, h, equity, bank, "1000.00", value_time="2199-06-01T00:00:00Z")
    assert (await _balance(client, h, bank))["balance"] == "37.01"
    assert (await _balance(client, h, bank, at="2199-06-01T00:00:00Z"))["balance"] == "1037.01"


async def test_known_at_leaves_out_later_recordings(client, auth):
    h = auth["headers"]
    equity = await account(client, h, "Equity:Capital")
    bank = await account(client, h, "Asset:Bank")
    first = await move(client, h, equity, bank, "100.00", value_time="2025-02-10T12:00:00Z")
    known_first = parse_ts(first["knowledge_time"])
    backdated = await move(client, h, equity, bank, "5.00", value_time="2025-02-01T12:00:00Z")
    known_backdated = parse_ts(backdated["knowledge_time"])
    assert known_backdated > known_first
    just_before = (known_backdated - timedelta(microseconds=1)).isoformat()

    assert (await _balance(client, h, bank))["balance"] == "105.00"
    # Between the two recordings: the backdated movement is unknown, though its value time is
    # earlier than the first one's.
    for known_at in (first["knowledge_time"], just_before):
        body = await _balance(client, h, bank, known_at=known_at)
        assert body["balance"] == "100.00"
        assert parse_ts(body["known_at"]) == datetime.fromisoformat(known_at.replace("Z", "+00:00"))
        early = await _balance(client, h, bank, at="2025-02-05T00:00:00Z", known_at=known_at)
        assert early["balance"] == "0.00"
        assert (await _balance(client, h, equity, known_at=known_at))["balance"] == "-100.00"
    # Before either was recorded: nothing.
    nothing = (known_first - timedelta(microseconds=1)).isoformat()
    assert (await _balance(client, h, bank, known_at=nothing))["balance"] == "0.00"
    # From the second recording on: both.
    both = await _balance(client, h, bank, known_at=backdated["knowledge_time"])
    assert both["balance"] == "105.00"
    early = await _balance(
        client, h, bank, at="2025-02-05T00:00:00Z", known_at=backdated["knowledge_time"]
    )
    assert early["balance"] == "5.00"
    assert (await _balance(client, h, bank, at="2025-02-05T00:00:00Z"))["balance"] == "5.00"


@pytest.mark.parametrize(
    ("params", "status", "slug", "loc"),
    [
        ({"at": "1899-12-31T23:59:59Z"}, 400, "invalid-date-range", None),
        ({"at": "2200-01-01T00:00:00Z"}, 400, "invalid-date-range", None),
        ({"known_at": "1899-12-31T23:59:59Z"}, 400, "invalid-date-range", None),
        ({"at": "yesterday"}, 422, "validation-error", ["query", "at"]),
        ({"known_at": "2025-13-01T00:00:00Z"}, 422, "validation-error", ["query", "known_at"]),
        ({"at": "0001-01-01T00:00:00+01:00"}, 422, "validation-error", ["query", "at"]),
        # Not seconds since 1970 (which would answer as the ledger stood on 1970-01-01).
        ({"known_at": "0.5"}, 422, "validation-error", ["query", "known_at"]),
        ({"at": "1735689600"}, 422, "validation-error", ["query", "at"]),
    ],
)
async def test_bad_balance_query(client, auth, params, status, slug, loc):
    h = auth["headers"]
    bank = await account(client, h, "Asset:Bank")
    response = await client.get(f"/accounts/{bank['id']}/balance", params=params, headers=h)
    body = problem(response, status, slug)
    if loc is not None:
        assert error_locs(body) == [loc]


# ------------------------------------------------------------------------------ daily balances


async def _daily(client, h, acc, start: str, end: str) -> list[tuple[str, str]]:
    response = await client.get(
        f"/accounts/{acc['id']}/daily-balances",
        params={"start_date": start, "end_date": end},
        headers=h,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"account_id", "currency", "balances"}
    assert (body["account_id"], body["currency"]) == (acc["id"], acc["currency"])
    for row in body["balances"]:
        assert set(row) == {"date", "balance"}
    return [(r["date"], r["balance"]) for r in body["balances"]]


async def test_daily_balances_fill_gaps(client, auth):
    h = auth["headers"]
    equity = await account(client, h, "Equity:Capital")
    bank = await account(client, h, "Asset:Bank")
    await move(client, h, equity, bank, "100.00", value_time="2025-01-03T08:00:00Z")
    await move(client, h, bank, equity, "25.00", value_time="2025-01-03T23:59:59.999999Z")
    await move(client, h, equity, bank, "10.50", value_time="2025-01-07T00:00:00Z")
    await move(client, h, bank, equity, "85.50", value_time="2025-01-09T12:00:00Z")
    assert await _daily(client, h, bank, "2025-01-01", "2025-01-10") == [
        ("2025-01-01", "0.00"),
        ("2025-01-02", "0.00"),
        ("2025-01-03", "75.00"),
        ("2025-01-04", "75.00"),
        ("2025-01-05", "75.00"),
        ("2025-01-06", "75.00"),
        ("2025-01-07", "85.50"),
        ("2025-01-08", "85.50"),
        ("2025-01-09", "0.00"),
        ("2025-01-10", "0.00"),
    ]
    # A window after activity starts from the last closing balance before it.
    assert await _daily(client, h, bank, "2025-01-05", "2025-01-06") == [
        ("2025-01-05", "75.00"),
        ("2025-01-06", "75.00"),
    ]
    assert await _daily(client, h, bank, "2025-01-07", "2025-01-07") == [("2025-01-07", "85.50")]
    assert await _daily(client, h, equity, "2025-01-02", "2025-01-04") == [
        ("2025-01-02", "0.00"),
        ("2025-01-03", "-75.00"),
        ("2025-01-04", "-75.00"),
    ]
    # Daily closing balances agree with `at` the end of each day.
    for day, balance in await _daily(client, h, bank, "2025-01-01", "2025-01-10"):
        body = await _balance(client, h, bank, at=f"{day}T23:59:59.999999Z")
        assert body["balance"] == balance


async def test_daily_balances_range_limits(client, auth):
    h = auth["headers"]
    equity = await account(client, h, "Equity:Capital")
    bank = await account(client, h, "Asset:Bank")
    await move(client, h, equity, bank, "1.00", value_time="2010-06-15T12:00:00Z")
    start = date(2010, 1, 1)
    end = start + timedelta(days=3659)  # 3,660 days: the most one request may ask
    rows = await _daily(client, h, bank, str(start), str(end))
    assert len(rows) == 3660
    assert [d for d, _ in rows] == [str(start + timedelta(days=i)) for i in range(3660)]
    assert rows[0] == (str(start), "0.00")
    assert rows[165] == ("2010-06-15", "1.00")
    assert rows[164] == ("2010-06-14", "0.00")
    assert rows[-1] == (str(end), "1.00")

    async def get(params):
        return await client.get(f"/accounts/{bank['id']}/daily-balances", params=params, headers=h)

    too_long = await get({"start_date": str(start), "end_date": str(end + timedelta(days=1))})
    problem(too_long, 400, "invalid-date-range")
    backwards = await get({"start_date": "2025-01-02", "end_date": "2025-01-01"})
    problem(backwards, 400, "invalid-date-range")
    ancient = await get({"start_date": "1899-12-31", "end_date": "1900-01-02"})
    problem(ancient, 400, "invalid-date-range")
    missing = await get({"start_date": "2025-01-01"})
    assert error_locs(validation(missing)) == [["query", "end_date"]]
    malformed = await get({"start_date": "2025-02-30", "end_date": "2025-03-01"})
    assert error_locs(validation(malformed)) == [["query", "start_date"]]


# ---------------------------------------------------------------------------- prefix totals


async def _totals(client, h, prefix: str, **params) -> dict:
    response = await client.get("/balances", params={"prefix": prefix, **params}, headers=h)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"prefix", "balances_by_currency", "account_count"}
    assert body["prefix"] == prefix
    return body


async def test_prefix_totals_per_currency(client, auth):
    h = auth["headers"]
    current = await account(client, h, "Asset:Bank:Current")
    savings = await account(client, h, "Asset:Bank:Savings")
    banking = await account(client, h, "Asset:Banking:X")
    broker = await account(client, h, "Asset:Broker:USD", "USD")
    fine = await account(client, h, "Asset:Fine", "GBP", exponent=-3)
    capital = await account(client, h, "Equity:Capital")
    capital_usd = await account(client, h, "Equity:Capital:USD", "USD")
    capital_fine = await account(client, h, "Equity:Fine", "GBP", exponent=-3)
    food = await account(client, h, "Expense:Food")
    card = await account(client, h, "Liability:Card")
    t = "2025-03-01T10:00:00Z"
    await move(client, h, capital, current, "1000.00", value_time=t)
    await move(client, h, current, savings, "300.00", value_time=t)  # inside Asset:Bank
    await move(client, h, capital_usd, broker, "250.50", value_time=t)
    await move(client, h, current, food, "12.34", value_time=t)
    await move(client, h, card, food, "20.00", value_time=t)
    await move(client, h, current, banking, "5.00", value_time=t)
    await move(client, h, capital_fine, fine, "1.005", value_time=t)
    await move(client, h, current, savings, "1.00", value_time="2025-03-02T10:00:00Z")

    async def totals(prefix, **params):
        body = await _totals(client, h, prefix, **params)
        return body["balances_by_currency"], body["account_count"]

    assert await totals("Asset") == ({"GBP": "988.665", "USD": "250.50"}, 5)
    assert await totals("Asset:Bank") == ({"GBP": "982.66"}, 2)  # never Asset:Banking
    assert await totals("Asset:Bank:Current") == ({"GBP": "681.66"}, 1)
    assert await totals("Asset:Banking") == ({"GBP": "5.00"}, 1)
    assert await totals("Asset:Ban") == ({}, 0)
    assert await totals("Equity") == ({"GBP": "-1001.005", "USD": "-250.50"}, 3)
    assert await totals("Equity:Capital") == ({"GBP": "-1000.00", "USD": "-250.50"}, 2)
    assert await totals("Expense") == ({"GBP": "32.34"}, 1)
    assert await totals("Liability") == ({"GBP": "-20.00"}, 1)
    assert await totals("Income") == ({}, 0)
    # `at` is value time: before the second day's transfer, and before anything.
    assert await totals("Asset:Bank:Current", at="2025-03-01T23:59:59Z") == ({"GBP": "682.66"}, 1)
    assert await totals("Asset", at="2025-03-01T09:59:59Z") == (
        {"GBP": "0.000", "USD": "0.00"},
        5,
    )
    for bad in ({"prefix": ""}, {}, {"prefix": "Asset\x00"}, {"prefix": "x" * 256}):
        response = await client.get("/balances", params=bad, headers=h)
        assert error_locs(validation(response)) == [["query", "prefix"]]
    out_of_range = await client.get(
        "/balances", params={"prefix": "Asset", "at": "2200-01-01T00:00:00Z"}, headers=h
    )
    problem(out_of_range, 400, "invalid-date-range")
    # Nothing of another user's ledger counts.
    from conftest import register_and_login

    other = (await register_and_login(client, "zed@example.com"))["headers"]
    assert (await _totals(client, other, "Asset"))["balances_by_currency"] == {}


async def test_every_currency_sums_to_zero(client, auth):
    h = auth["headers"]
    rng = random.Random(7)
    paths = [
        ("Asset:Bank:Current", "GBP"),
        ("Asset:Bank:Savings", "GBP"),
        ("Liability:Card", "GBP"),
        ("Income:Salary", "GBP"),
        ("Expense:Food", "GBP"),
        ("Equity:Capital", "GBP"),
        ("Asset:Broker", "USD"),
        ("Equity:Capital:USD", "USD"),
        ("Income:Dividends", "USD"),
        ("Asset:Yen", "JPY"),
        ("Expense:Travel", "JPY"),
    ]
    accounts = [await account(client, h, p, c) for p, c in paths]
    by_currency = defaultdict(list)
    for a in accounts:
        by_currency[a["currency"]].append(a)
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for i in range(40):
        currency = ["GBP", "USD", "JPY"][i % 3]
        src, dst = rng.sample(by_currency[currency], 2)
        amount = (
            str(rng.randint(1, 99_999))
            if currency == "JPY"
            else f"{rng.randint(1, 99999) / 100:.2f}"
        )
        day = date(2025, 1, 1) + timedelta(days=rng.randint(0, 60))
        await move(client, h, src, dst, amount, value_time=f"{day}T{rng.randint(0, 23):02d}:00:00Z")
        expected[src["full_path"]] -= Decimal(amount)
        expected[dst["full_path"]] += Decimal(amount)

    listed = (await client.get("/accounts", headers=h)).json()["accounts"]
    assert {a["full_path"]: Decimal(a["balance"]) for a in listed} == {
        p: expected[p] for p, _ in paths
    }
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for a in listed:
        sums[a["currency"]] += Decimal(a["balance"])
    assert sums == {"GBP": 0, "USD": 0, "JPY": 0}
    for at in ("2025-01-15T12:00:00Z", "2025-02-01T00:00:00Z", "2025-03-31T00:00:00Z"):
        per_type: dict[str, Decimal] = defaultdict(Decimal)
        for kind in ("Asset", "Liability", "Equity", "Income", "Expense"):
            body = await _totals(client, h, kind, at=at)
            for currency, total in body["balances_by_currency"].items():
                per_type[currency] += Decimal(total)
        assert per_type == {"GBP": 0, "USD": 0, "JPY": 0}

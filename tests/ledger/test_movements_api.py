"""Movements over HTTP: every field of a recorded movement, backdating, batches (all or
nothing), each rejection (nothing recorded), and paged listing."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.api_helpers import (
    UUID,
    all_movements,
    error_locs,
    now,
    parse_ts,
    problem,
    row_counts,
    snapshot,
    validation,
)
from ledger.factories import account, move

MOVEMENT_FIELDS = {
    "id",
    "batch_id",
    "from_account_id",
    "to_account_id",
    "amount",
    "currency",
    "code",
    "value_time",
    "knowledge_time",
    "description",
}


async def _balance(client, headers, acc, **params) -> str:
    response = await client.get(f"/accounts/{acc['id']}/balance", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["balance"]


async def test_single_movement_every_field(client, auth):
    h = auth["headers"]
    equity = await account(client, h, "Equity:Capital")
    bank = await account(client, h, "Asset:Bank:Current")
    before = now()
    response = await client.post(
        "/movements",
        json={"from_account_id": equity["id"], "to_account_id": bank["id"], "amount": "12.5"},
        headers=h,
    )
    after = now()
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == MOVEMENT_FIELDS
    assert UUID.match(body["id"])
    value_time = parse_ts(body["value_time"])
    knowledge_time = parse_ts(body["knowledge_time"])
    assert before <= knowledge_time <= after
    assert value_time == knowledge_time  # value time defaults to the moment of recording
    assert {k: v for k, v in body.items() if k not in ("id", "value_time", "knowledge_time")} == {
        "batch_id": None,
        "from_account_id": equity["id"],
        "to_account_id": bank["id"],
        "amount": "12.50",
        "currency": "GBP",
        "code": "PMNT:RCDT:BOOK",
        "description": None,
    }
    # The stored movement reads back identically, microseconds included, from both ends.
    assert await all_movements(client, h, bank["id"]) == [body]
    assert await all_movements(client, h, equity["id"]) == [body]
    assert await _balance(client, h, bank) == "12.50"
    assert await _balance(client, h, equity) == "-12.50"


async def test_knowledge_time_keeps_microseconds(client, auth):
    h = auth["headers"]
    a = await account(client, h, "Asset:A")
    b = await account(client, h, "Asset:B")
    recorded = [await move(client, h, a, b, "0.01") for _ in range(5)]
    stamps = [m["knowledge_time"] for m in recorded]
    # The server's clock has microseconds: five stamps in a row cannot all be whole seconds.
    assert any("." in s for s in stamps)
    assert all(parse_ts(s) for s in stamps)
    assert sorted(stamps) == stamps and len(set(stamps)) == 5
    listed = await all_movements(client, h, a["id"])
    assert [m["knowledge_time"] for m in reversed(listed)] == stamps


async def test_explicit_fields_and_time_zones(client, auth):
    h = auth["headers"]
    src = await account(client, h, "Income:Salary")
    dst = await account(client, h, "Asset:Bank")
    body = await move(
        client,
        h,
        src,
        dst,
        "1000",
        code="LDAS:FTDP:INTR",
        value_time="2025-06-30T23:30:00-02:00",
        description='Gehalt "Juni" — café ☕ \\ 日本',
    )
    assert body["amount"] == "1000.00"
    assert body["code"] == "LDAS:FTDP:INTR"
    assert body["value_time"] == "2025-07-01T01:30:00Z"
    assert body["description"] == 'Gehalt "Juni" — café ☕ \\ 日本'
    naive = await move(client, h, src, dst, "0.01", value_time="2025-01-02T03:04:05.123456")
    assert naive["value_time"] == "2025-01-02T03:04:05.123456Z"
    midnight = await move(client, h, src, dst, "0.02", value_time="2025-01-03T00:00:00Z")
    assert midnight["value_time"] == "2025-01-03T00:00:00Z"
    listed = await all_movements(client, h, dst["id"])
    assert listed == [body, midnight, naive]


@pytest.mark.parametrize(
    ("currency", "exponent", "amount", "shown"),
    [
        ("JPY", None, "1500", "1500"),
        ("BHD", None, "1.5", "1.500"),
        ("GBP", 0, "7", "7"),
        ("GBP", -18, "0.000000000000000001", "0.000000000000000001"),
        ("USD", None, "0.1", "0.10"),
        ("GBP", None, "012.30", "12.30"),
    ],
)
async def test_amount_is_formatted_with_account_decimals(
    client, auth, currency, exponent, amount, shown
):
    h = auth["headers"]
    extra = {} if exponent is None else {"exponent": exponent}
    src = await account(client, h, "Equity:Capital", currency, **extra)
    dst = await account(client, h, "Asset:Cash", currency, **extra)
    body = await move(client, h, src, dst, amount, value_time="2025-01-01T00:00:00Z")
    assert (body["amount"], body["currency"]) == (shown, currency)
    assert await _balance(client, h, dst) == shown
    assert await _balance(client, h, src) == "-" + shown


async def test_backdated_movement_corrects_balances_at_once(client, auth):
    h = auth["headers"]
    equity = await account(client, h, "Equity:Capital")
    bank = await account(client, h, "Asset:Bank")
    await move(client, h, equity, bank, "100.00", value_time="2025-03-10T12:00:00Z")
    await move(client, h, bank, equity, "30.00", value_time="2025-03-20T12:00:00Z")
    assert await _balance(client, h, bank, at="2025-03-15T00:00:00Z") == "100.00"
    assert await _balance(client, h, bank) == "70.00"
    # Backdated before both: every later balance moves at once.
    await move(client, h, equity, bank, "5.25", value_time="2025-03-01T08:00:00Z")
    assert await _balance(client, h, bank, at="2025-03-01T07:59:59Z") == "0.00"
    assert await _balance(client, h, bank, at="2025-03-05T00:00:00Z") == "5.25"
    assert await _balance(client, h, bank, at="2025-03-15T00:00:00Z") == "105.25"
    assert await _balance(client, h, bank) == "75.25"
    assert await _balance(client, h, equity) == "-75.25"
    daily = await client.get(
        f"/accounts/{bank['id']}/daily-balances",
        params={"start_date": "2025-02-28", "end_date": "2025-03-21"},
        headers=h,
    )
    rows = {r["date"]: r["balance"] for r in daily.json()["balances"]}
    assert rows["2025-02-28"] == "0.00"
    assert rows["2025-03-01"] == "5.25"
    assert rows["2025-03-09"] == "5.25"
    assert rows["2025-03-10"] == "105.25"
    assert rows["2025-03-19"] == "105.25"
    assert rows["2025-03-20"] == "75.25"
    assert rows["2025-03-21"] == "75.25"
    got = await client.get(f"/accounts/{bank['id']}", headers=h)
    assert got.json()["balance"] == "75.25"


# ------------------------------------------------------------------------------------ batches


async def test_batch_records_all_with_one_batch_id(client, auth):
    h = auth["headers"]
    equity = await account(client, h, "Equity:Capital")
    bank = await account(client, h, "Asset:Bank")
    food = await account(client, h, "Expense:Food")
    before = now()
    response = await client.post(
        "/movements/batch",
        json={
            "description": "Weekly shop",
            "movements": [
                {
                    "from_account_id": equity["id"],
                    "to_account_id": bank["id"],
                    "amount": "200",
                    "value_time": "2025-05-01T09:00:00Z",
                },
                {
                    "from_account_id": bank["id"],
                    "to_account_id": food["id"],
                    "amount": "45.99",
                    "code": "PMNT:CCRD:POSD",
                    "description": "Groceries",
                },
                {
                    "from_account_id": bank["id"],
                    "to_account_id": food["id"],
                    "amount": "0.01",
                    "value_time": "2025-05-02T09:00:00Z",
                },
            ],
        },
        headers=h,
    )
    after = now()
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"batch_id", "movements"}
    batch_id = body["batch_id"]
    assert UUID.match(batch_id)
    moves = body["movements"]
    assert len(moves) == 3
    stamps = {m["knowledge_time"] for m in moves}
    assert len(stamps) == 1  # one transaction, one knowledge time
    knowledge_time = stamps.pop()
    assert before <= parse_ts(knowledge_time) <= after
    assert len({m["id"] for m in moves}) == 3
    for m in moves:
        assert set(m) == MOVEMENT_FIELDS and UUID.match(m["id"])
    strip = [{k: v for k, v in m.items() if k != "id"} for m in moves]
    assert strip == [
        {
            "batch_id": batch_id,
            "from_account_id": equity["id"],
            "to_account_id": bank["id"],
            "amount": "200.00",
            "currency": "GBP",
            "code": "PMNT:RCDT:BOOK",
            "value_time": "2025-05-01T09:00:00Z",
            "knowledge_time": knowledge_time,
            "description": None,
        },
        {
            "batch_id": batch_id,
            "from_account_id": bank["id"],
            "to_account_id": food["id"],
            "amount": "45.99",
            "currency": "GBP",
            "code": "PMNT:CCRD:POSD",
            "value_time": knowledge_time,  # defaults to now
            "knowledge_time": knowledge_time,
            "description": "Groceries",
        },
        {
            "batch_id": batch_id,
            "from_account_id": bank["id"],
            "to_account_id": food["id"],
            "amount": "0.01",
            "currency": "GBP",
            "code": "PMNT:RCDT:BOOK",
            "value_time": "2025-05-02T09:00:00Z",
            "knowledge_time": knowledge_time,
            "description": None,
        },
    ]
    assert await _balance(client, h, bank) == "154.00"
    assert await _balance(client, h, food) == "46.00"
    assert await _balance(client, h, equity) == "-200.00"
    listed = await all_movements(client, h, bank["id"])
    assert listed == [moves[1], moves[2], moves[0]]


def _m(src: dict[str, Any], dst: dict[str, Any], amount: Any, **extra: Any) -> dict[str, Any]:
    return {"from_account_id": src["id"], "to_account_id": dst["id"], "amount": amount, **extra}


@pytest.mark.parametrize(
    ("third", "status", "slug", "loc"),
    [
        ("same", 422, "invalid-movement", ["body", "movements", 2, "to_account_id"]),
        ("currency", 422, "invalid-movement", ["body", "movements", 2, "to_account_id"]),
        ("decimals", 422, "invalid-movement", ["body", "movements", 2, "amount"]),
        ("zero", 422, "invalid-movement", ["body", "movements", 2, "amount"]),
        ("old", 422, "invalid-movement", ["body", "movements", 2, "value_time"]),
        ("number", 422, "validation-error", ["body", "movements", 2, "amount"]),
        ("code", 422, "validation-error", ["body", "movements", 2, "code"]),
        ("unknown", 404, "account-not-found", None),
    ],
)
async def test_batch_is_all_or_nothing(client, auth, db, third, status, slug, loc):
    h = auth["headers"]
    equity = await account(client, h, "Equity:Capital")
    bank = await account(client, h, "Asset:Bank")
    usd = await account(client, h, "Asset:Dollars", "USD")
    await move(client, h, equity, bank, "10.00", value_time="2025-01-01T00:00:00Z")
    before = await snapshot(client, h)
    before_rows = await row_counts(db)
    bad = {
        "same": _m(bank, bank, "1.00"),
        "currency": _m(bank, usd, "1.00"),
        "decimals": _m(equity, bank, "1.001"),
        "zero": _m(equity, bank, "0.00"),
        "old": _m(equity, bank, "1.00", value_time="1899-12-31T23:59:59Z"),
        "number": _m(equity, bank, 1.5),
        "code": _m(equity, bank, "1.00", code="PMNT-RCDT"),
        "unknown": {**_m(equity, bank, "1.00"), "to_account_id": str(uuid.uuid4())},
    }[third]
    response = await client.post(
        "/movements/batch",
        json={
            "movements": [
                _m(equity, bank, "100.00", value_time="2025-01-02T00:00:00Z"),
                _m(bank, equity, "3.00", value_time="2024-12-01T00:00:00Z"),
                bad,
                _m(equity, bank, "7.00"),
            ]
        },
        headers=h,
    )
    body = validation(response, slug) if status == 422 else problem(response, status, slug)
    if loc is not None:
        assert error_locs(body) == [loc]
    assert await snapshot(client, h) == before
    assert await row_counts(db) == before_rows


@pytest.mark.parametrize("description", [" padded", "trailing ", "two\nlines", "nul\x00", ""])
async def test_batch_description_is_one_trimmed_line(client, auth, db, description):
    h = auth["headers"]
    a = await account(client, h, "Asset:A")
    b = await account(client, h, "Asset:B")
    before = await row_counts(db)
    response = await client.post(
        "/movements/batch",
        json={"description": description, "movements": [_m(a, b, "1.00")]},
        headers=h,
    )
    if description == "":
        assert response.status_code == 201, response.text
        return
    assert error_locs(validation(response)) == [["body", "description"]]
    assert await row_counts(db) == before


async def test_batch_size_limits(client, auth, db):
    h = auth["headers"]
    a = await account(client, h, "Asset:A")
    b = await account(client, h, "Asset:B")
    before = await row_counts(db)
    empty = await client.post("/movements/batch", json={"movements": []}, headers=h)
    assert error_locs(validation(empty)) == [["body", "movements"]]
    huge = await client.post(
        "/movements/batch",
        json={"movements": [_m(a, b, "0.01")] * 1001},
        headers=h,
    )
    assert error_locs(validation(huge)) == [["body", "movements"]]
    assert await row_counts(db) == before
    full = await client.post(
        "/movements/batch",
        json={"movements": [_m(a, b, "0.01")] * 1000},
        headers=h,
    )
    assert full.status_code == 201, full.text
    assert len(full.json()["movements"]) == 1000
    assert await _balance(client, h, b) == "10.00"


# --------------------------------------------------------------------------------- rejections


@pytest.mark.parametrize(
    ("case", "slug", "loc"),
    [
        ("same", "invalid-movement", ["body", "to_account_id"]),
        ("currency", "invalid-movement", ["body", "to_account_id"]),
        ("exponent", "invalid-movement", ["body", "to_account_id"]),
        ("zero", "invalid-movement", ["body", "amount"]),
        ("zero-int", "invalid-movement", ["body", "amount"]),
        ("negative", "invalid-movement", ["body", "amount"]),
        ("decimals-gbp", "invalid-movement", ["body", "amount"]),
        ("decimals-jpy", "invalid-movement", ["body", "amount"]),
        ("too-large", "invalid-movement", ["body", "amount"]),
        ("number", "validation-error", ["body", "amount"]),
        ("int-number", "validation-error", ["body", "amount"]),
        ("letters", "validation-error", ["body", "amount"]),
        ("thousands", "validation-error", ["body", "amount"]),
        ("exponent-notation", "validation-error", ["body", "amount"]),
        ("space", "validation-error", ["body", "amount"]),
        ("empty", "validation-error", ["body", "amount"]),
        ("nan", "validation-error", ["body", "amount"]),
        ("trailing-newline", "validation-error", ["body", "amount"]),
        ("arabic-indic-digits", "validation-error", ["body", "amount"]),
        ("plus", "validation-error", ["body", "amount"]),
        ("missing", "validation-error", ["body", "amount"]),
        ("code-dash", "validation-error", ["body", "code"]),
        ("code-lower", "validation-error", ["body", "code"]),
        ("code-short", "validation-error", ["body", "code"]),
        ("before-1900", "invalid-movement", ["body", "value_time"]),
        ("year-2200", "invalid-movement", ["body", "value_time"]),
        ("2200-by-offset", "invalid-movement", ["body", "value_time"]),
        ("year-1", "validation-error", ["body", "value_time"]),
        ("year-9999", "validation-error", ["body", "value_time"]),
        ("garbage-time", "validation-error", ["body", "value_time"]),
        ("unix-seconds", "validation-error", ["body", "value_time"]),
        ("unix-seconds-text", "validation-error", ["body", "value_time"]),
        ("unknown-field", "validation-error", ["body", "colour"]),
        ("bad-uuid", "validation-error", ["body", "from_account_id"]),
        ("long-description", "validation-error", ["body", "description"]),
        ("nul-description", "validation-error", ["body", "description"]),
        ("newline-description", "validation-error", ["body", "description"]),
        ("cr-description", "validation-error", ["body", "description"]),
    ],
)
async def test_bad_movement_is_rejected(client, auth, db, case, slug, loc):
    h = auth["headers"]
    gbp = await account(client, h, "Equity:Capital")
    bank = await account(client, h, "Asset:Bank")
    usd = await account(client, h, "Asset:Dollars", "USD")
    fine = await account(client, h, "Asset:Fine", "GBP", exponent=-3)
    yen = await account(client, h, "Asset:Yen", "JPY")
    yen_equity = await account(client, h, "Equity:Yen", "JPY")
    await move(client, h, gbp, bank, "10.00", value_time="2025-01-01T00:00:00Z")
    base = _m(gbp, bank, "1.00")
    payload = {
        "same": _m(bank, bank, "1.00"),
        "currency": _m(bank, usd, "1.00"),
        "exponent": _m(bank, fine, "1.00"),
        "zero": {**base, "amount": "0.00"},
        "zero-int": {**base, "amount": "0"},
        "negative": {**base, "amount": "-1.00"},
        "decimals-gbp": {**base, "amount": "1.001"},
        "decimals-jpy": _m(yen_equity, yen, "1.5"),
        "too-large": {**base, "amount": "99999999999999999999.99"},
        "number": {**base, "amount": 1.5},
        "int-number": {**base, "amount": 1},
        "letters": {**base, "amount": "abc"},
        "thousands": {**base, "amount": "1,000.00"},
        "exponent-notation": {**base, "amount": "1e3"},
        "space": {**base, "amount": " 1.00"},
        "empty": {**base, "amount": ""},
        "nan": {**base, "amount": "NaN"},
        "trailing-newline": {**base, "amount": "1.00\n"},
        "arabic-indic-digits": {**base, "amount": "\u0661\u0660"},  # ١٠
        "plus": {**base, "amount": "+1.00"},
        "missing": {k: v for k, v in base.items() if k != "amount"},
        "code-dash": {**base, "code": "PMNT-RCDT"},
        "code-lower": {**base, "code": "pmnt:rcdt:book"},
        "code-short": {**base, "code": "PMNT:RCDT"},
        "before-1900": {**base, "value_time": "1899-12-31T23:59:59Z"},
        "year-2200": {**base, "value_time": "2200-01-01T00:00:00Z"},
        "2200-by-offset": {**base, "value_time": "2199-12-31T23:00:00-02:00"},
        "year-1": {**base, "value_time": "0001-01-01T00:00:00+01:00"},
        "year-9999": {**base, "value_time": "9999-12-31T23:59:59-01:00"},
        "garbage-time": {**base, "value_time": "yesterday"},
        # Pydantic alone reads a number as seconds since 1970: 2025-01-01 would be recorded.
        "unix-seconds": {**base, "value_time": 1735689600},
        "unix-seconds-text": {**base, "value_time": "1735689600"},
        "unknown-field": {**base, "colour": "blue"},
        "bad-uuid": {**base, "from_account_id": "not-a-uuid"},
        "long-description": {**base, "description": "x" * 501},
        "nul-description": {**base, "description": "a\x00b"},  # PostgreSQL cannot store NUL
        "newline-description": {**base, "description": "a\nb"},  # the journal cannot write it
        "cr-description": {**base, "description": "a\rb"},
    }[case]
    before = await snapshot(client, h)
    before_rows = await row_counts(db)
    response = await client.post("/movements", json=payload, headers=h)
    body = validation(response, slug)
    assert error_locs(body) == [loc]
    assert await snapshot(client, h) == before
    assert await row_counts(db) == before_rows


async def test_edges_of_the_value_time_range_are_accepted(client, auth):
    h = auth["headers"]
    a = await account(client, h, "Equity:Capital")
    b = await account(client, h, "Asset:Bank")
    first = await move(client, h, a, b, "1.00", value_time="1900-01-01T00:00:00Z")
    last = await move(client, h, a, b, "2.00", value_time="2199-12-31T23:59:59.999999Z")
    assert first["value_time"] == "1900-01-01T00:00:00Z"
    assert last["value_time"] == "2199-12-31T23:59:59.999999Z"
    assert await _balance(client, h, b, at="1900-01-01T00:00:00Z") == "1.00"
    assert await _balance(client, h, b, at="2199-12-31T23:59:59.999999Z") == "3.00"


async def test_unknown_account_is_not_found(client, auth, db):
    h = auth["headers"]
    bank = await account(client, h, "Asset:Bank")
    before = await row_counts(db)
    missing = str(uuid.uuid4())
    for payload in (
        {"from_account_id": missing, "to_account_id": bank["id"], "amount": "1.00"},
        {"from_account_id": bank["id"], "to_account_id": missing, "amount": "1.00"},
    ):
        response = await client.post("/movements", json=payload, headers=h)
        body = problem(response, 404, "account-not-found")
        assert missing in body["detail"]
    assert await row_counts(db) == before


# ------------------------------------------------------------------------------------ listing


def _newest_first(moves: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(moves, key=lambda m: (parse_ts(m["value_time"]), m["id"]), reverse=True)


async def _page(client, h, acc, **params) -> dict[str, Any]:
    response = await client.get(f"/accounts/{acc['id']}/movements", params=params, headers=h)
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"movements", "total_count", "next_cursor"}
    assert body["total_count"] >= len(body["movements"])
    return body


async def _ledger_of_25(client, h) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """25 movements in and out of one account, some sharing a value time (the id breaks the
    tie), plus movements between other accounts that must never appear."""
    bank = await account(client, h, "Asset:Bank")
    other = await account(client, h, "Equity:Capital")
    third = await account(client, h, "Expense:Food")
    start = datetime(2025, 1, 1, 12, tzinfo=UTC)
    recorded = []
    for i in range(25):
        # Value times out of order; every fifth shares its value time with the one before.
        when = start + timedelta(days=((i - 1 if i % 5 == 4 else i) * 7) % 25)
        src, dst = (other, bank) if i % 3 else (bank, other)
        recorded.append(
            await move(
                client, h, src, dst, f"{i + 1}.00", value_time=when.isoformat(), description=str(i)
            )
        )
        await move(client, h, other, third, "0.50", value_time=when.isoformat())
    return bank, recorded


async def test_listing_pages_cover_everything_once(client, auth):
    h = auth["headers"]
    bank, recorded = await _ledger_of_25(client, h)
    expected = _newest_first(recorded)
    full = await _page(client, h, bank, limit=500)
    assert full["movements"] == expected
    assert full["next_cursor"] is None
    default = await _page(client, h, bank)  # default limit 50
    assert default["movements"] == expected

    walked, sizes, cursor = [], [], None
    while True:
        params = {"limit": 10} if cursor is None else {"limit": 10, "cursor": cursor}
        page = await _page(client, h, bank, **params)
        assert page["total_count"] == len(expected)
        walked += page["movements"]
        sizes.append(len(page["movements"]))
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sizes == [10, 10, 5]
    assert walked == expected
    assert len({m["id"] for m in walked}) == 25

    # A page size that divides the total: the last full page has no cursor.
    sizes, cursor = [], None
    while True:
        params = {"limit": 5} if cursor is None else {"limit": 5, "cursor": cursor}
        page = await _page(client, h, bank, **params)
        assert page["total_count"] == 25  # all of them, on every page
        sizes.append(len(page["movements"]))
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sizes == [5] * 5

    ones = []
    cursor = None
    for _ in range(25):
        params = {"limit": 1} if cursor is None else {"limit": 1, "cursor": cursor}
        page = await _page(client, h, bank, **params)
        ones += page["movements"]
        cursor = page["next_cursor"]
    assert cursor is None
    assert ones == expected


async def test_listing_start_end_filter(client, auth):
    h = auth["headers"]
    bank, recorded = await _ledger_of_25(client, h)
    start, end = "2025-01-05T12:00:00Z", "2025-01-15T12:00:00Z"
    expected = [
        m
        for m in _newest_first(recorded)
        if parse_ts(start) <= parse_ts(m["value_time"]) <= parse_ts(end)
    ]
    assert 3 < len(expected) < 25
    # Both bounds are inclusive: movements exactly at start and at end are in.
    assert {m["value_time"] for m in expected} >= {start, end}
    page = await _page(client, h, bank, start=start, end=end)
    assert page["movements"] == expected
    assert page["total_count"] == len(expected)
    only_start = await _page(client, h, bank, start=start)
    assert only_start["movements"] == [
        m for m in _newest_first(recorded) if parse_ts(m["value_time"]) >= parse_ts(start)
    ]
    only_end = await _page(client, h, bank, end=end)
    assert only_end["movements"] == [
        m for m in _newest_first(recorded) if parse_ts(m["value_time"]) <= parse_ts(end)
    ]
    # Filter and paging together.
    walked, cursor = [], None
    while True:
        params = {"start": start, "end": end, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await _page(client, h, bank, **params)
        assert page["total_count"] == len(expected)
        walked += page["movements"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert walked == expected
    empty = await _page(client, h, bank, start="2030-01-01T00:00:00Z")
    assert empty == {"movements": [], "total_count": 0, "next_cursor": None}
    backwards = await client.get(
        f"/accounts/{bank['id']}/movements", params={"start": end, "end": start}, headers=h
    )
    problem(backwards, 400, "invalid-date-range")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "!!!!",
        _b64(b"hello"),
        _b64(b"2025-01-01T00:00:00+00:00|not-a-uuid"),
        _b64(b"2025-01-01T00:00:00|" + str(uuid.UUID(int=1)).encode()),  # no zone
        _b64(b"yesterday|" + str(uuid.UUID(int=1)).encode()),
        _b64(b"2025-01-01T00:00:00+00:00|" + str(uuid.UUID(int=1)).encode() + b"|x"),
        _b64(b"\xff\xfe"),
    ],
)
async def test_invalid_cursor(client, auth, cursor):
    h = auth["headers"]
    bank = await account(client, h, "Asset:Bank")
    response = await client.get(
        f"/accounts/{bank['id']}/movements", params={"cursor": cursor}, headers=h
    )
    problem(response, 400, "invalid-cursor")


@pytest.mark.parametrize("limit", ["0", "501", "-1", "ten", "1.5"])
async def test_limit_out_of_range(client, auth, limit):
    h = auth["headers"]
    bank = await account(client, h, "Asset:Bank")
    response = await client.get(
        f"/accounts/{bank['id']}/movements", params={"limit": limit}, headers=h
    )
    assert error_locs(validation(response)) == [["query", "limit"]]

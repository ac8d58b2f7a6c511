"""Accounts over HTTP: creation and path parsing, defaults, every rejection (with nothing
recorded), listing filters, balances on GET, deletion, and isolation between users."""

from __future__ import annotations

import uuid

import pytest

from conftest import register_and_login
from ledger.api_helpers import (
    UUID,
    error_locs,
    now,
    parse_ts,
    problem,
    row_counts,
    snapshot,
    validation,
)
from ledger.factories import account, move

ACCOUNT_FIELDS = {
    "id",
    "full_path",
    "account_type",
    "product",
    "account_id",
    "address",
    "is_pending",
    "currency",
    "exponent",
    "annual_interest_rate",
    "name",
    "balance",
    "created_at",
}


@pytest.mark.parametrize(
    ("path", "account_type", "product", "account_id", "address", "pending"),
    [
        ("Asset:Bank", "Asset", "Bank", None, None, False),
        ("Liability:Mortgage:Home", "Liability", "Mortgage", "Home", None, False),
        ("Equity:Opening:Balances:Main", "Equity", "Opening", "Balances", "Main", False),
        ("Income:Salary:Acme:Pending", "Income", "Salary", "Acme", "Pending", True),
        ("Expense:Food.Drink:shop-1:a_b", "Expense", "Food.Drink", "shop-1", "a_b", False),
        ("Liability:Savings:0001", "Liability", "Savings", "0001", None, False),
    ],
)
async def test_create_parses_path(
    client, auth, path, account_type, product, account_id, address, pending
):
    before = now()
    response = await client.post(
        "/accounts", json={"full_path": path, "currency": "GBP"}, headers=auth["headers"]
    )
    after = now()
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == ACCOUNT_FIELDS
    assert UUID.match(body["id"])
    assert before <= parse_ts(body["created_at"]) <= after
    assert {k: v for k, v in body.items() if k not in ("id", "created_at")} == {
        "full_path": path,
        "account_type": account_type,
        "product": product,
        "account_id": account_id,
        "address": address,
        "is_pending": pending,
        "currency": "GBP",
        "exponent": -2,
        "annual_interest_rate": None,
        "name": None,
        "balance": "0.00",
    }
    got = await client.get(f"/accounts/{body['id']}", headers=auth["headers"])
    assert got.status_code == 200
    assert got.json() == body


async def test_pending_only_as_address(client, auth):
    """`Pending` marks a pending account only in the Address segment."""
    h = auth["headers"]
    as_product = await account(client, h, "Asset:Pending:X")
    as_id = await account(client, h, "Asset:Bank:Pending")
    lower = await account(client, h, "Asset:Bank:X:pending")
    real = await account(client, h, "Asset:Bank:X:Pending")
    assert [a["is_pending"] for a in (as_product, as_id, lower, real)] == [
        False,
        False,
        False,
        True,
    ]


@pytest.mark.parametrize(
    ("currency", "exponent", "balance"),
    [("GBP", -2, "0.00"), ("USD", -2, "0.00"), ("JPY", 0, "0"), ("BHD", -3, "0.000")],
)
async def test_exponent_defaults_to_minor_unit(client, auth, currency, exponent, balance):
    body = await account(client, auth["headers"], "Asset:Cash", currency)
    assert (body["currency"], body["exponent"], body["balance"]) == (currency, exponent, balance)


@pytest.mark.parametrize(("exponent", "balance"), [(0, "0"), (-3, "0.000"), (-18, "0." + "0" * 18)])
async def test_explicit_exponent(client, auth, exponent, balance):
    body = await account(client, auth["headers"], "Asset:Cash", "GBP", exponent=exponent)
    assert (body["exponent"], body["balance"]) == (exponent, balance)


async def test_interest_rate_and_name(client, auth):
    h = auth["headers"]
    body = await account(
        client, h, "Asset:Bank:Savings", annual_interest_rate="0.045", name="Easy saver"
    )
    assert body["annual_interest_rate"] == "0.045"
    assert body["name"] == "Easy saver"
    fine = await account(client, h, "Asset:Bank:Fine", annual_interest_rate="0.0000000001")
    assert fine["annual_interest_rate"] == "0.0000000001"
    zeros = await account(client, h, "Asset:Bank:Zeros", annual_interest_rate="0.04500000000000")
    assert zeros["annual_interest_rate"] == "0.045"  # 14 places, but only 3 significant
    loan = await account(client, h, "Liability:Loan", annual_interest_rate="-0.5")
    assert loan["annual_interest_rate"] == "-0.5"
    spaced = await account(client, h, "Asset:Bank:Spaced", name="Joint  account\tno. 2")
    assert spaced["name"] == "Joint  account\tno. 2"
    listed = await client.get("/accounts", headers=h)
    rates = {a["full_path"]: a["annual_interest_rate"] for a in listed.json()["accounts"]}
    assert rates == {
        "Asset:Bank:Fine": "0.0000000001",
        "Asset:Bank:Savings": "0.045",
        "Asset:Bank:Spaced": None,
        "Asset:Bank:Zeros": "0.045",
        "Liability:Loan": "-0.5",
    }


async def test_interest_rate_as_json_number_is_rejected(client, auth, db):
    h = auth["headers"]
    before = await row_counts(db)
    response = await client.post(
        "/accounts",
        json={"full_path": "Asset:Bank", "currency": "GBP", "annual_interest_rate": 0.045},
        headers=h,
    )
    body = validation(response)
    assert error_locs(body) == [["body", "annual_interest_rate"]]
    assert await row_counts(db) == before


async def test_duplicate_path_conflicts(client, auth, db):
    h = auth["headers"]
    first = await account(client, h, "Asset:Bank:Current")
    before = await row_counts(db)
    again = await client.post(
        "/accounts", json={"full_path": "Asset:Bank:Current", "currency": "USD"}, headers=h
    )
    body = problem(again, 409, "account-exists")
    assert "Asset:Bank:Current" in body["detail"]
    assert await row_counts(db) == before
    listed = (await client.get("/accounts", headers=h)).json()
    assert listed == {"accounts": [first], "total_count": 1}
    # The same path is free for another user.
    other = await register_and_login(client, "bob@example.com")
    theirs = await account(client, other["headers"], "Asset:Bank:Current")
    assert theirs["id"] != first["id"]


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"full_path": "Asset", "currency": "GBP"}, id="one-segment"),
        pytest.param({"full_path": "Asset:Bank:A:B:C", "currency": "GBP"}, id="five-segments"),
        pytest.param({"full_path": "Assets:Bank", "currency": "GBP"}, id="unknown-type"),
        pytest.param({"full_path": "asset:Bank", "currency": "GBP"}, id="lower-type"),
        pytest.param({"full_path": "Asset::Bank", "currency": "GBP"}, id="empty-segment"),
        pytest.param({"full_path": "Asset:Bank:", "currency": "GBP"}, id="empty-last-segment"),
        pytest.param({"full_path": "Asset:My Bank", "currency": "GBP"}, id="space"),
        pytest.param({"full_path": " Asset:Bank", "currency": "GBP"}, id="leading-space"),
        pytest.param({"full_path": "Asset:Bank\t", "currency": "GBP"}, id="trailing-tab"),
        pytest.param({"full_path": "Asset:Bank\n", "currency": "GBP"}, id="trailing-newline"),
        pytest.param(
            {"full_path": "Asset:Bank", "currency": "GBP", "annual_interest_rate": "0.05\n"},
            id="rate-newline",
        ),
        pytest.param({"full_path": "Asset:-Bank", "currency": "GBP"}, id="dash-first"),
        pytest.param({"full_path": "Asset:" + "B" * 65, "currency": "GBP"}, id="segment-65"),
        pytest.param({"full_path": "Asset:Bank", "currency": "gbp"}, id="lower-currency"),
        pytest.param({"full_path": "Asset:Bank", "currency": "XYZ"}, id="unknown-currency"),
        pytest.param({"full_path": "Asset:Bank", "currency": "GB"}, id="short-currency"),
        pytest.param(
            {"full_path": "Asset:Bank", "currency": "GBP", "exponent": 1}, id="exponent-1"
        ),
        pytest.param(
            {"full_path": "Asset:Bank", "currency": "GBP", "exponent": -19}, id="exponent-minus-19"
        ),
        pytest.param(
            {"full_path": "Asset:Bank", "currency": "GBP", "exponent": "-2x"}, id="exponent-text"
        ),
        pytest.param(
            {"full_path": "Asset:Bank", "currency": "GBP", "annual_interest_rate": "4.5%"},
            id="rate-percent",
        ),
        pytest.param(
            {"full_path": "Asset:Bank", "currency": "GBP", "annual_interest_rate": "10"},
            id="rate-10",
        ),
        pytest.param(
            {"full_path": "Asset:Bank", "currency": "GBP", "annual_interest_rate": "0.00000000001"},
            id="rate-11-places",
        ),
        pytest.param(
            {"full_path": "Asset:Bank", "currency": "GBP", "annual_interest_rate": "NaN"},
            id="rate-nan",
        ),
        pytest.param(
            {"full_path": "Asset:Bank", "currency": "GBP", "annual_interest_rate": "-1"},
            id="rate-minus-1",
        ),
        pytest.param(
            {"full_path": "Asset:Bank", "currency": "GBP", "name": "a\x00b"}, id="name-nul"
        ),
        pytest.param(
            {"full_path": "Asset:Bank", "currency": "GBP", "name": "two\nlines"}, id="name-newline"
        ),
        pytest.param(
            {"full_path": "Asset:Bank", "currency": "GBP", "name": " padded "}, id="name-padded"
        ),
        pytest.param(
            {"full_path": "Asset:Bank", "currency": "GBP", "name": "x" * 201}, id="name-201"
        ),
        pytest.param({"full_path": "Asset:Bank\x00", "currency": "GBP"}, id="path-nul"),
        pytest.param(
            {"full_path": "Asset:Bank", "currency": "GBP", "colour": "blue"}, id="unknown-field"
        ),
        pytest.param({"full_path": "Asset:Bank"}, id="no-currency"),
        pytest.param({"currency": "GBP"}, id="no-path"),
        pytest.param({"full_path": 42, "currency": "GBP"}, id="path-number"),
    ],
)
async def test_bad_account_is_rejected(client, auth, db, payload):
    h = auth["headers"]
    await account(client, h, "Equity:Capital")
    before_rows = await row_counts(db)
    before = await snapshot(client, h)
    response = await client.post("/accounts", json=payload, headers=h)
    validation(response)
    assert await snapshot(client, h) == before
    assert await row_counts(db) == before_rows


async def test_unknown_field_is_named(client, auth):
    response = await client.post(
        "/accounts",
        json={"full_path": "Asset:Bank", "currency": "GBP", "colour": "blue"},
        headers=auth["headers"],
    )
    assert error_locs(validation(response)) == [["body", "colour"]]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"full_path": "asset:Bank", "currency": "GBP"}, "full_path"),
        ({"full_path": "Asset:My Bank", "currency": "GBP"}, "full_path"),
        ({"full_path": "Asset:Bank", "currency": "XYZ"}, "currency"),
        ({"full_path": "Asset:Bank", "currency": "GBP", "exponent": -19}, "exponent"),
        (
            {"full_path": "Asset:Bank", "currency": "GBP", "annual_interest_rate": "10"},
            "annual_interest_rate",
        ),
        (
            {
                "full_path": "Asset:Bank",
                "currency": "GBP",
                "annual_interest_rate": "0.00000000001",
            },
            "annual_interest_rate",
        ),
    ],
)
async def test_a_bad_account_field_is_named(client, auth, payload, field):
    response = await client.post("/accounts", json=payload, headers=auth["headers"])
    assert error_locs(validation(response)) == [["body", field]]


async def test_malformed_json_body(client, auth, db):
    before = await row_counts(db)
    response = await client.post(
        "/accounts",
        content=b'{"full_path": "Asset:Bank", ',
        headers={**auth["headers"], "Content-Type": "application/json"},
    )
    problem(response, 400, "malformed-body")
    assert await row_counts(db) == before


async def test_list_filters(client, auth):
    h = auth["headers"]
    paths = [
        "Asset:Bank",
        "Asset:Bank:Current",
        "Asset:Bank:Current:Pending",
        "Asset:Banking",
        "Asset:Banking:Fees",
        "Asset:B_nk",
        "Asset:bank:Other",
        "Liability:Bank:Card",
        "Expense:Food",
        "Income:Salary",
        "Equity:Capital",
    ]
    created = {p: await account(client, h, p) for p in reversed(paths)}

    async def listed(**params):
        response = await client.get("/accounts", params=params, headers=h)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"accounts", "total_count"}
        assert body["total_count"] == len(body["accounts"])
        for a in body["accounts"]:
            assert a == created[a["full_path"]]
        return [a["full_path"] for a in body["accounts"]]

    assert await listed() == sorted(paths)
    assert await listed(type="Asset") == [
        "Asset:B_nk",
        "Asset:Bank",
        "Asset:Bank:Current",
        "Asset:Bank:Current:Pending",
        "Asset:Banking",
        "Asset:Banking:Fees",
        "Asset:bank:Other",
    ]
    assert await listed(type="Liability") == ["Liability:Bank:Card"]
    assert await listed(type="Equity") == ["Equity:Capital"]
    # Prefixes match whole segments: Asset:Bank never matches Asset:Banking.
    assert await listed(prefix="Asset:Bank") == [
        "Asset:Bank",
        "Asset:Bank:Current",
        "Asset:Bank:Current:Pending",
    ]
    assert await listed(prefix="Asset:Bank:Current") == [
        "Asset:Bank:Current",
        "Asset:Bank:Current:Pending",
    ]
    assert await listed(prefix="Asset:Banking") == ["Asset:Banking", "Asset:Banking:Fees"]
    assert await listed(prefix="Asset:Ban") == []
    # Segments are case-sensitive (SQLite's LIKE is not: it matched Asset:bank:Other here).
    assert await listed(prefix="Asset:bank") == ["Asset:bank:Other"]
    assert await listed(prefix="asset:bank") == []
    # `_` and `%` are literal, not LIKE wildcards.
    assert await listed(prefix="Asset:B_nk") == ["Asset:B_nk"]
    assert await listed(prefix="Asset:B%") == []
    assert await listed(prefix="Asset", type="Liability") == []
    assert await listed(prefix="Liability", type="Liability") == ["Liability:Bank:Card"]
    assert await listed(type="Expense", prefix="Expense:Food") == ["Expense:Food"]
    assert await listed(prefix="Asset:Bank\\") == []  # a backslash is literal too

    for bad in ("Asset\x00", "Asset\n"):  # NUL would reach PostgreSQL's LIKE
        response = await client.get("/accounts", params={"prefix": bad}, headers=h)
        assert error_locs(validation(response)) == [["query", "prefix"]]

    bad = await client.get("/accounts", params={"type": "Assets"}, headers=h)
    assert error_locs(validation(bad)) == [["query", "type"]]


async def test_list_is_empty_for_new_user(client, auth):
    response = await client.get("/accounts", headers=auth["headers"])
    assert response.status_code == 200
    assert response.json() == {"accounts": [], "total_count": 0}


async def test_get_and_list_carry_current_balance(client, auth):
    h = auth["headers"]
    equity = await account(client, h, "Equity:Capital")
    bank = await account(client, h, "Asset:Bank:Current")
    await move(client, h, equity, bank, "1250.75", value_time="2025-03-01T10:00:00Z")
    await move(client, h, bank, equity, "0.80", value_time="2025-03-02T10:00:00Z")
    # A movement dated in the future is not part of the current balance.
    await move(client, h, equity, bank, "99.00", value_time="2199-01-01T00:00:00Z")
    got = await client.get(f"/accounts/{bank['id']}", headers=h)
    assert got.status_code == 200
    assert got.json() == {**bank, "balance": "1249.95"}
    listed = (await client.get("/accounts", headers=h)).json()
    assert {a["full_path"]: a["balance"] for a in listed["accounts"]} == {
        "Asset:Bank:Current": "1249.95",
        "Equity:Capital": "-1249.95",
    }


async def test_delete_unused_account(client, auth, db):
    h = auth["headers"]
    keep = await account(client, h, "Asset:Keep")
    gone = await account(client, h, "Asset:Gone")
    response = await client.delete(f"/accounts/{gone['id']}", headers=h)
    assert response.status_code == 204
    assert response.content == b""
    problem(await client.get(f"/accounts/{gone['id']}", headers=h), 404, "account-not-found")
    problem(await client.delete(f"/accounts/{gone['id']}", headers=h), 404, "account-not-found")
    listed = (await client.get("/accounts", headers=h)).json()
    assert listed == {"accounts": [keep], "total_count": 1}
    # The path is free again.
    again = await account(client, h, "Asset:Gone", "USD")
    assert again["id"] != gone["id"] and again["currency"] == "USD"
    assert (await row_counts(db))["accounts"] == 2


async def test_delete_account_in_use(client, auth, db):
    h = auth["headers"]
    equity = await account(client, h, "Equity:Capital")
    bank = await account(client, h, "Asset:Bank")
    await move(client, h, equity, bank, "10.00", value_time="2025-01-01T00:00:00Z")
    before = await snapshot(client, h)
    before_rows = await row_counts(db)
    for acc in (equity, bank):  # as source and as target
        body = problem(
            await client.delete(f"/accounts/{acc['id']}", headers=h), 409, "account-in-use"
        )
        assert body["detail"]
    assert await snapshot(client, h) == before
    assert await row_counts(db) == before_rows


async def test_other_users_account_is_not_found(client, auth, db):
    mine = auth["headers"]
    theirs = (await register_and_login(client, "eve@example.com"))["headers"]
    their_equity = await account(client, theirs, "Equity:Capital")
    their_bank = await account(client, theirs, "Asset:Bank")
    await move(client, theirs, their_equity, their_bank, "5.00", value_time="2025-01-01T00:00:00Z")
    my_equity = await account(client, mine, "Equity:Capital")
    my_bank = await account(client, mine, "Asset:Bank")
    their_before = await snapshot(client, theirs)
    my_before = await snapshot(client, mine)
    rows_before = await row_counts(db)
    missing = str(uuid.uuid4())

    for target in (their_bank["id"], missing):
        for method, url, params in [
            ("GET", f"/accounts/{target}", None),
            ("DELETE", f"/accounts/{target}", None),
            ("GET", f"/accounts/{target}/balance", None),
            (
                "GET",
                f"/accounts/{target}/daily-balances",
                {"start_date": "2025-01-01", "end_date": "2025-01-02"},
            ),
            ("GET", f"/accounts/{target}/movements", None),
        ]:
            response = await client.request(method, url, params=params, headers=mine)
            problem(response, 404, "account-not-found")
        # As either end of a movement, single or batch.
        for src, dst in ((target, my_bank["id"]), (my_equity["id"], target)):
            single = await client.post(
                "/movements",
                json={"from_account_id": src, "to_account_id": dst, "amount": "1.00"},
                headers=mine,
            )
            problem(single, 404, "account-not-found")
            batch = await client.post(
                "/movements/batch",
                json={
                    "movements": [
                        {
                            "from_account_id": my_equity["id"],
                            "to_account_id": my_bank["id"],
                            "amount": "1.00",
                        },
                        {"from_account_id": src, "to_account_id": dst, "amount": "1.00"},
                    ]
                },
                headers=mine,
            )
            problem(batch, 404, "account-not-found")

    # Another user's account between two of theirs, through my token: still 404.
    cross = await client.post(
        "/movements",
        json={
            "from_account_id": their_equity["id"],
            "to_account_id": their_bank["id"],
            "amount": "1.00",
        },
        headers=mine,
    )
    problem(cross, 404, "account-not-found")
    assert await snapshot(client, theirs) == their_before
    assert await snapshot(client, mine) == my_before
    assert await row_counts(db) == rows_before


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("DELETE", ""),
        ("GET", "/balance"),
        ("GET", "/daily-balances?start_date=2025-01-01&end_date=2025-01-02"),
        ("GET", "/movements"),
    ],
)
async def test_bad_uuid_in_path(client, auth, method, suffix):
    response = await client.request(
        method, f"/accounts/not-a-uuid{suffix}", headers=auth["headers"]
    )
    body = validation(response)
    assert error_locs(body) == [["path", "account_id"]]


async def test_accounts_need_a_token(client):
    response = await client.get("/accounts")
    problem(response, 401, "invalid-token")
    assert response.headers["www-authenticate"].startswith("Bearer")

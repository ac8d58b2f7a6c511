"""Interest: exact Actual/365 accrual with the fraction carried, checked against an independent
computation with `fractions.Fraction`; direction for assets and loans; idempotence."""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction
from pathlib import Path

import pytest

from conftest import PASSWORD, register_and_login, sqlite_rows
from ledger.factories import account, move
from worthline.ledger.interest import CARRY_UNITS, accrue


def _fmt(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    return f"{sign}{abs(minor) // 100}.{abs(minor) % 100:02d}"


def _expected_postings(balance: int, rate: str, days: int) -> list[int]:
    """Independent model: daily compounding of whole minor units, remainder carried exactly."""
    carry = Fraction(0)
    out = []
    for _ in range(days):
        total = carry + Fraction(balance) * Fraction(rate) / 365
        posted = int(total)  # truncation towards zero
        carry = total - posted
        balance += posted
        out.append(posted)
    return out


@pytest.mark.parametrize(
    ("balance", "rate"),
    [(100_000, "0.05"), (-25_000_000, "0.0399"), (1, "0.045"), (123_456_789, "0.0000000001")],
)
def test_accrue_matches_fraction_model(balance, rate):
    from decimal import Decimal

    carry, posted_all = 0, []
    for _ in range(400):
        posted, carry = accrue(balance, Decimal(rate), carry)
        posted_all.append(posted)
        balance += posted
        assert abs(carry) < CARRY_UNITS
    assert posted_all == _expected_postings(balance - sum(posted_all), rate, 400)


async def test_savings_earn_and_mortgage_is_charged(client, auth):
    h = auth["headers"]
    equity = await account(client, h, "Equity:Capital")
    savings = await account(client, h, "Asset:Bank:Savings", annual_interest_rate="0.05")
    mortgage = await account(client, h, "Liability:Mortgage:Home", annual_interest_rate="0.0399")
    start = date(2025, 1, 1)
    await move(client, h, equity, savings, "1000.00", value_time=f"{start}T00:00:00Z")
    await move(client, h, mortgage, equity, "250000.00", value_time=f"{start}T00:00:00Z")

    end = start + timedelta(days=59)
    run = await client.post(
        "/interest/run", json={"start_date": str(start), "end_date": str(end)}, headers=h
    )
    assert run.status_code == 200, run.text
    assert run.json()["days"] == 60 and run.json()["accounts"] == 2

    savings_posts = _expected_postings(100_000, "0.05", 60)
    mortgage_posts = _expected_postings(-25_000_000, "0.0399", 60)
    assert run.json()["movements_recorded"] == sum(1 for p in savings_posts + mortgage_posts if p)
    after = end + timedelta(days=1)
    got_savings = await client.get(
        f"/accounts/{savings['id']}/balance", params={"at": f"{after}T00:00:00Z"}, headers=h
    )
    got_mortgage = await client.get(
        f"/accounts/{mortgage['id']}/balance", params={"at": f"{after}T00:00:00Z"}, headers=h
    )
    total_savings = 100_000 + sum(savings_posts)
    total_mortgage = -25_000_000 + sum(mortgage_posts)
    assert got_savings.json()["balance"] == _fmt(total_savings)
    assert got_mortgage.json()["balance"] == _fmt(total_mortgage)
    # Earned interest came from Income:Interest, charged interest went to Expense:Interest.
    accounts = (await client.get("/accounts", headers=h)).json()["accounts"]
    by_path = {a["full_path"]: a for a in accounts}
    assert by_path["Income:Interest"]["balance"] == _fmt(-sum(savings_posts))
    assert by_path["Expense:Interest"]["balance"] == _fmt(-sum(mortgage_posts))
    movements = await client.get(f"/accounts/{savings['id']}/movements", headers=h)
    assert {m["code"] for m in movements.json()["movements"][:-1]} == {"LDAS:FTDP:INTR"}

    # Idempotent: the same range again, and an overlapping one, add nothing for done days.
    again = await client.post(
        "/interest/run", json={"start_date": str(start), "end_date": str(end)}, headers=h
    )
    assert again.json()["movements_recorded"] == 0
    same = await client.get(
        f"/accounts/{savings['id']}/balance", params={"at": f"{after}T00:00:00Z"}, headers=h
    )
    assert same.json()["balance"] == got_savings.json()["balance"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"date": "2025-01-01", "start_date": "2025-01-01", "end_date": "2025-01-02"},
        {"start_date": "2025-02-01", "end_date": "2025-01-01"},
        {"start_date": "2000-01-01", "end_date": "2020-01-01"},
        {"date": "2999-01-01"},
        {"date": "not-a-date"},
        {"date": 0},  # not 1970-01-01
    ],
)
async def test_interest_run_rejects_bad_ranges(client, auth, body):
    response = await client.post("/interest/run", json=body, headers=auth["headers"])
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_reimported_ledger_does_not_post_interest_twice(client, auth):
    """Accrual records do not travel in a journal; the interest movements that do must still
    mark their days as accrued."""
    h = auth["headers"]
    equity = await account(client, h, "Equity:Capital")
    savings = await account(client, h, "Asset:Bank:Savings", annual_interest_rate="0.05")
    await move(client, h, equity, savings, "10000.00", value_time="2025-01-01T00:00:00Z")
    run = {"start_date": "2025-01-01", "end_date": "2025-01-10"}
    first = await client.post("/interest/run", json=run, headers=h)
    assert first.json()["movements_recorded"] == 10
    journal = (await client.get("/journal/export", headers=h)).text

    other = await register_and_login(client, "copy@example.com")
    imported = await client.post(
        "/journal/import",
        content=journal,
        headers={**other["headers"], "Content-Type": "text/plain"},
    )
    assert imported.status_code == 200, imported.text
    again = await client.post("/interest/run", json=run, headers=other["headers"])
    assert again.json()["movements_recorded"] == 0
    assert (await client.get("/journal/export", headers=other["headers"])).text == journal


async def test_one_currency_in_three_exponents_gets_three_interest_accounts(client, auth):
    """Interest goes to an account of the same currency and exponent: `Income:Interest`, else
    `Income:Interest:GBP`, else `Income:Interest:GBP:E4`; when all three hold others, a 409
    problem (it was a 500) and nothing accrued."""
    h = auth["headers"]
    for exponent in (-2, -3, -4):
        equity = await account(client, h, f"Equity:E{-exponent}", exponent=exponent)
        savings = await account(
            client, h, f"Asset:Save{-exponent}", exponent=exponent, annual_interest_rate="0.5"
        )
        await move(client, h, equity, savings, "1000", value_time="2025-05-01T00:00:00Z")
    run = await client.post("/interest/run", json={"date": "2025-05-01"}, headers=h)
    assert run.status_code == 200, run.text
    assert run.json()["movements_recorded"] == 3
    listed = (await client.get("/accounts", params={"prefix": "Income"}, headers=h)).json()
    assert {(a["full_path"], a["exponent"]) for a in listed["accounts"]} == {
        ("Income:Interest", -2),
        ("Income:Interest:GBP", -3),
        ("Income:Interest:GBP:E4", -4),
    }
    # 1000 × 0.5 / 365 = 1.369863… a day, whole minor units posted into each account.
    balances = {
        a["full_path"]: a["balance"]
        for a in (await client.get("/accounts", params={"prefix": "Asset"}, headers=h)).json()[
            "accounts"
        ]
    }
    assert balances == {
        "Asset:Save2": "1001.36",
        "Asset:Save3": "1001.369",
        "Asset:Save4": "1001.3698",
    }

    other = await register_and_login(client, "taken@example.com")
    oh = other["headers"]
    for path in ("Income:Interest", "Income:Interest:GBP", "Income:Interest:GBP:E2"):
        await account(client, oh, path, "USD")
    equity = await account(client, oh, "Equity:Capital")
    savings = await account(client, oh, "Asset:Savings", annual_interest_rate="0.05")
    await move(client, oh, equity, savings, "1000.00", value_time="2025-05-01T00:00:00Z")
    refused = await client.post("/interest/run", json={"date": "2025-05-01"}, headers=oh)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/interest-account-taken")
    assert "Income:Interest:GBP:E2" in refused.json()["detail"]
    got = await client.get(f"/accounts/{savings['id']}", headers=oh)
    assert got.json()["balance"] == "1000.00"


def test_the_interest_command_keeps_the_api_limits_and_goes_on_past_a_failing_user(
    cli, tmp_path: Path
):
    assert cli("db", "upgrade").exit_code == 0
    journals = {
        # Every interest account this user's GBP could use holds USD: its run fails.
        "blocked@example.com": "".join(
            f"2025-01-01 open {path} USD\n"
            for path in ("Income:Interest", "Income:Interest:GBP", "Income:Interest:GBP:E2")
        ),
        "fine@example.com": "",
    }
    for email, opens in journals.items():
        assert cli("users", "create", email, "--password", PASSWORD).exit_code == 0
        journal = tmp_path / f"{email}.goluca"
        journal.write_text(
            opens + "2025-01-01 open Asset:Savings GBP\n  interest-rate: 0.05\n\n"
            "2025-01-01 * Deposit\n  Equity:Capital -> Asset:Savings 1000.00 GBP\n"
        )
        imported = cli("journal", "import", str(journal), "--user", email)
        assert imported.exit_code == 0, imported.output

    for args in (("--from", "1000-01-01", "--to", "1000-01-02"), ("--date", "2999-01-01")):
        refused = cli("interest", "run", *args)
        assert refused.exit_code == 2, refused.output
    assert "dates start in 1900" in cli("interest", "run", "--date", "1899-12-31").output

    result = cli("interest", "run", "--from", "2025-01-01", "--to", "2025-01-10")
    assert result.exit_code == 1, result.output
    assert "interest-account-taken" not in result.output  # the detail, in words
    assert "Rename one of them" in result.output
    assert "10 movements recorded" in result.output  # the other user's ten days
    interest = sqlite_rows(
        tmp_path / "cli.db",
        "SELECT count(*) FROM movements WHERE code = 'LDAS:FTDP:INTR'",
    )
    assert interest == [(10,)]

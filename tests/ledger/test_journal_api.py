"""The journal over HTTP: importing JOURNAL.md's example, export → import → export byte
identity, and bad journals (syntax deep in a large file, encoding, content type, decimals,
commodities) that record nothing."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from conftest import register_and_login
from ledger.api_helpers import all_movements, problem, row_counts, snapshot
from ledger.examples import EXAMPLE
from ledger.factories import account, move


async def _import(client, headers, text: str | bytes, content_type: str = "text/plain"):
    body = text.encode() if isinstance(text, str) else text
    return await client.post(
        "/journal/import", content=body, headers={**headers, "Content-Type": content_type}
    )


async def _export(client, headers) -> bytes:
    response = await client.get("/journal/export", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["content-disposition"] == 'attachment; filename="worthline.goluca"'
    return response.content


def _by_path(accounts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {a["full_path"]: a for a in accounts}


async def test_import_example(client, auth):
    h = auth["headers"]
    response = await _import(client, h, EXAMPLE)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"accounts_created": 6, "movements_recorded": 4}

    listed = (await client.get("/accounts", headers=h)).json()
    assert listed["total_count"] == 6
    accounts = _by_path(listed["accounts"])
    shape = {
        path: {
            k: a[k]
            for k in (
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
            )
        }
        for path, a in accounts.items()
    }

    def acc(kind, product, account_id, balance, rate=None):
        return {
            "account_type": kind,
            "product": product,
            "account_id": account_id,
            "address": None,
            "is_pending": False,
            "currency": "GBP",
            "exponent": -2,
            "annual_interest_rate": rate,
            "name": None,
            "balance": balance,
        }

    assert shape == {
        "Asset:Bank:Current": acc("Asset", "Bank", "Current", "4984.50"),
        "Liability:Savings:0001": acc("Liability", "Savings", "0001", "0.00", "0.05"),
        "Equity:Capital": acc("Equity", "Capital", None, "-1000.00"),
        "Income:Salary": acc("Income", "Salary", None, "-5000.00"),
        "Expense:Tax": acc("Expense", "Tax", None, "1000.00"),
        "Expense:Food": acc("Expense", "Food", None, "15.50"),
    }
    ids = {path: a["id"] for path, a in accounts.items()}
    current = await all_movements(client, h, ids["Asset:Bank:Current"])
    salary = await all_movements(client, h, ids["Income:Salary"])
    imported_at = current[-1]["knowledge_time"]  # no %knowledge: known when imported
    assert current[0]["knowledge_time"] == imported_at
    payroll_batch = salary[0]["batch_id"]
    assert payroll_batch is not None
    strip = [{k: v for k, v in m.items() if k not in ("id", "batch_id")} for m in current]
    assert strip == [
        {
            "from_account_id": ids["Asset:Bank:Current"],
            "to_account_id": ids["Expense:Food"],
            "amount": "15.50",
            "currency": "GBP",
            "code": "PMNT:RCDT:BOOK",
            "value_time": "2026-03-01T00:00:00Z",
            "knowledge_time": imported_at,
            "description": None,
        },
        {
            "from_account_id": ids["Income:Salary"],
            "to_account_id": ids["Asset:Bank:Current"],
            "amount": "4000.00",
            "currency": "GBP",
            "code": "PMNT:RCDT:BOOK",
            "value_time": "2026-02-01T09:30:00Z",
            "knowledge_time": "2026-02-02T00:00:00Z",
            "description": "net salary",
        },
        {
            "from_account_id": ids["Equity:Capital"],
            "to_account_id": ids["Asset:Bank:Current"],
            "amount": "1000.00",
            "currency": "GBP",
            "code": "PMNT:RCDT:BOOK",
            "value_time": "2024-01-02T00:00:00Z",
            "knowledge_time": imported_at,
            "description": None,
        },
    ]
    assert current[1]["batch_id"] == payroll_batch
    assert [m["description"] for m in salary] == ["income tax", "net salary"]  # id breaks ties
    assert {m["batch_id"] for m in salary} == {payroll_batch}
    assert len({m["batch_id"] for m in current}) == 3  # three transactions, three batches

    # Bitemporal: the payroll was known on 2026-02-02, the rest only since the import.
    async def known(at_known: str) -> str:
        r = await client.get(
            f"/accounts/{ids['Asset:Bank:Current']}/balance",
            params={"known_at": at_known},
            headers=h,
        )
        return r.json()["balance"]

    assert await known("2026-02-01T23:59:59Z") == "0.00"
    assert await known("2026-02-02T00:00:00Z") == "4000.00"

    # The export is the canonical form of what was imported (BTC had no account: not kept).
    assert (await _export(client, h)).decode() == (
        "option operating-currency GBP\n"
        "2024-01-01 commodity GBP\n"
        "  exponent: -2\n"
        "2024-01-01 open Asset:Bank:Current GBP\n"
        "2024-01-01 open Liability:Savings:0001 GBP\n"
        "  interest-rate: 0.05\n"
        "2024-01-02 open Equity:Capital GBP\n"
        "2026-02-01 open Expense:Tax GBP\n"
        "2026-02-01 open Income:Salary GBP\n"
        "2026-03-01 open Expense:Food GBP\n"
        "\n"
        f"2024-01-02%{imported_at} * Opening balance\n"
        "  Equity:Capital -> Asset:Bank:Current 1000.00 GBP\n"
        "\n"
        "2026-02-01T09:30:00Z%2026-02-02 * Payroll\n"
        '  Income:Salary -> Asset:Bank:Current "net salary" 4000.00 GBP\n'
        '  +Income:Salary -> Expense:Tax "income tax" 1000.00 GBP\n'
        "  receipt: scan-001.pdf\n"
        "\n"
        f"2026-03-01%{imported_at} ! Pending invoice\n"
        "  Asset:Bank:Current -> Expense:Food 15.50 GBP\n"
    )


async def test_import_into_an_existing_ledger(client, auth):
    h = auth["headers"]
    bank = await account(client, h, "Asset:Bank:Current")
    equity = await account(client, h, "Equity:Capital")
    await move(client, h, equity, bank, "1.00", value_time="2024-01-01T00:00:00Z")
    response = await _import(client, h, EXAMPLE)
    assert response.json() == {"accounts_created": 4, "movements_recorded": 4}
    got = await client.get(f"/accounts/{bank['id']}", headers=h)
    assert got.json()["balance"] == "4985.50"
    again = await _import(client, h, EXAMPLE)  # opens of existing accounts are no-ops
    assert again.json() == {"accounts_created": 0, "movements_recorded": 4}
    got = await client.get(f"/accounts/{bank['id']}", headers=h)
    assert got.json()["balance"] == "9970.00"
    # An `open` in another commodity than the existing account's is refused.
    clash = await _import(client, h, "2024-01-01 open Asset:Bank:Current USD\n")
    body = problem(clash, 400, "journal-invalid")
    assert body["line"] == 1


def _rich_journal() -> str:
    return """\
option operating-currency GBP
2020-01-01 commodity GBP
  exponent: -2
2020-01-01 commodity SATS
  exponent: 0
2020-01-01 commodity BTC
  exponent: -8
2020-01-01 open Asset:Bank:Current:Main GBP
  name: Everyday account
  sort-code: 12-34-56
2020-01-01 open Asset:Bank:Savings:Easy GBP
  interest-rate: 0.0425
2020-01-01 open Liability:Mortgage:Home GBP
  interest-rate: 0.0399
  name: Repayment mortgage
2020-01-01 open Asset:Wallet:Cold BTC
2020-01-01 open Equity:Opening:BTC BTC
alias Main Asset:Bank:Current:Main

2020-01-02T08:00:00.500+01:00%2020-01-03T10:15:30.123456Z * Opening "balances"
  Equity:Opening:Balances -> Main "start ☕ — \\"quoted\\" \\\\ back" 12,345.67 GBP
  +Equity:Opening:Balances -> Asset:Bank:Savings:Easy 500.00 GBP
  +Equity:Opening:BTC -> Asset:Wallet:Cold 0.12345678 BTC
  source: bank statement
  checked: yes

2020-01-02T08:00:00.500+01:00%2020-01-03T10:15:30.123456Z *
  Main -> Expense:Fees 0.01 GBP

2020-01-31 * Interest
  Liability:Mortgage:Home -> Asset:Bank:Savings:Easy "Zinsen für Jänner" 1.77 GBP
  code: LDAS:FTDP:INTR

2020-02-01%2020-01-15 ! Rent (promised before it fell due)
  Main -> Expense:Housing:Rent "日本語 ok" 950.00 GBP

2020-02-01 * Payday
  Income:Salary:Acme -> Main 3,000.00 GBP
  +Main -> Liability:Mortgage:Home "" 800.00 GBP
  +Main -> Asset:Pocket:Cash:Pending 20.00 GBP

2020-02-01 * Payday
  Income:Salary:Acme -> Main 1.00 GBP

2020-02-02 *
  Equity:Opening:Sats -> Asset:Wallet:Sats 1999 SATS
"""


async def _ledger_view(client, headers) -> dict[str, Any]:
    """A user's ledger without its ids: accounts and their movements, with accounts named by
    path and batches by their rank, so that two users' ledgers compare."""
    state = await snapshot(client, headers)
    ids = {a["id"]: a["full_path"] for a in state["accounts"]["accounts"]}
    batches: dict[str, int] = {}
    for path in sorted(state["movements"]):
        for m in state["movements"][path]:
            if m["batch_id"] is not None:
                batches.setdefault(m["batch_id"], len(batches))
    accounts = {
        a["full_path"]: {k: v for k, v in a.items() if k not in ("id", "created_at")}
        for a in state["accounts"]["accounts"]
    }
    movements = {
        path: [
            {
                **{k: v for k, v in m.items() if k not in ("id", "batch_id")},
                "from_account_id": ids[m["from_account_id"]],
                "to_account_id": ids[m["to_account_id"]],
                "batch": None if m["batch_id"] is None else batches[m["batch_id"]],
            }
            for m in moves
        ]
        for path, moves in state["movements"].items()
    }
    return {"accounts": accounts, "movements": movements, "future": state["future"]}


async def test_export_import_export_is_byte_identical(client, auth):
    h = auth["headers"]
    imported = await _import(client, h, _rich_journal())
    assert imported.status_code == 200, imported.text
    assert imported.json() == {"accounts_created": 12, "movements_recorded": 11}
    # Plus what the API records: its own accounts, a single movement and a batch.
    main = await client.get("/accounts", params={"prefix": "Asset:Bank:Current:Main"}, headers=h)
    main = main.json()["accounts"][0]
    assert main["balance"] == "13576.66"  # 12,345.67 - 0.01 - 950 + 3,000 - 800 - 20 + 1
    isa = await account(
        client, h, "Asset:Bank:ISA", name="Stocks & shares ISA", annual_interest_rate="0.001"
    )
    yen = await account(client, h, "Asset:Travel:Yen", "JPY")
    yen_equity = await account(client, h, "Equity:Opening:Yen", "JPY")
    await move(
        client,
        h,
        main,
        isa,
        "100.00",
        value_time="2021-04-06T12:34:56.789012Z",
        description='He said "hi" \\ and left — naïve café',
    )
    await move(
        client, h, yen_equity, yen, "5000", value_time="2021-04-06T12:34:56.789012Z"
    )  # same value time as the one before
    await move(
        client,
        h,
        yen,
        yen_equity,
        "1",
        value_time="2021-04-07T00:00:00.000001Z",
        description="  spaced\tout  ",
    )
    batch = await client.post(
        "/movements/batch",
        json={
            "description": "Transfer to ISA",
            "movements": [
                {
                    "from_account_id": main["id"],
                    "to_account_id": isa["id"],
                    "amount": "50.00",
                    "value_time": "2021-05-01T00:00:00Z",
                    "code": "PMNT:ICDT:STDO",
                },
                {
                    "from_account_id": main["id"],
                    "to_account_id": isa["id"],
                    "amount": "0.50",
                    "value_time": "2021-05-01T00:00:00Z",
                    "code": "PMNT:ICDT:STDO",
                    "description": "fee",
                },
            ],
        },
        headers=h,
    )
    assert batch.status_code == 201, batch.text

    first = await _export(client, h)
    assert await _export(client, h) == first  # deterministic
    text = first.decode()
    for expected in (
        "option operating-currency GBP\n",
        "2020-01-01 commodity BTC\n  exponent: -8\n",
        "2020-01-01 open Asset:Bank:Current:Main GBP\n"
        "  name: Everyday account\n"
        "  sort-code: 12-34-56\n",
        "2020-01-01 open Liability:Mortgage:Home GBP\n"
        "  interest-rate: 0.0399\n"
        "  name: Repayment mortgage\n",
        '\n2020-01-02T07:00:00.500000Z%2020-01-03T10:15:30.123456Z * Opening "balances"\n'
        '  Equity:Opening:Balances -> Asset:Bank:Current:Main "start ☕ — \\"quoted\\" '
        '\\\\ back" 12345.67 GBP\n'
        "  +Equity:Opening:Balances -> Asset:Bank:Savings:Easy 500.00 GBP\n"
        "  +Equity:Opening:BTC -> Asset:Wallet:Cold 0.12345678 BTC\n"
        "  checked: yes\n"
        "  source: bank statement\n",
        '  Liability:Mortgage:Home -> Asset:Bank:Savings:Easy "Zinsen für Jänner" 1.77 GBP\n'
        "  code: LDAS:FTDP:INTR\n",
        "\n2020-02-01%2020-01-15 ! Rent (promised before it fell due)\n"
        '  Asset:Bank:Current:Main -> Expense:Housing:Rent "日本語 ok" 950.00 GBP\n',
        '  +Asset:Bank:Current:Main -> Liability:Mortgage:Home "" 800.00 GBP\n',
        '"He said \\"hi\\" \\\\ and left — naïve café" 100.00 GBP\n',
        " * Transfer to ISA\n",
        "  code: PMNT:ICDT:STDO\n",
        "\n2021-04-07T00:00:00.000001Z%",
        '  Asset:Travel:Yen -> Equity:Opening:Yen "  spaced\tout  " 1 JPY\n',
        "2020-02-02 commodity SATS\n  exponent: 0\n",
        "\n2020-02-02%",
        "  Equity:Opening:Sats -> Asset:Wallet:Sats 1999 SATS\n",
    ):
        assert expected in text, expected

    other = await register_and_login(client, "copy@example.com")
    copied = await _import(client, other["headers"], first)
    assert copied.status_code == 200, copied.text
    assert copied.json() == {"accounts_created": 15, "movements_recorded": 16}
    second = await _export(client, other["headers"])
    assert second == first
    assert await _ledger_view(client, other["headers"]) == await _ledger_view(client, h)


async def test_export_round_trips_two_exponents_in_one_currency(client, auth):
    h = auth["headers"]
    coarse_src = await account(client, h, "Equity:Coarse")
    coarse = await account(client, h, "Asset:Coarse")
    fine_src = await account(client, h, "Equity:Fine", exponent=-3)
    fine = await account(client, h, "Asset:Fine", exponent=-3)
    await move(client, h, coarse_src, coarse, "1.25", value_time="2025-01-01T00:00:00Z")
    await move(client, h, fine_src, fine, "1.005", value_time="2025-01-01T00:00:00Z")
    first = await _export(client, h)
    other = await register_and_login(client, "copy@example.com")
    copied = await _import(client, other["headers"], first)
    assert copied.status_code == 200, copied.text
    assert await _export(client, other["headers"]) == first
    assert await _ledger_view(client, other["headers"]) == await _ledger_view(client, h)


async def test_crlf_line_endings(client, auth):
    h = auth["headers"]
    response = await _import(client, h, EXAMPLE.replace("\n", "\r\n"))
    assert response.json() == {"accounts_created": 6, "movements_recorded": 4}
    listed = _by_path((await client.get("/accounts", headers=h)).json()["accounts"])
    assert listed["Asset:Bank:Current"]["balance"] == "4984.50"
    salary = await all_movements(client, h, listed["Income:Salary"]["id"])
    assert [m["description"] for m in salary] == ["income tax", "net salary"]


async def test_export_of_an_empty_ledger(client, auth):
    assert await _export(client, auth["headers"]) == b"option operating-currency GBP\n"
    other = await register_and_login(client, "empty@example.com")
    response = await _import(client, other["headers"], b"option operating-currency GBP\n")
    assert response.json() == {"accounts_created": 0, "movements_recorded": 0}


# ------------------------------------------------------------------------------- bad journals


def _big_journal(lines: int, last: str) -> bytes:
    """A journal of exactly `lines` lines whose last line is `last`."""
    out = [
        "2024-01-01 open Asset:Bank:Current GBP",
        "2024-01-01 open Equity:Capital GBP",
    ]
    start = date(2024, 1, 2)
    i = 0
    while len(out) + 2 <= lines - 2:
        day = start + timedelta(days=i // 100)  # ~450 days: all before today
        out.append(f"{day} * T{i}")
        out.append(f"  Equity:Capital -> Asset:Bank:Current {i % 997 + 1}.{i % 100:02d} GBP")
        i += 1
    if len(out) < lines - 2:
        out.append("; padding")
    out.append(f"{start} * Last")
    out.append(last)
    assert len(out) == lines
    return ("\n".join(out) + "\n").encode()


@pytest.mark.parametrize(
    ("last", "column", "words"),
    [
        ("  Equity:Capital => Asset:Bank:Current 1.00 GBP", 18, "arrow"),
        ("  Equity:Capital -> Asset:Bank:Current 1.00 USD", 1, "USD"),
    ],
)
async def test_error_on_line_90000_records_nothing(client, auth, db, last, column, words):
    h = auth["headers"]
    before = await row_counts(db)
    assert before == {"accounts": 0, "movements": 0, "movement_batches": 0, "balances_live": 0}
    response = await _import(client, h, _big_journal(90_000, last))
    body = problem(response, 400, "journal-invalid")
    assert body["line"] == 90_000
    assert body["column"] == column
    assert words in body["detail"]
    assert body["detail"].startswith(f"line 90000, column {column}: ")
    assert await row_counts(db) == before
    assert (await client.get("/accounts", headers=h)).json() == {
        "accounts": [],
        "total_count": 0,
    }
    assert await _export(client, h) == b"option operating-currency GBP\n"


async def test_large_journal_imports(client, auth):
    """The same 90,000 lines without the error: the import is whole."""
    h = auth["headers"]
    ok = _big_journal(90_000, "  Equity:Capital -> Asset:Bank:Current 1.00 GBP")
    response = await _import(client, h, ok)
    assert response.status_code == 200, response.text
    count = (90_000 - 2) // 2
    assert response.json() == {"accounts_created": 2, "movements_recorded": count}
    expected = sum((i % 997 + 1) * 100 + i % 100 for i in range(count - 1)) + 100
    listed = _by_path((await client.get("/accounts", headers=h)).json()["accounts"])
    shown = f"{expected // 100}.{expected % 100:02d}"
    assert listed["Asset:Bank:Current"]["balance"] == shown
    assert listed["Equity:Capital"]["balance"] == "-" + shown


@pytest.mark.parametrize(
    "content_type", ["application/json", "text/csv", "application/octet-stream", ""]
)
async def test_wrong_content_type(client, auth, db, content_type):
    before = await row_counts(db)
    response = await client.post(
        "/journal/import",
        content=EXAMPLE.encode(),
        headers={**auth["headers"], "Content-Type": content_type},
    )
    problem(response, 415, "unsupported-media-type")
    assert await row_counts(db) == before


async def test_text_plain_with_charset_is_accepted(client, auth):
    response = await _import(client, auth["headers"], EXAMPLE, "Text/Plain; charset=utf-8")
    assert response.json() == {"accounts_created": 6, "movements_recorded": 4}


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff\xfe",
        "2024-01-02 * caf\u00e9\n".encode("latin-1") + b"  Equity:A -> Asset:B 1.00 GBP\n",
        EXAMPLE.encode() + b"\n2024-01-02 * T\n  Equity:A -> Asset:B 1.00 GBP \xc3\n",
        EXAMPLE.encode() + b"\xe2\x82",  # truncated multi-byte character at the very end
    ],
)
async def test_invalid_utf8(client, auth, db, raw):
    before = await row_counts(db)
    response = await _import(client, auth["headers"], raw)
    problem(response, 400, "journal-not-utf8")
    assert await row_counts(db) == before


async def test_too_many_decimals_names_the_line(client, auth, db):
    h = auth["headers"]
    before = await row_counts(db)
    text = (
        "2024-01-01 open Asset:Bank GBP\n"
        "2024-01-02 * ok\n"
        "  Equity:Capital -> Asset:Bank 1.00 GBP\n"
        "2024-01-03 * too fine\n"
        "  Equity:Capital -> Asset:Bank 1.001 GBP\n"
    )
    body = problem(await _import(client, h, text), 400, "journal-invalid")
    assert (body["line"], body["column"]) == (5, 32)
    assert "1.001" in body["detail"] and "GBP" in body["detail"]
    yen = "2024-01-02 * yen\n  Equity:Capital -> Asset:Cash 1.5 JPY\n"
    body = problem(await _import(client, h, yen), 400, "journal-invalid")
    assert (body["line"], body["column"]) == (2, 32)
    declared = (
        "2024-01-01 commodity SATS\n"
        "  exponent: 0\n"
        "2024-01-02 * sats\n"
        "  Equity:Capital -> Asset:Cash 19.99 SATS\n"
    )
    body = problem(await _import(client, h, declared), 400, "journal-invalid")
    assert (body["line"], body["column"]) == (4, 32)
    assert await row_counts(db) == before


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            "2024-01-01 open Asset:Bank GBP\n"
            "2024-01-02 * fine\n"
            "  Equity:Capital -> Asset:Bank 1.00 GBP\n"
            "2024-01-03 * dollars\n"
            "  Equity:Dollars -> Asset:Bank 1.00 USD\n",
            5,
        ),
        (  # created on first use in GBP, then used in USD
            "2024-01-02 * fine\n"
            "  Equity:Capital -> Asset:Bank 1.00 GBP\n"
            "\n"
            "2024-01-03 * dollars\n"
            "  Equity:Capital -> Asset:Dollars 1.00 USD\n",
            5,
        ),
        (
            "2024-01-01 open Asset:Bank GBP\n2024-01-01 open Asset:Multi GBP,USD\n",
            2,
        ),
    ],
)
async def test_account_in_two_commodities(client, auth, db, text, line):
    before = await row_counts(db)
    body = problem(await _import(client, auth["headers"], text), 400, "journal-invalid")
    assert body["line"] == line
    assert isinstance(body["column"], int) and body["column"] >= 1
    assert await row_counts(db) == before


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("2024-01-02 * x\n  Asset:A -> Asset:A 1.00 GBP\n", 2, 14),
        ("2024-01-02 * x\n  Asset:A -> Asset:B 0.00 GBP\n", 2, 22),
        ("2024-01-02 * x\n  Asset:A -> Asset:B -1.00 GBP\n", 2, 22),
        ("2024-01-02 * x\n  Assets:A -> Asset:B 1.00 GBP\n", 2, 3),
        ("2024-01-02 * x\n", 1, 1),
        ("1899-12-31 * x\n  Asset:A -> Asset:B 1.00 GBP\n", 1, 1),
        ("2024-01-02 * x\n  Asset:A -> Asset:B 1.00 GBP\n  code: PMNT-RCDT\n", 3, 9),
        ("2024-01-02 * x\n  Asset:A -> Asset:B 1.00 GBP\n  Asset:A\n", 3, 10),
    ],
)
async def test_bad_journal_lines(client, auth, db, text, line, column):
    before = await row_counts(db)
    body = problem(await _import(client, auth["headers"], text), 400, "journal-invalid")
    assert (body["line"], body["column"]) == (line, column), body
    assert await row_counts(db) == before


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ('2024-01-02 * x\n  Asset:A -> Asset:C "a\x00b" 1.00 GBP\n', 2, 24),
        ("2024-01-02 * x\x00y\n  Asset:A -> Asset:C 1.00 GBP\n", 1, 15),
        ("2024-01-02 * x\n  Asset:A -> Asset:C 1.00 GBP\n  k: a\x00b\n", 3, 7),
        ("2024-01-01 open Asset:Q GBP\n  name: a\x00b\n", 2, 10),
        ("2024-01-02 * x\n  Asset:A -> Asset:C 1.00 GBP\x00", 2, 30),  # no final newline
        ('2024-01-02 * x\n  Asset:A -> Asset:C "a\rb" 1.00 GBP\n', 2, 24),
        ("2024-01-02 * x\ry\r\n  Asset:A -> Asset:C 1.00 GBP\r\n", 1, 15),
    ],
)
async def test_nul_and_stray_carriage_return(client, auth, db, text, line, column):
    """NUL cannot be stored by PostgreSQL, and a carriage return inside a line cannot be
    exported again: both are refused with their place, and nothing is recorded."""
    before = await row_counts(db)
    body = problem(await _import(client, auth["headers"], text), 400, "journal-invalid")
    assert (body["line"], body["column"]) == (line, column), body
    assert await row_counts(db) == before


@pytest.mark.parametrize("rate", ["NaN", "sNaN", "1e-20", "0.00000000001", "abc", "10", "-1"])
async def test_bad_interest_rate_in_journal(client, auth, db, rate):
    before = await row_counts(db)
    text = f"2024-01-01 open Asset:Q GBP\n  interest-rate: {rate}\n"
    body = problem(await _import(client, auth["headers"], text), 400, "journal-invalid")
    assert body["line"] == 1
    assert "interest" in body["detail"]
    assert await row_counts(db) == before


async def test_journal_needs_a_token(client):
    response = await client.post(
        "/journal/import", content=EXAMPLE.encode(), headers={"Content-Type": "text/plain"}
    )
    problem(response, 401, "invalid-token")
    problem(await client.get("/journal/export"), 401, "invalid-token")


async def test_export_is_per_user(client, auth):
    await _import(client, auth["headers"], EXAMPLE)
    other = await register_and_login(client, "other@example.com")
    assert await _export(client, other["headers"]) == b"option operating-currency GBP\n"
    assert (await snapshot(client, other["headers"]))["accounts"]["total_count"] == 0

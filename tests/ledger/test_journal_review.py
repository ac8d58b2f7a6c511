"""Journal import and export, as a review found them wanting: undeclared commodities, knowledge
times, text limits, accounts of one currency in several exponents, batches split over several
transactions, and how the CLI and HTTP read the file. Each bad journal records nothing."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from conftest import register_and_login
from ledger.api_helpers import all_movements, problem, row_counts
from ledger.factories import account, move
from worthline.ledger.models import Account, Batch


async def _import(client, headers, text: str | bytes):
    body = text.encode() if isinstance(text, str) else text
    return await client.post(
        "/journal/import", content=body, headers={**headers, "Content-Type": "text/plain"}
    )


async def _export(client, headers) -> bytes:
    response = await client.get("/journal/export", headers=headers)
    assert response.status_code == 200, response.text
    return response.content


async def _accounts(client, headers) -> dict[str, dict[str, Any]]:
    listed = (await client.get("/accounts", headers=headers)).json()["accounts"]
    return {a["full_path"]: a for a in listed}


# ------------------------------------------------------------ undeclared non-ISO commodities


async def test_an_undeclared_commodity_takes_the_default_exponent(client, auth):
    """JOURNAL.md: a commodity without a `commodity` directive has exponent -2 (an ISO 4217
    currency its minor unit), for accounts created on first use and by `open` alike."""
    h = auth["headers"]
    text = (
        "2024-01-01 open Asset:Crypto:Cold BTC\n"
        "2024-01-02 * first use\n"
        "  Equity:Crypto -> Asset:Crypto:Hot 1.50 BTC\n"
        "  +Equity:Crypto -> Asset:Crypto:Cold 0.25 BTC\n"
        "  +Equity:Yen -> Asset:Yen 100 JPY\n"
    )
    response = await _import(client, h, text)
    assert response.status_code == 200, response.text
    assert response.json() == {"accounts_created": 5, "movements_recorded": 3}
    accounts = await _accounts(client, h)
    shape = {path: (a["currency"], a["exponent"], a["balance"]) for path, a in accounts.items()}
    assert shape == {
        "Asset:Crypto:Cold": ("BTC", -2, "0.25"),
        "Asset:Crypto:Hot": ("BTC", -2, "1.50"),
        "Equity:Crypto": ("BTC", -2, "-1.75"),
        "Asset:Yen": ("JPY", 0, "100"),
        "Equity:Yen": ("JPY", 0, "-100"),
    }


async def test_open_without_a_commodity_is_refused(client, auth, db):
    before = await row_counts(db)
    response = await _import(client, auth["headers"], "2024-01-01 open Asset:Crypto\n")
    body = problem(response, 400, "journal-invalid")
    assert (body["line"], body["column"]) == (1, 1)
    assert "exactly one commodity" in body["detail"]
    assert await row_counts(db) == before


# ------------------------------------------------------------------- knowledge time range


@pytest.mark.parametrize(
    "knowledge",
    ["9999-12-31T23:59:59Z", "0001-01-01", "1899-12-31T23:59:59Z", "2199-12-31", "TOMORROW"],
)
async def test_a_knowledge_time_outside_1900_to_now_is_refused(client, auth, db, knowledge):
    if knowledge == "TOMORROW":
        knowledge = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    before = await row_counts(db)
    text = (
        "2024-01-02 * fine\n"
        "  Equity:Cap -> Asset:K 1.00 GBP\n"
        f"2024-01-02%{knowledge} * x\n"
        "  Equity:Cap -> Asset:K 1.00 GBP\n"
    )
    body = problem(await _import(client, auth["headers"], text), 400, "journal-invalid")
    assert (body["line"], body["column"]) == (3, 12), body
    assert "knowledge time" in body["detail"]
    assert await row_counts(db) == before


async def test_a_knowledge_time_from_1900_to_now_is_kept(client, auth):
    h = auth["headers"]
    text = (
        "1900-01-01%1900-01-01 * earliest\n"
        "  Equity:Cap -> Asset:K 1.00 GBP\n"
        "2024-01-02%2024-01-03T10:00:00Z * later\n"
        "  Equity:Cap -> Asset:K 2.00 GBP\n"
    )
    response = await _import(client, h, text)
    assert response.status_code == 200, response.text
    exported = (await _export(client, h)).decode()
    assert "\n1900-01-01%1900-01-01 * earliest\n" in exported
    assert "\n2024-01-02%2024-01-03T10:00:00Z * later\n" in exported


# ------------------------------------------------- text limits and characters, HTTP and CLI

_MOVE = "  Equity:A -> Asset:B "  # a description's opening quote is at column 23

# (journal, line, column): each as the API refuses it in a movement, batch or account
BAD_TEXT = {
    "description-501": (f'2024-01-02 * x\n{_MOVE}"{"d" * 501}" 1.00 GBP\n', 2, 524),
    "description-501-escaped": (
        f'2024-01-02 * x\n{_MOVE}"{"d" * 499}\\"\\\\" 1.00 GBP\n',
        2,
        24 + 499 + 2,
    ),
    "description-control": (f'2024-01-02 * x\n{_MOVE}"a\x01b" 1.00 GBP\n', 2, 25),
    "description-nul": (f'2024-01-02 * x\n{_MOVE}"a\x00b" 1.00 GBP\n', 2, 25),
    "description-del": (f'2024-01-02 * x\n{_MOVE}"\x7f" 1.00 GBP\n', 2, 24),
    "payee-501": (f"2024-01-02 * {'p' * 501}\n{_MOVE}1.00 GBP\n", 1, 514),
    "payee-control": (f"2024-01-02 * a\x1bb\n{_MOVE}1.00 GBP\n", 1, 15),
    "payee-control-later": (
        f"2024-01-02 * fine\n{_MOVE}1.00 GBP\n2024-01-03 ! x\x07\n{_MOVE}1.00 GBP\n",
        3,
        15,
    ),
    "name-201": (f"2024-01-01 open Asset:B GBP\n  name: {'n' * 201}\n", 2, 209),
    "name-control": ("2024-01-01 open Asset:B GBP\n  name: a\x7fb\n", 2, 10),
    "name-nul": ("2024-01-01 open Asset:B GBP\n  name: a\x00b\n", 2, 10),
    "metadata-nul": (f"2024-01-02 * x\n{_MOVE}1.00 GBP\n  note: a\x00b\n", 3, 10),
}


@pytest.mark.parametrize(("text", "line", "column"), BAD_TEXT.values(), ids=BAD_TEXT)
async def test_text_the_api_refuses_is_refused_by_import(client, auth, db, text, line, column):
    before = await row_counts(db)
    body = problem(await _import(client, auth["headers"], text), 400, "journal-invalid")
    assert (body["line"], body["column"]) == (line, column), body
    assert await row_counts(db) == before


async def test_text_at_the_limits_is_kept(client, auth):
    h = auth["headers"]
    description, payee, name = "d" * 499 + "é", "p" * 500, "n" * 200
    escaped = "\\\\" * 490  # 490 backslashes, each written as two
    text = (
        f"2024-01-01 open Asset:B GBP\n  name: {name}\n"
        f"2024-01-02 * {payee}\n"
        f'{_MOVE}"{description}" 1.00 GBP\n'
        f'  +Equity:A -> Asset:B "tab\tok {escaped}" 1.00 GBP\n'
    )
    response = await _import(client, h, text)
    assert response.status_code == 200, response.text
    accounts = await _accounts(client, h)
    assert accounts["Asset:B"]["name"] == name
    exported = (await _export(client, h)).decode()
    assert f'"{description}" 1.00 GBP\n' in exported and f" * {payee}\n" in exported


@pytest.fixture
def engine_cli(database_url: str, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """`worthline ...` on the test's engine (SQLite or PostgreSQL), with a user ada."""
    from typer.testing import CliRunner

    from conftest import PASSWORD
    from worthline.cli import app as cli_app

    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("WORTHLINE_")]:
        monkeypatch.delenv(name)
    env = {
        "WORTHLINE_DATABASE_URL": database_url,
        "WORTHLINE_DATA_DIR": str(tmp_path / "data"),
        "WORTHLINE_PASSWORD_HASH_TIME_COST": "1",
        "WORTHLINE_PASSWORD_HASH_MEMORY_KIB": "64",
        "COLUMNS": "250",
    }
    runner = CliRunner()

    def run(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(cli_app, list(args), env=env)

    created = run("users", "create", "ada@example.com", "--password", PASSWORD)
    assert created.exit_code == 0, created.output
    return run


def _cli_import(engine_cli, tmp_path, content: bytes):  # type: ignore[no-untyped-def]
    path = tmp_path / "journal.goluca"
    path.write_bytes(content)
    return path, engine_cli("journal", "import", str(path), "--user", "ada@example.com")


def _cli_export(engine_cli) -> str:  # type: ignore[no-untyped-def]
    result = engine_cli("journal", "export", "--user", "ada@example.com")
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize(("text", "line", "column"), BAD_TEXT.values(), ids=BAD_TEXT)
def test_text_the_api_refuses_is_refused_by_the_cli(engine_cli, tmp_path, text, line, column):
    path, result = _cli_import(engine_cli, tmp_path, text.encode())
    assert result.exit_code == 1, result.output
    assert f"{path}:{line}:{column}: line {line}, column {column}: " in result.output
    assert "Nothing was recorded." in result.output
    assert "Traceback" not in result.output
    assert _cli_export(engine_cli) == "option operating-currency GBP\n"


# ------------------------------------------------ one currency, accounts in several exponents


def _shape(accounts: dict[str, dict[str, Any]]) -> dict[str, tuple[str, int, str]]:
    return {p: (a["currency"], a["exponent"], a["balance"]) for p, a in accounts.items()}


async def test_export_of_one_currency_in_several_exponents_round_trips(client, auth):
    """The commodity has its finest account's exponent; coarser accounts say theirs on their
    `open`, and every amount is written with its accounts' decimals: nothing breaks the stream
    or comes back coarser."""
    h = auth["headers"]
    coarse = await account(client, h, "Asset:Coarse")
    coarse_src = await account(client, h, "Equity:Coarse")
    fine = await account(client, h, "Asset:Fine:A", exponent=-4)
    fine_src = await account(client, h, "Equity:Fine:B", exponent=-4)
    yen = await account(client, h, "Asset:Yen", "JPY")  # JPY: minor unit 0
    yen_src = await account(client, h, "Equity:Yen", "JPY")
    sen = await account(client, h, "Asset:Sen", "JPY", exponent=-2)
    sen_src = await account(client, h, "Equity:Sen", "JPY", exponent=-2)
    await move(client, h, fine_src, fine, "0.0001", value_time="2025-01-01T00:00:00Z")
    await move(client, h, fine_src, fine, "1.5", value_time="2025-01-02T00:00:00Z")
    await move(client, h, coarse_src, coarse, "2.25", value_time="2025-01-02T00:00:00Z")
    await move(client, h, yen_src, yen, "100", value_time="2025-01-03T00:00:00Z")
    await move(client, h, sen_src, sen, "0.01", value_time="2025-01-03T00:00:00Z")

    first = await _export(client, h)
    text = first.decode()
    for expected in (
        " commodity GBP\n  exponent: -4\n",
        " commodity JPY\n  exponent: -2\n",
        " open Asset:Coarse GBP\n  exponent: -2\n",
        " open Equity:Coarse GBP\n  exponent: -2\n",
        " open Asset:Fine:A GBP\n2",  # the commodity's exponent: no line of its own
        " open Asset:Yen JPY\n  exponent: 0\n",
        " open Asset:Sen JPY\n2",
        "  Equity:Fine:B -> Asset:Fine:A 0.0001 GBP\n",
        "  Equity:Fine:B -> Asset:Fine:A 1.5000 GBP\n",
        "  Equity:Coarse -> Asset:Coarse 2.25 GBP\n",
        "  Equity:Yen -> Asset:Yen 100 JPY\n",
        "  Equity:Sen -> Asset:Sen 0.01 JPY\n",
    ):
        assert expected in text, expected

    other = await register_and_login(client, "copy@example.com")
    copied = await _import(client, other["headers"], first)
    assert copied.status_code == 200, copied.text
    assert await _export(client, other["headers"]) == first
    mine, theirs = await _accounts(client, h), await _accounts(client, other["headers"])
    assert _shape(theirs) == _shape(mine)
    assert _shape(mine)["Asset:Fine:A"] == ("GBP", -4, "1.5001")
    assert _shape(mine)["Asset:Coarse"] == ("GBP", -2, "2.25")


async def test_an_open_sets_its_accounts_exponent(client, auth, db):
    h = auth["headers"]
    text = (
        "2024-01-01 commodity GBP\n"
        "  exponent: -4\n"
        "2024-01-01 open Asset:Coarse GBP\n"
        "  exponent: -2\n"
        "  name: Everyday\n"
        "2024-01-01 open Equity:Coarse GBP\n"
        "  exponent: -2\n"
        "\n"
        "2024-01-02 * first use takes the commodity's\n"
        "  Equity:Fine -> Asset:Fine 0.0001 GBP\n"
        "  +Equity:Coarse -> Asset:Coarse 1.50 GBP\n"
    )
    response = await _import(client, h, text)
    assert response.status_code == 200, response.text
    accounts = await _accounts(client, h)
    assert _shape(accounts) == {
        "Asset:Coarse": ("GBP", -2, "1.50"),
        "Asset:Fine": ("GBP", -4, "0.0001"),
        "Equity:Coarse": ("GBP", -2, "-1.50"),
        "Equity:Fine": ("GBP", -4, "-0.0001"),  # created on first use: the commodity's
    }
    assert accounts["Asset:Coarse"]["name"] == "Everyday"
    async with db.snapshot_session() as session:  # not kept as generic metadata
        metas = (await session.execute(select(Account.full_path, Account.meta))).all()
    assert dict(metas) == {path: {} for path in accounts}
    # Again, into the same ledger: an open that says the same exponent is a no-op, another
    # exponent is refused; an account coarser than an amount refuses it.
    before = await row_counts(db)
    for again, line, column in (
        ("2024-01-01 open Asset:Coarse GBP\n  exponent: 0\n", 1, 1),
        ("2024-01-01 open Asset:Coarse GBP\n  exponent: x\n", 2, 13),
        ("2024-01-01 open Asset:New GBP\n  exponent: -19\n", 2, 13),
        ("2024-01-01 open Asset:New GBP\n  exponent: -3\n", 2, 13),  # finer than GBP's -2
        (  # the per-account check: the commodity allows it, the accounts do not
            "2024-01-01 commodity GBP\n  exponent: -4\n"
            "2024-01-02 *\n  Equity:Coarse -> Asset:Coarse 0.0001 GBP\n",
            4,
            1,
        ),
    ):
        body = problem(await _import(client, h, again), 400, "journal-invalid")
        assert (body["line"], body["column"]) == (line, column), (again, body)
    assert await row_counts(db) == before
    same = await _import(client, h, "2024-01-01 open Asset:Coarse GBP\n  exponent: -2\n")
    assert same.json() == {"accounts_created": 0, "movements_recorded": 0}


# ------------------------------------------------ a batch over several journal transactions


async def _batch_ids(client, headers, path: str) -> list[str | None]:
    accounts = await _accounts(client, headers)
    return [m["batch_id"] for m in await all_movements(client, headers, accounts[path]["id"])]


async def test_a_batch_split_over_transactions_comes_back_as_one(client, auth, db):
    h = auth["headers"]
    bank = await account(client, h, "Asset:E1")
    capital = await account(client, h, "Equity:E2")

    def leg(amount: str, value_time: str, **extra: str) -> dict[str, str]:
        return {
            "from_account_id": capital["id"],
            "to_account_id": bank["id"],
            "amount": amount,
            "value_time": value_time,
            **extra,
        }

    for description, movements in (
        (
            "split",
            [
                leg("2.00", "2025-04-01T00:00:00Z"),
                leg("3.00", "2025-04-05T00:00:00Z", code="LDAS:FTDP:INTR"),
                leg("4.00", "2025-04-05T00:00:00Z", description="same day"),
            ],
        ),
        ("whole", [leg("5.00", "2025-04-02T00:00:00Z"), leg("6.00", "2025-04-02T00:00:00Z")]),
        (
            "codes",
            [
                leg("7.00", "2025-04-03T00:00:00Z", code="PMNT:ICDT:STDO"),
                leg("8.00", "2025-04-03T00:00:00Z"),
            ],
        ),
    ):
        response = await client.post(
            "/movements/batch", json={"description": description, "movements": movements}, headers=h
        )
        assert response.status_code == 201, response.text

    first = await _export(client, h)
    text = first.decode()
    assert text.count("  batch: ") == 5  # "whole" is one transaction: no `batch:` line
    mv = "  Equity:E2 -> Asset:E1"
    for expected in (
        f" * split\n{mv} 2.00 GBP\n  batch: 1\n",
        f" * whole\n{mv} 5.00 GBP\n  +Equity:E2 -> Asset:E1 6.00 GBP\n\n",
        f" * codes\n{mv} 7.00 GBP\n  batch: 2\n  code: PMNT:ICDT:STDO\n",
        f" * codes\n{mv} 8.00 GBP\n  batch: 2\n\n",
        f" * split\n{mv} 3.00 GBP\n  batch: 1\n  code: LDAS:FTDP:INTR\n\n",
        f' * split\n{mv} "same day" 4.00 GBP\n  batch: 1\n',
    ):
        assert expected in text, expected

    other = await register_and_login(client, "copy@example.com")
    copied = await _import(client, other["headers"], first)
    assert copied.json() == {"accounts_created": 2, "movements_recorded": 7}
    assert await _export(client, other["headers"]) == first
    mine = await _batch_ids(client, h, "Asset:E1")
    theirs = await _batch_ids(client, other["headers"], "Asset:E1")
    assert len(set(theirs)) == len(set(mine)) == 3 and None not in theirs
    rank = {b: i for i, b in enumerate(dict.fromkeys(mine))}
    again = {b: i for i, b in enumerate(dict.fromkeys(theirs))}
    assert [rank[b] for b in mine] == [again[b] for b in theirs]
    async with db.snapshot_session() as session:  # the key is not kept as metadata
        batches = (await session.execute(select(Batch.description, Batch.meta))).all()
    assert sorted(batches) == sorted([("split", {}), ("whole", {}), ("codes", {})] * 2)


async def test_split_batches_sharing_a_knowledge_time_round_trip(client, auth):
    """A journal without knowledge times records all of it at one moment; a split batch's
    later transactions then share their (value time, knowledge time) with others. Export
    writes them in the order a re-import sorts them."""
    h = auth["headers"]
    text = (
        "2025-01-02 * before the batch in the file, after its first part in time\n"
        "  Equity:A -> Asset:B 1.00 GBP\n"
        "2025-01-03 * also on a later day\n"
        "  Equity:A -> Asset:B 9.00 GBP\n"
        "2025-01-01 * Salary\n"
        "  Equity:A -> Asset:B 2.00 GBP\n"
        "  batch: x\n"
        "2025-01-01 * other\n"
        "  Equity:A -> Asset:B 2.50 GBP\n"
        "  +Equity:A -> Asset:B 2.75 GBP\n"
        "2025-01-01 * Bonus\n"
        "  Equity:A -> Asset:B 7.00 GBP\n"
        "  batch: y\n"
        "2025-01-03 * second part of y\n"
        "  Equity:A -> Asset:B 8.00 GBP\n"
        "  batch: y\n"
        "2025-01-02 * the payee of a later part is not kept\n"
        "  Equity:A -> Asset:B 3.00 GBP\n"
        "  batch: x\n"
        "2025-01-02 * more\n"
        "  Equity:A -> Asset:B 4.00 GBP\n"
        "  batch: x\n"
        "  code: LDAS:FTDP:INTR\n"
    )
    response = await _import(client, h, text)
    assert response.status_code == 200, response.text
    ids = await _batch_ids(client, h, "Asset:B")
    assert len([b for b in ids if b is not None]) == 7 and len(set(ids) - {None}) == 3
    first = await _export(client, h)
    assert first.decode().count(" * Salary\n") == 3
    other = await register_and_login(client, "copy@example.com")
    copied = await _import(client, other["headers"], first)
    assert copied.status_code == 200, copied.text
    assert await _export(client, other["headers"]) == first


@pytest.mark.parametrize(
    ("second", "words"),
    [
        ("2025-01-02 ! x\n  Equity:A -> Asset:B 1.00 GBP\n  batch: 1\n", "posted"),
        ("2025-01-02 * x\n  Equity:A -> Asset:B 1.00 GBP\n  batch: 1\n  k: w\n", "metadata"),
        ("2025-01-02 * y\n  Equity:A -> Asset:B 1.00 GBP\n  k: v\n  batch: 1\n", None),
    ],
    ids=["pending", "metadata", "agree"],
)
async def test_the_parts_of_a_batch_agree(client, auth, db, second, words):
    h = auth["headers"]
    first = "2025-01-01 * x\n  Equity:A -> Asset:B 1.00 GBP\n  batch: 1\n  k: v\n"
    before = await row_counts(db)
    response = await _import(client, h, first + second)
    if words is None:  # they agree (the payee is the first's)
        assert response.status_code == 200, response.text
        assert len(set(await _batch_ids(client, h, "Asset:B"))) == 1
        return
    body = problem(response, 400, "journal-invalid")
    assert (body["line"], body["column"]) == (5, 1)
    assert words in body["detail"]
    assert await row_counts(db) == before


# ------------------------------------------- the CLI reads a file as HTTP reads its body


_OK = "2024-01-02 * fine\n  Equity:A -> Asset:B 1.00 GBP\n"
_LONG = _OK * 2000  # past the first 64 KiB read
assert len(_LONG.encode()) > 1 << 16

# (bytes, line, column, problem slug): the same answer over HTTP and from the CLI
SAME_PLACE = {
    "lone-cr-in-description": (
        b'2024-01-02 * x\n  Asset:A -> Asset:C "a\rb" 1.00 GBP\n',
        2,
        24,
        "journal-invalid",
    ),
    "lone-cr-in-payee": (b"2024-01-02 * x\ry\r\n  Asset:A -> Asset:C 1.00 GBP\r\n", 1, 15, None),
    "crlf-then-nul": ((_OK + "2024-01-03 * a\x00b\n").replace("\n", "\r\n").encode(), 3, 15, None),
    "latin-1": ("2024-01-02 * caf\u00e9\n".encode("latin-1"), 1, 17, "journal-not-utf8"),
    "bad-byte-line-3": (_OK.encode() + b"2024-01-02 * x \xff\n", 3, 16, "journal-not-utf8"),
    "after-a-bom": (b"\xef\xbb\xbf2024-01-02 * \xc3\x28\n", 1, 14, "journal-not-utf8"),
    "truncated-at-end": (_OK.encode() + b"; \xe2\x82", 3, 3, "journal-not-utf8"),
    "second-read": (
        _LONG.encode() + "; é ".encode() + b"\xfe\n",
        4001,
        5,
        "journal-not-utf8",
    ),
    "split-character-then-bad": (
        # a two-byte character across the 64 KiB boundary, then a bad byte
        b";" + b"x" * ((1 << 16) - 2) + "é".encode() + b"\xff",
        1,
        (1 << 16) - 1 + 2,
        "journal-not-utf8",
    ),
}


@pytest.mark.parametrize(("raw", "line", "column", "slug"), SAME_PLACE.values(), ids=SAME_PLACE)
async def test_http_names_the_place(client, auth, db, raw, line, column, slug):
    before = await row_counts(db)
    response = await _import(client, auth["headers"], raw)
    body = problem(response, 400, slug or "journal-invalid")
    assert (body["line"], body["column"]) == (line, column), body
    assert body["detail"].startswith(f"line {line}, column {column}: ")
    assert await row_counts(db) == before


@pytest.mark.parametrize(("raw", "line", "column", "slug"), SAME_PLACE.values(), ids=SAME_PLACE)
def test_the_cli_names_the_same_place(engine_cli, tmp_path, raw, line, column, slug):
    path, result = _cli_import(engine_cli, tmp_path, raw)
    assert result.exit_code == 1, result.output
    assert f"{path}:{line}:{column}: line {line}, column {column}: " in result.output
    assert "Nothing was recorded." in result.output
    assert "Traceback" not in result.output
    assert _cli_export(engine_cli) == "option operating-currency GBP\n"


def test_the_cli_reads_crlf_and_a_bom(engine_cli, tmp_path):
    text = "\ufeff" + (_OK + '2024-01-03 * "x"\n  Equity:A -> Asset:B "d" 2.00 GBP\n')
    _, result = _cli_import(engine_cli, tmp_path, text.replace("\n", "\r\n").encode())
    assert result.exit_code == 0, result.output
    assert "Imported 2 movements (2 new accounts)" in result.output
    exported = _cli_export(engine_cli)
    assert ' * "x"\n  Equity:A -> Asset:B "d" 2.00 GBP\n' in exported and "\r" not in exported

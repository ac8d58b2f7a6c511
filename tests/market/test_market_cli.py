"""`worthline prices import` and `worthline fx import` against a real SQLite file: what is
stored (read back as SQLite holds it: exact decimals as scaled integers), re-imports replacing
by date, and every bad file answering exit 1 with the CSV line, storing nothing."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from pathlib import Path

import pytest

from conftest import sqlite_rows
from worthline.kit.db import Database, unit_of_work
from worthline.market import service

PRICES = "SELECT a.symbol, p.price_date, p.open, p.high, p.low, p.close, p.volume FROM asset_prices p JOIN assets a ON a.id = p.asset_id ORDER BY a.symbol, p.price_date"  # noqa: E501
RATES = "SELECT base, quote, rate_date, rate FROM fx_rates ORDER BY base, quote, rate_date"
E8, E4, E10 = 10**8, 10**4, 10**10  # SQLite keeps prices, volumes and rates scaled


def said(result) -> str:  # type: ignore[no-untyped-def]
    """The command's output with Rich's line wrapping undone."""
    return " ".join(result.output.split())


@pytest.fixture
def database(cli, tmp_path: Path) -> Path:
    """A migrated SQLite file holding the assets VWRL.L (GBP) and BRK.B (USD)."""
    assert cli("db", "upgrade").exit_code == 0
    path = tmp_path / "cli.db"

    async def add_assets() -> None:
        db = Database(f"sqlite+aiosqlite:///{path}")
        try:
            async with unit_of_work(db) as session:
                for symbol, currency in (("VWRL.L", "GBP"), ("BRK.B", "USD")):
                    spec = service.NewAsset(symbol, symbol, "equity", currency)
                    await service.create_asset(session, spec)
        finally:
            await db.dispose()

    asyncio.run(add_assets())
    return path


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return str(path)


def test_prices_import_stores_every_row(cli, database, tmp_path):
    csv = write(
        tmp_path,
        "prices.csv",
        "symbol,date,open,high,low,close,volume\r\n"
        "VWRL.L,2025-01-02,100.10,102.5,99.87654321,101.50,123456.7890\r\n"
        "VWRL.L,2025-01-03,,,,102,\r\n"
        "\r\n"
        "BRK.B, 2025-01-02 ,,, ,470.25,0\r\n"
        '"BRK.B","2025-01-03","","","","471",""\r\n',
    )
    result = cli("prices", "import", csv)
    assert result.exit_code == 0, result.output
    assert "Imported 4 prices for 2 assets" in said(result)
    assert sqlite_rows(database, PRICES) == [
        ("BRK.B", "2025-01-02", None, None, None, 47025 * E8 // 100, 0),
        ("BRK.B", "2025-01-03", None, None, None, 471 * E8, None),
        (
            "VWRL.L",
            "2025-01-02",
            10010 * E8 // 100,
            1025 * E8 // 10,
            9987654321,
            10150 * E8 // 100,
            1234567890,
        ),
        ("VWRL.L", "2025-01-03", None, None, None, 102 * E8, None),
    ]


def test_columns_in_any_order_optional_ones_left_out_and_a_bom(cli, database, tmp_path):
    csv = write(
        tmp_path,
        "closes.csv",
        "Date,Close,Symbol\n2025-01-06,99.5,VWRL.L\n2025-01-07,98,VWRL.L\n",
        encoding="utf-8-sig",
    )
    result = cli("prices", "import", csv)
    assert result.exit_code == 0, result.output
    assert "Imported 2 prices for 1 assets" in said(result)
    assert sqlite_rows(database, PRICES) == [
        ("VWRL.L", "2025-01-06", None, None, None, 995 * E8 // 10, None),
        ("VWRL.L", "2025-01-07", None, None, None, 98 * E8, None),
    ]


def test_a_second_import_replaces_by_asset_and_date(cli, database, tmp_path):
    first = write(
        tmp_path,
        "first.csv",
        "symbol,date,open,high,low,close,volume\n"
        "VWRL.L,2025-01-02,10,12,9,11,5\nVWRL.L,2025-01-03,,,,11.5,\nBRK.B,2025-01-02,,,,400,\n",
    )
    assert cli("prices", "import", first).exit_code == 0
    second = write(
        tmp_path,
        "second.csv",
        "symbol,date,open,high,low,close,volume\nVWRL.L,2025-01-02,,,,10.25,\n",
    )
    result = cli("prices", "import", second)
    assert result.exit_code == 0, result.output
    assert "Imported 1 prices for 1 assets" in said(result)
    assert sqlite_rows(database, PRICES) == [
        ("BRK.B", "2025-01-02", None, None, None, 400 * E8, None),
        ("VWRL.L", "2025-01-02", None, None, None, 1025 * E8 // 100, None),
        ("VWRL.L", "2025-01-03", None, None, None, 115 * E8 // 10, None),
    ]


def test_an_unknown_symbol_after_several_batches_stores_nothing(cli, database, tmp_path):
    start = date(1990, 1, 1)
    lines = ["symbol,date,open,high,low,close,volume"]
    lines += [f"VWRL.L,{start + timedelta(days=i)},,,,{i + 1},100" for i in range(12_000)]
    lines.append("NOPE,2025-01-02,,,,1,")
    csv = write(tmp_path, "many.csv", "\n".join(lines) + "\n")
    result = cli("prices", "import", csv)
    assert result.exit_code == 1, result.output
    assert f"{csv}:12002: unknown symbol 'NOPE'" in said(result)
    assert "Nothing was stored." in said(result)
    assert sqlite_rows(database, "SELECT count(*) FROM asset_prices") == [(0,)]
    # Without the bad line, all 12,000 (three batches) are stored.
    good = write(tmp_path, "good.csv", "\n".join(lines[:-1]) + "\n")
    ok = cli("prices", "import", good)
    assert ok.exit_code == 0, ok.output
    assert "Imported 12,000 prices for 1 assets" in said(ok)
    assert sqlite_rows(
        database, "SELECT count(*), min(price_date), max(close) FROM asset_prices"
    ) == [(12_000, "1990-01-01", 12_000 * E8)]


HEADER = "symbol,date,open,high,low,close,volume\n"
GOOD_ROWS = "VWRL.L,2025-01-02,,,,100,\nBRK.B,2025-01-02,,,,400,\nVWRL.L,2025-01-03,,,,101,\n"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("VWRL.L,2025-01-06,,,,abc,", "close: 'abc' is not a decimal number"),
        ("VWRL.L,2025-02-30,,,,1,", "date: Input should be a valid date"),
        ("VWRL.L,2025-01-06,,,,,", "close: Field required"),
        ("VWRL.L,2025-01-06,,,,0,", "close: must be greater than 0"),
        ("BRK.B,2025-01-06,,4,6,5,", "high: high 4 is below low 6"),
        ("BRK.B,2025-01-06,7,6,4,5,", "open: open 7 lies outside low 4"),
        ("VWRL.L,2025-01-06,,,,1.123456789,", "close: 1.123456789 has more than 8 decimal"),
        ("VWRL.L,2025-01-06,,,,1,-3", "volume: must not be negative"),
        ("VWRL.L,1899-12-31,,,,1,", "date: 1899-12-31 is out of range"),
        ("BRK.B,2025-01-02,,,,1,", "BRK.B 2025-01-02 is already on line 3"),
        ("VWRL.L,2025-01-06,1", "3 fields where the header has 7"),
        (",2025-01-06,,,,1,", "symbol: the symbol is empty"),
        ("vwrl.l,2025-01-06,,,,1,", "unknown symbol 'vwrl.l'"),
    ],
)
def test_a_bad_row_is_named_by_its_line_and_nothing_is_stored(
    cli, database, tmp_path, bad, message
):
    csv = write(
        tmp_path, "bad.csv", HEADER + GOOD_ROWS + bad + "\n" + GOOD_ROWS.replace("01-0", "02-0")
    )
    result = cli("prices", "import", csv)
    assert result.exit_code == 1, result.output
    assert f"{csv}:5: {message}" in said(result)
    assert "Nothing was stored." in said(result)
    assert sqlite_rows(database, "SELECT count(*) FROM asset_prices") == [(0,)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "a header line is required"),
        ("VWRL.L,2025-01-02,,,,100,\n", "the header must name the columns"),
        ("symbol,date,closing\n", "the header must name the columns"),
        ("symbol,date,open\n", "the header must name the columns"),  # no close
        ("symbol,date,close,close\n", "the header must name the columns"),
    ],
)
def test_a_bad_header_is_line_1(cli, database, tmp_path, text, message):
    csv = write(tmp_path, "header.csv", text)
    result = cli("prices", "import", csv)
    assert result.exit_code == 1, result.output
    assert f"{csv}:1: {message}" in said(result)


def test_files_that_cannot_be_read(cli, database, tmp_path):
    latin = write(
        tmp_path, "latin1.csv", HEADER + "VWRL.L,2025-01-02,,,,100,\n# caf\xe9\n", "latin-1"
    )
    result = cli("prices", "import", latin)
    assert result.exit_code == 1
    assert "is not UTF-8 text" in said(result)
    missing = cli("prices", "import", str(tmp_path / "missing.csv"))
    assert missing.exit_code == 2
    assert sqlite_rows(database, "SELECT count(*) FROM asset_prices") == [(0,)]


# -------------------------------------------------------------------------------------- fx


def test_fx_import_stores_and_replaces(cli, database, tmp_path):
    csv = write(
        tmp_path,
        "rates.csv",
        "date,base,quote,rate\n"
        "2025-01-02,GBP,USD,1.25\n2025-01-03,GBP,USD,1.2718\n2025-01-02,USD,JPY,150\n",
    )
    result = cli("fx", "import", csv)
    assert result.exit_code == 0, result.output
    assert "Imported 3 FX rates" in said(result)
    again = write(tmp_path, "again.csv", "base,quote,date,rate\nGBP,USD,2025-01-02,1.3\n")
    assert cli("fx", "import", again).exit_code == 0
    assert sqlite_rows(database, RATES) == [
        ("GBP", "USD", "2025-01-02", 13 * E10 // 10),
        ("GBP", "USD", "2025-01-03", 12718 * E10 // 10_000),
        ("USD", "JPY", "2025-01-02", 150 * E10),
    ]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("2025-01-06,GBP,USD,0", "rate: must be greater than 0"),
        ("2025-01-06,GBP,USD,1.12345678901", "rate: 1.12345678901 has more than 10 decimal"),
        ("2025-01-06,GBP,USD,", "rate: Field required"),
        ("2025-01-06,XYZ,USD,1", "base: XYZ is not an ISO 4217 currency code"),
        ("2025-01-06,GBP,GBP,1", "quote: base and quote must differ"),
        ("2025-01-02,GBP,USD,1", "GBP/USD 2025-01-02 is already on line 2"),
    ],
)
def test_a_bad_fx_row_is_named_by_its_line_and_nothing_is_stored(
    cli, database, tmp_path, bad, message
):
    rows = "2025-01-02,GBP,USD,1.25\n2025-01-02,USD,JPY,150\n"
    csv = write(tmp_path, "bad.csv", "date,base,quote,rate\n" + rows + bad + "\n")
    result = cli("fx", "import", csv)
    assert result.exit_code == 1, result.output
    assert f"{csv}:4: {message}" in said(result)
    assert sqlite_rows(database, "SELECT count(*) FROM fx_rates") == [(0,)]


def test_fx_duplicate_across_batches_stores_nothing(cli, database, tmp_path):
    start = date(2000, 1, 1)
    lines = ["date,base,quote,rate"]
    lines += [f"{start + timedelta(days=i)},EUR,USD,1.{i:05d}" for i in range(6_000)]
    lines.append("2000-01-02,EUR,USD,2")
    csv = write(tmp_path, "dup.csv", "\n".join(lines) + "\n")
    result = cli("fx", "import", csv)
    assert result.exit_code == 1, result.output
    assert f"{csv}:6002: EUR/USD 2000-01-02 is already on line 3" in said(result)
    assert sqlite_rows(database, "SELECT count(*) FROM fx_rates") == [(0,)]

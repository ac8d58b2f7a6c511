"""The `.goluca` journal: streaming parser and canonical writer, without a database."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import itertools
import pickle
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.examples import EXAMPLE
from worthline.ledger.journal import (
    Commodity,
    Entry,
    JournalError,
    Movement,
    Open,
    Option,
    Transaction,
    default_exponent,
    format_amount,
    format_time,
    parse,
    write,
)
from worthline.ledger.journal.syntax import ACCOUNT_TYPES

UTC = dt.UTC


# The example as the writer spells it: aliases resolved, `->` arrows, `+` links, no separators.
EXAMPLE_CANONICAL = """\
option operating-currency GBP
2024-01-01 commodity GBP
  exponent: -2
2024-01-01 commodity BTC
  exponent: -8
2024-01-01 open Asset:Bank:Current GBP
2024-01-01 open Liability:Savings:0001 GBP
  interest-rate: 0.05

2024-01-02 * Opening balance
  Equity:Capital -> Asset:Bank:Current 1000.00 GBP

2026-02-01T09:30:00Z%2026-02-02 * Payroll
  Income:Salary -> Asset:Bank:Current "net salary" 4000.00 GBP
  +Income:Salary -> Expense:Tax "income tax" 1000.00 GBP
  receipt: scan-001.pdf

2026-03-01 ! Pending invoice
  Asset:Bank:Current -> Expense:Food 15.50 GBP
"""


def unlined(entry: Any) -> Any:
    """The entry with every `line` set to 0, to compare parsed entries with built ones."""
    if isinstance(entry, Transaction):
        movements = tuple(dataclasses.replace(m, line=0) for m in entry.movements)
        return dataclasses.replace(entry, movements=movements, line=0)
    return dataclasses.replace(entry, line=0)


def split(
    entries: list[Entry],
) -> tuple[list[Option], list[Commodity], list[Open], list[Transaction]]:
    return (
        [e for e in entries if isinstance(e, Option)],
        [e for e in entries if isinstance(e, Commodity)],
        [e for e in entries if isinstance(e, Open)],
        [e for e in entries if isinstance(e, Transaction)],
    )


def error_of(text: str) -> JournalError:
    with pytest.raises(JournalError) as info:
        list(parse(text))
    return info.value


def txn(*movement_lines: str, header: str = "2024-01-02 * Test") -> str:
    return "\n".join([header, *movement_lines]) + "\n"


# --- the JOURNAL.md example ---------------------------------------------------------------------


def test_example_parses_to_the_expected_entries() -> None:
    entries = list(parse(io.StringIO(EXAMPLE)))
    assert [type(e).__name__ for e in entries] == [
        "Option",
        "Commodity",
        "Commodity",
        "Open",
        "Open",
        "Transaction",
        "Transaction",
        "Transaction",
    ]
    option, gbp, btc, current, savings, opening, payroll, invoice = entries
    assert option == Option("operating-currency", "GBP", 2)
    assert gbp == Commodity(dt.date(2024, 1, 1), "GBP", -2, {}, 4)
    assert btc == Commodity(dt.date(2024, 1, 1), "BTC", -8, {}, 6)
    assert current == Open(dt.date(2024, 1, 1), "Asset:Bank:Current", ("GBP",), {}, 8)
    assert savings == Open(
        dt.date(2024, 1, 1), "Liability:Savings:0001", ("GBP",), {"interest-rate": "0.05"}, 9
    )

    # The alias `Current` is resolved; `1,000.00` is a Decimal.
    assert opening == Transaction(
        value_time=dt.datetime(2024, 1, 2, tzinfo=UTC),
        knowledge_time=None,
        pending=False,
        payee="Opening balance",
        movements=(
            Movement("Equity:Capital", "Asset:Bank:Current", Decimal("1000.00"), "GBP", None, 14),
        ),
        metadata={},
        line=13,
    )
    assert opening.movements[0].amount == Decimal("1000") and opening.value_time.tzinfo is UTC

    assert payroll.value_time == dt.datetime(2026, 2, 1, 9, 30, tzinfo=UTC)
    assert payroll.knowledge_time == dt.datetime(2026, 2, 2, tzinfo=UTC)
    assert payroll.pending is False
    assert payroll.payee == "Payroll"
    assert payroll.metadata == {"receipt": "scan-001.pdf"}
    assert payroll.line == 16
    assert payroll.movements == (
        Movement(
            "Income:Salary", "Asset:Bank:Current", Decimal("4000.00"), "GBP", "net salary", 17
        ),
        Movement("Income:Salary", "Expense:Tax", Decimal("1000.00"), "GBP", "income tax", 18),
    )

    assert invoice.pending is True
    assert invoice.payee == "Pending invoice"
    assert invoice.knowledge_time is None
    assert invoice.movements == (
        Movement("Asset:Bank:Current", "Expense:Food", Decimal("15.50"), "GBP", None, 22),
    )


def test_example_writes_canonically_and_round_trips() -> None:
    entries = list(parse(EXAMPLE))
    text = "".join(write(*split(entries)))
    assert text == EXAMPLE_CANONICAL
    again = list(parse(text))
    assert [unlined(e) for e in again] == [unlined(e) for e in entries]
    assert "".join(write(*split(again))) == text


# --- the rest of the grammar --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2026-02-01", dt.datetime(2026, 2, 1, tzinfo=UTC)),
        ("2026-02-01T09:30:00", dt.datetime(2026, 2, 1, 9, 30, tzinfo=UTC)),
        ("2026-02-01T09:30:00Z", dt.datetime(2026, 2, 1, 9, 30, tzinfo=UTC)),
        ("2026-02-01T09:30:00.123Z", dt.datetime(2026, 2, 1, 9, 30, 0, 123000, tzinfo=UTC)),
        ("2026-02-01T09:30:00.123456", dt.datetime(2026, 2, 1, 9, 30, 0, 123456, tzinfo=UTC)),
        ("2026-02-01T09:30:00.123456000Z", dt.datetime(2026, 2, 1, 9, 30, 0, 123456, tzinfo=UTC)),
        ("2026-02-01T09:30:00+01:00", dt.datetime(2026, 2, 1, 8, 30, tzinfo=UTC)),
        ("2026-02-01T01:00:00-05:30", dt.datetime(2026, 2, 1, 6, 30, tzinfo=UTC)),
        ("2026-02-01T00:30:00+01:00", dt.datetime(2026, 1, 31, 23, 30, tzinfo=UTC)),
        (
            "2024-02-29T23:59:59.999999-00:00",
            dt.datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC),
        ),
    ],
)
def test_datetimes_become_aware_utc(stamp: str, expected: dt.datetime) -> None:
    (entry,) = parse(txn("  Asset:A:1 -> Asset:B:2 1.00 GBP", header=f"{stamp}%{stamp} * P"))
    assert isinstance(entry, Transaction)
    assert entry.value_time == expected and entry.value_time.tzinfo is UTC
    assert entry.knowledge_time == expected and entry.knowledge_time.tzinfo is UTC


def test_amount_precision_follows_directive_then_iso_then_default() -> None:
    text = (
        "2024-01-01 commodity BTC\n  exponent: -8\n"
        "2024-01-01 commodity PTS\n  exponent: 0\n"
        "2024-01-01 commodity GBP\n"  # no exponent line: GBP's minor unit
        + txn(
            "  Asset:A -> Asset:B 0.00000001 BTC",
            "  Asset:A -> Asset:B 1,234,567 PTS",
            "  Asset:A -> Asset:B 1.5 GBP",
            "  Asset:A -> Asset:B 12 JPY",  # ISO 4217, 0 decimals
            "  Asset:A -> Asset:B 1.125 BHD",  # ISO 4217, 3 decimals
            "  Asset:A -> Asset:B 9.99 XYZ9",  # not ISO: -2
        )
    )
    entries = list(parse(text))
    assert [e.exponent for e in entries[:3]] == [-8, 0, -2]  # type: ignore[union-attr]
    movements = entries[3].movements  # type: ignore[union-attr]
    assert [m.amount for m in movements] == [
        Decimal("0.00000001"),
        Decimal("1234567"),
        Decimal("1.5"),
        Decimal("12"),
        Decimal("1.125"),
        Decimal("9.99"),
    ]
    assert [default_exponent(c) for c in ("GBP", "JPY", "BHD", "XYZ9")] == [-2, 0, -3, -2]


def test_aliases_resolve_and_are_not_yielded() -> None:
    text = (
        "alias cur Asset:Bank:Current\n"
        "alias Wallet.2 cur\n"  # an alias of an alias names the same path
        "2024-01-01 open cur GBP, EUR\n"
        + txn("  cur → Expense:Food 1.00 GBP", "  +Wallet.2 // Expense:Food:Lunch 2.00 GBP")
    )
    opened, transaction = parse(text)
    assert isinstance(opened, Open) and isinstance(transaction, Transaction)
    assert opened.account == "Asset:Bank:Current"
    assert opened.commodities == ("GBP", "EUR")
    assert [(m.from_account, m.to_account) for m in transaction.movements] == [
        ("Asset:Bank:Current", "Expense:Food"),
        ("Asset:Bank:Current", "Expense:Food:Lunch"),
    ]


def test_comments_blank_lines_tabs_crlf_and_bom() -> None:
    lines = [
        "\ufeff# a comment on the first line, after a byte-order mark\r\n",
        "2024-01-02T10:00:00Z * Shop  with  spaces   \r\n",
        "\t; an indented comment inside the transaction\r\n",
        "\r\n",
        '\tAsset:A\t->\tExpense:B\t"say \\"hi\\" \\\\ ok"\t1.00\tGBP\r\n',
        "  # another\r\n",
        "   \r\n",
        " \t+Asset:A  >  Expense:C   2.00   GBP   \r\n",
        "\tnote:\tfirst: second  \r\n",
        "  code: LDAS:FTDP:INTR\r\n",
        "; between\r\n",
        "option title My  ledger\r\n",
    ]
    transaction, option = parse(iter(lines))
    assert isinstance(transaction, Transaction)
    assert transaction.payee == "Shop  with  spaces"
    assert transaction.movements == (
        Movement("Asset:A", "Expense:B", Decimal("1.00"), "GBP", 'say "hi" \\ ok', 5),
        Movement("Asset:A", "Expense:C", Decimal("2.00"), "GBP", None, 8),
    )
    assert transaction.metadata == {"note": "first: second", "code": "LDAS:FTDP:INTR"}
    assert option == Option("title", "My  ledger", 12)


def test_header_without_payee_and_empty_description() -> None:
    (entry,) = parse(txn('  Asset:A -> Asset:B "" 1 GBP', header="2024-01-02 !"))
    assert isinstance(entry, Transaction)
    assert entry.payee == "" and entry.pending is True
    assert entry.movements[0].description == ""
    assert (
        "".join(write([], [], [], [entry])) == '\n2024-01-02 !\n  Asset:A -> Asset:B "" 1.00 GBP\n'
    )


def test_commodity_and_open_metadata() -> None:
    text = (
        "2024-01-01 commodity AAPL\n  exponent: -4\n  name: Apple Inc.\n"
        "2024-01-01 open Asset:Broker:1 AAPL,GBP\n  interest-rate: 0.05\n  exponent: -1\n"
    )
    commodity, opened = parse(text)
    assert commodity == Commodity(dt.date(2024, 1, 1), "AAPL", -4, {"name": "Apple Inc."}, 1)
    # On an open, `exponent` is the account's own (Worthline's extension), not metadata.
    assert opened == Open(
        dt.date(2024, 1, 1), "Asset:Broker:1", ("AAPL", "GBP"), {"interest-rate": "0.05"}, 4, -1
    )


def test_an_account_with_its_own_exponent_round_trips() -> None:
    """`exponent:` on an open: the account's own exponent, at most as fine as its commodity's;
    its amounts are written with its own decimals."""
    text = (
        "2024-01-01 commodity GBP\n"
        "  exponent: -4\n"
        "2024-01-01 open Asset:Coarse GBP\n"
        "  exponent: -2\n"
        "  name: Everyday\n"
        "2024-01-01 open Asset:Fine GBP\n"
        "\n"
        "2024-01-02 *\n"
        "  Asset:Coarse -> Equity:Coarse 1.50 GBP\n"
        "  +Asset:Fine -> Equity:Fine 1.5000 GBP\n"
    )
    commodity, coarse, fine, transaction = parse(text)
    assert commodity == Commodity(dt.date(2024, 1, 1), "GBP", -4, {}, 1)
    day = dt.date(2024, 1, 1)
    assert coarse == Open(day, "Asset:Coarse", ("GBP",), {"name": "Everyday"}, 3, -2)
    assert fine == Open(day, "Asset:Fine", ("GBP",), {}, 6)
    assert "".join(write(*split([commodity, coarse, fine, transaction]))) == text
    # The writer uses the FROM account's exponent, and never rounds.
    first = transaction.movements[0]  # type: ignore[union-attr]
    rounded = dataclasses.replace(
        transaction, movements=(dataclasses.replace(first, amount=Decimal("1.505")),)
    )
    with pytest.raises(ValueError, match="more decimals"):
        "".join(write([], [commodity], [coarse], [rounded]))  # type: ignore[list-item]
    with pytest.raises(ValueError):
        "".join(write([], [], [dataclasses.replace(coarse, exponent=1)], []))
    with pytest.raises(ValueError, match="a field"):
        "".join(write([], [], [dataclasses.replace(fine, metadata={"exponent": "-2"})], []))


def test_parse_accepts_a_whole_string_and_errors_pickle() -> None:
    assert list(parse("")) == []
    assert list(parse("; only a comment\n\n")) == []
    err = JournalError(7, 3, "boom")
    assert str(err) == "line 7, column 3: boom"
    again = pickle.loads(pickle.dumps(err))  # noqa: S301 -- our own object
    assert (again.line, again.column, again.message, str(again)) == (7, 3, "boom", str(err))


# --- errors: line and column --------------------------------------------------------------------

H = "2024-01-02 * Test\n"  # line 1 of most cases; the movement under test is on line 2

ERRORS: list[tuple[str, str, int, int, str]] = [
    # (id, text, line, column, message fragment)
    ("bad-type", H + "  Assets:Bank -> Expense:Food 1.00 GBP", 2, 3, "account type must be"),
    ("unknown-alias", H + "  Current -> Expense:Food 1.00 GBP", 2, 3, "unknown account or alias"),
    ("empty-segment", H + "  Asset::X -> Expense:Food 1.00 GBP", 2, 9, "empty segment"),
    ("trailing-colon", H + "  Asset:X: -> Expense:Food 1.00 GBP", 2, 11, "empty segment"),
    ("five-segments", H + "  Asset:A:B:C:D -> Expense:F 1.00 GBP", 2, 15, "more than 4 segments"),
    ("bad-to", H + "  Asset:A -> expense:food 1.00 GBP", 2, 14, "account type must be"),
    ("bad-arrow", H + "  Asset:A => Asset:B 1.00 GBP", 2, 11, "expected an arrow"),
    ("no-arrow", H + "  Asset:A", 2, 10, "expected an arrow"),
    ("same-account", H + "  Asset:A -> Asset:A 1.00 GBP", 2, 14, "two different accounts"),
    ("alias-same", "alias a Asset:A\n" + H + "  a -> Asset:A 1.00 GBP", 3, 8, "two different"),
    ("grouping", H + "  Asset:A -> Asset:B 1,00.0 GBP", 2, 24, "groups of 3 digits"),
    ("grouping-first", H + "  Asset:A -> Asset:B 1234,567 GBP", 2, 22, "groups of 3 digits"),
    ("not-a-number", H + "  Asset:A -> Asset:B 1.2.3 GBP", 2, 22, "malformed amount"),
    ("zero", H + "  Asset:A -> Asset:B 0.00 GBP", 2, 22, "greater than zero"),
    ("negative", H + "  Asset:A -> Asset:B -5.00 GBP", 2, 22, "greater than zero"),
    (
        "decimals-gbp",
        H + "  Asset:A -> Asset:B 1.234 GBP",
        2,
        22,
        "amount 1.234 has more decimals than GBP allows (2)",
    ),
    ("decimals-jpy", H + "  Asset:A -> Asset:B 1.5 JPY", 2, 22, "than JPY allows (0)"),
    ("decimals-default", H + "  Asset:A -> Asset:B 1.001 PTS", 2, 22, "than PTS allows (2)"),
    (
        "decimals-declared",
        "2024-01-01 commodity BTC\n  exponent: -8\n" + H + "  Asset:A -> Asset:B 0.000000001 BTC",
        4,
        22,
        "than BTC allows (8)",
    ),
    ("bad-code", H + "  Asset:A -> Asset:B 1.00 gbp", 2, 27, "commodity code"),
    ("long-code", H + "  Asset:A -> Asset:B 1.00 ABCDEFGHIJK", 2, 27, "commodity code"),
    ("no-code", H + "  Asset:A -> Asset:B 1.00", 2, 26, "expected a commodity code"),
    ("no-amount", H + "  Asset:A -> Asset:B", 2, 21, "expected an amount"),
    ("trailing", H + "  Asset:A -> Asset:B 1.00 GBP extra", 2, 31, "unexpected text"),
    ("unterminated", H + '  Asset:A -> Asset:B "oops 1.00 GBP', 2, 22, "unterminated"),
    ("bad-escape", H + '  Asset:A -> Asset:B "a\\nb" 1.00 GBP', 2, 24, "unknown escape"),
    ("glued-quote", H + '  Asset:A -> Asset:B "x"1.00 GBP', 2, 25, "expected whitespace"),
    ("first-linked", H + "  +Asset:A -> Asset:B 1.00 GBP", 2, 3, "'+' links a movement"),
    ("invalid-date", "2026-02-30 * X\n  Asset:A -> Asset:B 1 GBP", 1, 1, "invalid date 2026-02-30"),
    ("invalid-knowledge", "2026-02-01%2026-13-01 * X\n", 1, 12, "invalid date 2026-13-01"),
    ("empty-knowledge", "2026-02-01% * X\n", 1, 12, "knowledge date-time"),
    ("hour", "2026-02-01T25:00:00Z * X\n", 1, 12, "hour 25"),
    ("minute", "2026-02-01T23:60:00Z * X\n", 1, 15, "minute 60"),
    ("fraction-digits", "2026-02-01T10:00:00.1234Z * X\n", 1, 21, "3, 6 or 9 digits"),
    ("sub-micro", "2026-02-01T10:00:00.123456789Z * X\n", 1, 27, "sub-microsecond precision"),
    ("zone", "2026-02-01T10:00:00+24:00 * X\n", 1, 20, "invalid zone offset"),
    ("zone-on-date", "2026-02-01Z * X\n", 1, 11, "unexpected 'Z'"),
    ("short-time", "2026-02-01T10:00Z * X\n", 1, 11, "unexpected 'T'"),
    ("not-a-date", "2026-2-1 * X\n", 1, 1, "expected a date"),
    ("no-flag", "2024-01-02 Payee\n", 1, 12, "expected a flag"),
    ("glued-flag", "2024-01-02 *Payee\n", 1, 12, "expected a flag"),
    ("only-date", "2024-01-02\n", 1, 11, "expected a flag"),
    ("no-movements-eof", "2024-01-02 * Empty\n  note: x\n", 1, 1, "at least one movement"),
    ("no-movements", "2024-01-02 * Empty\n\noption a b\n", 1, 1, "at least one movement"),
    ("meta-key", H + "  Receipt: x", 2, 3, "metadata key"),
    ("meta-no-space", H + "  receipt:x", 2, 11, "expected a space after ':'"),
    ("meta-no-value", H + "  receipt:", 2, 11, "expected a value"),
    ("meta-twice", H + "  Asset:A -> Asset:B 1 GBP\n  a: 1\n  a: 2", 4, 3, "given twice"),
    ("code-shape", H + "  Asset:A -> Asset:B 1 GBP\n  code: PMNT:RCDT", 3, 9, "code must be"),
    ("code-case", H + "  Asset:A -> Asset:B 1 GBP\n  code:  pmnt:rcdt:book", 3, 10, "code must"),
    ("exponent-int", "2024-01-01 commodity BTC\n  exponent: -8.0", 2, 13, "must be an integer"),
    ("exponent-range", "2024-01-01 commodity BTC\n  exponent: 2", 2, 13, "between -18 and 0"),
    ("exponent-twice", "2024-01-01 commodity X1\n  exponent: -1\n  exponent: -1", 3, 3, "twice"),
    ("open-exponent-int", "2024-01-01 open Asset:A PTS\n  exponent: x", 2, 13, "an integer"),
    ("open-exponent-range", "2024-01-01 open Asset:A JPY\n  exponent: -19", 2, 13, "between"),
    ("open-exponent-positive", "2024-01-01 open Asset:A JPY\n  exponent: 1", 2, 13, "between"),
    (
        "open-exponent-finer",
        "2024-01-01 open Asset:A GBP\n  exponent: -3",
        2,
        13,
        "exponent -3 is finer than GBP's (-2): declare `commodity GBP` with `exponent: -3`",
    ),
    (
        "open-exponent-finer-declared",
        "2024-01-01 commodity BTC\n  exponent: -8\n2024-01-01 open Asset:A BTC\n  exponent: -9",
        4,
        13,
        "finer than BTC's (-8)",
    ),
    (
        "open-exponent-twice",
        "2024-01-01 open Asset:A GBP\n  exponent: -1\n  exponent: -1",
        3,
        3,
        "given twice",
    ),
    ("unknown-directive", "balance Asset:A 1 GBP\n", 1, 1, "unknown directive 'balance'"),
    ("undated-commodity", "commodity GBP\n", 1, 1, "needs a date"),
    ("datetime-directive", "2024-01-01T10:00:00Z open Asset:A\n", 1, 11, "takes a date"),
    ("orphan-movement", "  Asset:A -> Asset:B 1 GBP\n", 1, 3, "movement line outside an entry"),
    ("movement-on-open", "2024-01-01 open Asset:A\n  Asset:A -> Asset:B 1 GBP", 2, 3, "outside a"),
    ("orphan-metadata", "option a b\n  key: value\n", 2, 3, "metadata line outside an entry"),
    ("commodity-code", "2024-01-01 commodity gbp\n", 1, 22, "commodity code"),
    ("commodity-extra", "2024-01-01 commodity GBP x\n", 1, 26, "unexpected text"),
    (
        "commodity-late",
        H + "  Asset:A -> Asset:B 1 PTS\n2024-01-03 commodity PTS\n",
        3,
        22,
        "after its first use on line 2",
    ),
    ("commodity-twice", "2024-01-01 commodity X1\n2024-01-01 commodity X1\n", 2, 22, "already"),
    (
        "open-twice",
        "alias a Asset:A\n2024-01-01 open Asset:A\n2024-01-01 open a\n",
        3,
        17,
        "already",
    ),
    ("open-list", "2024-01-01 open Asset:A GBP, usd\n", 1, 30, "commodity code"),
    ("open-list-empty", "2024-01-01 open Asset:A GBP,,EUR\n", 1, 29, "expected a commodity code"),
    ("open-list-twice", "2024-01-01 open Asset:A GBP,GBP\n", 1, 29, "listed twice"),
    ("open-bad-account", "2024-01-01 open Cash\n", 1, 17, "unknown account or alias 'Cash'"),
    ("alias-colon", "alias Bank:X Asset:Bank\n", 1, 7, "alias name"),
    ("alias-target", "alias bank Bank:X\n", 1, 12, "account type must be"),
    ("alias-again", "alias a Asset:A\nalias a Asset:B\n", 2, 7, "already names Asset:A"),
    ("alias-short", "alias a\n", 1, 8, "expected `alias NAME ACCOUNT`"),
    ("option-name", "option Title x\n", 1, 8, "option name"),
    ("option-value", "option title\n", 1, 13, "expected a value"),
    ("alias-later", H + "  cur -> Asset:B 1 GBP\nalias cur Asset:A\n", 2, 3, "unknown account"),
]


@pytest.mark.parametrize(
    ("text", "line", "column", "fragment"),
    [case[1:] for case in ERRORS],
    ids=[case[0] for case in ERRORS],
)
def test_errors_name_line_and_column(text: str, line: int, column: int, fragment: str) -> None:
    err = error_of(text)
    assert fragment in err.message
    assert (err.line, err.column) == (line, column), str(err)
    assert str(err) == f"line {line}, column {column}: {err.message}"


def test_errors_on_the_fast_path_too() -> None:
    """The same mistakes once the accounts and commodity are known (the fast path's cases)."""
    warm = H + "  Asset:A -> Asset:B 1.00 GBP\n"
    for bad, column in [
        ("  Asset:A -> Asset:B 1.234 GBP", 22),
        ("  Asset:A -> Asset:A 1.00 GBP", 14),
        ("  Asset:A -> Asset:B 0 GBP", 22),
        ("  Asset:A => Asset:B 1.00 GBP", 11),
        ('  Asset:A -> Asset:B "x\\q" 1.00 GBP', 24),
        ("  Asset:A -> Asset:B 1,0000 GBP", 24),
    ]:
        err = error_of(warm + bad + "\n")
        assert (err.line, err.column) == (3, column), (bad, str(err))


def test_error_deep_in_a_large_generated_file() -> None:
    def lines() -> Iterator[str]:
        for n in range(1, 45_001):
            yield f"2024-01-01T00:00:{n % 60:02d}Z * Payee {n}\n"
            amount = "1,00.00" if n == 45_000 else f"{n}.00"
            yield f"  Asset:Bank:{n % 97} -> Expense:Food:{n % 13} {amount} GBP\n"
        yield "2024-01-02 * never reached\n"

    seen = 0
    with pytest.raises(JournalError) as info:
        for _ in parse(lines()):
            seen += 1
    assert (info.value.line, info.value.column) == (90_000, 37)  # the bad digit group
    assert seen == 44_999  # every complete transaction before the bad one was yielded


# --- streaming ----------------------------------------------------------------------------------


def test_entries_are_yielded_before_the_input_is_exhausted() -> None:
    consumed: list[int] = []

    def feed() -> Iterator[str]:
        for i, line in enumerate(EXAMPLE.splitlines(keepends=True), 1):
            consumed.append(i)
            yield line

    entries = parse(feed())
    assert next(entries) == Option("operating-currency", "GBP", 2)
    assert consumed[-1] == 2  # an option is complete on its own line
    assert isinstance(next(entries), Commodity)
    assert consumed[-1] == 6  # a commodity when the next non-indented line arrives
    for _ in range(3):
        next(entries)
    first = next(entries)
    assert isinstance(first, Transaction) and first.payee == "Opening balance"
    assert consumed[-1] == 16  # the header of the next transaction completed it
    assert len(list(entries)) == 2


def test_parse_of_an_endless_generator_streams() -> None:
    def endless() -> Iterator[str]:
        for n in itertools.count():
            yield f"2024-01-01 * Payee {n}\n"
            yield "  Asset:A -> Asset:B 1.00 GBP\n"

    first = list(itertools.islice(parse(endless()), 3))
    assert [t.payee for t in first] == ["Payee 0", "Payee 1", "Payee 2"]  # type: ignore[union-attr]


# --- writer -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "exponent", "text"),
    [
        (Decimal("1000"), -2, "1000.00"),
        (Decimal("1000"), 0, "1000"),
        (Decimal("1E+3"), -2, "1000.00"),
        (Decimal("15.5"), -2, "15.50"),
        (Decimal("1.230"), -2, "1.23"),
        (Decimal("0.00000001"), -8, "0.00000001"),
        (Decimal("123456789012345678901234567890.12"), -2, "123456789012345678901234567890.12"),
        (Decimal("7"), -18, "7.000000000000000000"),
    ],
)
def test_format_amount(amount: Decimal, exponent: int, text: str) -> None:
    assert format_amount(amount, exponent) == text


@pytest.mark.parametrize(
    ("amount", "exponent"),
    [(Decimal("1.234"), -2), (Decimal("0.5"), 0), (Decimal("NaN"), -2), (Decimal(1), 1)],
)
def test_format_amount_never_rounds(amount: Decimal, exponent: int) -> None:
    with pytest.raises(ValueError):
        format_amount(amount, exponent)


@pytest.mark.parametrize(
    ("t", "text"),
    [
        (dt.datetime(2024, 1, 1, tzinfo=UTC), "2024-01-01"),
        (dt.datetime(2024, 1, 1, 0, 0, 1, tzinfo=UTC), "2024-01-01T00:00:01Z"),
        (dt.datetime(2024, 1, 1, 0, 0, 0, 1, tzinfo=UTC), "2024-01-01T00:00:00.000001Z"),
        (dt.datetime(2024, 1, 1, 9, 30, 0, 120000, tzinfo=UTC), "2024-01-01T09:30:00.120000Z"),
        (
            dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))),
            "2023-12-31T23:00:00Z",
        ),
        (dt.datetime(2024, 1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1))), "2024-01-01"),
    ],
)
def test_format_time(t: dt.datetime, text: str) -> None:
    assert format_time(t) == text


def test_format_time_refuses_naive() -> None:
    with pytest.raises(ValueError, match="naive"):
        format_time(dt.datetime(2024, 1, 1))  # noqa: DTZ001 -- the point of the test


def test_writer_refuses_what_would_not_read_back() -> None:
    t0 = dt.datetime(2024, 1, 1, tzinfo=UTC)
    mv = Movement("Asset:A", "Asset:B", Decimal("1"), "GBP", None, 0)
    bad = [
        Transaction(t0, None, False, "two\nlines", (mv,), {}, 0),
        Transaction(t0, None, False, " padded", (mv,), {}, 0),
        Transaction(t0, None, False, "", (dataclasses.replace(mv, description="a\rb"),), {}, 0),
        Transaction(
            t0, None, False, "", (dataclasses.replace(mv, amount=Decimal("0.001")),), {}, 0
        ),
        Transaction(t0, None, False, "", (dataclasses.replace(mv, amount=Decimal("0")),), {}, 0),
        Transaction(t0, None, False, "", (mv,), {"k": ""}, 0),
        Transaction(t0, None, False, "", (), {}, 0),
    ]
    for transaction in bad:
        with pytest.raises(ValueError):
            "".join(write([], [], [], [transaction]))
    day = dt.date(2024, 1, 1)
    for args in [
        ([Option("Bad Name", "x", 0)], [], []),
        ([Option("name", "", 0)], [], []),
        ([], [Commodity(day, "X1", 2, {}, 0)], []),
        ([], [Commodity(day, "X1", -2, {"exponent": "-2"}, 0)], []),
        ([], [], [Open(day, "Asset:A", (), {"Key": "v"}, 0)]),
    ]:
        with pytest.raises(ValueError):
            "".join(write(*args, []))
    with pytest.raises(TypeError, match="text lines"):
        list(parse(io.BytesIO(b"option a b\n")))  # type: ignore[arg-type]


def test_writer_sorts_metadata_and_links_later_movements() -> None:
    t0 = dt.datetime(2024, 5, 6, 7, 8, 9, 10, tzinfo=UTC)
    mv = Movement("Asset:A", "Asset:B", Decimal("1.5"), "JPY0", 'q"\\', 0)
    transaction = Transaction(
        t0,
        t0,
        True,
        "P",
        (mv, mv, dataclasses.replace(mv, description=None)),
        {"z": "1", "a": "2"},
        0,
    )
    opened = Open(dt.date(2024, 1, 1), "Asset:A", (), {"b": "1", "a": "2"}, 0)
    commodity = Commodity(dt.date(2024, 1, 1), "JPY0", -1, {}, 0)
    text = "".join(write([Option("o", "v w", 0)], [commodity], [opened], [transaction]))
    assert text == (
        "option o v w\n"
        "2024-01-01 commodity JPY0\n"
        "  exponent: -1\n"
        "2024-01-01 open Asset:A\n"
        "  a: 2\n"
        "  b: 1\n"
        "\n"
        "2024-05-06T07:08:09.000010Z%2024-05-06T07:08:09.000010Z ! P\n"
        '  Asset:A -> Asset:B "q\\"\\\\" 1.5 JPY0\n'
        '  +Asset:A -> Asset:B "q\\"\\\\" 1.5 JPY0\n'
        "  +Asset:A -> Asset:B 1.5 JPY0\n"
        "  a: 2\n"
        "  z: 1\n"
    )


# --- properties: the writer and the parser agree -------------------------------------------------

_SAFE = st.characters(blacklist_categories=("Cs", "Cc"))
_TEXT = st.text(alphabet=st.one_of(st.sampled_from('"\\ →é;#:'), _SAFE), max_size=16)
_STRIPPED = _TEXT.map(str.strip)
_VALUE = _STRIPPED.filter(bool)
_KEYS = st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True)
_SEGMENT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters=":"),
    min_size=1,
    max_size=8,
).filter(lambda s: not any(ch.isspace() for ch in s))
_ACCOUNTS = st.builds(
    lambda kind, segments: ":".join([kind, *segments]),
    st.sampled_from(ACCOUNT_TYPES),
    st.lists(
        st.one_of(_SEGMENT, st.sampled_from(["Bank", "0001", "Pending"])), min_size=1, max_size=3
    ),
)
_CODES = st.from_regex(r"[A-Z][A-Z0-9]{1,9}", fullmatch=True)
_ZONES = st.sampled_from(
    [UTC, dt.timezone(dt.timedelta(hours=5, minutes=30)), dt.timezone(dt.timedelta(hours=-8))]
)
# Hypothesis takes naive bounds and attaches the zones itself.
_INSTANTS = st.datetimes(
    min_value=dt.datetime(1900, 1, 1),  # noqa: DTZ001
    max_value=dt.datetime(2200, 1, 1),  # noqa: DTZ001
    timezones=_ZONES,
)
_TIMES = st.one_of(
    _INSTANTS,  # with microseconds
    _INSTANTS.map(lambda t: t.replace(microsecond=0)),
    st.dates(dt.date(1900, 1, 1), dt.date(2200, 1, 1)).map(
        lambda d: dt.datetime(d.year, d.month, d.day, tzinfo=UTC)
    ),
)
_MOVEMENT_CODES = st.from_regex(r"[A-Z]{4}:[A-Z]{4}:[A-Z]{4}", fullmatch=True)


@st.composite
def journals(
    draw: st.DrawFn,
) -> tuple[list[Option], list[Commodity], list[Open], list[Transaction]]:
    options = draw(
        st.lists(st.builds(Option, _KEYS, _VALUE, st.just(0)), max_size=3),
    )
    codes = draw(st.lists(_CODES, unique=True, max_size=4))
    commodities = [
        Commodity(
            draw(st.dates(dt.date(1900, 1, 1), dt.date(2200, 1, 1))),
            code,
            draw(st.integers(-8, 0)),
            draw(st.dictionaries(_KEYS.filter(lambda k: k != "exponent"), _VALUE, max_size=2)),
            0,
        )
        for code in codes
    ]
    exponents = {c.code: c.exponent for c in commodities}
    # Undeclared commodities too: ISO currencies (their minor unit) and others (-2).
    used = codes + draw(
        st.lists(st.sampled_from(["GBP", "JPY", "BHD", "PTS"]), min_size=1, max_size=2)
    )
    accounts = draw(st.lists(_ACCOUNTS, min_size=2, max_size=6, unique=True))
    opens = [
        Open(
            draw(st.dates(dt.date(1900, 1, 1), dt.date(2200, 1, 1))),
            account,
            tuple(draw(st.lists(st.sampled_from(used), unique=True, max_size=3))),
            draw(st.dictionaries(_KEYS.filter(lambda k: k != "exponent"), _VALUE, max_size=2)),
            0,
        )
        for account in draw(st.lists(st.sampled_from(accounts), unique=True, max_size=3))
    ]

    def movement() -> Movement:
        source, target = draw(
            st.lists(st.sampled_from(accounts), min_size=2, max_size=2, unique=True)
        )
        code = draw(st.sampled_from(used))
        exponent = exponents.get(code, default_exponent(code))
        units = draw(st.integers(1, 10**15))
        amount = Decimal(units).scaleb(draw(st.integers(exponent, 0)))
        description = draw(st.none() | _TEXT)
        return Movement(source, target, amount, code, description, 0)

    transactions = []
    for _ in range(draw(st.integers(0, 4))):
        metadata = draw(st.dictionaries(_KEYS.filter(lambda k: k != "code"), _VALUE, max_size=2))
        if draw(st.booleans()):
            metadata["code"] = draw(_MOVEMENT_CODES)
        transactions.append(
            Transaction(
                draw(_TIMES),
                draw(st.none() | _TIMES),
                draw(st.booleans()),
                draw(_STRIPPED),
                tuple(movement() for _ in range(draw(st.integers(1, 3)))),
                metadata,
                0,
            )
        )
    return options, commodities, opens, transactions


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(journals())
def test_write_then_parse_round_trips(
    journal: tuple[list[Option], list[Commodity], list[Open], list[Transaction]],
) -> None:
    text = "".join(write(*journal))
    parsed = list(parse(io.StringIO(text)))
    expected = [entry for part in journal for entry in part]
    assert [unlined(e) for e in parsed] == expected
    for entry in parsed:
        if isinstance(entry, Transaction):
            assert entry.value_time.tzinfo is UTC
    assert "".join(write(*split(parsed))) == text  # byte-identical


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_ACCOUNTS, min_size=2, max_size=2, unique=True),
    st.sampled_from(["->", "→", "//", ">"]),
    st.none() | _TEXT,
    st.integers(1, 10**12),
    st.sampled_from(["GBP", "JPY", "PTS"]),
    st.sampled_from([" ", "\t", "  \t "]),
)
def test_fast_and_slow_paths_agree(
    accounts: list[str], arrow: str, description: str | None, units: int, code: str, gap: str
) -> None:
    """The first use of an account goes through the reference (slow) path; the same line again
    takes the fast path. Both must read it the same."""
    amount = format_amount(Decimal(units).scaleb(default_exponent(code)), default_exponent(code))
    desc = (
        ""
        if description is None
        else '"' + description.replace("\\", "\\\\").replace('"', '\\"') + '"' + gap
    )
    body = f"{accounts[0]}{gap}{arrow}{gap}{accounts[1]}{gap}{desc}{amount}{gap}{code}"
    (entry,) = parse(["2024-01-01 * P\n", f"{gap}{body}\n", f"{gap}+{body}{gap}\n"])
    assert isinstance(entry, Transaction)
    slow, fast = entry.movements
    assert dataclasses.replace(slow, line=0) == dataclasses.replace(fast, line=0)
    assert slow == Movement(accounts[0], accounts[1], Decimal(amount), code, description, 2)


_PIECES = st.sampled_from(
    [
        *("  ", "\t", " ", "+", "Asset:A", "Expense:X:Y", "->", "→", "//", ">", '"', "\\", '"d e"'),
        *("1", "1.00", "1,000", ",", ".", "GBP", "JPY", "gbp", "2024-01-01", "2024-02-30"),
        *("T10:00:00", "Z", "+01:00", ".123", "%", "*", "!", "commodity", "open", "alias"),
        *("option", "a", "key:", "code:", "exponent:", "-2", "PMNT:RCDT:BOOK", ";", "#", ":"),
        *("\u00a0", "\u3000", "\x0c", "\ufeff"),
    ]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.lists(_PIECES, max_size=10).map("".join), max_size=8))
def test_any_input_parses_or_raises_a_journal_error(lines: list[str]) -> None:
    try:
        for _ in parse([line + "\n" for line in lines]):
            pass
    except JournalError as err:
        assert 1 <= err.line <= len(lines)
        assert 1 <= err.column <= len(lines[err.line - 1]) + 1

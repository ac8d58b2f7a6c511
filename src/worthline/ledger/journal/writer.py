"""Canonical writer for the `.goluca` journal: one spelling per entry, so that
export → import → export is byte-identical.

Canonical form: options, then commodities (each with its `exponent:` line), then opens (an
`exponent:` line first where the account has its own), then a blank line before each
transaction, transactions in the order given. Movement lines are indented two spaces, use `->`,
and the 2nd and later movements of a transaction carry `+`. Metadata lines are sorted by key.
Times are UTC (`Z`), a bare date when exactly midnight. Amounts have exactly the FROM account's
number of decimals (its own exponent, else its commodity's) and no thousands separators.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, Context, Decimal

from worthline.ledger.journal.syntax import (
    METADATA_KEY,
    MIN_EXPONENT,
    Commodity,
    Open,
    Option,
    Transaction,
    default_exponent,
)

__all__ = ["format_amount", "format_time", "write"]

UTC = dt.UTC
_EXACT = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN)
_QUANTA = {e: Decimal(1).scaleb(e) for e in range(-18, 1)}
_LINE_BREAKS = ("\n", "\r")


def format_amount(amount: Decimal, exponent: int) -> str:
    """`amount` with exactly `-exponent` decimals, no thousands separators.

    Raises ValueError when the amount has more (non-zero) decimals than the exponent allows:
    the writer never rounds."""
    if exponent > 0:
        raise ValueError(f"exponent must be 0 or negative, not {exponent}")
    if not amount.is_finite():
        raise ValueError(f"amount {amount} is not a finite number")
    quantum = _QUANTA.get(exponent) or Decimal(1).scaleb(exponent)
    quantized = amount.quantize(quantum, context=_EXACT)
    if quantized != amount:
        raise ValueError(f"amount {amount} has more decimals than exponent {exponent} allows")
    return f"{quantized:f}"


def format_time(t: dt.datetime) -> str:
    """`YYYY-MM-DD` for exactly midnight UTC, else `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` (in UTC).

    A naive datetime is refused (as the database refuses it): a time without a zone is a bug."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"naive datetime {t!r}: journal times must be timezone-aware")
    if t.utcoffset():
        t = t.astimezone(UTC)
    date = f"{t.year:04d}-{t.month:02d}-{t.day:02d}"
    if not (t.hour or t.minute or t.second or t.microsecond):
        return date
    clock = f"{date}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}"
    if t.microsecond:
        return f"{clock}.{t.microsecond:06d}Z"
    return f"{clock}Z"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _one_line(text: str, what: str) -> str:
    if any(b in text for b in _LINE_BREAKS):
        raise ValueError(f"{what} {text!r} contains a line break")
    return text


def _field(text: str, what: str, *, empty_ok: bool = False) -> str:
    """A header/metadata/option text: the parser strips it, so it must already be stripped."""
    if text != text.strip() or (not text and not empty_ok):
        raise ValueError(f"{what} {text!r} must be non-empty text without surrounding whitespace")
    return _one_line(text, what)


def _key(key: str, what: str) -> str:
    if METADATA_KEY.match(key) is None:
        raise ValueError(f"{what} {key!r} must be lower-case letters, digits and '-'")
    return key


def _metadata(metadata: dict[str, str]) -> Iterator[str]:
    for key in sorted(metadata):
        _key(key, "metadata key")
        yield f"  {key}: {_field(metadata[key], 'metadata value')}\n"


def write(
    options: Iterable[Option],
    commodities: Iterable[Commodity],
    opens: Iterable[Open],
    transactions: Iterable[Transaction],
) -> Iterator[str]:
    """Yield the canonical journal, line by line (each ending in "\\n").

    Every iterable is consumed once, in order, so generators straight from the database work.
    Exponents come from `commodities` (other commodities default as the parser does), and from
    `opens` for the accounts that have their own."""
    for o in options:
        yield f"option {_key(o.name, 'option name')} {_field(o.value, 'option value')}\n"
    exponents: dict[str, int] = {}
    for c in commodities:
        if not MIN_EXPONENT <= c.exponent <= 0:
            raise ValueError(f"{c.code}: exponent must be between {MIN_EXPONENT} and 0")
        if "exponent" in c.metadata:
            raise ValueError(f"{c.code}: the exponent is a field, not metadata")
        exponents[c.code] = c.exponent
        yield f"{c.date.isoformat()} commodity {c.code}\n"
        yield f"  exponent: {c.exponent}\n"
        yield from _metadata(c.metadata)
    accounts: dict[str, int] = {}
    for op in opens:
        if "exponent" in op.metadata:
            raise ValueError(f"{op.account}: the exponent is a field, not metadata")
        codes = f" {','.join(op.commodities)}" if op.commodities else ""
        yield f"{op.date.isoformat()} open {op.account}{codes}\n"
        if op.exponent is not None:
            if not MIN_EXPONENT <= op.exponent <= 0:
                raise ValueError(f"{op.account}: exponent must be between {MIN_EXPONENT} and 0")
            accounts[op.account] = op.exponent
            yield f"  exponent: {op.exponent}\n"
        yield from _metadata(op.metadata)
    for t in transactions:
        yield from write_transaction(t, exponents, accounts)


def write_transaction(
    t: Transaction, exponents: dict[str, int], accounts: Mapping[str, int] | None = None
) -> Iterator[str]:
    """Yield one transaction's lines (a blank line first). `exponents` maps commodity codes to
    their exponents; a code missing from it gets the parser's default (and is added).
    `accounts` maps the paths of accounts with an exponent of their own (their `open` says
    `exponent:`) to it: their amounts have that many decimals."""
    yield "\n"
    stamp = format_time(t.value_time)
    if t.knowledge_time is not None:
        stamp = f"{stamp}%{format_time(t.knowledge_time)}"
    flag = "!" if t.pending else "*"
    payee = _field(t.payee, "payee", empty_ok=True)
    yield f"{stamp} {flag} {payee}\n" if payee else f"{stamp} {flag}\n"
    if not t.movements:
        raise ValueError(f"transaction at {stamp} has no movements")
    prefix = "  "
    for mv in t.movements:
        exponent = accounts.get(mv.from_account) if accounts else None
        if exponent is None:
            exponent = exponents.get(mv.commodity)
        if exponent is None:
            exponent = exponents[mv.commodity] = default_exponent(mv.commodity)
        amount = format_amount(mv.amount, exponent)
        if mv.amount <= 0:
            raise ValueError(f"amount {mv.amount} must be greater than zero")
        if mv.description is None:
            yield f"{prefix}{mv.from_account} -> {mv.to_account} {amount} {mv.commodity}\n"
        else:
            desc = _escape(_one_line(mv.description, "description"))
            yield (
                f'{prefix}{mv.from_account} -> {mv.to_account} "{desc}" {amount} {mv.commodity}\n'
            )
        prefix = "  +"
    yield from _metadata(t.metadata)

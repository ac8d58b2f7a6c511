"""Streaming parser for the `.goluca` plain-text journal (the contract: spec/JOURNAL.md).

`parse(lines)` consumes any iterable of lines (a text file, a generator fed from an upload) and
yields each entry as soon as it is complete -- a transaction, commodity or open when the next
non-indented line (or the end) arrives, an option at once. It never holds more than the entry
being built plus the alias, commodity and account tables. Aliases are resolved here: every
account in an entry is a full `Type:Product[:AccountId[:Address]]` path.

Lexical rules (where JOURNAL.md is informal, see the module's tests for each case):

- Tokens are separated by whitespace; a line is indented when it starts with a space or a tab.
  Trailing whitespace is ignored. Blank lines and comments (`;` or `#` first, after optional
  indentation) are skipped anywhere, also inside a transaction: only a non-indented line ends it.
- Columns are 1-based and count characters (a tab is one column).

The first problem raises `JournalError`. Entries yielded before it have already been handed out;
callers that need atomicity (the importer) record inside one database transaction.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import TypeVar

from worthline.kit.currency import is_currency, minor_unit

__all__ = [
    "ACCOUNT_TYPES",
    "ARROWS",
    "MAX_NAME",
    "MAX_TEXT",
    "METADATA_KEY",
    "MIN_EXPONENT",
    "Commodity",
    "Entry",
    "JournalError",
    "Movement",
    "Open",
    "Option",
    "Transaction",
    "default_exponent",
    "parse",
]

UTC = dt.UTC
ACCOUNT_TYPES = ("Asset", "Liability", "Equity", "Income", "Expense")
ARROWS = ("->", "→", "//", ">")
MIN_EXPONENT = -18  # the ledger's accounts table accepts exponents -18..0
# The ledger's column sizes, as the API's schemas have them: a movement's description and a
# transaction's payee (movements.description, .payee, movement_batches.description), and an
# account's `name:` (accounts.name). Characters, not bytes.
MAX_TEXT = 500
MAX_NAME = 200
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class Option:
    name: str
    value: str
    line: int


@dataclass(frozen=True, slots=True)
class Commodity:
    date: dt.date
    code: str
    exponent: int
    metadata: dict[str, str]
    line: int


@dataclass(frozen=True, slots=True)
class Open:
    date: dt.date
    account: str
    commodities: tuple[str, ...]
    metadata: dict[str, str]
    line: int
    # `exponent: N` on an open (a Worthline extension): the account's own exponent, where it
    # differs from its commodity's. Never finer than the commodity's, whose amounts are checked.
    exponent: int | None = None


@dataclass(frozen=True, slots=True)
class Movement:
    from_account: str
    to_account: str
    amount: Decimal
    commodity: str
    description: str | None
    line: int


@dataclass(frozen=True, slots=True)
class Transaction:
    value_time: dt.datetime
    knowledge_time: dt.datetime | None
    pending: bool
    payee: str
    movements: tuple[Movement, ...]
    metadata: dict[str, str]
    line: int
    # Where the knowledge time starts on the header line (0: none given), for errors about it.
    knowledge_column: int = field(default=0, compare=False)


Entry = Option | Commodity | Open | Transaction


class JournalError(Exception):
    """A problem in the journal text, at a 1-based line and column."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(f"line {line}, column {column}: {message}")
        self.line = line
        self.column = column
        self.message = message

    def __reduce__(self) -> tuple[type[JournalError], tuple[int, int, str]]:
        return (type(self), (self.line, self.column, self.message))


def default_exponent(code: str) -> int:
    """The exponent of a commodity without a `commodity` directive: an ISO 4217 currency's
    minor unit (GBP -2, JPY 0, BHD -3), otherwise -2."""
    return -minor_unit(code) if is_currency(code) else -2


def _fast_constructor(cls: type[_T]) -> Callable[..., _T]:
    """`cls(*args)` without the frozen dataclass's `__init__`, which sets every field through
    `object.__setattr__` -- about a third of the cost of a movement line.

    The object is built as an instance of a plain (unfrozen) twin class with the same slots, then
    given its real class: `__class__` assignment is allowed because the layouts are identical
    (checked here, once). The result is indistinguishable from `cls(*args)`; these classes have
    no `__post_init__`."""
    names = tuple(f.name for f in fields(cls))
    if getattr(cls, "__slots__", None) != names or cls.__bases__ != (object,):
        raise TypeError(f"{cls.__name__} is not a plain slots dataclass")  # pragma: no cover
    twin = type(f"_{cls.__name__}Twin", (), {"__slots__": names})
    args = [f"a{i}" for i in range(len(names))]
    source = (
        f"def make({', '.join(args)}, *, new=new, twin=twin, cls=cls):\n    o = new(twin)\n"
        + "".join(f"    o.{name} = {a}\n" for name, a in zip(names, args, strict=True))
        + "    o.__class__ = cls\n    return o\n"
    )
    namespace: dict[str, object] = {"new": object.__new__, "twin": twin, "cls": cls}
    exec(source, namespace)  # noqa: S102 -- fixed source built from the dataclass's own fields
    return namespace["make"]  # type: ignore[return-value]


_make_movement = _fast_constructor(Movement)
_make_transaction = _fast_constructor(Transaction)


# --- lexical pieces -----------------------------------------------------------------------------

_AMOUNT = r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?"
_AMOUNT_RE = re.compile(rf"{_AMOUNT}\Z")
_CODE_RE = re.compile(r"[A-Z][A-Z0-9]{1,9}\Z")
_PATH = re.compile(r"(?:Asset|Liability|Equity|Income|Expense)(?::[^\s:]+){1,3}\Z")
_ALIAS = re.compile(r"\w[\w.\-]*\Z")
METADATA_KEY = re.compile(r"[a-z][a-z0-9-]*\Z")  # also option names
_MOVEMENT_CODE = re.compile(r"[A-Z]{4}:[A-Z]{4}:[A-Z]{4}\Z")
_INT = re.compile(r"[+-]?[0-9]+\Z")
_TOKENS = re.compile(r"\S+")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_DATETIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?(Z|[+-][0-9]{2}:[0-9]{2})?)?"
)
# Exactly the accepted shapes; `datetime.fromisoformat` then does the arithmetic (fast, in C).
_DATETIME_SHAPE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.(?:[0-9]{6}(?:000)?|[0-9]{3}))?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})?)?\Z"
)
# What the API refuses in one-line text (ledger.schemas): control characters but the tab. NUL
# cannot be stored by PostgreSQL, and a line break cannot be written back to the journal.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# A movement line with a description free of escapes, control characters and within MAX_TEXT,
# for the fast path in `_parse` (any other description goes the slow way, which says why).
_MOVE_DESCRIBED = re.compile(
    r'[ \t]\s*(\+?\S+)\s+\S+\s+(\S+)\s+"([^"\\\x00-\x08\x0a-\x1f\x7f]'
    rf'{{0,{MAX_TEXT}}})"\s+(\S+)\s+(\S+)\s*\Z'
)
_FLAGS = {"*": False, "!": True}
_ARROW_SET = frozenset(ARROWS)
_LINK_ERROR = "'+' links a movement to the one before it; the first movement has none"
_DESCRIPTION_LENGTH = f"a description has at most {MAX_TEXT} characters"


@functools.cache
def _amount_within(places: int) -> Callable[[str], re.Match[str] | None]:
    """`match` of a regex for amounts with at most `places` decimals."""
    decimals = rf"(?:\.[0-9]{{1,{places}}})?" if places else ""
    return re.compile(rf"(?:[0-9]{{1,3}}(?:,[0-9]{{3}})+|[0-9]+){decimals}\Z").match


def _tokens(line: str) -> list[tuple[str, int]]:
    """Whitespace-separated tokens with their 1-based columns."""
    return [(m.group(), m.start() + 1) for m in _TOKENS.finditer(line)]


# --- values -------------------------------------------------------------------------------------


def _path_error(name: str, lineno: int, col: int) -> JournalError:
    """Explain why `name` is neither an alias nor a valid account path."""
    parts = name.split(":")
    if len(parts) == 1:
        return JournalError(
            lineno, col, f"unknown account or alias {name!r} (define it with `alias` first)"
        )
    if parts[0] not in ACCOUNT_TYPES:
        return JournalError(
            lineno, col, f"account type must be one of {', '.join(ACCOUNT_TYPES)}, not {parts[0]!r}"
        )
    offset = len(parts[0]) + 1
    for i, part in enumerate(parts[1:], start=2):
        if i > 4:
            return JournalError(
                lineno,
                col + offset,
                f"account {name!r} has more than 4 segments: Type:Product[:AccountId[:Address]]",
            )
        if not part:
            return JournalError(lineno, col + offset, f"empty segment in account {name!r}")
        offset += len(part) + 1
    return JournalError(lineno, col, f"invalid account {name!r}")  # pragma: no cover


def _amount_error(text: str, lineno: int, col: int) -> JournalError:
    if text.startswith("-"):
        return JournalError(lineno, col, f"amount must be greater than zero, not {text}")
    whole = text.split(".", 1)[0]
    if "," in whole and whole.replace(",", "").isdigit():
        offset = 0
        for i, group in enumerate(whole.split(",")):
            if not (1 <= len(group) <= 3 if i == 0 else len(group) == 3):
                return JournalError(
                    lineno,
                    col + offset,
                    f"malformed amount {text}: ',' must separate groups of 3 digits (1,000.00)",
                )
            offset += len(group) + 1
    return JournalError(
        lineno,
        col,
        f"malformed amount {text!r}: expected digits, optional ',' thousands and '.' decimals",
    )


def _decimals_error(amount: str, code: str, places: int, lineno: int, col: int) -> JournalError:
    return JournalError(
        lineno, col, f"amount {amount} has more decimals than {code} allows ({places})"
    )


def _parse_datetime(text: str, lineno: int, col: int) -> dt.datetime:
    """`YYYY-MM-DD[THH:MM:SS[.fff|.ffffff|.fffffffff][Z|±HH:MM]]` → aware UTC datetime."""
    if _DATETIME_SHAPE.match(text) is not None:
        try:
            value = dt.datetime.fromisoformat(text)
            if value.tzinfo is None:
                return value.replace(tzinfo=UTC)
            return value if value.tzinfo is UTC else value.astimezone(UTC)
        except (ValueError, OverflowError):
            pass
    return _datetime_detail(text, lineno, col)


def _datetime_detail(text: str, lineno: int, col: int) -> dt.datetime:
    """The reference parse of a date-time, which names the exact problem and its column."""
    m = _DATETIME.match(text)
    if m is None:
        raise JournalError(
            lineno, col, f"expected a date YYYY-MM-DD[THH:MM:SS[.fraction][zone]], not {text!r}"
        )
    if m.end() != len(text):
        raise JournalError(
            lineno,
            col + m.end(),
            f"unexpected {text[m.end()]!r} in date-time {text!r} "
            "(expected YYYY-MM-DD[THH:MM:SS[.fraction][Z|±HH:MM]])",
        )
    year, month, day, hour, minute, second, fraction, zone = m.groups()
    try:
        date = dt.date(int(year), int(month), int(day))
    except ValueError as exc:
        raise JournalError(lineno, col, f"invalid date {text[:10]}: {exc}") from None
    if hour is None:
        return dt.datetime(date.year, date.month, date.day, tzinfo=UTC)
    for value, limit, start, what in (
        (hour, 23, 11, "hour"),
        (minute, 59, 14, "minute"),
        (second, 59, 17, "second"),
    ):
        if int(value) > limit:
            raise JournalError(lineno, col + start, f"{what} {value} is out of range 00..{limit}")
    micro = 0
    if fraction is not None:
        fcol = col + 20
        if len(fraction) not in (3, 6, 9):
            raise JournalError(
                lineno, fcol, f"a fraction of a second has 3, 6 or 9 digits, not {len(fraction)}"
            )
        if len(fraction) == 9 and fraction[6:] != "000":
            raise JournalError(lineno, fcol + 6, "sub-microsecond precision is not supported")
        micro = int(fraction[:6].ljust(6, "0"))
    tz = UTC
    if zone is not None and zone != "Z":
        zh, zm = int(zone[1:3]), int(zone[4:6])
        if zh > 23 or zm > 59:
            raise JournalError(lineno, col + m.start(8), f"invalid zone offset {zone}")
        offset = dt.timedelta(hours=zh, minutes=zm)
        tz = dt.timezone(-offset if zone[0] == "-" else offset)
    try:
        value = dt.datetime(
            date.year, date.month, date.day, int(hour), int(minute), int(second), micro, tzinfo=tz
        )
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise JournalError(lineno, col, f"date-time {text!r} is out of range in UTC") from None


def _parse_stamp(stamp: str, lineno: int) -> tuple[dt.datetime, dt.datetime | None, int]:
    """`DATETIME[%KNOWLEDGE]`, the first token of a header line: the value time, the knowledge
    time and the knowledge time's column (None and 0 when not given)."""
    value, sep, knowledge = stamp.partition("%")
    value_time = _parse_datetime(value, lineno, 1)
    if not sep:
        return value_time, None, 0
    column = len(value) + 2
    if not knowledge:
        raise JournalError(lineno, column, "expected a knowledge date-time after '%'")
    return value_time, _parse_datetime(knowledge, lineno, column), column


def _check_text(text: str, lineno: int, col: int, what: str, limit: int) -> None:
    """Text the ledger stores as one line (it starts at `col`): no control character but the
    tab, at most `limit` characters. The error names the first offending character."""
    bad = _CONTROL.search(text)
    if bad is not None:
        raise JournalError(
            lineno, col + bad.start(), f"{what} cannot hold the control character {bad.group()!r}"
        )
    if len(text) > limit:
        raise JournalError(
            lineno, col + limit, f"{what} has at most {limit} characters, not {len(text)}"
        )


def _parse_date(text: str, lineno: int, col: int) -> dt.date:
    if _DATE.match(text) is None:
        if _DATETIME.match(text):
            raise JournalError(lineno, col + 10, f"a directive takes a date, not {text!r}")
        raise JournalError(lineno, col, f"expected a date YYYY-MM-DD, not {text!r}")
    try:
        return dt.date(int(text[:4]), int(text[5:7]), int(text[8:10]))
    except ValueError as exc:
        raise JournalError(lineno, col, f"invalid date {text}: {exc}") from None


# --- the parser ---------------------------------------------------------------------------------


class _State:
    """What outlives one entry. The fast path reads `accounts` and `amount_checks` directly, so
    they hold only checked values: a name is in `accounts` only once it is a valid path or an
    alias, a code is in `amount_checks` only once it is a valid commodity code."""

    def __init__(self) -> None:
        self.accounts: dict[str, str] = {}  # alias or validated path -> full path
        self.aliases: dict[str, tuple[str, int]] = {}  # alias -> (path, line)
        self.decimals: dict[str, int] = {}  # commodity -> allowed decimals (-exponent)
        # commodity -> `match` of a regex accepting exactly its well-formed amounts
        self.amount_checks: dict[str, Callable[[str], re.Match[str] | None]] = {}
        self.declared: dict[str, int] = {}  # commodity -> line of its `commodity` directive
        self.first_use: dict[str, int] = {}  # undeclared commodity -> line of first use
        self.opened: dict[str, int] = {}  # account -> line of its `open`

    def account(self, name: str, lineno: int, col: int) -> str:
        path = self.accounts.get(name)
        if path is not None:
            return path
        if _PATH.match(name) is None:
            raise _path_error(name, lineno, col)
        self.accounts[name] = name
        return name

    def commodity(self, code: str, lineno: int, col: int) -> int:
        """Check a commodity code where it is used; return its allowed decimals."""
        places = self.decimals.get(code)
        if places is not None:
            return places
        if _CODE_RE.match(code) is None:
            raise JournalError(
                lineno, col, f"commodity code must be 2-10 upper-case letters/digits, not {code!r}"
            )
        self.first_use[code] = lineno
        places = -default_exponent(code)
        self.set_places(code, places)
        return places

    def set_places(self, code: str, places: int) -> None:
        self.decimals[code] = places
        self.amount_checks[code] = _amount_within(places)


class _Directive:
    """A `commodity` or `open` directive collecting its metadata lines."""

    __slots__ = ("account", "code", "commodities", "date", "exponent", "line", "metadata")

    def __init__(self, date: dt.date, line: int) -> None:
        self.date = date
        self.line = line
        self.metadata: dict[str, str] = {}
        self.exponent: int | None = None
        self.code: str | None = None
        self.account: str | None = None
        self.commodities: tuple[str, ...] = ()

    def finish(self, state: _State) -> Commodity | Open:
        if self.code is not None:
            exponent = default_exponent(self.code) if self.exponent is None else self.exponent
            state.set_places(self.code, -exponent)
            return Commodity(self.date, self.code, exponent, self.metadata, self.line)
        assert self.account is not None
        return Open(
            self.date, self.account, self.commodities, self.metadata, self.line, self.exponent
        )


def parse(lines: Iterable[str]) -> Iterator[Entry]:
    """Yield the journal's entries one by one, each as soon as it is complete.

    `lines` may be a text file, a list or a generator of lines (trailing newlines optional); a
    single `str` is split into lines. Raises `JournalError` at the first problem.
    """
    if isinstance(lines, str):
        lines = io.StringIO(lines)
    return _parse(lines)


def _parse(lines: Iterable[str]) -> Iterator[Entry]:
    state = _State()
    # The fast path takes a movement line only when every piece is already known good: both
    # accounts in the resolved-account cache (which never holds a comment, a metadata key or a
    # malformed name), the commodity in the exponent table, a valid arrow and amount. Anything
    # else -- the first use of an account, comments, metadata, every error -- goes through
    # `_slow_indented`, the reference implementation, which also fills the caches.
    accounts_get = state.accounts.get
    amount_check = state.amount_checks.get
    described_match = _MOVE_DESCRIBED.match
    arrows = _ARROW_SET
    flags = _FLAGS
    make_movement = _make_movement
    dtcache: dict[str, tuple[dt.datetime, dt.datetime | None, int]] = {}

    directive: _Directive | None = None  # a commodity or open being built
    movs: list[Movement] | None = None  # the movements of the transaction being built
    meta: dict[str, str] = {}  # ... and its metadata
    value_time: dt.datetime = dt.datetime.min.replace(tzinfo=UTC)  # ... and its header
    knowledge_time: dt.datetime | None = None
    knowledge_column = 0
    pending = False
    payee = ""
    head_line = 0

    it = iter(lines)
    for first in it:  # a byte-order mark is not part of the first line
        if not isinstance(first, str):
            raise TypeError("parse() reads text lines: open the file in text mode (utf-8)")
        it = itertools.chain((first.removeprefix("\ufeff"),), it)
        break
    for lineno, raw in enumerate(it, 1):
        c = raw[:1]
        if c == " " or c == "\t":
            if movs is not None:
                parts = raw.split()
                if len(parts) == 5:
                    ftok, arrow, ttok, amount, code = parts
                    desc = None
                elif '"' in raw and (m := described_match(raw)) is not None:
                    ftok, ttok, desc, amount, code = m.groups()
                    arrow = parts[1]
                else:
                    ftok = ""
                if ftok:
                    if ftok[0] == "+" and movs:
                        ftok = ftok[1:]
                    f = accounts_get(ftok)
                    t = accounts_get(ttok)
                    check = amount_check(code)
                    if (
                        f is not None
                        and t is not None
                        and check is not None
                        and f != t
                        and arrow in arrows
                        and check(amount) is not None
                    ):
                        value = Decimal(amount.replace(",", "") if "," in amount else amount)
                        if value:
                            movs.append(make_movement(f, t, value, code, desc, lineno))
                            continue
            _slow_indented(raw.rstrip(), lineno, directive, movs, meta, state)
            continue
        line = raw.rstrip()
        if not line or c == ";" or c == "#":
            continue
        # A non-indented line completes the entry being built.
        if movs is not None:
            if not movs:
                raise JournalError(head_line, 1, "a transaction needs at least one movement line")
            yield _make_transaction(
                value_time,
                knowledge_time,
                pending,
                payee,
                tuple(movs),
                meta,
                head_line,
                knowledge_column,
            )
            movs = None
        elif directive is not None:
            yield directive.finish(state)
            directive = None
        if "0" <= c <= "9":
            parts = line.split(None, 2)
            flag = flags.get(parts[1]) if len(parts) > 1 else None
            if flag is not None:
                stamp = parts[0]
                times = dtcache.get(stamp)
                if times is None:
                    if "%" in stamp:
                        times = _parse_stamp(stamp, lineno)
                    else:
                        times = (_parse_datetime(stamp, lineno, 1), None, 0)
                    if len(dtcache) > 4096:
                        dtcache.clear()
                    dtcache[stamp] = times
                value_time, knowledge_time, knowledge_column = times
                pending = flag
                payee = parts[2] if len(parts) > 2 else ""
                if payee and (len(payee) > MAX_TEXT or _CONTROL.search(payee)):
                    _check_text(payee, lineno, len(line) - len(payee) + 1, "a payee", MAX_TEXT)
                head_line = lineno
                movs = []
                meta = {}
                continue
            directive = _dated_directive(line, lineno, state)
            continue
        entry = _undated_directive(line, lineno, state)
        if entry is not None:
            yield entry
    if movs is not None:
        if not movs:
            raise JournalError(head_line, 1, "a transaction needs at least one movement line")
        yield _make_transaction(
            value_time,
            knowledge_time,
            pending,
            payee,
            tuple(movs),
            meta,
            head_line,
            knowledge_column,
        )
    elif directive is not None:
        yield directive.finish(state)


def _dated_directive(line: str, lineno: int, state: _State) -> _Directive:
    """`DATE commodity CODE`, `DATE open ACCOUNT [CODES]`, or a malformed transaction header."""
    tokens = _tokens(line)
    stamp = tokens[0][0]
    if len(tokens) == 1:
        _parse_stamp(stamp, lineno)
        raise JournalError(
            lineno, len(line) + 1, "expected a flag ('*' posted, '!' pending) after the date"
        )
    word, wcol = tokens[1]
    if word == "commodity":
        date = _parse_date(stamp, lineno, 1)
        if len(tokens) < 3:
            raise JournalError(lineno, len(line) + 1, "expected a commodity code")
        code, ccol = tokens[2]
        if _CODE_RE.match(code) is None:
            raise JournalError(
                lineno, ccol, f"commodity code must be 2-10 upper-case letters/digits, not {code!r}"
            )
        if len(tokens) > 3:
            raise JournalError(lineno, tokens[3][1], "unexpected text after the commodity code")
        if code in state.declared:
            raise JournalError(
                lineno, ccol, f"commodity {code} is already declared on line {state.declared[code]}"
            )
        if code in state.first_use:
            raise JournalError(
                lineno,
                ccol,
                f"commodity {code} is declared after its first use on line "
                f"{state.first_use[code]}; declare commodities before using them",
            )
        state.declared[code] = lineno
        directive = _Directive(date, lineno)
        directive.code = code
        return directive
    if word == "open":
        date = _parse_date(stamp, lineno, 1)
        if len(tokens) < 3:
            raise JournalError(lineno, len(line) + 1, "expected an account to open")
        name, acol = tokens[2]
        account = state.account(name, lineno, acol)
        if account in state.opened:
            raise JournalError(
                lineno, acol, f"account {account} is already opened on line {state.opened[account]}"
            )
        codes: list[str] = []
        if len(tokens) > 3:
            pos = tokens[3][1] - 1
            for piece in line[pos:].split(","):
                code = piece.strip()
                col = pos + len(piece) - len(piece.lstrip()) + 1
                if not code:
                    raise JournalError(lineno, col, "expected a commodity code in the list")
                state.commodity(code, lineno, col)
                if code in codes:
                    raise JournalError(lineno, col, f"commodity {code} is listed twice")
                codes.append(code)
                pos += len(piece) + 1
        state.opened[account] = lineno
        directive = _Directive(date, lineno)
        directive.account, directive.commodities = account, tuple(codes)
        return directive
    # Not a directive: a transaction header with something wrong. Find what.
    _parse_stamp(stamp, lineno)
    raise JournalError(
        lineno,
        wcol,
        f"expected a flag ('*' posted, '!' pending), 'commodity' or 'open', not {word!r}",
    )


def _undated_directive(line: str, lineno: int, state: _State) -> Option | None:
    tokens = _tokens(line)
    word = tokens[0][0]
    if word == "option":
        if len(tokens) < 2:
            raise JournalError(lineno, len(line) + 1, "expected an option name")
        name, ncol = tokens[1]
        if METADATA_KEY.match(name) is None:
            raise JournalError(
                lineno,
                ncol,
                f"option name must be lower-case letters, digits and '-', not {name!r}",
            )
        if len(tokens) < 3:
            raise JournalError(lineno, len(line) + 1, f"expected a value for option {name}")
        return Option(name, line[tokens[2][1] - 1 :], lineno)
    if word == "alias":
        if len(tokens) < 3:
            raise JournalError(lineno, len(line) + 1, "expected `alias NAME ACCOUNT`")
        (name, ncol), (target, tcol) = tokens[1], tokens[2]
        if _ALIAS.match(name) is None:
            raise JournalError(
                lineno,
                ncol,
                f"an alias name is letters, digits, '_', '.' or '-' (no ':'), not {name!r}",
            )
        if len(tokens) > 3:
            raise JournalError(lineno, tokens[3][1], "unexpected text after the alias's account")
        path = state.account(target, lineno, tcol)
        previous = state.aliases.get(name)
        if previous is not None and previous[0] != path:
            raise JournalError(
                lineno, ncol, f"alias {name} already names {previous[0]} (line {previous[1]})"
            )
        state.aliases[name] = (path, lineno)
        state.accounts[name] = path
        return None
    if word in ("commodity", "open"):
        raise JournalError(lineno, 1, f"`{word}` needs a date first: DATE {word} …")
    raise JournalError(
        lineno, 1, f"unknown directive {word!r} (expected option, alias, a date or a comment)"
    )


def _slow_indented(
    line: str,
    lineno: int,
    directive: _Directive | None,
    movs: list[Movement] | None,
    meta: dict[str, str],
    state: _State,
) -> None:
    """Every indented line the fast path did not take: comments, metadata, and movement lines
    that are new (first use of a name or a commodity), unusual or wrong."""
    body = line.lstrip(" \t")
    start = len(line) - len(body)
    if not body or body[0] in ";#":
        return
    if _is_metadata(body):
        _metadata(line, body, start, lineno, directive, movs, meta, state)
        return
    if movs is None:
        what = "an entry" if directive is None else "a transaction"
        raise JournalError(lineno, start + 1, f"movement line outside {what}")
    movs.append(_slow_movement(line, start, lineno, bool(movs), state))


def _is_metadata(body: str) -> bool:
    """`key: value` rather than a movement. An account never ends its first token with ':'
    (segments are non-empty), so `WORD:` then whitespace is metadata; `key:value` without the
    space is malformed metadata unless an arrow makes the line a movement."""
    key, colon, rest = body.partition(":")
    if not colon or any(ch.isspace() for ch in key):
        return False
    has_arrow = any(token in _ARROW_SET for token in body.split())
    if not rest or rest[0].isspace():
        return METADATA_KEY.match(key) is not None or not has_arrow
    return METADATA_KEY.match(key) is not None and not has_arrow


def _metadata(
    line: str,
    body: str,
    start: int,
    lineno: int,
    directive: _Directive | None,
    movs: list[Movement] | None,
    meta: dict[str, str],
    state: _State,
) -> None:
    key, _, rest = body.partition(":")
    kcol = start + 1
    if METADATA_KEY.match(key) is None:
        raise JournalError(
            lineno, kcol, f"metadata key must be lower-case letters, digits and '-', not {key!r}"
        )
    if rest and not rest[0].isspace():
        raise JournalError(lineno, kcol + len(key) + 1, "expected a space after ':'")
    value = rest.strip()
    if not value:
        raise JournalError(lineno, kcol + len(key) + 1, f"expected a value after '{key}:'")
    vcol = len(line) - len(value) + 1
    if movs is None and directive is None:
        raise JournalError(lineno, kcol, "metadata line outside an entry")
    if directive is not None and directive.account is not None and key == "name":
        _check_text(value, lineno, vcol, "an account's name", MAX_NAME)
    elif "\x00" in value:  # PostgreSQL cannot store it
        raise JournalError(lineno, vcol + value.index("\x00"), "a NUL character is not allowed")
    target = meta if movs is not None else directive.metadata  # type: ignore[union-attr]
    is_exponent = directive is not None and key == "exponent"  # of a commodity or an account
    if key in target or (is_exponent and directive.exponent is not None):  # type: ignore[union-attr]
        raise JournalError(lineno, kcol, f"metadata key {key!r} is given twice")
    if is_exponent:
        if _INT.match(value) is None:
            raise JournalError(lineno, vcol, f"exponent must be an integer, not {value!r}")
        exponent = int(value)
        if not MIN_EXPONENT <= exponent <= 0:
            raise JournalError(
                lineno, vcol, f"exponent must be between {MIN_EXPONENT} and 0, not {exponent}"
            )
        for code in directive.commodities:  # type: ignore[union-attr]
            places = state.decimals[code]  # set when the `open` line named it
            if exponent < -places:
                raise JournalError(
                    lineno,
                    vcol,
                    f"exponent {exponent} is finer than {code}'s ({-places}): declare "
                    f"`commodity {code}` with `exponent: {exponent}` before this open",
                )
        directive.exponent = exponent  # type: ignore[union-attr]
        return
    if movs is not None and key == "code" and _MOVEMENT_CODE.match(value) is None:
        raise JournalError(
            lineno,
            vcol,
            f"code must be three groups of 4 upper-case letters like PMNT:RCDT:BOOK, not {value!r}",
        )
    target[key] = value


def _slow_movement(line: str, start: int, lineno: int, linkable: bool, state: _State) -> Movement:
    """`[+]FROM ARROW TO ["description"] AMOUNT COMMODITY`, step by step, reporting the first
    problem with its column."""
    pos = start
    n = len(line)

    def gap(expect: str) -> None:
        nonlocal pos
        if pos >= n:
            raise JournalError(lineno, n + 1, f"expected {expect}")
        if not line[pos].isspace():
            raise JournalError(lineno, pos + 1, f"expected whitespace before {expect}")
        while pos < n and line[pos].isspace():
            pos += 1

    def token(expect: str) -> tuple[str, int]:
        nonlocal pos
        if pos >= n:
            raise JournalError(lineno, n + 1, f"expected {expect}")
        begin = pos
        while pos < n and not line[pos].isspace():
            pos += 1
        return line[begin:pos], begin + 1

    if line[pos] == "+":
        if not linkable:
            raise JournalError(lineno, pos + 1, _LINK_ERROR)
        pos += 1
    ftok, fcol = token("the FROM account")
    from_account = state.account(ftok, lineno, fcol)
    gap("an arrow (->, →, // or >)")
    arrow, acol = token("an arrow (->, →, // or >)")
    if arrow not in _ARROW_SET:
        raise JournalError(lineno, acol, f"expected an arrow (->, →, // or >), not {arrow!r}")
    gap("the TO account")
    ttok, tcol = token("the TO account")
    to_account = state.account(ttok, lineno, tcol)
    if from_account == to_account:
        raise JournalError(
            lineno, tcol, f"a movement needs two different accounts, not {from_account} twice"
        )
    gap("an amount")
    description = None
    if line[pos] == '"':
        qcol = pos + 1
        pos += 1
        chars: list[str] = []
        while True:
            if pos >= n:
                raise JournalError(lineno, qcol, "unterminated description (no closing '\"')")
            ch = line[pos]
            if ch == '"':
                pos += 1
                break
            if ch == "\\":
                escaped = line[pos + 1 : pos + 2]
                if escaped not in ('"', "\\"):
                    raise JournalError(
                        lineno,
                        pos + 1,
                        f"unknown escape '\\{escaped}' in a description "
                        '(only \\" and \\\\ are allowed)',
                    )
                if len(chars) == MAX_TEXT:
                    raise JournalError(lineno, pos + 1, _DESCRIPTION_LENGTH)
                chars.append(escaped)
                pos += 2
                continue
            if _CONTROL.match(ch) is not None:
                raise JournalError(
                    lineno, pos + 1, f"a description cannot hold the control character {ch!r}"
                )
            if len(chars) == MAX_TEXT:
                raise JournalError(lineno, pos + 1, _DESCRIPTION_LENGTH)
            chars.append(ch)
            pos += 1
        description = "".join(chars)
        gap("an amount")
    amount, amcol = token("an amount")
    if _AMOUNT_RE.match(amount) is None:
        raise _amount_error(amount, lineno, amcol)
    gap("a commodity code")
    code, ccol = token("a commodity code")
    places = state.commodity(code, lineno, ccol)
    if pos < n:
        gap("more")
        raise JournalError(lineno, pos + 1, "unexpected text after the commodity code")
    dot = amount.find(".")
    if dot >= 0 and len(amount) - dot - 1 > places:
        raise _decimals_error(amount, code, places, lineno, amcol)
    value = Decimal(amount.replace(",", ""))
    if not value:
        raise JournalError(lineno, amcol, f"amount must be greater than zero, not {amount}")
    return _make_movement(from_account, to_account, value, code, description, lineno)

"""The `.goluca` plain-text journal: a streaming parser and a canonical writer (no database)."""

from worthline.ledger.journal.syntax import (
    Commodity,
    Entry,
    JournalError,
    Movement,
    Open,
    Option,
    Transaction,
    default_exponent,
    parse,
)
from worthline.ledger.journal.writer import format_amount, format_time, write

__all__ = [
    "Commodity",
    "Entry",
    "JournalError",
    "Movement",
    "Open",
    "Option",
    "Transaction",
    "default_exponent",
    "format_amount",
    "format_time",
    "parse",
    "write",
]

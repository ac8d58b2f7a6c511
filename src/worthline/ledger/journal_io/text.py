"""A journal file's bytes as lines of text, read the same way by `POST /journal/import` and
`worthline journal import`: UTF-8, split on "\\n" only (newline='' semantics: a CRLF line keeps
its "\\r", which the parser ignores as trailing whitespace; a lone "\\r" stays inside its line and
is refused), streamed in chunks so that a large file never sits in memory whole. Every problem
names its line and column."""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from typing import BinaryIO

from worthline.kit.problems import BadRequest
from worthline.ledger.journal.syntax import JournalError

READ_BYTES = 1 << 16


class JournalNotText(BadRequest):
    slug, title = "journal-not-utf8", "Journal Is Not UTF-8 Text"

    def __init__(self, line: int, column: int) -> None:
        super().__init__(
            f"line {line}, column {column}: the journal is not valid UTF-8 text",
            line=line,
            column=column,
        )


def journal_lines(stream: BinaryIO) -> Iterator[str]:
    """The lines of a binary stream (without their "\\n"); `JournalNotText` at the first byte
    that is not UTF-8, `JournalError` at a NUL or a carriage return inside a line."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    pending = ""
    line_no = 0
    suspect = False  # a NUL or a CR seen: check each line (rare; the check costs a scan)
    for raw in iter(lambda: stream.read(READ_BYTES), b""):
        try:
            text = decoder.decode(raw)
        except UnicodeDecodeError as exc:
            raise _not_text(exc, pending, line_no) from exc
        suspect = suspect or "\x00" in text or "\r" in text
        pending += text
        *complete, pending = pending.split("\n")
        for line in complete:
            line_no += 1
            if suspect:
                check_line(line, line_no)
            yield line
    try:
        pending += decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise _not_text(exc, pending, line_no) from exc
    if pending:
        check_line(pending, line_no + 1)
        yield pending


def _not_text(exc: UnicodeDecodeError, pending: str, line_no: int) -> JournalNotText:
    """Where the bad byte is: `pending` is the text of the line so far (after `line_no` whole
    lines), and the bytes the decoder held before the bad one are valid UTF-8."""
    before = pending + bytes(exc.object[: exc.start]).decode("utf-8")
    line = line_no + before.count("\n") + 1
    column = len(before) - before.rfind("\n")  # characters, as the parser counts them
    if line == 1 and before.startswith("\ufeff"):
        column -= 1  # a byte-order mark is not part of the first line
    return JournalNotText(line, column)


def check_line(line: str, line_no: int) -> None:
    """NUL cannot be stored (PostgreSQL) and a carriage return inside a line cannot be written
    back (export): refuse both, naming the place, before anything reaches the database."""
    body = line.removesuffix("\r")  # CRLF line endings are fine
    for char, what in (("\x00", "a NUL character"), ("\r", "a carriage return inside a line")):
        column = body.find(char)
        if column >= 0:
            raise JournalError(line_no, column + 1, f"{what} is not allowed")

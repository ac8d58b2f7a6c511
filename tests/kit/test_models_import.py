"""Every column is typed whatever module is imported first.

A foreign key column without a type of its own takes the type of the column it references,
once that table is known. Imported before it, the column stayed untyped (`NullType`), and so
did every statement built from it at import: on SQLite a user id was then bound as a Python
UUID, which the driver refuses, and `ledger.direct.record_movement` failed when it was the
first thing a program imported. Each case runs in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest

FIRST_IMPORTS = [
    "worthline.ledger.models",
    "worthline.ledger.direct",
    "worthline.ledger.repository",
    "worthline.portfolio.models",
    "worthline.portfolio.series",
    "worthline.eventstream.models",
    "worthline.snapshots.models",
    "worthline.snapshots.repository",
]

CHECK = """
import importlib, sys
import sqlalchemy as sa
importlib.import_module(sys.argv[1])
from worthline.kit.db import Base
untyped = [
    f"{table.name}.{column.name}"
    for table in Base.metadata.tables.values()
    for column in table.columns
    if isinstance(column.type, sa.types.NullType)
]
from worthline.ledger import repository
bound = repository._LOCK_ACCOUNTS.whereclause.clauses[0].right.type
print(untyped, type(bound).__name__)
"""


@pytest.mark.parametrize("module", FIRST_IMPORTS)
def test_columns_are_typed_whatever_is_imported_first(module):
    result = subprocess.run(  # noqa: S603 (this interpreter, a fixed script)
        [sys.executable, "-c", CHECK, module], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["[]", "Uuid"]

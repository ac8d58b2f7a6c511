"""The `worthline` command against a real SQLite file: migrate it, create users."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from conftest import PASSWORD, sqlite_rows


def _tables(path: Path) -> set[str]:
    # sqlite_sequence (AUTOINCREMENT's bookkeeping) is SQLite's own and cannot be dropped.
    tables = sqlite_rows(path, "SELECT name FROM sqlite_master WHERE type = 'table'")
    return {r[0] for r in tables if r[0] != "sqlite_sequence"}


@pytest.fixture
def migrated(cli, tmp_path: Path) -> Path:
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "Database at head" in result.output
    path = tmp_path / "cli.db"
    assert {"users", "auth_sessions", "refresh_tokens", "personal_tokens"} <= _tables(path)
    return path


def test_users_create(cli, migrated):
    result = cli("users", "create", "Ada@Example.com", "--password", PASSWORD)
    assert result.exit_code == 0, result.output
    # cli.py echoes the email as typed (domain lower-cased by the validator), not as stored.
    assert "created user ada@example.com" in result.output.lower()
    assert PASSWORD not in result.output
    rows = sqlite_rows(migrated, "SELECT email, base_currency, password_hash FROM users")
    assert len(rows) == 1
    email, currency, password_hash = rows[0]
    assert (email, currency) == ("ada@example.com", "GBP")
    assert isinstance(password_hash, str)
    assert password_hash.startswith("$argon2id$")
    assert PasswordHasher().verify(password_hash, PASSWORD)


def test_users_create_with_a_base_currency(cli, migrated):
    result = cli(
        "users", "create", "ada@example.com", "--password", PASSWORD, "--base-currency", "JPY"
    )
    assert result.exit_code == 0, result.output
    assert sqlite_rows(migrated, "SELECT base_currency FROM users") == [("JPY",)]


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["ada@example.com", "--password", "password123"], id="common-password"),
        pytest.param(["ada@example.com", "--password", "short"], id="short-password"),
        pytest.param(["ada@example.com", "--password", " " + PASSWORD], id="padded-password"),
        pytest.param(["not-an-email", "--password", PASSWORD], id="bad-email"),
        pytest.param(
            ["ada@example.com", "--password", PASSWORD, "--base-currency", "gbp"],
            id="bad-currency",
        ),
    ],
)
def test_users_create_refuses_bad_input(cli, migrated, args):
    result = cli("users", "create", *args)
    assert result.exit_code == 2, result.output
    assert sqlite_rows(migrated, "SELECT count(*) FROM users") == [(0,)]


def test_users_create_refuses_a_taken_email(cli, migrated):
    assert cli("users", "create", "ada@example.com", "--password", PASSWORD).exit_code == 0
    result = cli("users", "create", "ADA@example.com", "--password", "another strong passphrase")
    assert result.exit_code == 1, result.output
    assert "already registered" in result.output
    rows = sqlite_rows(migrated, "SELECT password_hash FROM users")
    assert len(rows) == 1
    assert PasswordHasher().verify(rows[0][0], PASSWORD)


def test_db_downgrade_and_upgrade_again(cli, migrated):
    result = cli("db", "downgrade", "base")
    assert result.exit_code == 0, result.output
    assert _tables(migrated) == {"alembic_version"}
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "users" in _tables(migrated)
    assert cli("users", "create", "ada@example.com", "--password", PASSWORD).exit_code == 0


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("WORTHLINE_ACCESS_TOKEN_TTL_SECONDS", "5"),
        ("WORTHLINE_RATE_LIMIT_AUTH", "lots"),
        ("WORTHLINE_DEMO_DATA", "sometimes"),
    ],
)
@pytest.mark.parametrize(
    "command",
    [
        ["serve", "--port", "1"],
        ["db", "upgrade"],
        ["interest", "run"],
        ["events", "purge"],
        ["prices", "import", "nothing.csv"],
    ],
)
def test_a_bad_setting_is_named_in_one_line(tmp_path, variable, value, command):
    """A real process (Typer prints a Rich traceback there, not under CliRunner): one line
    naming the variable, exit code 2, and the command never runs (the server never starts)."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("WORTHLINE_")},
        "WORTHLINE_DATA_DIR": str(tmp_path / "data"),
        "WORTHLINE_DEMO_DATA": "off",
        variable: value,
        "COLUMNS": "160",
    }
    result = subprocess.run(  # noqa: S603 (the test's own commands)
        [sys.executable, "-c", "from worthline.cli import app; app()", *command],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"worthline: bad setting {variable}: "), lines
    assert "Traceback" not in result.stderr

"""`worthline snapshots capture` (the cron entry point) and `worthline snapshots list`, against a
real SQLite file."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from conftest import PASSWORD, sqlite_rows

JOURNAL = """\
2026-01-01 commodity GBP
  exponent: -2
2026-01-02 * Salary
  Income:Salary -> Asset:Bank:Current 2,000.00 GBP
2026-01-03 * Card
  Liability:Card -> Expense:Food 12.34 GBP
"""


@pytest.fixture
def ledger(cli, tmp_path: Path) -> Path:
    assert cli("db", "upgrade").exit_code == 0
    for email in ("ada@example.com", "bob@example.com"):
        result = cli("users", "create", email, "--password", PASSWORD)
        assert result.exit_code == 0, result.output
    journal = tmp_path / "ledger.goluca"
    journal.write_text(JOURNAL)
    for email in ("ada@example.com", "bob@example.com"):
        result = cli("journal", "import", str(journal), "--user", email)
        assert result.exit_code == 0, result.output
    return tmp_path / "cli.db"


def test_capture_from_cron_is_idempotent_per_day(cli, ledger):
    # The imports captured each user's Asset and Liability accounts (their first snapshots).
    assert sqlite_rows(
        ledger, "SELECT source, count(*) FROM balance_snapshots GROUP BY source"
    ) == [("initial_connection", 4)]
    only_ada = cli("snapshots", "capture", "--user", "ada@example.com")
    assert only_ada.exit_code == 0, only_ada.output
    assert "Captured 2 snapshots (scheduled_sync)" in only_ada.output
    everyone = cli("snapshots", "capture")
    assert everyone.exit_code == 0, everyone.output
    assert "Captured 2 snapshots" in everyone.output  # bob's; ada's were captured today
    again = cli("snapshots", "capture")
    assert "Captured 0 snapshots" in again.output
    manual = cli("snapshots", "capture", "--source", "manual_sync")
    assert "Captured 4 snapshots (manual_sync)" in manual.output
    assert sqlite_rows(
        ledger, "SELECT source, count(*) FROM balance_snapshots GROUP BY source ORDER BY source"
    ) == [("initial_connection", 4), ("manual_sync", 4), ("scheduled_sync", 4)]
    assert sqlite_rows(
        ledger,
        "SELECT count(DISTINCT scheduled_on) FROM balance_snapshots "
        "WHERE source = 'scheduled_sync'",
    ) == [(1,)]


def test_capture_refuses_bad_options(cli, ledger):
    bad = cli("snapshots", "capture", "--source", "account_sync")
    assert bad.exit_code == 2
    assert "--source must be one of scheduled_sync, manual_sync" in bad.output
    nobody = cli("snapshots", "capture", "--user", "nobody@example.com")
    assert nobody.exit_code == 1
    assert "No user nobody@example.com" in nobody.output
    assert sqlite_rows(ledger, "SELECT count(*) FROM balance_snapshots") == [(4,)]


def test_list_shows_recent_snapshots(cli, ledger):
    [(hex_id,)] = sqlite_rows(
        ledger,
        "SELECT a.public_id FROM accounts a JOIN users u ON u.id = a.user_id "
        "WHERE u.email = 'ada@example.com' AND a.full_path = 'Asset:Bank:Current'",
    )
    account_id = str(uuid.UUID(str(hex_id)))
    assert cli("snapshots", "capture", "--source", "manual_sync").exit_code == 0
    result = cli("snapshots", "list", account_id, "--limit", "5")
    assert result.exit_code == 0, result.output
    assert "Asset:Bank:Current (GBP)" in result.output
    lines = [line for line in result.output.splitlines() if "2000.00" in line]
    assert len(lines) == 2
    assert "manual_sync" in lines[0] and "0.00" in lines[0] and "+0.00" in lines[0]
    assert "initial_connection" in lines[1]

    assert cli("snapshots", "list", "not-a-uuid").exit_code == 2
    missing = cli("snapshots", "list", str(uuid.uuid4()))
    assert missing.exit_code == 1
    assert "No account" in missing.output
    assert cli("snapshots", "list", account_id, "--limit", "0").exit_code == 2

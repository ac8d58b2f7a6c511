"""Each snapshot stores the unchanging part of its JSON when it is inserted
(`BalanceSnapshot.json_head`, written by `jsontext.snapshot_head`); balance-history appends the
change. On both engines: every capture path stores the text the database writes for the same
row (`repository.written_head`), byte for byte, and snapshots stored before heads existed (NULL)
read exactly as the others."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from sqlalchemy import insert, select

from ledger.factories import account, move
from snapshots.helpers import report, sync
from snapshots.test_history_array import SPAN, _same_bytes
from worthline.kit.db import utcnow
from worthline.kit.ids import uuid7
from worthline.kit.sql import uuid_text
from worthline.ledger.models import Account
from worthline.snapshots import repository as repo
from worthline.snapshots.jsontext import snapshot_head
from worthline.snapshots.models import BalanceSnapshot
from worthline.snapshots.tasks import capture_scheduled


async def _heads(ctx) -> list[tuple[str | None, str]]:  # type: ignore[no-untyped-def]
    """(stored head, the head the database writes) of every snapshot."""
    table = BalanceSnapshot.__table__
    written = repo.written_head(table, uuid_text(Account.public_id), -Account.exponent)
    async with ctx.db.read_session() as session:
        rows = await session.execute(
            select(table.c.json_head, written)
            .join(Account, Account.id == table.c.account_id)
            .order_by(table.c.captured_at)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def test_every_capture_path_stores_the_head_the_database_writes(client, auth, ctx):
    h = auth["headers"]
    equity = await account(client, h, "Equity:Capital")
    bank = await account(client, h, "Asset:Bank:Current")
    card = await account(client, h, "Liability:Card")
    yen = await account(client, h, "Asset:Bank:Yen", "JPY")
    fine = await account(client, h, "Asset:Fund:Fine", "USD", exponent=-8)
    await move(client, h, equity, bank, "1234.56", value_time="2026-01-10T12:00:00Z")
    await move(client, h, card, equity, "0.07", value_time="2026-01-10T12:00:00Z")

    await sync(client, h, bank)  # initial_connection
    await sync(client, h, bank)  # manual_sync
    await sync(client, h, card)
    await capture_scheduled(ctx.db, utcnow())  # scheduled_sync, several at once
    extra = {"available_balance": "-3.50", "holdings_value": "0.00", "cash_value": "-3.5"}
    # Another zone and microseconds: stored, and written, in UTC.
    await report(client, h, bank, "-0.01", "2025-06-01T09:30:00.000250+02:00", **extra)
    await report(client, h, bank, "0", "2025-06-02T00:00:00Z")
    await report(client, h, yen, "-1234567", "2025-06-03T23:59:59.999999Z", "holdings_sync")
    await report(client, h, fine, "0.00000001", "2025-06-04T00:00:00-05:30")
    await report(client, h, fine, "-9999999999.99999999", "2025-06-05T00:00:00Z")

    heads = await _heads(ctx)
    assert len(heads) >= 10
    for stored, written in heads:
        assert stored is not None
        assert stored == written
    assert any('"captured_at":"2025-06-01T07:30:00.000250Z"' in s for s, _ in heads)
    assert any('"balance":"-0.01","available_balance":"-3.50"' in s for s, _ in heads)


async def test_snapshots_stored_without_a_head_read_the_same(client, auth, ctx):
    h = auth["headers"]
    acc = await account(client, h, "Asset:Bank:Current")
    await report(client, h, acc, "100.00", "2024-01-01T00:00:00Z", available_balance="90.00")
    await report(client, h, acc, "250.10", "2024-01-03T00:00:00.5Z", "manual_sync")
    async with ctx.db.read_session() as session:
        stored = await repo.account_by_public_id(session, uuid.UUID(acc["id"]))
        assert stored is not None
    # As a snapshot was stored before heads existed: the same columns, json_head NULL.
    old = [
        (datetime(2024, 1, 2, tzinfo=UTC), "-5.25", None),
        (datetime(2024, 1, 3, tzinfo=UTC), "0.00", "7.00"),  # just before a stored one
        (datetime(2024, 1, 4, 1, 2, 3, 4, tzinfo=UTC), "1000000.00", None),
    ]
    async with ctx.db.write_session() as session:
        await session.execute(
            insert(BalanceSnapshot.__table__),
            [
                {
                    "id": uuid7(),
                    "account_id": stored.id,
                    "balance_amount": Decimal(balance),
                    "available_balance_amount": None,
                    "holdings_value_amount": None if holdings is None else Decimal(holdings),
                    "cash_value_amount": None,
                    "currency": "GBP",
                    "source": "account_sync",
                    "captured_at": at,
                    "created_at": utcnow(),
                    "provider_metadata": {},
                    "json_head": None,
                }
                for at, balance, holdings in old
            ],
        )
        await session.commit()
    heads = await _heads(ctx)
    assert sum(stored is None for stored, _ in heads) == 3

    body = await _same_bytes(client, ctx, h, acc, **SPAN)
    assert [s["balance"] for s in body["snapshots"]] == [
        "100.00",
        "-5.25",
        "0.00",
        "250.10",
        "1000000.00",
    ]
    assert [s["change_amount"] for s in body["snapshots"]] == [
        None,
        "-105.25",
        "5.25",
        "250.10",
        "999749.90",
    ]
    assert body["start_balance"] == "100.00" and body["end_balance"] == "1000000.00"
    narrow = await _same_bytes(client, ctx, h, acc, start_date="2024-01-02", end_date="2024-01-02")
    assert narrow["total_count"] == 1 and narrow["snapshots"][0]["change_amount"] is None


def test_a_head_is_written_in_utc_whatever_zone_it_is_given():
    """The columns give datetimes back in UTC, so the head must say what a read would."""
    paris = timezone(timedelta(hours=2))
    row = {
        "id": uuid.UUID(int=1),
        "balance_amount": Decimal("-0.50000000"),
        "available_balance_amount": None,
        "holdings_value_amount": Decimal("0E-8"),
        "cash_value_amount": Decimal("12"),
        "currency": "EUR",
        "source": "manual_sync",
        "captured_at": datetime(2025, 6, 1, 9, 30, 0, 250, tzinfo=paris),
        "created_at": datetime(2025, 6, 1, 8, 0, tzinfo=UTC),
    }
    assert snapshot_head(row, uuid.UUID(int=2), -2) == (
        '{"id":"00000000-0000-0000-0000-000000000001",'
        '"account_id":"00000000-0000-0000-0000-000000000002",'
        '"balance":"-0.50","available_balance":null,"holdings_value":"0.00",'
        '"cash_value":"12.00","currency":"EUR","source":"manual_sync",'
        '"captured_at":"2025-06-01T07:30:00.000250Z","created_at":"2025-06-01T08:00:00Z"'
    )

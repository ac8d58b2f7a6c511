"""Reconciliation: reported balances checked against the ledger at their `captured_at`, the way
Beancount's `balance` assertions check a statement, in a constant number of queries."""

from __future__ import annotations

from sqlalchemy import event

from ledger.factories import account, move
from snapshots.helpers import get_ok, report, sync


async def test_reported_balances_that_disagree_with_the_ledger(client, auth):
    h = auth["headers"]
    equity = await account(client, h, "Equity:Capital")
    bank = await account(client, h, "Asset:Bank:Current")
    await move(client, h, equity, bank, "100.00", value_time="2026-01-10T12:00:00Z")
    await move(client, h, equity, bank, "50.00", value_time="2026-01-12T09:00:00Z")
    await move(client, h, bank, equity, "30.00", value_time="2026-01-12T18:00:00Z")

    r1 = await report(client, h, bank, "0.00", "2026-01-10T11:59:59Z")
    r2 = await report(client, h, bank, "100.00", "2026-01-10T12:00:00Z")  # the instant counts
    r3 = await report(client, h, bank, "140.00", "2026-01-12T10:00:00Z")  # ledger: 150.00
    r4 = await report(client, h, bank, "120.00", "2026-01-12T23:59:59.999999Z")
    r5 = await report(client, h, bank, "125.00", "2026-01-20T00:00:00Z")  # ledger: 120.00
    # A capture is the ledger's own balance: even made wrong later by a backdated movement, it
    # is history corrected, not a reported balance in disagreement.
    await sync(client, h, bank)
    await move(client, h, equity, bank, "1.00", value_time="2026-01-01T00:00:00Z")

    body = await get_ok(client, f"/accounts/{bank['id']}/reconciliation", h)
    assert body == {
        "account_id": bank["id"],
        "currency": "GBP",
        "checked_count": 5,
        "discrepancies": [
            {
                "snapshot_id": r1["id"],
                "captured_at": "2026-01-10T11:59:59Z",
                "reported_balance": "0.00",
                "ledger_balance": "1.00",  # the backdated 1.00 counts from 1 January
                "difference": "-1.00",
            },
            {
                "snapshot_id": r2["id"],
                "captured_at": "2026-01-10T12:00:00Z",
                "reported_balance": "100.00",
                "ledger_balance": "101.00",
                "difference": "-1.00",
            },
            {
                "snapshot_id": r3["id"],
                "captured_at": "2026-01-12T10:00:00Z",
                "reported_balance": "140.00",
                "ledger_balance": "151.00",
                "difference": "-11.00",
            },
            {
                "snapshot_id": r4["id"],
                "captured_at": "2026-01-12T23:59:59.999999Z",
                "reported_balance": "120.00",
                "ledger_balance": "121.00",
                "difference": "-1.00",
            },
            {
                "snapshot_id": r5["id"],
                "captured_at": "2026-01-20T00:00:00Z",
                "reported_balance": "125.00",
                "ledger_balance": "121.00",
                "difference": "4.00",
            },
        ],
        "total_count": 5,
    }

    # Book the missing pound's reversal: r4 and r2 and r1 agree again, r3 and r5 still drift.
    await move(client, h, bank, equity, "1.00", value_time="2026-01-01T00:00:00Z")
    body = await get_ok(client, f"/accounts/{bank['id']}/reconciliation", h)
    assert [
        (d["snapshot_id"], d["ledger_balance"], d["difference"]) for d in body["discrepancies"]
    ] == [
        (r3["id"], "150.00", "-10.00"),
        (r5["id"], "120.00", "5.00"),
    ]
    assert (body["checked_count"], body["total_count"]) == (5, 2)


async def test_reconciliation_of_an_account_without_reports(client, auth):
    h = auth["headers"]
    bank = await account(client, h, "Asset:Bank:Current", "JPY")
    await sync(client, h, bank)
    assert await get_ok(client, f"/accounts/{bank['id']}/reconciliation", h) == {
        "account_id": bank["id"],
        "currency": "JPY",
        "checked_count": 0,
        "discrepancies": [],
        "total_count": 0,
    }


async def test_reconciliation_runs_a_constant_number_of_queries(client, auth, ctx):
    h = auth["headers"]
    equity = await account(client, h, "Equity:Capital")
    bank = await account(client, h, "Asset:Bank:Current")
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    async def measure() -> int:
        statements.clear()
        event.listen(ctx.db.engine.sync_engine, "before_cursor_execute", count)
        try:
            await get_ok(client, f"/accounts/{bank['id']}/reconciliation", h)
        finally:
            event.remove(ctx.db.engine.sync_engine, "before_cursor_execute", count)
        return len(statements)

    async def add(days: range) -> None:
        for day in days:
            when = f"2026-02-{day:02d}T12:00:00Z"
            await move(client, h, equity, bank, "1.00", value_time=when)
            await report(client, h, bank, f"{day + 1}.00", when)

    await add(range(1, 3))
    few = await measure()
    await add(range(3, 21))
    assert await measure() == few

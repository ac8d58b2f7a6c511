"""Holdings sync: true counts, deactivation, valuation, the snapshot it captures, its events,
and bad input that stores nothing. On both engines."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from ledger.factories import account, move
from portfolio.helpers import asset, rates, sync
from worthline.eventstream.events import (
    AccountHoldingsUpdated,
    PortfolioNetWorthRecalculated,
)
from worthline.portfolio.models import Holding, HoldingHistory

TODAY = datetime.now(UTC).date()
YESTERDAY = TODAY - timedelta(days=1)


async def _me(client, headers) -> uuid.UUID:
    return uuid.UUID((await client.get("/users/me", headers=headers)).json()["id"])


async def test_a_sync_reports_true_counts_and_deactivates_what_is_missing(client, auth, ctx):
    headers = auth["headers"]
    broker = await account(client, headers, "Asset:Broker", "USD")
    await asset(ctx, "AAPL", "USD", {YESTERDAY: "150.25"})
    await asset(ctx, "MSFT", "USD", {YESTERDAY: "400"})

    first = await sync(
        client,
        headers,
        broker,
        [
            {"symbol": "AAPL", "quantity": "10", "cost_basis": "1200.00"},
            {"symbol": "MSFT", "quantity": "5"},
        ],
    )
    assert {k: first[k] for k in first if k.endswith("count")} == {
        "holdings_count": 2,
        "created_count": 2,
        "updated_count": 0,
        "deactivated_count": 0,
    }
    assert first["holdings_value"] == "3502.50"  # 10 × 150.25 + 5 × 400
    assert (first["currency"], first["stale"]) == ("USD", [])

    # Same AAPL (unchanged), more MSFT (updated), a new symbol described by the sync.
    second = await sync(
        client,
        headers,
        broker,
        [
            {"symbol": "AAPL", "quantity": "10.000", "cost_basis": "1200"},
            {"symbol": "MSFT", "quantity": "6"},
            {
                "symbol": "GOOG",
                "quantity": "1.5",
                "price": "170.10",
                "currency": "USD",
                "name": "Alphabet",
                "asset_type": "equity",
            },
        ],
    )
    assert [second[k] for k in ("created_count", "updated_count", "deactivated_count")] == [1, 1, 0]
    # the broker's price filled GOOG's price for today: 1.5 × 170.10 = 255.15
    assert second["holdings_value"] == "4157.65"  # 1,502.50 + 2,400 + 255.15

    third = await sync(client, headers, broker, [{"symbol": "AAPL", "quantity": "10"}])
    assert [
        third[k] for k in ("holdings_count", "created_count", "updated_count", "deactivated_count")
    ] == [1, 0, 0, 2]
    assert third["holdings_value"] == "1502.50"

    listed = (await client.get(f"/accounts/{broker['id']}/holdings", headers=headers)).json()
    assert listed["holdings_value"] == "1502.50" and listed["currency"] == "USD"
    [aapl] = listed["holdings"]
    assert {k: aapl[k] for k in aapl if k != "as_of"} == {
        "symbol": "AAPL",
        "name": "AAPL Inc",
        "quantity": "10",
        "price": "150.25",
        "price_date": YESTERDAY.isoformat(),
        "market_value": "1502.5",
        "cost_basis": "1200",
        "currency": "USD",
        "is_active": True,
    }
    everything = (
        await client.get(
            f"/accounts/{broker['id']}/holdings?include_inactive=true", headers=headers
        )
    ).json()
    assert [(h["symbol"], h["quantity"], h["is_active"]) for h in everything["holdings"]] == [
        ("AAPL", "10", True),
        ("GOOG", "1.5", False),
        ("MSFT", "6", False),
    ]
    assert everything["holdings_value"] == "1502.50"  # inactive holdings are worth nothing


async def test_the_sync_captures_a_snapshot_with_cash_and_holdings(client, auth, ctx):
    headers = auth["headers"]
    broker = await account(client, headers, "Asset:Broker", "GBP")
    opening = await account(client, headers, "Equity:Opening")
    await move(client, headers, opening, broker, "250.00")
    await asset(ctx, "AAPL", "USD", {YESTERDAY: "100"})
    await rates(ctx, (YESTERDAY, "GBP", "USD", "1.25"))  # used inverted: 1 USD = 0.8 GBP
    first = await sync(client, headers, broker, [{"symbol": "AAPL", "quantity": "3"}])
    snapshot = first["snapshot"]
    assert first["holdings_value"] == "240.00"
    assert {k: snapshot[k] for k in ("balance", "holdings_value", "cash_value", "source")} == {
        "balance": "490.00",
        "holdings_value": "240.00",
        "cash_value": "250.00",
        "source": "initial_connection",  # the account's first snapshot
    }
    second = await sync(client, headers, broker, [{"symbol": "AAPL", "quantity": "4"}])
    snapshot = second["snapshot"]
    assert (snapshot["source"], snapshot["balance"], snapshot["change_amount"]) == (
        "holdings_sync",
        "570.00",
        "80.00",
    )
    # A manual sync values the holdings too.
    manual = await client.post(f"/accounts/{broker['id']}/sync", headers=headers)
    assert manual.status_code == 201
    assert (manual.json()["holdings_value"], manual.json()["balance"]) == ("320.00", "570.00")


async def test_a_liability_sync_captures_its_cash_value_too(client, auth, ctx):
    """cash_value is the ledger balance in every captured snapshot: a Liability's too."""
    headers = auth["headers"]
    loan = await account(client, headers, "Liability:Margin", "USD")
    spent = await account(client, headers, "Expense:Shares", "USD")
    await move(client, headers, loan, spent, "300.00")
    await asset(ctx, "AAPL", "USD", {YESTERDAY: "100"})
    synced = await sync(client, headers, loan, [{"symbol": "AAPL", "quantity": "2"}])
    snapshot = synced["snapshot"]
    assert {k: snapshot[k] for k in ("balance", "holdings_value", "cash_value")} == {
        "balance": "-100.00",
        "holdings_value": "200.00",
        "cash_value": "-300.00",
    }
    manual = await client.post(f"/accounts/{loan['id']}/sync", headers=headers)
    assert manual.status_code == 201, manual.text
    assert (manual.json()["cash_value"], manual.json()["balance"]) == ("-300.00", "-100.00")


async def test_a_sync_publishes_holdings_and_net_worth_events(client, auth, ctx, published):
    headers = auth["headers"]
    user_id = await _me(client, headers)
    broker = await account(client, headers, "Asset:Broker", "GBP")
    await asset(ctx, "VWRL", "GBP", {YESTERDAY: "100.00"})
    await sync(client, headers, broker, [{"symbol": "VWRL", "quantity": "2"}])
    await sync(client, headers, broker, [{"symbol": "VWRL", "quantity": "2"}])  # no change
    await sync(client, headers, broker, [])
    assert [r.event for r in published] == [
        AccountHoldingsUpdated(user_id, uuid.UUID(broker["id"]), 1, 1, 0, 0),
        PortfolioNetWorthRecalculated(
            user_id, Decimal("0.00"), Decimal("200.00"), Decimal("200.00"), "GBP", 1
        ),
        # the unchanged sync publishes nothing at all
        AccountHoldingsUpdated(user_id, uuid.UUID(broker["id"]), 0, 0, 0, 1),
        PortfolioNetWorthRecalculated(
            user_id, Decimal("200.00"), Decimal("0.00"), Decimal("-200.00"), "GBP", 1
        ),
    ]


async def test_changing_the_base_currency_restates_net_worth(client, auth, ctx, published):
    headers = auth["headers"]
    user_id = await _me(client, headers)
    bank = await account(client, headers, "Asset:Bank")
    opening = await account(client, headers, "Equity:Opening")
    await move(client, headers, opening, bank, "80.00")
    await rates(ctx, (YESTERDAY, "USD", "GBP", "0.8"))
    published.clear()
    response = await client.patch("/users/me", json={"base_currency": "USD"}, headers=headers)
    assert response.status_code == 200
    assert [r.event for r in published] == [
        PortfolioNetWorthRecalculated(
            user_id, Decimal("100.00"), Decimal("100.00"), Decimal("0.00"), "USD", 1
        )
    ]
    published.clear()
    await move(client, headers, opening, bank, "8.00")  # 88 GBP = 110 USD
    assert published[-1].event == PortfolioNetWorthRecalculated(
        user_id, Decimal("100.00"), Decimal("110.00"), Decimal("10.00"), "USD", 1
    )


async def _stored(db) -> tuple[int, int]:
    async with db.read_session() as session:
        holdings = await session.scalar(select(func.count()).select_from(Holding))
        history = await session.scalar(select(func.count()).select_from(HoldingHistory))
    return holdings, history


async def test_bad_syncs_store_nothing(client, auth, ctx, db):
    from conftest import register_and_login

    headers = auth["headers"]
    broker = await account(client, headers, "Asset:Broker", "USD")
    salary = await account(client, headers, "Income:Salary", "USD")
    await asset(ctx, "AAPL", "USD", {YESTERDAY: "150"})
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    cases = [
        ([{"symbol": "AAPL", "quantity": "-1"}], {}, 422, "invalid-market-data"),
        ([{"symbol": "AAPL", "quantity": 1}], {}, 422, "validation-error"),
        ([{"symbol": "AAPL", "quantity": "1.123456789"}], {}, 422, "invalid-market-data"),
        ([{"symbol": "ZZZ", "quantity": "1"}], {}, 422, "invalid-market-data"),
        ([{"symbol": "ZZZ", "quantity": "1", "currency": "ABC"}], {}, 422, "invalid-market-data"),
        ([{"symbol": "AAPL", "quantity": "1", "currency": "GBP"}], {}, 422, "invalid-market-data"),
        ([{"symbol": "AAPL", "quantity": "1"}] * 2, {}, 422, "invalid-market-data"),
        ([{"symbol": "aapl", "quantity": "1"}], {}, 422, "invalid-market-data"),
        ([{"symbol": "AAPL\n", "quantity": "1"}], {}, 422, "invalid-market-data"),
        ([{"symbol": "AAPL", "quantity": "1", "price": "0"}], {}, 422, "invalid-market-data"),
        ([{"symbol": "AAPL", "quantity": "1"}], {"as_of": future}, 422, "invalid-market-data"),
        ([{"symbol": "AAPL", "quantity": "1"}], {"as_of": 0}, 422, "validation-error"),
        ([{"symbol": "AAPL", "quantity": "1"}], {"source": "nope"}, 400, "invalid-snapshot-source"),
        ([{"symbol": "AAPL", "quantity": "1", "extra": 1}], {}, 422, "validation-error"),
    ]
    for holdings, extra, status, slug in cases:
        body = await sync(client, headers, broker, holdings, expect=status, **extra)
        assert body["type"].endswith("/" + slug), (holdings, extra, body)
    await sync(client, headers, salary, [{"symbol": "AAPL", "quantity": "1"}], expect=422)
    other = await register_and_login(client, "bob@example.com")
    missing = await sync(client, other["headers"], broker, [], expect=404)
    assert missing["status"] == 404
    assert await _stored(db) == (0, 0)

    # A sync older than the last one is refused: it would rewrite history out of order.
    await sync(client, headers, broker, [{"symbol": "AAPL", "quantity": "1"}])
    stored = await _stored(db)
    old = (datetime.now(UTC) - timedelta(days=3)).isoformat()
    conflict = await sync(
        client, headers, broker, [{"symbol": "AAPL", "quantity": "2"}], expect=409, as_of=old
    )
    assert conflict["type"].endswith("/holdings-sync-out-of-order")
    assert await _stored(db) == stored


async def test_deleting_an_account_with_holdings_restates_net_worth(client, auth, ctx, published):
    headers = auth["headers"]
    user_id = await _me(client, headers)
    broker = await account(client, headers, "Asset:Broker", "GBP")
    await asset(ctx, "VWRL", "GBP", {YESTERDAY: "100.00"})
    await sync(client, headers, broker, [{"symbol": "VWRL", "quantity": "3"}])
    published.clear()
    response = await client.delete(f"/accounts/{broker['id']}", headers=headers)
    assert response.status_code == 204
    assert [r.event for r in published] == [
        PortfolioNetWorthRecalculated(
            user_id, Decimal("300.00"), Decimal("0.00"), Decimal("-300.00"), "GBP", 0
        )
    ]
    assert await _stored(ctx.db) == (0, 0)  # holdings and their history went with it


async def test_new_prices_and_rates_move_the_holders_net_worth(client, auth, ctx, published):
    from conftest import register_and_login

    headers = auth["headers"]
    user_id = await _me(client, headers)
    broker = await account(client, headers, "Asset:Broker", "USD")
    await asset(ctx, "AAPL", "USD", {YESTERDAY: "100"})
    await rates(ctx, (YESTERDAY, "USD", "GBP", "0.8"))
    await sync(client, headers, broker, [{"symbol": "AAPL", "quantity": "2"}])  # 160.00 GBP
    other = await register_and_login(client, "bob@example.com")  # holds nothing
    await account(client, other["headers"], "Asset:Bank")
    published.clear()

    response = await client.put(
        "/assets/AAPL/prices",
        json={"prices": [{"date": TODAY.isoformat(), "close": "110"}]},
        headers=other["headers"],  # anyone may write market data; only holders are moved
    )
    assert response.status_code == 200, response.text
    assert [r.event for r in published] == [
        PortfolioNetWorthRecalculated(
            user_id, Decimal("160.00"), Decimal("176.00"), Decimal("16.00"), "GBP", 1
        )
    ]
    published.clear()
    response = await client.put(
        "/fx-rates",
        json={"rates": [{"date": TODAY.isoformat(), "base": "GBP", "quote": "USD", "rate": "1"}]},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assert [r.event for r in published] == [  # today's inverse rate is the freshest: 1
        PortfolioNetWorthRecalculated(
            user_id, Decimal("176.00"), Decimal("220.00"), Decimal("44.00"), "GBP", 1
        )
    ]

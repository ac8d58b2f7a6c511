"""Net worth now and over time, against hand-computed values, on both engines: several
currencies, a liability, holdings, stale and missing prices and rates (never converted at 1)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from ledger.factories import account, move
from portfolio.helpers import asset, rates, sync

TODAY = datetime.now(UTC).date()


def ago(days: int) -> date:
    return TODAY - timedelta(days=days)


async def _household(client, headers, ctx):
    """Bank 1,000.00 GBP, a credit card owing 200.00 GBP, a USD broker with 500.00 cash and
    10 AAPL at 150.00 USD, 2 VWRL at a 10-day-old 100.50 GBP and 5 NOPX with no price at all,
    and 100.00 EUR in an account; USD/GBP 0.8 two days ago, no EUR rate."""
    bank = await account(client, headers, "Asset:Bank")
    card = await account(client, headers, "Liability:Card")
    broker = await account(client, headers, "Asset:Broker", "USD")
    euro = await account(client, headers, "Asset:Euro", "EUR")
    opening = await account(client, headers, "Equity:Opening")
    opening_usd = await account(client, headers, "Equity:OpeningUSD", "USD")
    opening_eur = await account(client, headers, "Equity:OpeningEUR", "EUR")
    food = await account(client, headers, "Expense:Food")
    await move(client, headers, opening, bank, "1000.00")
    await move(client, headers, card, food, "200.00")
    await move(client, headers, opening_usd, broker, "500.00")
    await move(client, headers, opening_eur, euro, "100.00")
    await asset(ctx, "AAPL", "USD", {ago(3): "140.00", ago(1): "150.00"})
    await asset(ctx, "VWRL", "GBP", {ago(10): "100.50"})
    await asset(ctx, "NOPX", "USD", {})
    await rates(ctx, (ago(2), "USD", "GBP", "0.8"))
    await sync(
        client,
        headers,
        broker,
        [
            {"symbol": "AAPL", "quantity": "10"},
            {"symbol": "VWRL", "quantity": "2"},
            {"symbol": "NOPX", "quantity": "5"},
        ],
    )
    return {"bank": bank, "card": card, "broker": broker, "euro": euro}


async def test_net_worth_in_the_base_currency(client, auth, ctx):
    headers = auth["headers"]
    accounts = await _household(client, headers, ctx)
    response = await client.get("/net-worth", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    # GBP: 1,000.00 - 200.00 + 2 × 100.50 = 1,001.00
    # USD: 500.00 + 10 × 150.00 = 2,000.00 → × 0.8 = 1,600.00 GBP
    # EUR: 100.00, no rate: left out. NOPX: no price: left out.
    assert body["net_worth"] == "2601.00"
    assert body["currency"] == "GBP"
    assert body["account_count"] == 4
    assert body["as_of"].endswith("Z")
    assert body["by_currency"] == [
        {
            "currency": "EUR",
            "amount": "100.00",
            "converted": None,
            "rate": None,
            "rate_date": None,
            "via": None,
        },
        {
            "currency": "GBP",
            "amount": "1001.00",
            "converted": "1001.00",
            "rate": "1",
            "rate_date": None,
            "via": "identity",
        },
        {
            "currency": "USD",
            "amount": "2000.00",
            "converted": "1600.00",
            "rate": "0.8",
            "rate_date": ago(2).isoformat(),
            "via": "direct",
        },
    ]
    broker = accounts["broker"]["id"]
    assert body["stale"] == [
        {
            "kind": "price",
            "status": "missing",
            "symbol": "NOPX",
            "currency": "USD",
            "as_of": None,
            "account_ids": [broker],
        },
        {
            "kind": "price",
            "status": "stale",
            "symbol": "VWRL",
            "currency": "GBP",
            "as_of": ago(10).isoformat(),
            "account_ids": [broker],
        },
        {
            "kind": "fx_rate",
            "status": "missing",
            "base": "EUR",
            "quote": "GBP",
            "as_of": None,
            "amount": "100.00",
        },
    ]


async def test_net_worth_in_another_currency_uses_the_inverse_and_a_cross(client, auth, ctx):
    headers = auth["headers"]
    await _household(client, headers, ctx)
    # In USD: GBP 1,001.00 / 0.8 = 1,251.25; USD 2,000.00.
    body = (await client.get("/net-worth?currency=USD", headers=headers)).json()
    assert body["net_worth"] == "3251.25"
    gbp = next(p for p in body["by_currency"] if p["currency"] == "GBP")
    assert (gbp["rate"], gbp["via"], gbp["converted"]) == ("1.25", "inverse", "1251.25")

    # EUR → USD 1.10 yesterday: EUR → GBP crosses through USD at 1.10 × 0.8 = 0.88.
    await rates(ctx, (ago(1), "EUR", "USD", "1.10"))
    body = (await client.get("/net-worth", headers=headers)).json()
    assert body["net_worth"] == "2689.00"  # 2,601.00 + 100.00 × 0.88
    eur = body["by_currency"][0]
    assert eur == {
        "currency": "EUR",
        "amount": "100.00",
        "converted": "88.00",
        "rate": "0.88",
        "rate_date": ago(2).isoformat(),  # as old as its older leg
        "via": "cross:USD",
    }
    assert [s["kind"] + ":" + s.get("symbol", "") for s in body["stale"]] == [
        "price:NOPX",
        "price:VWRL",
    ]


async def test_a_stale_rate_is_counted_and_flagged(client, auth, ctx):
    headers = auth["headers"]
    broker = await account(client, headers, "Asset:Broker", "USD")
    opening = await account(client, headers, "Equity:Opening", "USD")
    await move(client, headers, opening, broker, "100.00")
    await rates(ctx, (ago(8), "GBP", "USD", "1.25"))  # inverse, eight days old
    body = (await client.get("/net-worth", headers=headers)).json()
    assert body["net_worth"] == "80.00"
    assert body["stale"] == [
        {
            "kind": "fx_rate",
            "status": "stale",
            "base": "USD",
            "quote": "GBP",
            "as_of": ago(8).isoformat(),
            "amount": "100.00",
        }
    ]


async def test_flagged_amounts_have_their_currencys_places(client, auth, ctx):
    """An amount in `stale` summed from holdings (exact products, many decimals) is written
    with its currency's places, like `by_currency[].amount`: in net worth and holdings."""
    headers = auth["headers"]
    isa = await account(client, headers, "Asset:ISA")
    opening = await account(client, headers, "Equity:Opening")
    await move(client, headers, opening, isa, "1000.00")
    await rates(ctx, (ago(8), "USD", "GBP", "0.8"))  # eight days old: stale
    holdings = [{"symbol": "AAPL", "quantity": "10", "price": "228.50", "currency": "USD"}]
    synced = await sync(client, headers, isa, holdings)
    stale_rate = {
        "kind": "fx_rate",
        "status": "stale",
        "base": "USD",
        "quote": "GBP",
        "as_of": ago(8).isoformat(),
        "amount": "2285.00",
    }
    assert synced["stale"] == [stale_rate]
    listed = (await client.get(f"/accounts/{isa['id']}/holdings", headers=headers)).json()
    assert listed["stale"] == [stale_rate]
    body = (await client.get("/net-worth", headers=headers)).json()
    assert body["stale"] == [stale_rate]
    # No CHF rate at all: the GBP cash and the USD holdings are left out, each in its places.
    body = (await client.get("/net-worth?currency=CHF", headers=headers)).json()
    assert [(s["base"], s["status"], s["amount"]) for s in body["stale"]] == [
        ("GBP", "missing", "1000.00"),
        ("USD", "missing", "2285.00"),
    ]


async def test_an_empty_portfolio_and_bad_currency(client, auth):
    headers = auth["headers"]
    body = (await client.get("/net-worth", headers=headers)).json()
    assert (body["net_worth"], body["account_count"], body["stale"]) == ("0.00", 0, [])
    assert (await client.get("/net-worth?currency=JPY", headers=headers)).json()["net_worth"] == "0"
    response = await client.get("/net-worth?currency=ABC", headers=headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get("/net-worth")).status_code == 401


async def _history_setup(client, headers, ctx):
    bank = await account(client, headers, "Asset:Bank")
    broker = await account(client, headers, "Asset:Broker", "USD")
    opening = await account(client, headers, "Equity:Opening")
    rent = await account(client, headers, "Expense:Rent")
    await move(client, headers, opening, bank, "1000.00", value_time="2026-01-01T09:00:00Z")
    await move(client, headers, bank, rent, "100.00", value_time="2026-01-03T09:00:00Z")
    await asset(ctx, "AAPL", "USD", {date(2026, 1, 1): "100", date(2026, 1, 3): "110"})
    await rates(
        ctx, (date(2026, 1, 1), "USD", "GBP", "0.5"), (date(2026, 1, 4), "USD", "GBP", "0.8")
    )
    await sync(
        client,
        headers,
        broker,
        [{"symbol": "AAPL", "quantity": "10"}],
        as_of="2026-01-02T12:00:00Z",
    )


async def test_history_by_day_values_what_was_held_each_day(client, auth, ctx):
    headers = auth["headers"]
    await _history_setup(client, headers, ctx)
    response = await client.get(
        "/net-worth/history?start_date=2025-12-31&end_date=2026-01-04&interval=day",
        headers=headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["currency"], body["interval"]) == ("GBP", "day")
    assert body["points"] == [
        {"date": "2025-12-31", "net_worth": "0.00", "stale": []},
        {"date": "2026-01-01", "net_worth": "1000.00", "stale": []},
        # 10 AAPL from 2 January, at 100 USD (1 January's close) × 0.5
        {"date": "2026-01-02", "net_worth": "1500.00", "stale": []},
        # rent paid; AAPL 110
        {"date": "2026-01-03", "net_worth": "1450.00", "stale": []},
        # the rate moves to 0.8: 900 + 1,100 × 0.8
        {"date": "2026-01-04", "net_worth": "1780.00", "stale": []},
    ]


async def test_history_by_week_and_month_flags_what_ages(client, auth, ctx):
    headers = auth["headers"]
    await _history_setup(client, headers, ctx)
    body = (
        await client.get(
            "/net-worth/history?start_date=2025-12-31&end_date=2026-01-14&interval=week",
            headers=headers,
        )
    ).json()
    assert body["points"] == [  # every 7th day back from the end
        {"date": "2025-12-31", "net_worth": "0.00", "stale": []},
        {"date": "2026-01-07", "net_worth": "1780.00", "stale": []},
        # AAPL's last price (3 January) and the rate (4 January) are over 7 days old
        {"date": "2026-01-14", "net_worth": "1780.00", "stale": ["fx:USD/GBP", "price:AAPL"]},
    ]
    body = (
        await client.get(
            "/net-worth/history?start_date=2025-11-15&end_date=2026-01-04&interval=month"
            "&currency=USD",
            headers=headers,
        )
    ).json()
    # In USD on 4 January: 900 GBP / 0.8 = 1,125.00, plus 1,100.00
    assert body["points"] == [
        {"date": "2025-11-30", "net_worth": "0.00", "stale": []},
        {"date": "2025-12-31", "net_worth": "0.00", "stale": []},
        {"date": "2026-01-04", "net_worth": "2225.00", "stale": []},
    ]


async def test_history_bad_ranges(client, auth):
    headers = auth["headers"]
    for query, status in [
        ("start_date=2026-02-01&end_date=2026-01-01", 400),
        ("start_date=2000-01-01&end_date=2026-01-01&interval=day", 400),  # > 5,000 points
        ("start_date=2026-01-01&end_date=2026-01-31&interval=year", 422),
        ("start_date=2026-13-01", 422),
        ("currency=XYZ", 422),
        ("end_date=0001-01-01", 400),  # its default start would be before year 1: was a 500
        ("end_date=1899-12-31", 400),
        ("start_date=1899-12-31&end_date=1900-01-02", 400),
        ("end_date=2200-01-01", 400),
    ]:
        response = await client.get(f"/net-worth/history?{query}", headers=headers)
        assert response.status_code == status, (query, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    # 2000 → 2026 by month is fine
    response = await client.get(
        "/net-worth/history?start_date=2000-01-01&end_date=2026-01-01&interval=month",
        headers=headers,
    )
    assert response.status_code == 200 and len(response.json()["points"]) == 313
    # Near the earliest date the default year back stops at 1900-01-01.
    response = await client.get("/net-worth/history?end_date=1900-06-01", headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["start_date"] == "1900-01-01"


async def test_another_users_holdings_do_not_count(client, auth, ctx):
    from conftest import register_and_login

    await _household(client, auth["headers"], ctx)
    other = await register_and_login(client, "bob@example.com")
    body = (await client.get("/net-worth", headers=other["headers"])).json()
    assert (body["net_worth"], body["account_count"], body["stale"]) == ("0.00", 0, [])

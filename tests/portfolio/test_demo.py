"""The demo household (what `make run` loads into an empty database) shows real numbers: net
worth with no missing price or rate, an ISA valued from its holdings, a history to chart."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from portfolio.helpers import series_tables
from worthline.kit.db import unit_of_work
from worthline.ledger.demo import DEMO_EMAIL, load_demo
from worthline.portfolio import series


async def test_the_demo_household_has_a_net_worth_to_show(ctx, client):
    async with unit_of_work(ctx.db) as session:
        demo = await load_demo(session, ctx.auth, years=2)
    login = await client.post("/auth/login", json={"email": DEMO_EMAIL, "password": demo.password})
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

    worth = (await client.get("/net-worth", headers=headers)).json()
    assert worth["stale"] == []  # every price and rate is at most a weekend old
    assert [p["currency"] for p in worth["by_currency"]] == ["GBP", "USD"]
    assert Decimal(worth["net_worth"]) == sum(Decimal(p["converted"]) for p in worth["by_currency"])
    assert Decimal(worth["net_worth"]) > 0  # the home outweighs the mortgage

    accounts = (await client.get("/accounts?prefix=Asset:Broker", headers=headers)).json()
    [isa] = accounts["accounts"]
    holdings = (await client.get(f"/accounts/{isa['id']}/holdings", headers=headers)).json()
    assert [h["symbol"] for h in holdings["holdings"]] == ["AAPL", "IGLT.L", "VWRL.L"]
    assert Decimal(holdings["holdings_value"]) > 0
    history = (await client.get(f"/accounts/{isa['id']}/balance-snapshots", headers=headers)).json()
    assert history["total_count"] >= 4  # one snapshot per quarterly sync
    assert {s["source"] for s in history["snapshots"]} == {"holdings_sync", "initial_connection"}

    series = (await client.get("/net-worth/history?interval=month", headers=headers)).json()[
        "points"
    ]
    assert len(series) >= 12 and all(p["stale"] == [] for p in series)
    # Two code paths agree: the series' last point (today's close, computed set-wise from the
    # projections) and net worth now (from the ledger); the demo has nothing dated later today.
    assert series[-1]["net_worth"] == worth["net_worth"]


async def test_the_demo_s_prices_reach_others_who_hold_the_same_assets(ctx, client, auth):
    """The demo's assets and rates are shared reference data: a user who already holds one
    sees their net worth and series follow the prices the demo writes."""
    headers = auth["headers"]
    isa = (
        await client.post(
            "/accounts", json={"full_path": "Asset:Broker:Mine", "currency": "GBP"}, headers=headers
        )
    ).json()
    synced = await client.put(
        f"/accounts/{isa['id']}/holdings",
        json={
            "holdings": [{"symbol": "AAPL", "quantity": "3", "price": "150", "currency": "USD"}],
            "as_of": (datetime.now(UTC) - timedelta(days=400)).isoformat(),
        },
        headers=headers,
    )
    assert synced.status_code == 200, synced.text
    before = (await client.get("/net-worth/history?interval=month", headers=headers)).json()
    async with unit_of_work(ctx.db) as session:
        await load_demo(session, ctx.auth, years=2)
    user_id = uuid.UUID((await client.get("/users/me", headers=headers)).json()["id"])
    maintained = await series_tables(ctx.db, user_id)
    async with unit_of_work(ctx.db) as session:
        await series.build(session, user_id)
    assert await series_tables(ctx.db, user_id) == maintained
    after = (await client.get("/net-worth/history?interval=month", headers=headers)).json()
    assert after["points"] != before["points"]  # valued at the demo's AAPL prices now
    worth = (await client.get("/net-worth", headers=headers)).json()
    assert worth["net_worth"] == after["points"][-1]["net_worth"]

"""Market data over HTTP, on both engines: assets, prices, market caps and FX rates, each field
against hand-computed values; every rejected input answers a problem and stores nothing;
upserts replace by (asset, date) and (pair, date); the rate in force (direct, inverse, cross,
identity, stale, none)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import func, select

from conftest import make_settings, register_and_login
from ledger.api_helpers import error_locs, now, parse_ts, problem, validation
from worthline.app import create_app
from worthline.kit.context import AppContext
from worthline.kit.db import Database
from worthline.market.models import Asset, FxRate, MarketCap, Price
from worthline.market.schemas import AssetIn
from worthline.market.service import InvalidMarketData
from worthline.portfolio.holdings import check_symbol

ASSET_FIELDS = {"symbol", "name", "asset_type", "sector", "currency", "created_at", "updated_at"}
VWRL = {
    "symbol": "VWRL.L",
    "name": "Vanguard FTSE All-World",
    "asset_type": "etf",
    "sector": "Global equity",
    "currency": "GBP",
}
MARKET = "invalid-market-data"  # the service's checks (ranges, signs, places, duplicates)
SCHEMA = "validation-error"  # the request schema's (types, formats, unknown fields)


def today() -> date:
    return datetime.now(UTC).date()


async def counts(db: Database) -> dict[str, int]:
    """Rows in the market data tables, straight from the database."""
    async with db.read_session() as session:
        return {
            model.__tablename__: int(await session.scalar(select(func.count()).select_from(model)))
            for model in (Asset, Price, MarketCap, FxRate)
        }


async def create(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> dict:
    response = await client.post("/assets", json={**VWRL, **fields}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


async def put_prices(
    client: httpx.AsyncClient, headers: dict[str, str], symbol: str, prices: list[dict]
) -> httpx.Response:
    return await client.put(f"/assets/{symbol}/prices", json={"prices": prices}, headers=headers)


async def get_prices(
    client: httpx.AsyncClient, headers: dict[str, str], symbol: str, **params: str
) -> dict:
    response = await client.get(f"/assets/{symbol}/prices", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def put_rates(
    client: httpx.AsyncClient, headers: dict[str, str], rates: list[dict]
) -> httpx.Response:
    return await client.put("/fx-rates", json={"rates": rates}, headers=headers)


async def get_rate(
    client: httpx.AsyncClient, headers: dict[str, str], **params: str
) -> httpx.Response:
    return await client.get("/fx-rates", params=params, headers=headers)


# ---------------------------------------------------------------------------------- assets


async def test_create_and_read_an_asset(client, auth):
    before = now()
    response = await client.post("/assets", json=VWRL, headers=auth["headers"])
    after = now()
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == ASSET_FIELDS
    assert before <= parse_ts(body["created_at"]) <= after
    assert body["updated_at"] == body["created_at"]
    assert {k: v for k, v in body.items() if not k.endswith("_at")} == VWRL

    got = await client.get("/assets/VWRL.L", headers=auth["headers"])
    assert got.status_code == 200
    assert got.json() == body


async def test_sector_is_optional_and_the_list_is_by_symbol(client, auth):
    h = auth["headers"]
    btc = await create(
        client,
        h,
        symbol="BTC-USD",
        name="Bitcoin",
        asset_type="crypto",
        currency="USD",
        sector=None,
    )
    assert btc["sector"] is None
    vwrl = await create(client, h)
    brk = await client.post(
        "/assets",
        json={"symbol": "BRK.B", "name": "Berkshire B", "asset_type": "equity", "currency": "USD"},
        headers=h,
    )
    assert brk.status_code == 201
    assert brk.json()["sector"] is None
    listed = await client.get("/assets", headers=h)
    assert listed.status_code == 200
    assert listed.json() == {"assets": [brk.json(), btc, vwrl], "total_count": 3}


@pytest.mark.parametrize(
    "symbol",
    [
        "VWRL.L",
        "BRK.B",
        "BTC-USD",
        "X^Y",
        "^GSPC",
        "EURUSD=X",
        "EUR/USD",
        "NYSE:A_B",
        "X",
        "9" * 32,
    ],
)
async def test_symbols_accepted_and_readable_by_path(client, auth, symbol):
    body = await create(client, auth["headers"], symbol=symbol)
    assert body["symbol"] == symbol
    got = await client.get(f"/assets/{symbol}", headers=auth["headers"])
    assert got.status_code == 200, got.text
    assert got.json() == body
    put = await put_prices(client, auth["headers"], symbol, [{"date": "2025-01-02", "close": "10"}])
    assert put.status_code == 200, put.text
    assert (await get_prices(client, auth["headers"], symbol))["symbol"] == symbol


@pytest.mark.parametrize(
    "symbol",
    [
        *["", "vwrl.l", "Vwrl", "BAD SYMBOL", "A" * 33, "ÄBC", "A$", "A,B", "A\nB", "AB\n", "A;B"],
        # The first character is a letter, a digit or an index's ^, as in a holdings sync (one
        # grammar): "." could not even be reached by URL (/assets/. is /assets/).
        *["-X", ".", "/A", "_", "=X", ":A"],
    ],
)
async def test_bad_symbols_are_refused(client, auth, db, symbol):
    response = await client.post(
        "/assets", json={**VWRL, "symbol": symbol}, headers=auth["headers"]
    )
    body = validation(response)
    assert ["body", "symbol"] in error_locs(body)
    assert (await counts(db))["assets"] == 0


@pytest.mark.parametrize("symbol", ["VWRL.L", "X^Y", "9", "-X", ".", "^GSPC", "a", "A\n", ""])
def test_assets_and_holdings_take_the_same_symbols(symbol):
    """An asset the API creates can be held, and a symbol a holdings sync refuses is no asset."""
    try:
        AssetIn.model_validate({**VWRL, "symbol": symbol})
        asset_ok = True
    except ValidationError:
        asset_ok = False
    try:
        check_symbol(symbol, ["symbol"])
        holding_ok = True
    except InvalidMarketData:
        holding_ok = False
    assert asset_ok == holding_ok


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"asset_type": "stock"}, ["body", "asset_type"]),
        ({"currency": "XYZ"}, ["body", "currency"]),
        ({"currency": "gbp"}, ["body", "currency"]),
        ({"name": ""}, ["body", "name"]),
        ({"name": "x" * 201}, ["body", "name"]),
        ({"name": " padded"}, ["body", "name"]),
        ({"sector": "s" * 101}, ["body", "sector"]),
        ({"name": None}, ["body", "name"]),
        ({"isin": "IE00B3RBWM25"}, ["body", "isin"]),
    ],
)
async def test_bad_asset_fields_are_refused(client, auth, db, change, loc):
    response = await client.post("/assets", json={**VWRL, **change}, headers=auth["headers"])
    assert loc in error_locs(validation(response))
    assert (await counts(db))["assets"] == 0


async def test_missing_fields_are_refused(client, auth, db):
    body = validation(await client.post("/assets", json={"symbol": "X"}, headers=auth["headers"]))
    assert sorted(error_locs(body)) == [
        ["body", "asset_type"],
        ["body", "currency"],
        ["body", "name"],
    ]
    assert (await counts(db))["assets"] == 0


async def test_a_symbol_taken_answers_409_and_keeps_the_first(client, auth, db):
    first = await create(client, auth["headers"])
    again = await client.post(
        "/assets", json={**VWRL, "name": "Other", "currency": "USD"}, headers=auth["headers"]
    )
    assert "VWRL.L" in problem(again, 409, "asset-exists")["detail"]
    assert (await client.get("/assets/VWRL.L", headers=auth["headers"])).json() == first
    assert (await counts(db))["assets"] == 1


async def test_unknown_asset_is_404_everywhere(client, auth):
    h = auth["headers"]
    for response in (
        await client.get("/assets/NOPE", headers=h),
        await client.get("/assets/NOPE/prices", headers=h),
        await put_prices(client, h, "NOPE", [{"date": "2025-01-02", "close": "1"}]),
        await client.get("/assets/NOPE/market-caps", headers=h),
        await client.put(
            "/assets/NOPE/market-caps",
            json={"market_caps": [{"date": "2025-01-02", "market_cap": "1"}]},
            headers=h,
        ),
    ):
        assert "NOPE" in problem(response, 404, "asset-not-found")["detail"]


async def test_a_malformed_symbol_in_the_path_is_422(client, auth):
    body = validation(await client.get("/assets/vwrl.l", headers=auth["headers"]))
    assert error_locs(body) == [["path", "symbol"]]


async def test_market_data_is_shared_by_every_user(client, auth, db):
    await create(client, auth["headers"])
    bob = await register_and_login(client, "bob@example.com")
    listed = await client.get("/assets", headers=bob["headers"])
    assert [a["symbol"] for a in listed.json()["assets"]] == ["VWRL.L"]
    put = await put_prices(
        client, bob["headers"], "VWRL.L", [{"date": "2025-01-02", "close": "101.5"}]
    )
    assert put.json() == {"upserted": 1}
    prices = await get_prices(client, auth["headers"], "VWRL.L")
    assert [p["close"] for p in prices["prices"]] == ["101.5"]


async def test_needs_a_token_and_writes_need_the_write_scope(client, auth, db):
    await create(client, auth["headers"])
    assert (await client.get("/assets")).status_code == 401
    problem(await client.put("/fx-rates", json={"rates": []}), 401, "invalid-token")
    made = await client.post(
        "/auth/tokens", json={"name": "ro", "scopes": ["read"]}, headers=auth["headers"]
    )
    assert made.status_code == 201, made.text
    read_only = {"Authorization": f"Bearer {made.json()['token']}"}
    assert (await client.get("/assets/VWRL.L", headers=read_only)).status_code == 200
    assert (await get_rate(client, read_only, base="GBP", quote="GBP")).status_code == 200
    for response in (
        await client.post("/assets", json={**VWRL, "symbol": "NEW"}, headers=read_only),
        await put_prices(client, read_only, "VWRL.L", [{"date": "2025-01-02", "close": "1"}]),
        await client.put(
            "/assets/VWRL.L/market-caps",
            json={"market_caps": [{"date": "2025-01-02", "market_cap": "1"}]},
            headers=read_only,
        ),
        await put_rates(
            client, read_only, [{"date": "2025-01-02", "base": "GBP", "quote": "USD", "rate": "1"}]
        ),
    ):
        problem(response, 403, "insufficient-scope")
    assert await counts(db) == {"assets": 1, "asset_prices": 0, "market_caps": 0, "fx_rates": 0}


# ---------------------------------------------------------------------------------- prices


async def test_prices_round_trip_oldest_first(client, auth):
    h = auth["headers"]
    await create(client, h)
    put = await put_prices(
        client,
        h,
        "VWRL.L",
        [
            {"date": "2025-01-03", "close": "102.00", "volume": "0"},
            {
                "date": "2025-01-02",
                "open": "100.10",
                "high": "102.5",
                "low": "99.87654321",
                "close": "101.50",
                "volume": "123456.7890",
            },
            {"date": "2024-12-31", "close": "0.00000001", "low": "0.00000001"},
        ],
    )
    assert put.status_code == 200, put.text
    assert put.headers["content-type"] == "application/json"
    assert put.json() == {"upserted": 3}
    assert await get_prices(client, h, "VWRL.L") == {
        "symbol": "VWRL.L",
        "currency": "GBP",
        "prices": [
            {
                "date": "2024-12-31",
                "open": None,
                "high": None,
                "low": "0.00000001",
                "close": "0.00000001",
                "volume": None,
            },
            {
                "date": "2025-01-02",
                "open": "100.1",
                "high": "102.5",
                "low": "99.87654321",
                "close": "101.5",
                "volume": "123456.789",
            },
            {
                "date": "2025-01-03",
                "open": None,
                "high": None,
                "low": None,
                "close": "102",
                "volume": "0",
            },
        ],
    }


async def test_prices_between_dates_inclusive(client, auth):
    h = auth["headers"]
    await create(client, h)
    days = ["2025-01-01", "2025-01-02", "2025-01-03", "2025-01-06"]
    rows = [{"date": d, "close": str(i + 1)} for i, d in enumerate(days)]
    assert (await put_prices(client, h, "VWRL.L", rows)).json() == {"upserted": 4}

    def closes(body: dict) -> list[tuple[str, str]]:
        return [(p["date"], p["close"]) for p in body["prices"]]

    assert closes(
        await get_prices(client, h, "VWRL.L", start_date="2025-01-02", end_date="2025-01-03")
    ) == [("2025-01-02", "2"), ("2025-01-03", "3")]
    assert closes(await get_prices(client, h, "VWRL.L", start_date="2025-01-03")) == [
        ("2025-01-03", "3"),
        ("2025-01-06", "4"),
    ]
    assert closes(await get_prices(client, h, "VWRL.L", end_date="2025-01-01")) == [
        ("2025-01-01", "1")
    ]
    assert (
        closes(
            await get_prices(client, h, "VWRL.L", start_date="2025-01-04", end_date="2025-01-05")
        )
        == []
    )
    same_day = await get_prices(client, h, "VWRL.L", start_date="2025-01-06", end_date="2025-01-06")
    assert closes(same_day) == [("2025-01-06", "4")]
    bad = await client.get(
        "/assets/VWRL.L/prices",
        params={"start_date": "2025-01-03", "end_date": "2025-01-02"},
        headers=h,
    )
    problem(bad, 400, "invalid-date-range")
    not_a_date = await client.get(
        "/assets/VWRL.L/prices", params={"start_date": "2025-02-30"}, headers=h
    )
    assert error_locs(validation(not_a_date)) == [["query", "start_date"]]


async def test_upsert_replaces_the_whole_row_by_asset_and_date(client, auth, db):
    h = auth["headers"]
    await create(client, h)
    await create(client, h, symbol="BRK.B", currency="USD")
    first = [
        {
            "date": "2025-01-02",
            "open": "10",
            "high": "12",
            "low": "9",
            "close": "11",
            "volume": "5",
        },
        {"date": "2025-01-03", "close": "11.5"},
    ]
    assert (await put_prices(client, h, "VWRL.L", first)).json() == {"upserted": 2}
    assert (await put_prices(client, h, "BRK.B", first)).json() == {"upserted": 2}
    second = [{"date": "2025-01-02", "close": "10.25"}, {"date": "2025-01-06", "close": "12"}]
    assert (await put_prices(client, h, "VWRL.L", second)).json() == {"upserted": 2}
    assert (await get_prices(client, h, "VWRL.L"))["prices"] == [
        {"date": "2025-01-02", "open": None, "high": None, "low": None, "close": "10.25",
         "volume": None},
        {"date": "2025-01-03", "open": None, "high": None, "low": None, "close": "11.5",
         "volume": None},
        {"date": "2025-01-06", "open": None, "high": None, "low": None, "close": "12",
         "volume": None},
    ]  # fmt: skip
    brk = (await get_prices(client, h, "BRK.B"))["prices"]
    assert [(p["date"], p["open"], p["close"]) for p in brk] == [
        ("2025-01-02", "10", "11"),
        ("2025-01-03", None, "11.5"),
    ]
    assert (await counts(db))["asset_prices"] == 5


async def test_an_empty_list_upserts_nothing(client, auth, db):
    await create(client, auth["headers"])
    assert (await put_prices(client, auth["headers"], "VWRL.L", [])).json() == {"upserted": 0}
    assert (await counts(db))["asset_prices"] == 0


async def test_thousands_of_rows_in_one_call(client, auth, db):
    # More than one statement's worth (the repository writes 2,000 rows per statement).
    await create(client, auth["headers"])
    start = date(2000, 1, 1)
    rows = [
        {"date": (start + timedelta(days=i)).isoformat(), "close": f"{i + 1}.{i % 100:02d}"}
        for i in range(4_500)
    ]
    put = await put_prices(client, auth["headers"], "VWRL.L", rows)
    assert put.json() == {"upserted": 4_500}
    prices = (await get_prices(client, auth["headers"], "VWRL.L"))["prices"]
    assert len(prices) == 4_500
    assert prices[0] == {
        "date": "2000-01-01", "open": None, "high": None, "low": None, "close": "1",
        "volume": None,
    }  # fmt: skip
    assert (prices[4_499]["date"], prices[4_499]["close"]) == (
        (start + timedelta(days=4_499)).isoformat(),
        "4500.99",
    )
    assert (prices[1_234]["date"], prices[1_234]["close"]) == ("2003-05-19", "1235.34")


GOOD = [
    {"date": "2025-01-02", "close": "100"},
    {"date": "2025-01-03", "close": "101", "high": "102", "low": "99"},
    {"date": "2025-01-06", "close": "102"},
]


def _tomorrow_plus(days: int) -> str:
    return (today() + timedelta(days=days)).isoformat()


@pytest.mark.parametrize(
    ("bad", "field", "slug"),
    [
        ({"date": "2025-01-07", "close": 101.5}, "close", SCHEMA),
        ({"date": "2025-01-07", "close": "1e3"}, "close", SCHEMA),
        ({"date": "2025-01-07", "close": "NaN"}, "close", SCHEMA),
        ({"date": "2025-01-07", "close": ""}, "close", SCHEMA),
        ({"date": "2025-01-07"}, "close", SCHEMA),
        ({"date": "2025-02-30", "close": "1"}, "date", SCHEMA),
        ({"date": 0, "close": "1"}, "date", SCHEMA),  # not 1970-01-01
        ({"date": "86400", "close": "1"}, "date", SCHEMA),  # nor seconds in text (1970-01-02)
        ({"date": "2025-01-07", "close": "1", "adj_close": "1"}, "adj_close", SCHEMA),
        ({"date": "2025-01-07", "close": "0"}, "close", MARKET),
        ({"date": "2025-01-07", "close": "-1"}, "close", MARKET),
        ({"date": "2025-01-07", "close": "1", "open": "0"}, "open", MARKET),
        ({"date": "2025-01-07", "close": "5", "high": "4", "low": "6"}, "high", MARKET),
        ({"date": "2025-01-07", "open": "7", "high": "6", "low": "4", "close": "5"},
         "open", MARKET),
        ({"date": "2025-01-07", "close": "7", "high": "6"}, "close", MARKET),
        ({"date": "2025-01-07", "close": "3", "low": "4"}, "close", MARKET),
        ({"date": "2025-01-07", "close": "1.123456789"}, "close", MARKET),
        ({"date": "2025-01-07", "close": "1", "volume": "1.12345"}, "volume", MARKET),
        ({"date": "2025-01-07", "close": "1", "volume": "-1"}, "volume", MARKET),
        ({"date": "2025-01-07", "close": "92233720369"}, "close", MARKET),
        ({"date": "2025-01-07", "close": "123456789012345678901.123456789"}, "close", MARKET),
        ({"date": "1899-12-31", "close": "1"}, "date", MARKET),
        ({"date": "2999-01-01", "close": "1"}, "date", MARKET),
        ({"date": "2025-01-02", "close": "1"}, "date", MARKET),  # duplicate
    ],
)  # fmt: skip
async def test_a_bad_price_row_is_pointed_at_and_nothing_is_stored(
    client, auth, db, bad, field, slug
):
    await create(client, auth["headers"])
    response = await put_prices(client, auth["headers"], "VWRL.L", [*GOOD, bad])
    body = validation(response, slug)
    assert ["body", "prices", 3, field] in error_locs(body), body
    assert (await counts(db))["asset_prices"] == 0


async def test_dates_up_to_tomorrow_utc_are_accepted(client, auth, db):
    await create(client, auth["headers"])
    ok = await put_prices(
        client, auth["headers"], "VWRL.L", [{"date": _tomorrow_plus(1), "close": "1"}]
    )
    assert ok.json() == {"upserted": 1}
    late = await put_prices(
        client, auth["headers"], "VWRL.L", [{"date": _tomorrow_plus(2), "close": "1"}]
    )
    assert error_locs(validation(late, MARKET)) == [["body", "prices", 0, "date"]]
    oldest = await put_prices(
        client, auth["headers"], "VWRL.L", [{"date": "1900-01-01", "close": "1"}]
    )
    assert oldest.json() == {"upserted": 1}
    assert (await counts(db))["asset_prices"] == 2


async def test_a_bad_row_leaves_stored_prices_as_they_were(client, auth, db):
    h = auth["headers"]
    await create(client, h)
    assert (await put_prices(client, h, "VWRL.L", GOOD)).status_code == 200
    before = await get_prices(client, h, "VWRL.L")
    replace = [{"date": "2025-01-02", "close": "50"}, {"date": "2025-01-03", "close": "-5"}]
    validation(await put_prices(client, h, "VWRL.L", replace), MARKET)
    assert await get_prices(client, h, "VWRL.L") == before


async def test_more_than_100000_rows_are_refused(database_url, tmp_path, db):
    # A body this size needs more than the default 1 MiB limit.
    settings = make_settings(database_url, tmp_path, max_body_bytes=16 * 1_048_576)
    ctx = AppContext.build(settings)
    try:
        transport = httpx.ASGITransport(app=create_app(settings, ctx))
        async with httpx.AsyncClient(transport=transport, base_url="http://test/api/v1") as c:
            h = (await register_and_login(c))["headers"]
            await create(c, h)
            rows = [{"date": "2025-01-02", "close": "1"}] * 100_001
            body = validation(await put_prices(c, h, "VWRL.L", rows))
            assert ["body", "prices"] in error_locs(body)
            rates = [{"date": "2025-01-02", "base": "GBP", "quote": "USD", "rate": "1"}] * 100_001
            assert ["body", "rates"] in error_locs(validation(await put_rates(c, h, rates)))
    finally:
        await ctx.close()
    assert (await counts(db))["asset_prices"] == 0


# ----------------------------------------------------------------------------- market caps


async def test_market_caps_round_trip_and_replace(client, auth, db):
    h = auth["headers"]
    await create(client, h)
    put = await client.put(
        "/assets/VWRL.L/market-caps",
        json={
            "market_caps": [
                {"date": "2025-01-03", "market_cap": "1500000000.50"},
                {"date": "2025-01-02", "market_cap": "0"},
                {"date": "2025-01-06", "market_cap": "92233720368547758.07"},
            ]
        },
        headers=h,
    )
    assert put.json() == {"upserted": 3}
    replace = await client.put(
        "/assets/VWRL.L/market-caps",
        json={"market_caps": [{"date": "2025-01-02", "market_cap": "12.30"}]},
        headers=h,
    )
    assert replace.json() == {"upserted": 1}
    got = await client.get("/assets/VWRL.L/market-caps", headers=h)
    assert got.status_code == 200
    assert got.json() == {
        "symbol": "VWRL.L",
        "currency": "GBP",
        "market_caps": [
            {"date": "2025-01-02", "market_cap": "12.3"},
            {"date": "2025-01-03", "market_cap": "1500000000.5"},
            {"date": "2025-01-06", "market_cap": "92233720368547758.07"},
        ],
    }
    ranged = await client.get(
        "/assets/VWRL.L/market-caps",
        params={"start_date": "2025-01-03", "end_date": "2025-01-05"},
        headers=h,
    )
    assert ranged.json()["market_caps"] == [{"date": "2025-01-03", "market_cap": "1500000000.5"}]
    backwards = await client.get(
        "/assets/VWRL.L/market-caps",
        params={"start_date": "2025-01-03", "end_date": "2025-01-02"},
        headers=h,
    )
    problem(backwards, 400, "invalid-date-range")
    assert (await counts(db))["market_caps"] == 3


@pytest.mark.parametrize(
    ("bad", "field", "slug"),
    [
        ({"date": "2025-01-07", "market_cap": "-1"}, "market_cap", MARKET),
        ({"date": "2025-01-07", "market_cap": "1.001"}, "market_cap", MARKET),
        ({"date": "2025-01-07", "market_cap": "92233720368547758.08"}, "market_cap", MARKET),
        ({"date": "2025-01-07", "market_cap": 5}, "market_cap", SCHEMA),
        ({"date": "1800-01-07", "market_cap": "5"}, "date", MARKET),
        ({"date": 0, "market_cap": "5"}, "date", SCHEMA),
        ({"date": "2025-01-02", "market_cap": "5"}, "date", MARKET),
    ],
)  # fmt: skip
async def test_a_bad_market_cap_row_stores_nothing(client, auth, db, bad, field, slug):
    await create(client, auth["headers"])
    rows = [{"date": "2025-01-02", "market_cap": "1"}, {"date": "2025-01-03", "market_cap": "2"}]
    response = await client.put(
        "/assets/VWRL.L/market-caps", json={"market_caps": [*rows, bad]}, headers=auth["headers"]
    )
    assert ["body", "market_caps", 2, field] in error_locs(validation(response, slug))
    assert (await counts(db))["market_caps"] == 0


# -------------------------------------------------------------------------------------- fx


RATES = [
    {"date": "2025-01-02", "base": "GBP", "quote": "USD", "rate": "1.25"},
    {"date": "2025-01-06", "base": "GBP", "quote": "USD", "rate": "1.2718"},
    {"date": "2025-01-03", "base": "USD", "quote": "JPY", "rate": "150"},
    {"date": "2025-01-02", "base": "USD", "quote": "CHF", "rate": "3"},
]


async def fx(client, headers, base: str, quote: str, day: str | None = None) -> dict:
    params = {"base": base, "quote": quote} | ({"date": day} if day else {})
    response = await get_rate(client, headers, **params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_put_rates_counts_and_stores(client, auth, db):
    put = await put_rates(client, auth["headers"], RATES)
    assert put.status_code == 200
    assert put.json() == {"upserted": 4}
    assert (await counts(db))["fx_rates"] == 4


async def test_direct_rate_in_force_latest_on_or_before_the_day(client, auth):
    h = auth["headers"]
    await put_rates(client, h, RATES)
    assert await fx(client, h, "GBP", "USD", "2025-01-05") == {
        "base": "GBP",
        "quote": "USD",
        "date": "2025-01-05",
        "rate": "1.25",
        "rate_date": "2025-01-02",
        "via": "direct",
        "stale": False,
    }
    on_the_day = await fx(client, h, "GBP", "USD", "2025-01-06")
    assert (on_the_day["rate"], on_the_day["rate_date"]) == ("1.2718", "2025-01-06")


async def test_inverse_rate_exact_or_rounded_half_even_to_10_places(client, auth):
    h = auth["headers"]
    await put_rates(client, h, RATES)
    assert await fx(client, h, "USD", "GBP", "2025-01-03") == {
        "base": "USD",
        "quote": "GBP",
        "date": "2025-01-03",
        "rate": "0.8",
        "rate_date": "2025-01-02",
        "via": "inverse",
        "stale": False,
    }
    # 1 / 1.2718 = 0.78628715206793521...
    assert (await fx(client, h, "USD", "GBP", "2025-01-06"))["rate"] == "0.7862871521"
    thirds = await fx(client, h, "CHF", "USD", "2025-01-02")
    assert (thirds["rate"], thirds["via"]) == ("0.3333333333", "inverse")


async def test_cross_rate_through_usd(client, auth):
    h = auth["headers"]
    await put_rates(client, h, RATES)
    # 1.25 * 150 = 187.5, as old as its older leg (GBP/USD of 2025-01-02).
    assert await fx(client, h, "GBP", "JPY", "2025-01-05") == {
        "base": "GBP",
        "quote": "JPY",
        "date": "2025-01-05",
        "rate": "187.5",
        "rate_date": "2025-01-02",
        "via": "cross:USD",
        "stale": False,
    }
    # 1 / (1.2718 * 150) = 1 / 190.77 = 0.00524191434...; legs of 2025-01-06 and 2025-01-03.
    inverse_cross = await fx(client, h, "JPY", "GBP", "2025-01-06")
    assert inverse_cross == {
        "base": "JPY",
        "quote": "GBP",
        "date": "2025-01-06",
        "rate": "0.0052419143",
        "rate_date": "2025-01-03",
        "via": "cross:USD",
        "stale": False,
    }
    # 150 / 3 = 50 JPY per CHF.
    chf = await fx(client, h, "CHF", "JPY", "2025-01-03")
    assert (chf["rate"], chf["via"]) == ("50", "cross:USD")


async def test_the_freshest_wins_over_direct(client, auth):
    h = auth["headers"]
    await put_rates(client, h, RATES)
    await put_rates(
        client, h, [{"date": "2025-01-03", "base": "USD", "quote": "GBP", "rate": "0.5"}]
    )
    newer_inverse = await fx(client, h, "GBP", "USD", "2025-01-04")
    assert (newer_inverse["rate"], newer_inverse["rate_date"], newer_inverse["via"]) == (
        "2",
        "2025-01-03",
        "inverse",
    )
    older_direct = await fx(client, h, "GBP", "USD", "2025-01-02")
    assert (older_direct["rate"], older_direct["via"]) == ("1.25", "direct")


async def test_identity(client, auth):
    assert await fx(client, auth["headers"], "EUR", "EUR", "2025-01-02") == {
        "base": "EUR",
        "quote": "EUR",
        "date": "2025-01-02",
        "rate": "1",
        "rate_date": None,
        "via": "identity",
        "stale": False,
    }


async def test_stale_when_more_than_7_days_old(client, auth):
    h = auth["headers"]
    await put_rates(client, h, RATES)
    seven = await fx(client, h, "GBP", "USD", "2025-01-13")
    assert (seven["rate_date"], seven["stale"]) == ("2025-01-06", False)
    eight = await fx(client, h, "GBP", "USD", "2025-01-14")
    assert (eight["rate"], eight["rate_date"], eight["stale"]) == ("1.2718", "2025-01-06", True)
    # A cross is as stale as its older leg: USD/JPY of 2025-01-03 is 8 days old on the 11th.
    cross = await fx(client, h, "GBP", "JPY", "2025-01-11")
    assert (cross["rate_date"], cross["stale"]) == ("2025-01-03", True)


async def test_date_defaults_to_today_utc(client, auth):
    h = auth["headers"]
    day = today()
    await put_rates(
        client, h, [{"date": day.isoformat(), "base": "GBP", "quote": "EUR", "rate": "1.2"}]
    )
    got = await fx(client, h, "GBP", "EUR")
    assert got == {
        "base": "GBP",
        "quote": "EUR",
        "date": day.isoformat(),
        "rate": "1.2",
        "rate_date": day.isoformat(),
        "via": "direct",
        "stale": False,
    }


async def test_no_rate_is_404_never_a_made_up_one(client, auth):
    h = auth["headers"]
    await put_rates(client, h, RATES)
    for params in (
        {"base": "GBP", "quote": "USD", "date": "2025-01-01"},  # before the first rate
        {"base": "GBP", "quote": "SEK", "date": "2025-01-06"},  # no such pair
        {"base": "GBP", "quote": "JPY", "date": "2025-01-02"},  # one leg not yet known
    ):
        response = await get_rate(client, h, **params)
        problem(response, 404, "fx-rate-not-found")


async def test_rate_upsert_replaces_by_pair_and_date(client, auth, db):
    h = auth["headers"]
    await put_rates(client, h, RATES)
    replace = [
        {"date": "2025-01-02", "base": "GBP", "quote": "USD", "rate": "1.3"},
        {"date": "2025-01-02", "base": "USD", "quote": "GBP", "rate": "0.77"},
    ]
    assert (await put_rates(client, h, replace)).json() == {"upserted": 2}
    direct = await fx(client, h, "GBP", "USD", "2025-01-02")
    assert (direct["rate"], direct["via"]) == ("1.3", "direct")
    assert (await fx(client, h, "USD", "GBP", "2025-01-02"))["rate"] == "0.77"
    assert (await counts(db))["fx_rates"] == 5


@pytest.mark.parametrize(
    ("bad", "field", "slug"),
    [
        ({"rate": "0"}, "rate", MARKET),
        ({"rate": "-1.1"}, "rate", MARKET),
        ({"rate": "1.12345678901"}, "rate", MARKET),
        ({"rate": "922337204"}, "rate", MARKET),
        ({"rate": 1.1}, "rate", SCHEMA),
        ({"base": "XYZ"}, "base", SCHEMA),
        ({"quote": "usd"}, "quote", SCHEMA),
        ({"quote": "SEK"}, "quote", MARKET),  # base and quote both SEK
        ({"date": "1899-12-31"}, "date", MARKET),
        ({"date": "2025-01-02", "base": "GBP", "quote": "USD"}, "date", MARKET),
        ({"when": "2025-01-02"}, "when", SCHEMA),
    ],
)
async def test_a_bad_rate_row_is_pointed_at_and_nothing_is_stored(
    client, auth, db, bad, field, slug
):
    row = {"date": "2025-01-09", "base": "SEK", "quote": "NOK", "rate": "0.98"} | bad
    response = await put_rates(client, auth["headers"], [*RATES, row])
    assert ["body", "rates", 4, field] in error_locs(validation(response, slug))
    assert (await counts(db))["fx_rates"] == 0


@pytest.mark.parametrize(
    ("params", "loc", "slug"),
    [
        ({"base": "XYZ", "quote": "USD"}, ["query", "base"], MARKET),
        ({"base": "GBP", "quote": "usd"}, ["query", "quote"], MARKET),
        ({"base": "GBP", "quote": "USDX"}, ["query", "quote"], SCHEMA),
        ({"base": "GBP"}, ["query", "quote"], SCHEMA),
        ({"base": "GBP", "quote": "USD", "date": "1899-12-31"}, ["query", "date"], MARKET),
        ({"base": "GBP", "quote": "USD", "date": "2025-13-01"}, ["query", "date"], SCHEMA),
        ({"base": "GBP", "quote": "USD", "date": "0"}, ["query", "date"], SCHEMA),
    ],
)  # fmt: skip
async def test_bad_rate_queries(client, auth, params, loc, slug):
    assert error_locs(validation(await get_rate(client, auth["headers"], **params), slug)) == [loc]

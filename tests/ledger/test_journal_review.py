"""Journal import and export, as a review found them wanting: undeclared commodities, knowledge
times, text limits, accounts of one currency in several exponents, batches split over several
transactions, and how the CLI and HTTP read the file. Each bad journal records nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ledger.api_helpers import problem, row_counts


async def _import(client, headers, text: str | bytes):
    body = text.encode() if isinstance(text, str) else text
    return await client.post(
        "/journal/import", content=body, headers={**headers, "Content-Type": "text/plain"}
    )


async def _export(client, headers) -> bytes:
    response = await client.get("/journal/export", headers=headers)
    assert response.status_code == 200, response.text
    return response.content


async def _accounts(client, headers) -> dict[str, dict[str, Any]]:
    listed = (await client.get("/accounts", headers=headers)).json()["accounts"]
    return {a["full_path"]: a for a in listed}


# ------------------------------------------------------------ undeclared non-ISO commodities


async def test_an_undeclared_commodity_takes_the_default_exponent(client, auth):
    """JOURNAL.md: a commodity without a `commodity` directive has exponent -2 (an ISO 4217
    currency its minor unit), for accounts created on first use and by `open` alike."""
    h = auth["headers"]
    text = (
        "2024-01-01 open Asset:Crypto:Cold BTC\n"
        "2024-01-02 * first use\n"
        "  Equity:Crypto -> Asset:Crypto:Hot 1.50 BTC\n"
        "  +Equity:Crypto -> Asset:Crypto:Cold 0.25 BTC\n"
        "  +Equity:Yen -> Asset:Yen 100 JPY\n"
    )
    response = await _import(client, h, text)
    assert response.status_code == 200, response.text
    assert response.json() == {"accounts_created": 5, "movements_recorded": 3}
    accounts = await _accounts(client, h)
    shape = {path: (a["currency"], a["exponent"], a["balance"]) for path, a in accounts.items()}
    assert shape == {
        "Asset:Crypto:Cold": ("BTC", -2, "0.25"),
        "Asset:Crypto:Hot": ("BTC", -2, "1.50"),
        "Equity:Crypto": ("BTC", -2, "-1.75"),
        "Asset:Yen": ("JPY", 0, "100"),
        "Equity:Yen": ("JPY", 0, "-100"),
    }


async def test_open_without_a_commodity_is_refused(client, auth, db):
    before = await row_counts(db)
    response = await _import(client, auth["headers"], "2024-01-01 open Asset:Crypto\n")
    body = problem(response, 400, "journal-invalid")
    assert (body["line"], body["column"]) == (1, 1)
    assert "exactly one commodity" in body["detail"]
    assert await row_counts(db) == before


# ------------------------------------------------------------------- knowledge time range


@pytest.mark.parametrize(
    "knowledge",
    ["9999-12-31T23:59:59Z", "0001-01-01", "1899-12-31T23:59:59Z", "2199-12-31", "TOMORROW"],
)
async def test_a_knowledge_time_outside_1900_to_now_is_refused(client, auth, db, knowledge):
    if knowledge == "TOMORROW":
        knowledge = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    before = await row_counts(db)
    text = (
        "2024-01-02 * fine\n"
        "  Equity:Cap -> Asset:K 1.00 GBP\n"
        f"2024-01-02%{knowledge} * x\n"
        "  Equity:Cap -> Asset:K 1.00 GBP\n"
    )
    body = problem(await _import(client, auth["headers"], text), 400, "journal-invalid")
    assert (body["line"], body["column"]) == (3, 12), body
    assert "knowledge time" in body["detail"]
    assert await row_counts(db) == before


async def test_a_knowledge_time_from_1900_to_now_is_kept(client, auth):
    h = auth["headers"]
    text = (
        "1900-01-01%1900-01-01 * earliest\n"
        "  Equity:Cap -> Asset:K 1.00 GBP\n"
        "2024-01-02%2024-01-03T10:00:00Z * later\n"
        "  Equity:Cap -> Asset:K 2.00 GBP\n"
    )
    response = await _import(client, h, text)
    assert response.status_code == 200, response.text
    exported = (await _export(client, h)).decode()
    assert "\n1900-01-01%1900-01-01 * earliest\n" in exported
    assert "\n2024-01-02%2024-01-03T10:00:00Z * later\n" in exported

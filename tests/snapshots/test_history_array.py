"""balance-history has the database write its snapshots as one JSON array
(`repository.history_array`), spliced into the body unparsed. On both engines the body must be
byte for byte what the row path writes (`repository.history` and `schemas.history_json`, which
recent snapshots still answer with), for every kind of value: money of every exponent, nulls,
microseconds, ties, percentages from zero, tiny and huge."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise
from typing import Any

import orjson

from ledger.factories import account
from snapshots.helpers import HISTORY_FIELDS, SNAPSHOT_FIELDS, expected, get_ok, problem, report
from worthline.kit.money import percent_change
from worthline.snapshots import endpoints
from worthline.snapshots import repository as repo
from worthline.snapshots.jsontext import dumps
from worthline.snapshots.schemas import SnapshotHistory, history_json

SPAN = {"start_date": "2024-01-01T00:00:00Z", "end_date": "2024-12-31T23:59:59Z"}


def _instant(text: str) -> datetime:
    """As the endpoint reads its range: a plain date or a time without a zone is UTC."""
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


async def _row_path(ctx, account_id: str, params: dict[str, str]) -> bytes:  # type: ignore[no-untyped-def]
    """The body as the row path writes it: one dict per snapshot, then `orjson.dumps`."""
    start, end = _instant(params["start_date"]), _instant(params["end_date"])
    async with ctx.db.read_session() as session:
        acc = await repo.account_by_public_id(session, uuid.UUID(account_id))
        assert acc is not None
        rows = await repo.history(
            session, acc.user_id, acc.public_id, start, end, params.get("source"), 10_001
        )
    return dumps(history_json(acc.currency, acc.exponent, rows, newest_first=False))


async def _same_bytes(client, ctx, h, acc: dict[str, Any], **params: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = await client.get(f"/accounts/{acc['id']}/balance-history", params=params, headers=h)
    assert response.status_code == 200, response.text
    assert response.content == await _row_path(ctx, acc["id"], params)
    body = orjson.loads(response.content)
    assert list(body) == HISTORY_FIELDS
    assert all(list(s) == SNAPSHOT_FIELDS for s in body["snapshots"])
    assert SnapshotHistory.model_validate(body).model_dump(mode="json") == body
    return body


async def test_pounds_nulls_microseconds_and_ties(client, auth, ctx):
    h = auth["headers"]
    acc = await account(client, h, "Asset:Bank:Current")
    extra = {"available_balance": "90.00", "holdings_value": "10.00", "cash_value": "0.00"}
    first = await report(client, h, acc, "100.00", "2024-01-01T00:00:00Z", **extra)
    second = await report(client, h, acc, "-0.50", "2024-01-02T00:00:00.000001Z")
    third = await report(client, h, acc, "0.00", "2024-01-03T12:34:56.5Z", "holdings_sync")
    # Recorded before the two it follows in time: the array is in captured_at order.
    sixth = await report(client, h, acc, "999999.99", "2024-03-01T00:00:00Z", "holdings_sync")
    fourth = await report(client, h, acc, "5.00", "2024-02-01T00:00:00Z", "manual_sync")
    fifth = await report(client, h, acc, "1000000.00", "2024-02-01T00:00:00Z")  # a tie

    body = await _same_bytes(client, ctx, h, acc, **SPAN)
    assert body == {
        "snapshots": [
            expected(first, None, None),
            expected(second, "-100.50", -100.5),
            expected(third, "0.50", 100.0),
            expected(fourth, "5.00", None),  # from zero
            expected(fifth, "999995.00", 19999900.0),
            # -0.000001 %: -0.0 where Python rounds it (SQLite), 0.0 from PostgreSQL's NUMERIC
            expected(sixth, "-0.01", body["snapshots"][5]["change_percent"]),
        ],
        "total_count": 6,
        "start_balance": "100.00",
        "end_balance": "999999.99",
        "total_change_amount": "999899.99",
        "total_change_percent": 999899.99,
        "currency": "GBP",
    }
    response = await client.get(f"/accounts/{acc['id']}/balance-history", params=SPAN, headers=h)
    zero = "-0.0" if ctx.db.dialect == "sqlite" else "0.0"
    assert f'"change_amount":"-0.01","change_percent":{zero}}}]' in response.text
    assert first["available_balance"] == "90.00" and second["available_balance"] is None
    assert first["captured_at"] == "2024-01-01T00:00:00Z"
    assert second["captured_at"] == "2024-01-02T00:00:00.000001Z"
    assert third["captured_at"] == "2024-01-03T12:34:56.500000Z"

    holdings = await _same_bytes(client, ctx, h, acc, **SPAN, source="holdings_sync")
    assert holdings["snapshots"] == [
        expected(third, None, None),
        expected(sixth, "999999.99", None),
    ]
    narrow = {"start_date": "2024-01-02T00:00:00.000001Z", "end_date": "2024-02-01T00:00:00Z"}
    assert (await _same_bytes(client, ctx, h, acc, **narrow))["total_count"] == 4
    empty = await _same_bytes(client, ctx, h, acc, start_date="2023-01-01", end_date="2023-12-31")
    assert empty["snapshots"] == [] and empty["currency"] == "GBP"


async def test_every_exponent_and_huge_percentages(client, auth, ctx):
    """Percentages of 10^12 % and more are written from the double's shortest text, laid out
    as Python's repr (and orjson) lay them out."""
    h = auth["headers"]
    yen = await account(client, h, "Asset:Bank:Yen", "JPY")
    await report(client, h, yen, "100000", "2024-01-01T00:00:00Z")
    await report(client, h, yen, "-90000", "2024-01-02T00:00:00Z")
    body = await _same_bytes(client, ctx, h, yen, **SPAN)
    assert [s["change_amount"] for s in body["snapshots"]] == [None, "-190000"]
    assert [s["change_percent"] for s in body["snapshots"]] == [None, -190.0]

    fine = await account(client, h, "Asset:Fund:Fine", "USD", exponent=-8)
    tiny, big = "0.00000001", "46116860184.27387903"
    plan = [
        tiny,
        "123456.78901235",  # 1234567890123400 %: 1e+15 <= x < 1e+16, positional
        tiny,
        "1234.56789013",  # 12345678901200 %: 1e+12 <= x < 1e+15
        tiny,
        "1000000.00000001",  # 1e+16 %
        tiny,
        big,  # 4.6e+20 %
        "-" + tiny,
        "-123456.78901235",
        "0.12345678",
    ]
    for day, balance in enumerate(plan, start=1):
        await report(client, h, fine, balance, f"2024-03-{day:02d}T00:00:00Z")
    response = await client.get(f"/accounts/{fine['id']}/balance-history", params=SPAN, headers=h)
    body = await _same_bytes(client, ctx, h, fine, **SPAN)
    balances = [Decimal(b) for b in plan]
    wanted = [None] + [percent_change(now - before, before) for before, now in pairwise(balances)]
    assert [s["change_percent"] for s in body["snapshots"]] == wanted
    assert [s["balance"] for s in body["snapshots"]] == plan
    for text in (
        '"change_percent":1234567890123400.0}',
        '"change_percent":12345678901200.0}',
        '"change_percent":1e+16}',
        '"change_percent":4.611686018427388e+20}',
        '"change_percent":-1234567890123400.0}',
        '"end_balance":"0.12345678","total_change_amount":"0.12345677",'
        '"total_change_percent":1234567700.0,',
    ):
        assert text in response.text, text


async def test_a_range_over_the_limit_is_refused(client, auth, monkeypatch):
    h = auth["headers"]
    acc = await account(client, h, "Asset:Bank:Current")
    for day in (1, 2, 3):
        await report(client, h, acc, f"{day}.00", f"2024-01-0{day}T00:00:00Z")
    monkeypatch.setattr(endpoints, "MAX_HISTORY", 3)
    assert (await get_ok(client, f"/accounts/{acc['id']}/balance-history", h, **SPAN))[
        "total_count"
    ] == 3
    monkeypatch.setattr(endpoints, "MAX_HISTORY", 2)
    response = await client.get(f"/accounts/{acc['id']}/balance-history", params=SPAN, headers=h)
    problem(response, 400, "invalid-date-range")

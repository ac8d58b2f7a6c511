"""Ledger writes update the persisted net worth incrementally; it must always equal a full
recomputation, including when a future-dated movement's time arrives between two writes and
when an account is opened."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from fractions import Fraction

from ledger.factories import account, move
from portfolio.helpers import rates
from worthline.portfolio.models import NetWorthState
from worthline.portfolio.networth import net_worth_now

YESTERDAY = datetime.now(UTC).date() - timedelta(days=1)


async def _check(client, headers, ctx, published) -> NetWorthState:
    """The persisted state equals a full recomputation now, and the events chain up."""
    user_id = uuid.UUID((await client.get("/users/me", headers=headers)).json()["id"])
    async with ctx.db.read_session() as session:
        state = await session.get(NetWorthState, user_id)
        full = await net_worth_now(session, user_id, "GBP")
    assert state is not None
    assert Fraction(state.exact) == full.converted.total
    assert state.net_worth == format(full.net_worth, "f")
    assert state.account_count == full.account_count
    worth = [r.event for r in published if type(r.event).__name__.startswith("Portfolio")]
    for before, after in itertools.pairwise(worth):
        assert after.previous_net_worth == before.new_net_worth
    assert worth[-1].new_net_worth == full.net_worth
    return state


async def test_increments_equal_a_full_recomputation(client, auth, ctx, published):
    headers = auth["headers"]
    await rates(ctx, (YESTERDAY, "USD", "GBP", "0.7777"), (YESTERDAY, "EUR", "USD", "1.0833"))
    bank = await account(client, headers, "Asset:Bank")
    dollars = await account(client, headers, "Asset:Dollars", "USD")
    euros = await account(client, headers, "Asset:Euros", "EUR")
    card = await account(client, headers, "Liability:Card")
    opening = {
        c: await account(client, headers, f"Equity:Opening{c}", c) for c in ("GBP", "USD", "EUR")
    }
    food = await account(client, headers, "Expense:Food")
    await move(client, headers, opening["GBP"], bank, "1000.00")
    await move(client, headers, opening["USD"], dollars, "333.33")  # thirds: exact only as Fraction
    await move(client, headers, opening["EUR"], euros, "0.01")
    await move(client, headers, card, food, "12.34")
    await move(client, headers, dollars, opening["USD"], "0.01")
    await move(  # backdated
        client, headers, opening["EUR"], euros, "7.77", value_time="2020-02-02T00:00:00Z"
    )
    state = await _check(client, headers, ctx, published)
    assert state.valid_until is not None

    # Opening an account makes the next update a full one (it counts one more account).
    await account(client, headers, "Asset:Other")
    await move(client, headers, opening["GBP"], bank, "1.00")
    state = await _check(client, headers, ctx, published)
    assert state.account_count == 5


async def test_a_future_movement_is_counted_once_its_time_arrives(client, auth, ctx, published):
    headers = auth["headers"]
    bank = await account(client, headers, "Asset:Bank")
    opening = await account(client, headers, "Equity:Opening")
    await move(client, headers, opening, bank, "10.00")
    soon = datetime.now(UTC) + timedelta(seconds=1.5)
    await move(client, headers, opening, bank, "5.00", value_time=soon.isoformat())
    state = await _check(client, headers, ctx, published)
    assert state.net_worth == "10.00" and state.valid_until <= soon
    await asyncio.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.2)
    await move(client, headers, opening, bank, "1.00")  # now the 5.00 counts too
    state = await _check(client, headers, ctx, published)
    assert state.net_worth == "16.00"

"""Which events each change publishes, with exact fields, delivered only after commit: a
movement, a batch, a journal import, an interest run; a rolled-back change publishes nothing
and leaves no log rows. Every registered event type has a publisher and handlers."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conftest import register_and_login
from ledger.factories import account, move
from worthline.eventstream.events import (
    EVENT_HANDLERS,
    SSE_NAMES,
    AccountBalanceUpdated,
    PortfolioNetWorthRecalculated,
    RecordedEvent,
    to_payload,
)
from worthline.eventstream.models import EventRecord
from worthline.eventstream.service import Dispatcher, chain, record
from worthline.kit.db import after_commit, unit_of_work
from worthline.kit.eventbus import BusMessage, EventBus

SRC = Path(__file__).resolve().parents[2] / "src" / "worthline"


async def _user_id(client, headers) -> uuid.UUID:
    response = await client.get("/users/me", headers=headers)
    return uuid.UUID(response.json()["id"])


def _balance(user_id, acct, previous: str, new: str) -> AccountBalanceUpdated:
    return AccountBalanceUpdated(
        user_id=user_id,
        account_id=uuid.UUID(acct["id"]),
        previous_balance=Decimal(previous),
        new_balance=Decimal(new),
        delta=Decimal(new) - Decimal(previous),
        currency=acct["currency"],
    )


def _worth(user_id, previous: str, new: str, count: int) -> PortfolioNetWorthRecalculated:
    return PortfolioNetWorthRecalculated(
        user_id=user_id,
        previous_net_worth=Decimal(previous),
        new_net_worth=Decimal(new),
        delta=Decimal(new) - Decimal(previous),
        currency="GBP",
        account_count=count,
    )


async def _log(db, user_id=None) -> list[EventRecord]:
    async with db.read_session() as session:
        query = select(EventRecord).order_by(EventRecord.id)
        if user_id is not None:
            query = query.where(EventRecord.user_id == user_id)
        return list(await session.scalars(query))


async def test_a_movement_publishes_both_balances(client, auth, published, db):
    headers = auth["headers"]
    user_id = await _user_id(client, headers)
    bank = await account(client, headers, "Asset:Bank")
    salary = await account(client, headers, "Income:Salary")
    assert published == []  # opening accounts moves no balance

    await move(client, headers, salary, bank, "100.00")
    await move(client, headers, salary, bank, "25.50")

    assert [r.event for r in published] == [
        _balance(user_id, bank, "0.00", "100.00"),
        _balance(user_id, salary, "0.00", "-100.00"),
        _worth(user_id, "0.00", "100.00", 1),  # one Asset account; Income is not net worth
        _balance(user_id, bank, "100.00", "125.50"),
        _balance(user_id, salary, "-100.00", "-125.50"),
        _worth(user_id, "100.00", "125.50", 1),
    ]
    # Money keeps the account's places, as strings.
    assert to_payload(published[3].event) == {
        "user_id": str(user_id),
        "account_id": bank["id"],
        "previous_balance": "100.00",
        "new_balance": "125.50",
        "delta": "25.50",
        "currency": "GBP",
    }
    assert to_payload(published[5].event) == {
        "user_id": str(user_id),
        "previous_net_worth": "100.00",
        "new_net_worth": "125.50",
        "delta": "25.50",
        "currency": "GBP",
        "account_count": 1,
    }
    ids = [r.id for r in published]
    assert ids == sorted(ids) and len(set(ids)) == 6
    rows = await _log(db)
    assert [(r.id, r.user_id, r.type, r.payload) for r in rows] == [
        (r.id, user_id, type(r.event).__name__, to_payload(r.event)) for r in published
    ]


async def test_a_batch_publishes_one_event_per_touched_account(client, auth, published):
    headers = auth["headers"]
    user_id = await _user_id(client, headers)
    bank = await account(client, headers, "Asset:Bank")
    savings = await account(client, headers, "Asset:Savings")
    salary = await account(client, headers, "Income:Salary")
    food = await account(client, headers, "Expense:Food")
    legs = [(salary, bank, "100.00"), (bank, savings, "30.00"), (bank, food, "20.25")]
    response = await client.post(
        "/movements/batch",
        json={
            "movements": [
                {"from_account_id": s["id"], "to_account_id": t["id"], "amount": a}
                for s, t, a in legs
            ]
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    assert [r.event for r in published] == [
        # Opening a second counted account moves the accounts counted (the first one gives
        # 0 → 0 over no earlier value: nothing new), when it opens; income and expense
        # accounts are not counted.
        _worth(user_id, "0.00", "0.00", 2),
        # The batch: one balance event per account, in account order.
        _balance(user_id, bank, "0.00", "49.75"),
        _balance(user_id, savings, "0.00", "30.00"),
        _balance(user_id, salary, "0.00", "-100.00"),
        _balance(user_id, food, "0.00", "20.25"),
        _worth(user_id, "0.00", "79.75", 2),  # once per transaction, after every balance
    ]


async def test_backdated_and_future_movements(client, auth, published):
    headers = auth["headers"]
    user_id = await _user_id(client, headers)
    bank = await account(client, headers, "Asset:Bank", "JPY")
    gift = await account(client, headers, "Income:Gift", "JPY")
    await move(client, headers, gift, bank, "500", value_time="2020-01-01T00:00:00Z")
    await move(client, headers, gift, bank, "700", value_time="2199-01-01T00:00:00Z")
    # No net worth event: the user's base currency is GBP and there is no JPY rate, so the
    # yen are left out (flagged, never converted at 1) and net worth stays 0.
    assert [r.event for r in published] == [
        _balance(user_id, bank, "0", "500"),
        _balance(user_id, gift, "0", "-500"),
        # A future value time does not change the balance as of now: delta 0, still reported.
        _balance(user_id, bank, "500", "500"),
        _balance(user_id, gift, "-500", "-500"),
    ]
    assert to_payload(published[0].event)["new_balance"] == "500"


async def test_a_rejected_change_publishes_nothing_and_logs_nothing(client, auth, published, db):
    headers = auth["headers"]
    bank = await account(client, headers, "Asset:Bank")
    salary = await account(client, headers, "Income:Salary")
    response = await client.post(
        "/movements/batch",
        json={
            "movements": [
                {"from_account_id": salary["id"], "to_account_id": bank["id"], "amount": "1.00"},
                {"from_account_id": bank["id"], "to_account_id": bank["id"], "amount": "1.00"},
            ]
        },
        headers=headers,
    )
    assert response.status_code == 422
    assert published == []
    assert await _log(db) == []


async def test_rolled_back_unit_of_work_and_savepoint_deliver_nothing(ctx, client, auth, published):
    user_id = await _user_id(client, auth["headers"])
    acct = uuid.uuid4()

    def event(n: int) -> AccountBalanceUpdated:
        return AccountBalanceUpdated(user_id, acct, Decimal(0), Decimal(n), Decimal(n), "GBP")

    with pytest.raises(RuntimeError):
        async with unit_of_work(ctx.db) as session:
            await record(session, [event(1)])
            raise RuntimeError("changed my mind")
    assert published == []

    async with unit_of_work(ctx.db) as session:
        await record(session, [event(2)])
        with pytest.raises(RuntimeError):
            async with session.begin_nested():
                await record(session, [event(3)])
                raise RuntimeError("savepoint rolled back")
        await record(session, [event(4)])
    assert [r.event.new_balance for r in published] == [2, 4]
    rows = await _log(ctx.db)
    assert [r.id for r in rows] == [r.id for r in published]


async def test_a_failed_commit_delivers_nothing(ctx, client, auth, published, db):
    user_id = await _user_id(client, auth["headers"])
    with pytest.raises(Exception):  # noqa: B017 - the engine's integrity error
        async with unit_of_work(ctx.db) as session:
            await record(
                session,
                [AccountBalanceUpdated(user_id, uuid.uuid4(), 0, 1, 1, "GBP")],  # type: ignore[arg-type]
            )
            # A row the database refuses at commit time (a user that does not exist).
            session.add(
                EventRecord(
                    user_id=uuid.uuid4(), type="x", payload={}, created_at=datetime.now(UTC)
                )
            )
    assert published == []
    assert await _log(db) == []


EXAMPLE = """\
2024-01-01 commodity GBP
  exponent: -2
2024-01-01 open Asset:Bank:Current GBP
2024-01-02 * Opening balance
  Equity:Capital -> Asset:Bank:Current 1,000.00 GBP
2024-02-01 * Payroll
  Income:Salary -> Asset:Bank:Current 4000.00 GBP
  Asset:Bank:Current -> Expense:Tax 1000.00 GBP
"""


async def test_a_journal_import_publishes_one_event_per_touched_account(
    client, auth, published, db
):
    headers = auth["headers"]
    user_id = await _user_id(client, headers)
    bank = await account(client, headers, "Asset:Bank:Current")
    other = await account(client, headers, "Asset:Other")  # not in the journal
    capital = await account(client, headers, "Equity:Capital")
    await move(client, headers, capital, bank, "50.00")
    published.clear()

    response = await client.post(
        "/journal/import",
        content=EXAMPLE.encode(),
        headers={**headers, "Content-Type": "text/plain"},
    )
    assert response.status_code == 200, response.text
    accounts = {
        a["full_path"]: a
        for a in (await client.get("/accounts", headers=headers)).json()["accounts"]
    }
    assert other["id"] not in {str(getattr(r.event, "account_id", "")) for r in published}
    assert [r.event for r in published] == [
        _balance(user_id, bank, "50.00", "4050.00"),
        _balance(user_id, capital, "-50.00", "-1050.00"),
        _balance(user_id, accounts["Income:Salary"], "0.00", "-4000.00"),
        _balance(user_id, accounts["Expense:Tax"], "0.00", "1000.00"),
        _worth(user_id, "50.00", "4050.00", 2),  # Asset:Bank:Current and Asset:Other
    ]

    # An import that fails records nothing and publishes nothing.
    published.clear()
    before = len(await _log(db))
    response = await client.post(
        "/journal/import",
        content=(EXAMPLE + "2024-03-01 * Broken\n  Nowhere 1.00 GBP\n").encode(),
        headers={**headers, "Content-Type": "text/plain"},
    )
    assert response.status_code == 400
    assert published == [] and len(await _log(db)) == before


async def test_interest_publishes_through_the_ledger(client, auth, published):
    headers = auth["headers"]
    user_id = await _user_id(client, headers)
    saver = await account(client, headers, "Asset:Saver", annual_interest_rate="0.0365")
    capital = await account(client, headers, "Equity:Capital")
    start = datetime.now(UTC).date() - timedelta(days=10)
    await move(
        client, headers, capital, saver, "10000.00", value_time=f"{start.isoformat()}T00:00:00Z"
    )
    published.clear()
    day = start + timedelta(days=1)
    response = await client.post("/interest/run", json={"date": day.isoformat()}, headers=headers)
    assert response.status_code == 200, response.text
    income = next(
        a
        for a in (await client.get("/accounts", headers=headers)).json()["accounts"]
        if a["full_path"] == "Income:Interest"
    )
    # 10,000.00 × 3.65 % / 365 = 1.00 a day.
    assert [r.event for r in published] == [
        _balance(user_id, saver, "10000.00", "10001.00"),
        _balance(user_id, income, "0.00", "-1.00"),
        _worth(user_id, "10000.00", "10001.00", 1),
    ]


async def test_another_users_events_are_theirs_alone(client, auth, published, db):
    from conftest import register_and_login

    other = await register_and_login(client, "bob@example.com")
    a_bank = await account(client, auth["headers"], "Asset:Bank")
    a_pay = await account(client, auth["headers"], "Income:Pay")
    b_bank = await account(client, other["headers"], "Asset:Bank")
    b_pay = await account(client, other["headers"], "Income:Pay")
    await move(client, auth["headers"], a_pay, a_bank, "1.00")
    await move(client, other["headers"], b_pay, b_bank, "2.00")
    a_id = await _user_id(client, auth["headers"])
    b_id = await _user_id(client, other["headers"])
    assert [r.event.user_id for r in published] == [a_id] * 3 + [b_id] * 3
    assert {r.payload["user_id"] for r in await _log(db, b_id)} == {str(b_id)}


# ---------------------------------------------------------------------- the registry


def _publishers(cls: type) -> list[Path]:
    """Production modules (outside the event definitions) that construct `cls`."""
    pattern = re.compile(rf"\b{cls.__name__}\(")
    return [
        path
        for path in SRC.rglob("*.py")
        if path.parent.name != "eventstream" and pattern.search(path.read_text())
    ]


@pytest.mark.parametrize("cls", list(EVENT_HANDLERS), ids=lambda cls: cls.__name__)
def test_every_registered_event_has_a_publisher_and_handlers(cls):
    assert cls in SSE_NAMES
    assert EVENT_HANDLERS[cls], f"{cls.__name__} has no handler"
    assert _publishers(cls), f"nothing publishes {cls.__name__}"


def test_every_event_class_is_registered():
    from worthline.eventstream import events

    classes = {
        obj
        for obj in vars(events).values()
        if isinstance(obj, type)
        and obj.__module__ == events.__name__
        and getattr(obj, "__dataclass_params__", None) is not None
        and obj.__dataclass_params__.frozen
        and "user_id" in obj.__dataclass_fields__
        and obj.__name__ != "RecordedEvent"
    }
    assert classes == set(EVENT_HANDLERS) == set(SSE_NAMES)


class _SlowBus(EventBus):
    """A bus whose publish waits, as a Redis round trip does."""

    def __init__(self) -> None:
        super().__init__(max_streams_per_user=5)
        self.order: list[int] = []

    async def publish(self, messages: list[BusMessage]) -> None:
        await asyncio.sleep(0.01)
        self.order.extend(m.id for m in messages)


async def test_dispatches_hand_over_whole_in_the_order_they_begin():
    """Two writes of one user commit in id order and dispatch as soon as they see it; a second
    dispatch must not interleave with a first that waits on the bus."""
    bus = _SlowBus()
    dispatch = Dispatcher(bus)
    user = uuid.uuid4()

    def events(*ids: int) -> list[RecordedEvent]:
        made = AccountBalanceUpdated(user, uuid.uuid4(), Decimal(0), Decimal(1), Decimal(1), "GBP")
        return [RecordedEvent(i, made, datetime.now(UTC)) for i in ids]

    await asyncio.gather(dispatch(events(1, 2, 3)), dispatch(events(4, 5, 6)))
    assert bus.order == [1, 2, 3, 4, 5, 6]


async def test_different_users_dispatch_without_waiting_for_each_other():
    """Only one user's dispatches take turns; nothing is left behind once they are done, and
    a dispatch cancelled while waiting for its turn leaves the turn to the next."""
    bus = _SlowBus()
    dispatch = Dispatcher(bus)
    one, other = uuid.uuid4(), uuid.uuid4()

    def events(user: uuid.UUID, *ids: int) -> list[RecordedEvent]:
        made = AccountBalanceUpdated(user, uuid.uuid4(), Decimal(0), Decimal(1), Decimal(1), "GBP")
        return [RecordedEvent(i, made, datetime.now(UTC)) for i in ids]

    await asyncio.gather(dispatch(events(one, 1, 2, 3)), dispatch(events(other, 4, 5, 6)))
    assert bus.order == [1, 4, 2, 5, 3, 6]

    bus.order.clear()
    first = asyncio.create_task(dispatch(events(one, 7, 8)))
    await asyncio.sleep(0)  # it holds `one`'s turn
    waiting = asyncio.create_task(dispatch(events(one, 9)))
    await asyncio.sleep(0)
    waiting.cancel()
    await asyncio.gather(first, dispatch(events(one, 10)), return_exceptions=True)
    assert bus.order == [7, 8, 10]
    assert all(not turns._locks for turns in dispatch._turns.values())


async def test_a_unit_of_work_dispatches_before_giving_its_connection_back(db, monkeypatch):
    """Giving a connection back may wait (a reset round trip); a write that committed after
    this one could dispatch first meanwhile. So the dispatch comes first."""
    steps: list[str] = []
    close = AsyncSession.close

    async def closing(self: AsyncSession) -> None:
        steps.append("close")
        await close(self)

    async def on_commit(items: list[Any]) -> None:
        steps.append("dispatch")

    monkeypatch.setattr(AsyncSession, "close", closing)
    db.on_commit = on_commit
    async with unit_of_work(db) as session:
        after_commit(session, "an item")
    assert steps == ["dispatch", "close"]


async def test_each_event_names_its_users_event_before_it(client, auth, published, db):
    """`after` (what a stream checks its order with) is the id of the same user's previous
    event in the log: through `POST /movements`, a batch, and with another user writing in
    between."""
    headers = auth["headers"]
    bank = await account(client, headers, "Asset:Bank")
    salary = await account(client, headers, "Income:Salary")
    bob = await register_and_login(client, "bob@example.com")
    bob_bank = await account(client, bob["headers"], "Asset:Bank")
    bob_salary = await account(client, bob["headers"], "Income:Salary")
    for amount in ("1.00", "2.00"):
        await move(client, headers, salary, bank, amount)  # one movement: the direct path
        await move(client, bob["headers"], bob_salary, bob_bank, amount)
    legs = [{"from_account_id": salary["id"], "to_account_id": bank["id"], "amount": "3.00"}] * 2
    response = await client.post("/movements/batch", json={"movements": legs}, headers=headers)
    assert response.status_code == 201, response.text

    assert len(published) >= 12
    for user_id in {event.user_id for event in published}:
        mine = [event for event in published if event.user_id == user_id]
        logged = [row.id for row in await _log(db, user_id)]
        assert [event.id for event in mine] == logged
        assert [event.after for event in mine] == [0, *logged[:-1]]


def test_chain_links_each_users_events_in_id_order():
    ada, bob = uuid.uuid4(), uuid.uuid4()
    ids = [12, 10, 11, 13]  # as RETURNING may give them
    users = [ada, bob, ada, ada]
    assert chain(ids, users, {ada: 7}) == [11, 0, 7, 12]

"""The ledger's invariants, as properties over random histories, on both engines.

For random accounts and movements (backdated, same-day, batched, recorded at increasing
knowledge times) every `balances_live` row, every daily balance, every balance-at and every
known-at balance must equal a brute-force recomputation from the movements themselves, and the
balances of each currency must sum to zero (double entry).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from ledger.factories import new_user
from worthline.kit.db import Database, unit_of_work
from worthline.ledger import projections, service
from worthline.ledger import repository as repo
from worthline.ledger.models import BalanceLive

BASE = datetime(2025, 3, 1, tzinfo=UTC)
CURRENCIES = {"GBP": -2, "JPY": 0}

movement = st.tuples(
    st.integers(0, 5),  # from (index into the accounts of one currency)
    st.integers(0, 5),  # to
    st.integers(1, 10**7),  # amount in minor units
    st.integers(0, 40),  # value day offset
    st.integers(0, 86_399),  # second of that day
)
operation = st.tuples(
    st.sampled_from(list(CURRENCIES)),
    st.lists(movement, min_size=1, max_size=4),  # more than one: an atomic batch
    st.integers(1, 600),  # knowledge time advances by this many seconds
)


async def _accounts(db: Database, user_id: uuid.UUID) -> dict[str, list]:
    made: dict[str, list] = {}
    async with unit_of_work(db) as session:
        for currency in CURRENCIES:
            made[currency] = [
                await service.create_account(
                    session,
                    user_id,
                    service.NewAccount(f"Asset:{currency}:A{i}", currency),
                    BASE,
                )
                for i in range(3)
            ] + [
                await service.create_account(
                    session,
                    user_id,
                    service.NewAccount(f"Liability:{currency}:L{i}", currency),
                    BASE,
                )
                for i in range(3)
            ]
    return made


def _brute(history, account_id: int, at: datetime, known_at: datetime | None = None) -> int:
    total = 0
    for src, dst, amount, value_time, knowledge_time in history:
        if value_time > at or (known_at is not None and knowledge_time > known_at):
            continue
        total += amount if dst == account_id else -amount if src == account_id else 0
    return total


@pytest.fixture(params=["row-by-row", "set-wise"])
def setwise(request, monkeypatch):
    """Both ways of maintaining the projection: per (account, day), and the partial rebuild
    that large writes use."""
    if request.param == "set-wise":
        monkeypatch.setattr(projections, "SETWISE_THRESHOLD", 0)
    return request.param


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(operations=st.lists(operation, min_size=1, max_size=12), probes=st.data())
async def test_projections_and_balances_match_brute_force(db, setwise, operations, probes):
    user_id = await new_user(db)  # a fresh tenant per example: nothing else is visible
    accounts = await _accounts(db, user_id)
    history: list[tuple[int, int, int, datetime, datetime]] = []
    knowledge = BASE + timedelta(days=60)
    knowledge_marks = []
    for currency, moves, advance in operations:
        knowledge += timedelta(seconds=advance)
        specs = []
        pool = accounts[currency]
        for src, dst, amount, day, second in moves:
            if src == dst:
                dst = (dst + 1) % len(pool)
            value_time = BASE + timedelta(days=day, seconds=second)
            specs.append(
                service.NewMovement(
                    pool[src].public_id,
                    pool[dst].public_id,
                    Decimal(amount).scaleb(CURRENCIES[currency]),
                    value_time=value_time,
                )
            )
            history.append((pool[src].id, pool[dst].id, amount, value_time, knowledge))
        async with unit_of_work(db) as session:
            await service.record_movements(
                session, user_id, specs, batched=len(specs) > 1, now=knowledge
            )
        knowledge_marks.append(knowledge)

    all_accounts = [a for pool in accounts.values() for a in pool]
    ids = [a.id for a in all_accounts]
    async with db.read_session() as session:
        # 1. every projection row is the sum of movements up to the end of its day, and rows
        #    exist exactly for the days with activity
        rows = (
            await session.execute(
                select(BalanceLive.account_id, BalanceLive.balance_date, BalanceLive.balance).where(
                    BalanceLive.account_id.in_(ids)
                )
            )
        ).all()
        active = {(a, v.date()) for s, d, _, v, _ in history for a in (s, d)}
        assert {(a, d) for a, d, _ in rows} == active
        for account_id, day, balance in rows:
            end_of_day = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
            assert balance == _brute(history, account_id, end_of_day - timedelta(microseconds=1))

        # 2. daily balances with gap filling, over a range wider than the history
        start, end = date(2025, 2, 27), date(2025, 4, 12)
        for account in all_accounts:
            daily = await repo.daily_closing_balances(session, account.id, start, end)
            assert len(daily) == (end - start).days + 1
            for day, balance in daily:
                eod = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
                assert balance == _brute(history, account.id, eod - timedelta(microseconds=1))

        # 3. balance at random value times (including mid-day and exactly at a movement)
        offsets = st.integers(-86_400, 42 * 86_400).map(lambda s: BASE + timedelta(seconds=s))
        instants = [*probes.draw(st.lists(offsets, min_size=1, max_size=4)), history[-1][3]]
        for at in instants:
            got = await repo.balances_at(session, ids, at)
            for account_id in ids:
                assert got[account_id] == _brute(history, account_id, at)

        # 4. as known at each knowledge time and just before it
        for known_at in knowledge_marks[:4]:
            for probe in (known_at, known_at - timedelta(microseconds=1)):
                at = instants[0]
                for account_id in ids[:4]:
                    got = await repo.balance_known_at(session, account_id, at, probe)
                    assert got == _brute(history, account_id, at, probe)

        # 5. double entry: each currency's balances sum to zero, at any time
        far = BASE + timedelta(days=400)
        now = await repo.balances_at(session, ids, far)
        per_currency: dict[str, int] = defaultdict(int)
        for account in all_accounts:
            per_currency[account.currency] += now[account.id]
        assert set(per_currency.values()) == {0}

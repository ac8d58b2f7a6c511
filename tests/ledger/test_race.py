"""Concurrent writers over a few shared accounts: every request succeeds (no deadlock or
serialisation failure reaches a caller), no update is lost, and the invariants hold. Half of
the writers take the regular path (a unit of work), half the direct one (`ledger.direct`, as
`POST /movements` does)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, text

from ledger.factories import count_direct
from worthline.auth.models import User
from worthline.eventstream.models import EventRecord
from worthline.kit.db import Database, unit_of_work
from worthline.ledger import direct, projections, service
from worthline.ledger import repository as repo
from worthline.ledger.models import BalanceLive, Movement

WRITERS = 8
EACH = 25


@pytest.mark.postgres_only
async def test_concurrent_writers_on_shared_accounts(db: Database, monkeypatch: pytest.MonkeyPatch):
    async with unit_of_work(db) as session:
        user = User(email="race@example.com", password_hash="x")
        session.add(user)
        await session.flush()
        accounts = [
            await service.create_account(
                session,
                user.id,
                service.NewAccount(f"Asset:Pool:A{i}", "GBP"),
                datetime(2025, 1, 1, tzinfo=UTC),
            )
            for i in range(3)
        ]
    base = datetime(2025, 6, 1, tzinfo=UTC)
    failures: list[BaseException] = []
    taken = count_direct(monkeypatch)  # movements the direct path recorded

    async def writer(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(EACH):
            a, b = rng.sample(accounts, 2)
            # Backdated and same-day movements, so that the later-rows UPDATE overlaps.
            value_time = base + timedelta(days=rng.randint(0, 20), seconds=rng.randint(0, 86399))
            spec = service.NewMovement(
                a.public_id,
                b.public_id,
                Decimal(rng.randint(1, 10_000)) / 100,
                value_time=value_time,
            )
            try:
                if seed % 2:
                    await direct.record_movement(db, user.id, spec)
                else:
                    async with unit_of_work(db) as session:
                        await service.record_movements(session, user.id, [spec])
            except BaseException as exc:  # any failure fails the test below
                failures.append(exc)

    await asyncio.gather(*(writer(seed) for seed in range(WRITERS)))
    assert failures == []
    assert len(taken) > WRITERS * EACH // 4  # most direct writers' movements went direct

    ids = [a.id for a in accounts]
    async with db.read_session() as session:
        moves = (
            await session.execute(
                select(
                    Movement.from_account_id,
                    Movement.to_account_id,
                    Movement.amount,
                    Movement.value_time,
                ).where(Movement.from_account_id.in_(ids))
            )
        ).all()
        assert len(moves) == WRITERS * EACH  # no lost write
        rows = (
            await session.execute(
                select(BalanceLive.account_id, BalanceLive.balance_date, BalanceLive.balance).where(
                    BalanceLive.account_id.in_(ids)
                )
            )
        ).all()
        for account_id, day, balance in rows:
            eod = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)
            expected = sum(
                (amt if dst == account_id else -amt if src == account_id else 0)
                for src, dst, amt, vt in moves
                if vt < eod
            )
            assert balance == expected, (account_id, day)
        final = await repo.balances_at(session, ids, base + timedelta(days=60))
        assert sum(final.values()) == 0


@pytest.mark.postgres_only
@pytest.mark.parametrize("before", [None, "read", "added"])
async def test_a_deadlock_is_retried_and_everything_recorded_once(
    db: Database, monkeypatch: pytest.MonkeyPatch, before: str | None
):
    """A deadlock (a real PostgreSQL error, SQLSTATE 40P01) in the middle of a movement's
    write is retried: the caller sees success, and the movement, its projections, its events
    and their delivery are there exactly once. `before`: nothing (the retry rolls back the
    whole transaction), a read (it rolls back to a savepoint), or an object added and not yet
    flushed (the attempt flushes it, the whole transaction is rolled back, and SQLAlchemy puts
    it back as pending: it is written once, by the retry)."""
    async with unit_of_work(db) as session:
        user = User(email="retry@example.com", password_hash="x")
        session.add(user)
        await session.flush()
        opened = datetime(2025, 1, 1, tzinfo=UTC)
        bank = await service.create_account(
            session, user.id, service.NewAccount("Asset:Bank", "GBP"), opened
        )
        salary = await service.create_account(
            session, user.id, service.NewAccount("Income:Salary", "GBP"), opened
        )
    apply = projections.apply
    attempts = 0

    async def deadlocking_apply(session, deltas):  # type: ignore[no-untyped-def]
        nonlocal attempts
        attempts += 1
        await apply(session, deltas)
        if attempts == 1:
            await session.execute(
                text("DO $$ BEGIN RAISE EXCEPTION 'injected' USING ERRCODE = '40P01'; END $$")
            )

    monkeypatch.setattr(projections, "apply", deadlocking_apply)
    delivered: list[object] = []

    async def deliver(items: list[object]) -> None:
        delivered.extend(items)

    monkeypatch.setattr(db, "on_commit", deliver)
    async with unit_of_work(db) as session:
        if before == "read":
            await session.execute(select(User.id).where(User.id == user.id))
        elif before == "added":
            session.add(User(email="added@example.com", password_hash="x"))
        # Batched: it flushes the session, so what was added before is written in the attempt.
        await service.record_movements(
            session,
            user.id,
            [service.NewMovement(salary.public_id, bank.public_id, Decimal("12.34"))],
            batched=True,
        )
    assert attempts == 2

    async with db.read_session() as session:
        added = await session.scalar(select(User.id).where(User.email == "added@example.com"))
        assert (added is not None) == (before == "added")
        moves = (await session.execute(select(Movement.amount))).scalars().all()
        assert moves == [1234]
        live = (await session.execute(select(BalanceLive.account_id, BalanceLive.balance))).all()
        assert sorted(live) == sorted([(bank.id, 1234), (salary.id, -1234)])
        events = (
            await session.execute(select(EventRecord.id, EventRecord.type).order_by(EventRecord.id))
        ).all()
    types = [t for _, t in events]
    assert sorted(types) == sorted(
        ["AccountBalanceUpdated", "AccountBalanceUpdated", "PortfolioNetWorthRecalculated"]
    )
    assert [item.id for item in delivered] == [i for i, _ in events]  # type: ignore[attr-defined]

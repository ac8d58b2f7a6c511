"""Concurrent writers over a few shared accounts: every request succeeds (no deadlock or
serialisation failure reaches a caller), no update is lost, and the invariants hold."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from worthline.auth.models import User
from worthline.kit.db import Database, unit_of_work
from worthline.ledger import repository as repo
from worthline.ledger import service
from worthline.ledger.models import BalanceLive, Movement

WRITERS = 8
EACH = 25


@pytest.mark.postgres_only
async def test_concurrent_writers_on_shared_accounts(db: Database):
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

    async def writer(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(EACH):
            a, b = rng.sample(accounts, 2)
            # Backdated and same-day movements, so that the later-rows UPDATE overlaps.
            value_time = base + timedelta(days=rng.randint(0, 20), seconds=rng.randint(0, 86399))
            try:
                async with unit_of_work(db) as session:
                    await service.record_movements(
                        session,
                        user.id,
                        [
                            service.NewMovement(
                                a.public_id,
                                b.public_id,
                                Decimal(rng.randint(1, 10_000)) / 100,
                                value_time=value_time,
                            )
                        ],
                    )
            except BaseException as exc:  # any failure fails the test below
                failures.append(exc)

    await asyncio.gather(*(writer(seed) for seed in range(WRITERS)))
    assert failures == []

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

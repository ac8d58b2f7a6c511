"""The fan-out: Redis pub/sub between processes (two buses stand for two workers), a client
that does not keep up, shutdown; and two app instances sharing one database and Redis."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest

from conftest import make_settings, register_and_login
from eventstream.support import open_stream, serving, summary
from ledger.factories import account, move
from worthline.app import create_app
from worthline.kit import eventbus
from worthline.kit.context import AppContext
from worthline.kit.eventbus import BusMessage, EventBus, RedisEventBus, StreamLimitReached
from worthline.kit.problems import ServiceUnavailable


def _message(n: int, user: uuid.UUID) -> BusMessage:
    return BusMessage(n, user, "portfolio.balance.updated", f'{{"n": {n}}}')


async def test_redis_carries_events_between_processes_in_order(redis_url):
    ada, bob = uuid.uuid4(), uuid.uuid4()
    worker_1, worker_2 = RedisEventBus(redis_url), RedisEventBus(redis_url)
    try:
        subscription = await worker_1.subscribe(ada)
        await worker_2.publish([_message(1, ada), _message(2, bob)])
        await worker_2.publish([_message(3, ada)])
        received = [await asyncio.wait_for(subscription.get(), 5) for _ in range(2)]
        assert received == [_message(1, ada), _message(3, ada)]
        assert worker_1.streams(ada) == 1
        subscription.close()
        assert worker_1.streams() == 0
    finally:
        await worker_1.close()
        await worker_2.close()


def test_a_message_keeps_its_predecessor_on_the_wire():
    ada = uuid.uuid4()
    message = BusMessage(12, ada, "portfolio.balance.updated", "{}", after=11)
    assert eventbus._decode(eventbus._encode([message])) == [message]
    # From a process of the previous version: four fields, predecessor unknown.
    old = f'[[12, "{ada}", "portfolio.balance.updated", "{{}}"]]'
    assert eventbus._decode(old) == [BusMessage(12, ada, "portfolio.balance.updated", "{}")]


async def test_a_client_that_does_not_keep_up_is_closed_not_silently_skipped(monkeypatch):
    monkeypatch.setattr(eventbus, "QUEUE_LIMIT", 3)
    bus, user = EventBus(), uuid.uuid4()
    subscription = await bus.subscribe(user)
    await bus.publish([_message(n, user) for n in range(1, 6)])
    got = [await subscription.get() for _ in range(4)]
    assert got == [_message(1, user), _message(2, user), _message(3, user), None]
    assert subscription.closed_reason == "the client is not keeping up"
    assert bus.streams(user) == 0


async def test_limit_and_shutdown():
    bus, user = EventBus(max_streams_per_user=1), uuid.uuid4()
    subscription = await bus.subscribe(user)
    with pytest.raises(StreamLimitReached):
        await bus.subscribe(user)
    await bus.close()
    assert await subscription.get() is None
    assert subscription.closed_reason == "the server is shutting down"


async def test_two_workers_share_events_through_redis(database_url: str, tmp_path: Path, redis_url):
    """Two app instances (as two worker processes would be) over one database and Redis: a
    stream on the first receives what the second commits."""
    settings = make_settings(database_url, tmp_path, redis_url=redis_url)
    first, second = AppContext.build(settings), AppContext.build(settings)
    try:
        async with (
            serving(create_app(settings, first)) as url_1,
            serving(create_app(settings, second)) as url_2,
            httpx.AsyncClient(base_url=url_1, timeout=10) as one,
            httpx.AsyncClient(base_url=url_2, timeout=10) as two,
        ):
            auth = await register_and_login(two)
            headers = auth["headers"]
            bank = await account(two, headers, "Asset:Bank")
            salary = await account(two, headers, "Income:Salary")
            async with open_stream(one, headers) as stream:
                await move(two, headers, salary, bank, "7.00")
                await move(two, headers, salary, bank, "8.00")
                received = await stream.take(6)
            assert summary(received) == [
                "balance 7.00",
                "balance -7.00",
                "networth 7.00",
                "balance 15.00",
                "balance -15.00",
                "networth 15.00",
            ]
            ids = [int(m.id) for m in received]
            assert ids == sorted(ids)
    finally:
        await first.close()
        await second.close()


async def test_without_redis_a_stream_is_refused_not_left_deaf():
    bus = RedisEventBus("redis://127.0.0.1:1/0")  # nothing listens there
    try:
        with pytest.raises(ServiceUnavailable):
            await bus.subscribe(uuid.uuid4())
        assert bus.streams() == 0
    finally:
        await bus.close()


async def test_an_event_that_cannot_be_relayed_closes_the_users_local_streams(redis_url):
    bus, user, other = RedisEventBus(redis_url), uuid.uuid4(), uuid.uuid4()
    try:
        mine, theirs = await bus.subscribe(user), await bus.subscribe(other)

        async def broken(*args: object) -> None:
            raise ConnectionError("redis went away")

        bus._client().publish = broken
        with pytest.raises(ConnectionError):
            await bus.publish([_message(1, user)])
        assert await asyncio.wait_for(mine.get(), 1) is None
        assert mine.closed_reason == "an event could not be relayed; reconnect to resume"
        assert theirs.closed_reason is None
    finally:
        await bus.close()

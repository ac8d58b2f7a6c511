"""`GET /events` over real HTTP: message format, Last-Event-ID replay then live without gap or
repeat, tickets, heartbeats, the per-user stream limit, and isolation between users."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import insert

from conftest import make_settings, register_and_login
from eventstream.support import open_stream, serving, summary
from ledger.factories import account, move
from worthline.app import create_app
from worthline.eventstream import endpoints, service
from worthline.eventstream.events import RecordedEvent, broadcast
from worthline.eventstream.models import EventRecord
from worthline.kit.context import AppContext
from worthline.kit.db import unit_of_work

PROBLEM_BASE = "https://worthline.dev/problems/"


async def _setup(http: httpx.AsyncClient, email: str = "ada@example.com"):
    auth = await register_and_login(http, email)
    headers = auth["headers"]
    bank = await account(http, headers, "Asset:Bank")
    salary = await account(http, headers, "Income:Salary")
    return headers, bank, salary


def _problem(response: httpx.Response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = orjson.loads(response.content)
    assert body["type"] == PROBLEM_BASE + slug
    return body


async def test_messages_carry_id_event_and_seed_fields(http):
    headers, bank, salary = await _setup(http)
    async with open_stream(http, headers) as stream:
        await move(http, headers, salary, bank, "12.34")
        first, second = await stream.take(2)
    assert first.event == second.event == "portfolio.balance.updated"
    assert int(second.id) == int(first.id) + 1
    me = (await http.get("/users/me", headers=headers)).json()
    assert first.json == {
        "user_id": me["id"],
        "account_id": bank["id"],
        "previous_balance": "0.00",
        "new_balance": "12.34",
        "delta": "12.34",
        "currency": "GBP",
    }
    assert second.json["account_id"] == salary["id"]
    assert second.json["new_balance"] == "-12.34"
    # The wire format itself: `id:`, `event:`, `data:` lines.
    assert f"id: {first.id}" in stream.raw
    assert "event: portfolio.balance.updated" in stream.raw
    assert any(line.startswith("data: {") for line in stream.raw)


async def test_last_event_id_replays_what_was_missed_then_live(http):
    headers, bank, salary = await _setup(http)
    async with open_stream(http, headers) as stream:
        for amount in ("1.00", "2.00", "3.00"):
            await move(http, headers, salary, bank, amount)
        seen = await stream.take(9)  # two balances and the net worth per movement
    ids = [int(m.id) for m in seen]
    assert ids == sorted(ids)
    resume_after = ids[2]  # the client saw the first movement's three events, then dropped
    async with open_stream(http, headers | {"Last-Event-ID": str(resume_after)}) as stream:
        replayed = await stream.take(6)
        assert [int(m.id) for m in replayed] == ids[3:]
        assert [m.json for m in replayed] == [m.json for m in seen[3:]]
        await move(http, headers, salary, bank, "4.00")
        live = await stream.take(3)
        assert [int(m.id) for m in live] == [ids[-1] + 1, ids[-1] + 2, ids[-1] + 3]
        assert summary(live) == ["balance 10.00", "balance -10.00", "networth 10.00"]
        assert await stream.nothing_within(0.3)  # no repeat of anything


async def test_no_gap_and_no_repeat_while_replaying_under_writes(http):
    headers, bank, salary = await _setup(http)
    await move(http, headers, salary, bank, "1.00")

    async def writes() -> None:
        for _ in range(15):
            await move(http, headers, salary, bank, "1.00")

    writer = asyncio.create_task(writes())
    try:
        async with open_stream(http, headers | {"Last-Event-ID": "0"}) as stream:
            messages = await stream.take(48, within=10)  # 3 per movement
            await writer
            assert await stream.nothing_within(0.3)
    finally:
        await writer
    ids = [int(m.id) for m in messages]
    assert ids == sorted(set(ids)) and len(ids) == 48
    banks = [m.json["new_balance"] for m in messages if m.json.get("account_id") == bank["id"]]
    assert banks == [f"{n}.00" for n in range(1, 17)]
    worth = [m.json["new_net_worth"] for m in messages if "new_net_worth" in m.json]
    assert worth == [f"{n}.00" for n in range(1, 17)]


async def test_a_user_never_receives_another_users_events(http):
    a_headers, a_bank, a_salary = await _setup(http, "ada@example.com")
    b_headers, b_bank, b_salary = await _setup(http, "bob@example.com")
    async with (
        open_stream(http, a_headers) as a_stream,
        open_stream(http, b_headers | {"Last-Event-ID": "0"}) as b_stream,
    ):
        await move(http, a_headers, a_salary, a_bank, "5.00")
        assert len(await a_stream.take(2)) == 2
        assert await b_stream.nothing_within(0.5)
        await move(http, b_headers, b_salary, b_bank, "6.00")
        mine = await b_stream.take(2)
    assert {m.json["account_id"] for m in mine} == {b_bank["id"], b_salary["id"]}


async def test_tickets_are_single_use_and_expire(http, ctx):
    headers, bank, salary = await _setup(http)
    response = await http.post("/events/ticket", headers=headers)
    assert response.status_code == 201, response.text
    ticket = response.json()["ticket"]
    expires = datetime.fromisoformat(response.json()["expires_at"].replace("Z", "+00:00"))
    assert timedelta(seconds=55) < expires - datetime.now(UTC) <= timedelta(seconds=60)

    async with open_stream(http, ticket=ticket) as stream:
        await move(http, headers, salary, bank, "1.00")
        assert len(await stream.take(2)) == 2

    reused = await http.get("/events", params={"ticket": ticket})
    _problem(reused, 401, "invalid-ticket")
    assert reused.headers["www-authenticate"].startswith("Bearer")

    me = (await http.get("/users/me", headers=headers)).json()
    async with unit_of_work(ctx.db) as session:
        old, _ = await service.issue_ticket(
            session, uuid.UUID(me["id"]), datetime.now(UTC) - timedelta(seconds=61)
        )
    _problem(await http.get("/events", params={"ticket": old}), 401, "invalid-ticket")
    _problem(await http.get("/events", params={"ticket": "wl_evt_nonsense"}), 401, "invalid-ticket")


async def test_without_credentials_or_with_a_bad_last_event_id(http):
    headers, _, _ = await _setup(http)
    _problem(await http.get("/events"), 401, "invalid-token")
    _problem(
        await http.get("/events", headers={"Authorization": "Bearer nope"}), 401, "invalid-token"
    )
    for bad_id in ("abc", "-1", str(2**63), "9" * 30):  # past 2^63 - 1: was a dead stream
        bad = await http.get("/events", headers=headers | {"Last-Event-ID": bad_id})
        _problem(bad, 400, "invalid-last-event-id")


@pytest.mark.parametrize("last_id", [10**6, 2**63 - 1])
async def test_a_last_event_id_past_the_users_events_resumes_live(http, last_id):
    """Not an event this server sent (its log was reset, say): the stream says so and goes on
    with live events, where it once dropped every one of them as already sent."""
    headers, bank, salary = await _setup(http)
    await move(http, headers, salary, bank, "1.00")
    async with open_stream(http, headers | {"Last-Event-ID": str(last_id)}) as stream:
        notice = await stream.next(comments=True)
        assert notice.id is None and "past every event" in notice.comments[0]
        await move(http, headers, salary, bank, "2.00")
        assert summary(await stream.take(3)) == ["balance 3.00", "balance -3.00", "networth 3.00"]


async def test_a_read_only_token_may_stream(http):
    headers, bank, salary = await _setup(http)
    created = await http.post(
        "/auth/tokens", json={"name": "dashboard", "scopes": ["read"]}, headers=headers
    )
    assert created.status_code == 201, created.text
    read_only = {"Authorization": f"Bearer {created.json()['token']}"}
    async with open_stream(http, read_only) as stream:
        await move(http, headers, salary, bank, "1.00")
        assert len(await stream.take(2)) == 2


@pytest.fixture
async def tuned(database_url: str, tmp_path: Path):
    """An app with a 0.2 s heartbeat and at most two streams per user."""
    settings = make_settings(
        database_url, tmp_path, sse_heartbeat_seconds=0.2, sse_max_streams_per_user=2
    )
    ctx = AppContext.build(settings)
    try:
        async with (
            serving(create_app(settings, ctx)) as url,
            httpx.AsyncClient(base_url=url, timeout=10) as client,
        ):
            yield client
    finally:
        await ctx.close()


async def test_idle_streams_get_heartbeat_comments(tuned):
    headers, _, _ = await _setup(tuned)
    async with open_stream(tuned, headers) as stream:
        started = asyncio.get_running_loop().time()
        first = await stream.next(2, comments=True)
        second = await stream.next(2, comments=True)
        elapsed = asyncio.get_running_loop().time() - started
    assert first.id is None and first.comments and second.comments
    assert elapsed < 1.5


async def test_streams_per_user_are_bounded(tuned):
    headers, _, _ = await _setup(tuned)
    other, _, _ = await _setup(tuned, "bob@example.com")
    async with open_stream(tuned, headers), open_stream(tuned, headers):
        refused = await tuned.get("/events", headers=headers)
        body = _problem(refused, 429, "too-many-streams")
        assert "2" in body["detail"]
        assert refused.headers["retry-after"]
        ticket = (await tuned.post("/events/ticket", headers=headers)).json()["ticket"]
        _problem(await tuned.get("/events", params={"ticket": ticket}), 429, "too-many-streams")
        async with open_stream(tuned, other):  # another user is not affected
            pass
    # The ticket refused for want of room was not used up.
    for _ in range(50):
        async with tuned.stream("GET", "/events", params={"ticket": ticket}) as response:
            if response.status_code == 200:
                break
            assert response.status_code == 429
        await asyncio.sleep(0.05)
    assert response.status_code == 200
    # Closed streams give their places back (once the server has seen the disconnects).
    statuses = []
    for _ in range(50):
        async with tuned.stream("GET", "/events", headers=headers) as response:
            statuses.append(response.status_code)
        if statuses[-1] == 200:
            break
        await asyncio.sleep(0.05)
    assert statuses[-1] == 200, statuses


async def test_a_resume_point_older_than_retention_is_announced(http, ctx):
    headers, bank, salary = await _setup(http)
    me = uuid.UUID((await http.get("/users/me", headers=headers)).json()["id"])
    long_ago = datetime.now(UTC) - timedelta(days=40)
    async with unit_of_work(ctx.db) as session:
        await session.execute(
            insert(EventRecord),
            [
                {"user_id": me, "type": "AccountBalanceUpdated", "payload": {}, "created_at": t}
                for t in (long_ago, long_ago)
            ],
        )
    async with unit_of_work(ctx.db) as session:
        result = await service.purge(session, ctx.settings.event_retention_days)
    assert result.events == 2
    async with open_stream(http, headers | {"Last-Event-ID": "1"}) as stream:
        notice = await stream.next(2, comments=True)
        assert notice.id is None
        assert "purged" in notice.comments[0] and "Resuming" in notice.comments[0]
        await move(http, headers, salary, bank, "1.00")
        live = await stream.take(2)
        assert int(live[0].id) > result.purged_through


async def test_concurrent_writes_of_one_user_arrive_in_id_order(http):
    """Writes on disjoint accounts of one user, in parallel: ids are delivered live in
    increasing order (they commit in id order), so resuming after any of them misses none."""
    headers, _, _ = await _setup(http)
    pairs = [
        (await account(http, headers, f"Asset:B{n}"), await account(http, headers, f"Income:P{n}"))
        for n in range(8)
    ]
    async with open_stream(http, headers) as stream:
        await asyncio.gather(
            *(move(http, headers, pay, bank, "1.00") for bank, pay in pairs for _ in range(3))
        )
        received = await stream.take(48, within=15)
    ids = [int(m.id) for m in received]
    assert ids == sorted(set(ids))
    # Resuming after any delivered id replays exactly the ones after it.
    cut = ids[20]
    async with open_stream(http, headers | {"Last-Event-ID": str(cut)}) as stream:
        assert [int(m.id) for m in await stream.take(27)] == ids[21:]


async def _held_back(ctx: AppContext, write) -> list[RecordedEvent]:
    """Run `write` with its events committed but not published (as if the process that
    wrote them were slow to relay them)."""
    dispatch, held = ctx.db.on_commit, []

    async def hold(items: list) -> None:
        held.extend(item for item in items if isinstance(item, RecordedEvent))

    ctx.db.on_commit = hold
    try:
        await write()
    finally:
        ctx.db.on_commit = dispatch
    return held


@pytest.mark.parametrize("resume", [False, True])
async def test_publications_that_cross_between_processes_arrive_in_log_order(http, ctx, resume):
    """Two worker processes relay their commits independently, so the second write's events
    can reach a stream first. The stream sends the first write's from the log, in order, and
    drops their late publications as repeats."""
    headers, bank, salary = await _setup(http)
    await move(http, headers, salary, bank, "1.00")
    resume_at = {"Last-Event-ID": "0"} if resume else {}
    async with open_stream(http, headers | resume_at) as stream:
        if resume:
            assert len(await stream.take(3)) == 3  # the replay
        first = await _held_back(ctx, lambda: move(http, headers, salary, bank, "2.00"))
        second = await _held_back(ctx, lambda: move(http, headers, salary, bank, "4.00"))
        assert len(first) == len(second) == 3
        for recorded in second + first:  # crossed on the way
            await broadcast(recorded, ctx.bus)
        received = await stream.take(6)
        assert await stream.nothing_within(0.3)  # no repeats
    assert [int(m.id) for m in received] == [r.id for r in first + second]
    assert summary(received) == [
        "balance 3.00", "balance -3.00", "networth 3.00",
        "balance 7.00", "balance -7.00", "networth 7.00",
    ]  # fmt: skip


async def test_a_lost_publication_is_caught_up_at_the_next_event(http, ctx):
    """Redis pub/sub is best effort: when one write's publication never arrives, the stream
    reads its events from the log as soon as the next event names them as its predecessors."""
    headers, bank, salary = await _setup(http)
    async with open_stream(http, headers) as stream:
        lost = await _held_back(ctx, lambda: move(http, headers, salary, bank, "2.00"))
        assert await stream.nothing_within(0.3)
        await move(http, headers, salary, bank, "3.00")
        received = await stream.take(len(lost) + 3)
        assert await stream.nothing_within(0.3)
    ids = [int(m.id) for m in received]
    assert ids[: len(lost)] == [r.id for r in lost]
    assert ids == sorted(set(ids))
    assert [m.json["new_balance"] for m in received if m.json.get("account_id") == bank["id"]] == [
        "2.00",
        "5.00",
    ]


async def test_without_redis_an_idle_stream_reads_what_another_process_committed(
    http, ctx, monkeypatch
):
    """The embedded default has no Redis: what a CLI process commits (a price import, a
    snapshot capture) reaches no bus, so an idle stream reads the log for it."""
    monkeypatch.setattr(endpoints, "LOG_POLL_SECONDS", 0.2)
    assert not ctx.bus.shared
    headers, bank, salary = await _setup(http)
    async with open_stream(http, headers) as stream:
        elsewhere = await _held_back(ctx, lambda: move(http, headers, salary, bank, "2.00"))
        received = await stream.take(len(elsewhere), within=3)
        assert await stream.nothing_within(0.5)
    assert [int(m.id) for m in received] == [r.id for r in elsewhere]


async def test_a_stream_ends_at_its_maximum_lifetime(database_url: str, tmp_path: Path):
    """So that an expired or revoked token cannot stream for ever: the client reconnects."""
    settings = make_settings(database_url, tmp_path, sse_max_stream_seconds=0.5)
    ctx = AppContext.build(settings)
    try:
        async with (
            serving(create_app(settings, ctx)) as url,
            httpx.AsyncClient(base_url=url, timeout=10) as client,
        ):
            headers, _, _ = await _setup(client)
            async with open_stream(client, headers) as stream:
                notice = await stream.next(3, comments=True)
                assert "re-authenticate" in notice.comments[0]
                with pytest.raises(EOFError):
                    await stream.next(3, comments=True)
            assert ctx.bus.streams() == 0
    finally:
        await ctx.close()

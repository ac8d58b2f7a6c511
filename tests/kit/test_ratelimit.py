"""Rate limits over HTTP: per client address for /auth/*, per verified user elsewhere, shared
through Redis by every app instance.

Limits here are "N/day", not "N/minute": `limits` aligns its sliding-window counters to epoch
multiples of the period, and a request just after a boundary sees the previous window's count
weighted down (3 hits a moment ago count as 2.99, floored to 2), so a per-minute limit would let a
4th request through whenever a test straddles a minute boundary. Per day, that is one moment a day.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jwt
import pytest

from conftest import PASSWORD, make_settings, register_and_login
from tests.kit.helpers import app_client, assert_problem, bearer, count_rows
from worthline.auth.models import AuthSession, User
from worthline.kit.problems import RateLimited

RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")
DAY = 86_400


def quota(response: httpx.Response) -> tuple[int, int, int]:
    return tuple(int(response.headers[h]) for h in RATE_HEADERS)  # type: ignore[return-value]


def assert_rate_limited(response: httpx.Response, settings: Any, limit: int, since: float) -> None:
    body = assert_problem(response, 429, "rate-limited", settings)
    assert str(limit) in body["detail"]
    got_limit, remaining, reset = quota(response)
    assert (got_limit, remaining) == (limit, 0)
    assert reset > since
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= 2 * DAY
    assert reset <= time.time() + 2 * DAY + 1


async def _login(client: httpx.AsyncClient, email: str = "ada@example.com") -> httpx.Response:
    return await client.post("/auth/login", json={"email": email, "password": PASSWORD})


async def _login_headers(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    response = await _login(client, email)
    assert response.status_code == 200
    return bearer(response.json()["access_token"])


async def _seed_user(database_url: str, tmp_path: Any, email: str = "ada@example.com") -> None:
    """Register through an app with no limits, so that the app under test starts at zero."""
    async with app_client(make_settings(database_url, tmp_path, rate_limit_auth="0")) as (c, _):
        response = await c.post("/auth/register", json={"email": email, "password": PASSWORD})
        assert response.status_code == 201


# ---------------------------------------------------------------- /auth/* per client address


async def test_auth_limit_per_client_address(database_url, tmp_path, db):
    await _seed_user(database_url, tmp_path)
    settings = make_settings(database_url, tmp_path, rate_limit_auth="3/day")
    since = time.time()
    async with app_client(settings) as (client, _):
        answers = [await _login(client) for _ in range(3)]
        fourth = await _login(client)
        # Every AUTH route shares the address's quota, whatever the outcome of the call.
        register = await client.post(
            "/auth/register", json={"email": "bob@example.com", "password": PASSWORD}
        )
        refresh = await client.post(
            "/auth/refresh", json={"refresh_token": answers[0].json()["refresh_token"]}
        )
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [quota(a)[:2] for a in answers] == [(3, 2), (3, 1), (3, 0)]
    for answer in answers:
        assert quota(answer)[2] > since
        assert "retry-after" not in answer.headers
    assert_rate_limited(fourth, settings, 3, since)
    assert_rate_limited(register, settings, 3, since)
    assert_rate_limited(refresh, settings, 3, since)
    # Refused calls did nothing: no fourth session, no second user, no rotation.
    assert await count_rows(db, AuthSession) == 3
    assert await count_rows(db, User) == 1


async def test_failed_and_invalid_auth_calls_count_too(database_url, tmp_path, db):
    """Guessing passwords (or sending junk) spends the same quota."""
    await _seed_user(database_url, tmp_path)
    settings = make_settings(database_url, tmp_path, rate_limit_auth="3/day")
    since = time.time()
    async with app_client(settings) as (client, _):
        wrong = await client.post(
            "/auth/login", json={"email": "ada@example.com", "password": "wrong password 1"}
        )
        junk = await client.post("/auth/login", json={"nonsense": True})
        right = await _login(client)
        blocked = await _login(client)
    assert (wrong.status_code, junk.status_code, right.status_code) == (401, 422, 200)
    assert [quota(r)[1] for r in (wrong, junk, right)] == [2, 1, 0]
    assert_rate_limited(blocked, settings, 3, since)


async def test_auth_limit_is_per_client_address(database_url, tmp_path):
    await _seed_user(database_url, tmp_path)
    settings = make_settings(database_url, tmp_path, rate_limit_auth="1/day")
    async with app_client(settings) as (_, app):
        first = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("10.0.0.1", 1234)),
            base_url="http://test/api/v1",
        )
        second = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("10.0.0.2", 1234)),
            base_url="http://test/api/v1",
        )
        async with first, second:
            assert (await _login(first)).status_code == 200
            assert (await _login(first)).status_code == 429
            assert (await _login(second)).status_code == 200
            assert (await _login(second)).status_code == 429


async def test_policy_zero_switches_the_limit_off(database_url, tmp_path):
    settings = make_settings(database_url, tmp_path, rate_limit_auth="0", rate_limit_api_read="0")
    async with app_client(settings) as (client, _):
        tokens = await register_and_login(client)
        answers = [await _login(client) for _ in range(8)]
        reads = [await client.get("/users/me", headers=tokens["headers"]) for _ in range(8)]
    for answer in (*answers, *reads):
        assert answer.status_code == 200
        for header in (*RATE_HEADERS, "retry-after"):
            assert header not in answer.headers


# ---------------------------------------------------------------- per verified user


async def test_api_read_limit_is_per_user(database_url, tmp_path):
    settings = make_settings(database_url, tmp_path, rate_limit_api_read="2/day")
    since = time.time()
    async with app_client(settings) as (client, _):
        ada = await register_and_login(client, "ada@example.com")
        bob = await register_and_login(client, "bob@example.com")
        ada_reads = [await client.get("/users/me", headers=ada["headers"]) for _ in range(2)]
        ada_blocked = await client.get("/auth/tokens", headers=ada["headers"])
        bob_read = await client.get("/users/me", headers=bob["headers"])
        # Writes have their own policy: Ada can still write.
        ada_write = await client.patch(
            "/users/me", json={"base_currency": "EUR"}, headers=ada["headers"]
        )
        # A second session of Ada's shares her quota: the limit is per user, not per token.
        again = await _login_headers(client, "ada@example.com")
        ada_other_session = await client.get("/users/me", headers=again)
    assert [r.status_code for r in ada_reads] == [200, 200]
    assert [quota(r)[:2] for r in ada_reads] == [(2, 1), (2, 0)]
    assert_rate_limited(ada_blocked, settings, 2, since)
    assert bob_read.status_code == 200
    assert quota(bob_read)[:2] == (2, 1)
    assert ada_write.status_code == 200
    assert quota(ada_write)[0] == 10000  # the API_WRITE policy's headers
    assert_rate_limited(ada_other_session, settings, 2, since)


async def test_api_write_limit_is_per_user(database_url, tmp_path, db):
    settings = make_settings(database_url, tmp_path, rate_limit_api_write="1/day")
    since = time.time()
    async with app_client(settings) as (client, _):
        ada = await register_and_login(client, "ada@example.com")
        first = await client.patch(
            "/users/me", json={"base_currency": "EUR"}, headers=ada["headers"]
        )
        second = await client.patch(
            "/users/me", json={"base_currency": "USD"}, headers=ada["headers"]
        )
        me = await client.get("/users/me", headers=ada["headers"])
    assert first.status_code == 200
    assert_rate_limited(second, settings, 1, since)
    assert me.json()["base_currency"] == "EUR"


async def test_personal_tokens_count_against_their_users_quota(database_url, tmp_path):
    settings = make_settings(database_url, tmp_path, rate_limit_api_read="3/day")
    async with app_client(settings) as (client, _):
        ada = await register_and_login(client)
        created = await client.post(
            "/auth/tokens", json={"name": "s", "scopes": ["read"]}, headers=ada["headers"]
        )
        pat = bearer(created.json()["token"])
        answers = [
            await client.get("/users/me", headers=pat),
            await client.get("/users/me", headers=ada["headers"]),
            await client.get("/users/me", headers=pat),
            await client.get("/users/me", headers=ada["headers"]),
        ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]


async def test_unverified_tokens_spend_nobodys_quota(database_url, tmp_path):
    """A forged token naming Ada is refused before it is counted: it cannot exhaust her quota."""
    settings = make_settings(database_url, tmp_path, rate_limit_api_read="2/day")
    async with app_client(settings) as (client, _):
        ada = await register_and_login(client)
        claims = jwt.decode(ada["access_token"], options={"verify_signature": False})
        forged = jwt.encode(claims, "not-the-key-" + "x" * 40, algorithm="HS256")
        refused = [await client.get("/users/me", headers=bearer(forged)) for _ in range(5)]
        real = await client.get("/users/me", headers=ada["headers"])
    assert [r.status_code for r in refused] == [401] * 5
    for response in refused:
        assert "x-ratelimit-remaining" not in response.headers
    assert real.status_code == 200
    assert quota(real)[:2] == (2, 1)


# ---------------------------------------------------------------- shared through Redis


@pytest.mark.redis
async def test_two_app_instances_share_one_quota_through_redis(database_url, tmp_path, redis_url):
    await _seed_user(database_url, tmp_path)
    settings = make_settings(database_url, tmp_path, redis_url=redis_url, rate_limit_auth="3/day")
    since = time.time()
    async with app_client(settings) as (one, app_one), app_client(settings) as (two, app_two):
        assert app_one.state.ctx.limiter is not app_two.state.ctx.limiter
        answers = [await _login(one), await _login(two), await _login(one)]
        blocked_two = await _login(two)
        blocked_one = await _login(one)
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [quota(a)[1] for a in answers] == [2, 1, 0]
    assert_rate_limited(blocked_two, settings, 3, since)
    assert_rate_limited(blocked_one, settings, 3, since)


@pytest.mark.redis
async def test_per_user_quota_is_shared_through_redis(database_url, tmp_path, redis_url):
    settings = make_settings(
        database_url, tmp_path, redis_url=redis_url, rate_limit_api_read="2/day"
    )
    async with app_client(settings) as (one, _), app_client(settings) as (two, _):
        ada = await register_and_login(one)
        first = await one.get("/users/me", headers=ada["headers"])
        second = await two.get("/users/me", headers=ada["headers"])
        third = await one.get("/users/me", headers=ada["headers"])
        bob = await register_and_login(two, "bob@example.com")
        bob_read = await one.get("/users/me", headers=bob["headers"])
    assert [r.status_code for r in (first, second, third)] == [200, 200, 429]
    assert bob_read.status_code == 200


async def test_without_redis_each_instance_counts_alone(database_url, tmp_path):
    """The control for the Redis tests: in-process storage is not shared."""
    await _seed_user(database_url, tmp_path)
    settings = make_settings(database_url, tmp_path, rate_limit_auth="1/day")
    async with app_client(settings) as (one, _), app_client(settings) as (two, _):
        assert (await _login(one)).status_code == 200
        assert (await _login(two)).status_code == 200
        assert (await _login(one)).status_code == 429


@pytest.mark.redis
async def test_limiter_keys_live_in_redis(database_url, tmp_path, redis_url):
    import redis.asyncio as redis

    settings = make_settings(database_url, tmp_path, redis_url=redis_url, rate_limit_auth="5/day")
    async with app_client(settings) as (client, _):
        await _login(client)
    store = redis.Redis.from_url(redis_url)
    try:
        keys = [k.decode() for k in await store.keys("*")]
    finally:
        await store.aclose()
    assert keys
    assert all(k.startswith("worthline-rl") for k in keys)
    assert any("auth" in k and "127.0.0.1" in k for k in keys)


# ---------------------------------------------------------------- the same counts as `limits`


async def _hits_against_limits(limiter: Any, n: int) -> list[tuple[Any, Any]]:
    """Each hit's quota, beside what `limits`' own strategy reads from the same storage."""
    from limits.aio.strategies import SlidingWindowCounterRateLimiter

    from worthline.kit.ratelimit import Policy

    item = limiter._items[Policy.API_READ]
    reference = SlidingWindowCounterRateLimiter(limiter.storage)
    out = []
    for _ in range(n):
        try:
            got = await limiter.hit(Policy.API_READ, "user:u1")
        except RateLimited as exc:
            got = exc
        stats = await reference.get_window_stats(item, "api_read:user:u1")
        out.append((got, stats))
    return out


def _same_reset(ours: float, theirs: float) -> bool:
    """Within a second, modulo a whole window: `limits` computes the reset as a counter's TTL
    modulo the window, which jumps from 0 to a window between two reads a millisecond apart."""
    gap = (ours - theirs) % DAY
    return min(gap, DAY - gap) <= 1


def _check_against_limits(pairs: list[tuple[Any, Any]], limit: int) -> None:
    for n, (got, stats) in enumerate(pairs, start=1):
        if n <= limit:
            assert (got.limit, got.remaining) == (limit, limit - n) == (limit, stats.remaining)
            assert _same_reset(got.reset_at, stats.reset_time)
            assert time.time() < got.reset_at <= time.time() + DAY + 1
        else:
            assert isinstance(got, RateLimited)
            assert got.headers["X-RateLimit-Remaining"] == "0" == str(stats.remaining)
            assert _same_reset(int(got.headers["X-RateLimit-Reset"]), stats.reset_time)


async def test_in_process_counts_are_those_of_limits(tmp_path):
    from worthline.kit.ratelimit import RateLimiter

    settings = make_settings("sqlite+aiosqlite:///unused.db", tmp_path, rate_limit_api_read="3/day")
    _check_against_limits(await _hits_against_limits(RateLimiter(settings), 5), 3)


@asynccontextmanager
async def _redis_limiter(tmp_path: Any, redis_url: str) -> AsyncIterator[tuple[Any, list[Any]]]:
    """A Redis-backed limiter (3 reads a day) and the list of its script calls (each call's
    arguments, the script's sha first); its keys are removed afterwards."""
    from worthline.kit.ratelimit import RateLimiter

    settings = make_settings(
        "sqlite+aiosqlite:///unused.db", tmp_path, redis_url=redis_url, rate_limit_api_read="3/day"
    )
    limiter = RateLimiter(settings)
    client = limiter.storage.bridge.get_connection()
    calls: list[Any] = []
    original = client.evalsha

    async def counted(*args: Any) -> Any:
        calls.append(args)
        return await original(*args)

    client.evalsha = counted
    try:
        yield limiter, calls
    finally:
        client.evalsha = original
        await limiter.storage.reset()
        await client.aclose()


@pytest.mark.redis
async def test_redis_counts_in_one_round_trip_are_those_of_limits(tmp_path, redis_url):
    """One script call per hit; what it counts and reads is what `limits` counts and reads."""
    async with _redis_limiter(tmp_path, redis_url) as (limiter, calls):
        pairs = await _hits_against_limits(limiter, 5)
    _check_against_limits(pairs, 3)
    # Our hits: one script each (limits' get_window_stats reads its own script on top).
    assert sum(1 for c in calls if c[0] == limiter._redis_hit.sha) == 5


@pytest.mark.redis
async def test_redis_hits_of_one_turn_share_a_call_and_each_counts(tmp_path, redis_url):
    """Concurrent hits go in one script call (kit.coalesce) and are counted one by one, in
    the order they were made, across users: nobody's hit is lost or counted twice."""
    from worthline.kit.ratelimit import Policy

    identities = ["user:u1"] * 5 + ["user:u2"] * 2
    async with _redis_limiter(tmp_path, redis_url) as (limiter, calls):
        outcomes = await asyncio.gather(
            *(limiter.hit(Policy.API_READ, who) for who in identities), return_exceptions=True
        )
        after = await limiter.hit(Policy.API_READ, "user:u2")
    ours = [c for c in calls if c[0] == limiter._redis_hit.sha]
    assert len(ours) == 2  # the seven hits of one turn, then the last one
    assert [getattr(o, "remaining", None) for o in outcomes] == [2, 1, 0, None, None, 2, 1]
    assert all(isinstance(o, RateLimited) for o in outcomes[3:5])
    assert after is not None and after.remaining == 0

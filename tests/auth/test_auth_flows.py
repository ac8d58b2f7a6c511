"""Register, login, refresh rotation, logout and the caller's profile, over HTTP on both engines."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from datetime import datetime

import pytest
from sqlalchemy import select

from conftest import PASSWORD, register_and_login
from tests.kit.helpers import (
    assert_problem,
    assert_unauthorized,
    bearer,
    count_rows,
    error_locs,
)
from worthline.auth.models import AuthSession, RefreshToken, User
from worthline.kit.security import REFRESH_PREFIX

# ---------------------------------------------------------------- register


async def test_register_answers_201_with_the_user(client, db):
    response = await client.post(
        "/auth/register",
        json={"email": "Ada.Lovelace@Example.COM", "password": PASSWORD, "base_currency": "EUR"},
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"id", "email", "base_currency", "created_at"}
    assert body["email"] == "ada.lovelace@example.com"
    assert body["base_currency"] == "EUR"
    assert body["created_at"].endswith("Z")
    datetime.fromisoformat(body["created_at"])
    async with db.read_session() as session:
        user = await session.scalar(select(User))
    assert user is not None
    assert user.id == uuid.UUID(body["id"])
    assert user.email == "ada.lovelace@example.com"
    assert user.base_currency == "EUR"
    # Only an argon2id hash is kept, never the password.
    assert user.password_hash.startswith("$argon2id$")
    assert PASSWORD not in user.password_hash


async def test_register_defaults_base_currency_to_gbp(client):
    response = await client.post(
        "/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert response.status_code == 201
    assert response.json()["base_currency"] == "GBP"


@pytest.mark.parametrize("second", ["ada@example.com", "ADA@EXAMPLE.COM", "Ada@Example.com"])
async def test_register_twice_is_409_whatever_the_case(client, db, settings, second):
    first = await client.post(
        "/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert first.status_code == 201
    response = await client.post(
        "/auth/register", json={"email": second, "password": "another strong passphrase"}
    )
    assert_problem(response, 409, "email-taken", settings)
    assert await count_rows(db, User) == 1
    # The first registration's password still works; the second did not overwrite it.
    login = await client.post(
        "/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("", id="empty"),
        pytest.param("Sh0rt!pw", id="too-short"),
        pytest.param("aaaaaaaaaaaaaaaa", id="one-character"),
        pytest.param("abababababab", id="few-distinct-characters"),
        pytest.param("password123", id="common"),
        pytest.param("Password123!", id="common-with-suffix"),
        pytest.param("qwertyuiop", id="common-keyboard"),
        pytest.param(" " + PASSWORD, id="leading-space"),
        pytest.param(PASSWORD + " ", id="trailing-space"),
        pytest.param("\t" + PASSWORD + "\n", id="padded-whitespace"),
        pytest.param("x" * 129 + "yz123", id="too-long"),
    ],
)
async def test_register_refuses_weak_passwords(client, db, settings, password):
    response = await client.post(
        "/auth/register", json={"email": "ada@example.com", "password": password}
    )
    body = assert_problem(response, 422, "validation-error", settings)
    assert error_locs(body) == [["body", "password"]]
    assert all(error["msg"] for error in body["errors"])
    assert await count_rows(db, User) == 0


@pytest.mark.parametrize(
    "email", ["not-an-email", "ada@", "@example.com", "ada@example", "", "a" * 310 + "@example.com"]
)
async def test_register_refuses_bad_emails(client, db, settings, email):
    response = await client.post("/auth/register", json={"email": email, "password": PASSWORD})
    body = assert_problem(response, 422, "validation-error", settings)
    assert ["body", "email"] in error_locs(body)
    assert await count_rows(db, User) == 0


@pytest.mark.parametrize("currency", ["gbp", "XYZ", "GB", "GBPP", "", "XAU", "XXX"])
async def test_register_refuses_bad_base_currency(client, db, settings, currency):
    response = await client.post(
        "/auth/register",
        json={"email": "ada@example.com", "password": PASSWORD, "base_currency": currency},
    )
    body = assert_problem(response, 422, "validation-error", settings)
    assert error_locs(body) == [["body", "base_currency"]]
    assert await count_rows(db, User) == 0


async def test_register_refuses_unknown_fields(client, db, settings):
    response = await client.post(
        "/auth/register",
        json={"email": "ada@example.com", "password": PASSWORD, "is_admin": True},
    )
    body = assert_problem(response, 422, "validation-error", settings)
    assert error_locs(body) == [["body", "is_admin"]]
    assert body["errors"][0]["type"] == "extra_forbidden"
    assert await count_rows(db, User) == 0


@pytest.mark.parametrize(
    "raw",
    [
        b'{"email": "ada@example.com", "password": ',
        b"{'email': 'ada@example.com'}",
        b"nonsense",
        b'{"email": "\xff\xfe"}',  # not UTF-8: the same kind of problem, not a generic 400
        b"[" * 100_000,  # nested past the JSON parser's depth
    ],
)
async def test_register_malformed_json_is_400(client, db, settings, raw):
    response = await client.post(
        "/auth/register", content=raw, headers={"Content-Type": "application/json"}
    )
    body = assert_problem(response, 400, "malformed-body", settings)
    assert "errors" not in body
    assert await count_rows(db, User) == 0


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        ({"email": 12345, "password": PASSWORD}, ["body", "email"]),
        ({"email": "ada@example.com", "password": 1234567890123}, ["body", "password"]),
        ({"email": ["ada@example.com"], "password": PASSWORD}, ["body", "email"]),
        (
            {"email": "ada@example.com", "password": PASSWORD, "base_currency": 826},
            ["body", "base_currency"],
        ),
        ({"email": "ada@example.com"}, ["body", "password"]),
        ([{"email": "ada@example.com", "password": PASSWORD}], ["body"]),
        (None, ["body"]),
        ("ada@example.com", ["body"]),
    ],
)
async def test_register_wrong_json_types_are_422(client, db, settings, payload, loc):
    response = await client.post(
        "/auth/register",
        content=json.dumps(payload),
        headers={"Content-Type": "application/json"},
    )
    body = assert_problem(response, 422, "validation-error", settings)
    assert loc in error_locs(body)
    assert await count_rows(db, User) == 0


async def test_register_without_a_body_is_422(client, db, settings):
    response = await client.post("/auth/register")
    body = assert_problem(response, 422, "validation-error", settings)
    assert error_locs(body) == [["body"]]
    assert await count_rows(db, User) == 0


# ---------------------------------------------------------------- login


async def test_login_answers_a_token_pair(client, settings, db):
    await client.post("/auth/register", json={"email": "ada@example.com", "password": PASSWORD})
    response = await client.post(
        "/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == settings.access_token_ttl_seconds
    assert body["refresh_token"].startswith(REFRESH_PREFIX)
    assert body["access_token"].count(".") == 2
    # The refresh token is stored only as its SHA-256 digest.
    async with db.read_session() as session:
        stored = list(await session.scalars(select(RefreshToken)))
    assert len(stored) == 1
    assert stored[0].token_digest == hashlib.sha256(body["refresh_token"].encode()).digest()
    assert await count_rows(db, AuthSession) == 1


async def test_login_email_is_case_insensitive(client):
    await client.post("/auth/register", json={"email": "ada@example.com", "password": PASSWORD})
    response = await client.post(
        "/auth/login", json={"email": "ADA@Example.com", "password": PASSWORD}
    )
    assert response.status_code == 200


async def test_login_failures_are_indistinguishable(client, db, settings):
    await client.post("/auth/register", json={"email": "ada@example.com", "password": PASSWORD})
    unknown = await client.post(
        "/auth/login", json={"email": "nobody@example.com", "password": PASSWORD}
    )
    wrong = await client.post(
        "/auth/login", json={"email": "ada@example.com", "password": PASSWORD + "!"}
    )
    first = assert_unauthorized(unknown, settings, "invalid-credentials")
    second = assert_unauthorized(wrong, settings, "invalid-credentials")
    assert first["trace_id"] != second["trace_id"]
    assert {**first, "trace_id": None} == {**second, "trace_id": None}
    assert unknown.headers["www-authenticate"] == wrong.headers["www-authenticate"]
    # A failed login opens no session.
    assert await count_rows(db, AuthSession) == 0
    assert await count_rows(db, RefreshToken) == 0


async def test_login_refuses_wrong_case_password(client, settings):
    await client.post("/auth/register", json={"email": "ada@example.com", "password": PASSWORD})
    response = await client.post(
        "/auth/login", json={"email": "ada@example.com", "password": PASSWORD.upper()}
    )
    assert_unauthorized(response, settings, "invalid-credentials")


async def test_login_unknown_fields_are_422(client, settings):
    response = await client.post(
        "/auth/login", json={"email": "ada@example.com", "password": PASSWORD, "otp": "1"}
    )
    body = assert_problem(response, 422, "validation-error", settings)
    assert error_locs(body) == [["body", "otp"]]


# ---------------------------------------------------------------- refresh


async def test_refresh_rotates_the_pair(client, settings, db):
    tokens = await register_and_login(client)
    response = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 200, response.text
    pair = response.json()
    assert pair["token_type"] == "bearer"
    assert pair["expires_in"] == settings.access_token_ttl_seconds
    assert pair["refresh_token"].startswith(REFRESH_PREFIX)
    assert pair["refresh_token"] != tokens["refresh_token"]
    me = await client.get("/users/me", headers=bearer(pair["access_token"]))
    assert me.status_code == 200
    # Rotation stays within the login's session: one session, two refresh tokens.
    assert await count_rows(db, AuthSession) == 1
    async with db.read_session() as session:
        rows = {r.token_digest: r for r in await session.scalars(select(RefreshToken))}
    old = rows[hashlib.sha256(tokens["refresh_token"].encode()).digest()]
    new = rows[hashlib.sha256(pair["refresh_token"].encode()).digest()]
    assert old.rotated_at is not None
    assert new.rotated_at is None
    assert old.session_id == new.session_id


async def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(client, settings, db):
    tokens = await register_and_login(client)
    rotated = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert rotated.status_code == 200
    pair = rotated.json()
    # A second, independent login must survive the revocation of the first family.
    other = await client.post(
        "/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
    )
    other_pair = other.json()

    reused = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_unauthorized(reused, settings, "refresh-token-reused")

    # The revocation was committed although that request failed: the family's newest refresh
    # token and every access token of the family stop working.
    descendant = await client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert_unauthorized(descendant, settings, "invalid-refresh-token")
    for access in (tokens["access_token"], pair["access_token"]):
        me = await client.get("/users/me", headers=bearer(access))
        assert_unauthorized(me, settings)

    async with db.read_session() as session:
        sessions = {s.id: s for s in await session.scalars(select(AuthSession))}
    assert len(sessions) == 2
    revoked = [s for s in sessions.values() if s.revoked_at is not None]
    assert len(revoked) == 1
    assert revoked[0].revoked_reason == "refresh-token-reuse"

    # The other login is untouched.
    me = await client.get("/users/me", headers=bearer(other_pair["access_token"]))
    assert me.status_code == 200
    assert (
        await client.post("/auth/refresh", json={"refresh_token": other_pair["refresh_token"]})
    ).status_code == 200


@pytest.mark.parametrize(
    "token", ["wl_rt_doesnotexist", "garbage", "x" * 200, REFRESH_PREFIX + "A" * 43]
)
async def test_refresh_with_an_unknown_token_is_401(client, settings, db, token):
    await register_and_login(client)
    response = await client.post("/auth/refresh", json={"refresh_token": token})
    assert_unauthorized(response, settings, "invalid-refresh-token")
    assert await count_rows(db, RefreshToken) == 1


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        ({}, ["body", "refresh_token"]),
        ({"refresh_token": ""}, ["body", "refresh_token"]),
        ({"refresh_token": "x" * 201}, ["body", "refresh_token"]),
        ({"refresh_token": 42}, ["body", "refresh_token"]),
    ],
)
async def test_refresh_validation(client, settings, payload, loc):
    response = await client.post("/auth/refresh", json=payload)
    body = assert_problem(response, 422, "validation-error", settings)
    assert error_locs(body) == [loc]


async def test_expired_refresh_token_is_refused_and_not_consumed(client, settings, db):
    tokens = await register_and_login(client)
    async with db.write_session() as session:
        row = await session.scalar(select(RefreshToken))
        assert row is not None
        row.expires_at = row.issued_at
        await session.commit()
    response = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_unauthorized(response, settings, "invalid-refresh-token")
    async with db.read_session() as session:
        row = await session.scalar(select(RefreshToken))
    assert row is not None
    assert row.rotated_at is None
    assert await count_rows(db, RefreshToken) == 1


# ---------------------------------------------------------------- logout


async def test_logout_revokes_the_session(client, settings, db):
    tokens = await register_and_login(client)
    response = await client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 204
    assert response.content == b""
    assert "x-trace-id" in response.headers

    refresh = await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_unauthorized(refresh, settings, "invalid-refresh-token")
    me = await client.get("/users/me", headers=tokens["headers"])
    assert_unauthorized(me, settings)

    async with db.read_session() as session:
        auth_session = await session.scalar(select(AuthSession))
    assert auth_session is not None
    assert auth_session.revoked_at is not None
    assert auth_session.revoked_reason == "logout"


async def test_logout_after_refresh_ends_the_rotated_tokens_too(client, settings):
    tokens = await register_and_login(client)
    pair = (
        await client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    ).json()
    # Logging out with the (already rotated) first token still ends the whole family.
    response = await client.post("/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert response.status_code == 204
    me = await client.get("/users/me", headers=bearer(pair["access_token"]))
    assert_unauthorized(me, settings)
    refresh = await client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert_unauthorized(refresh, settings, "invalid-refresh-token")


async def test_logout_with_an_unknown_token_is_401(client, settings, db):
    tokens = await register_and_login(client)
    response = await client.post("/auth/logout", json={"refresh_token": "wl_rt_unknown"})
    assert_unauthorized(response, settings, "invalid-refresh-token")
    assert (await client.get("/users/me", headers=tokens["headers"])).status_code == 200
    async with db.read_session() as session:
        auth_session = await session.scalar(select(AuthSession))
    assert auth_session is not None
    assert auth_session.revoked_at is None


# ---------------------------------------------------------------- /users/me


async def test_me_answers_the_profile(client, auth):
    response = await client.get("/users/me", headers=auth["headers"])
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "email", "base_currency", "created_at"}
    assert body["email"] == "ada@example.com"
    assert body["base_currency"] == "GBP"


async def test_me_needs_a_token(client, settings):
    response = await client.get("/users/me")
    assert_unauthorized(response, settings)


async def test_patch_me_changes_the_base_currency(client, auth, db):
    response = await client.patch(
        "/users/me", json={"base_currency": "JPY"}, headers=auth["headers"]
    )
    assert response.status_code == 200, response.text
    assert response.json()["base_currency"] == "JPY"
    again = await client.get("/users/me", headers=auth["headers"])
    assert again.json()["base_currency"] == "JPY"
    async with db.read_session() as session:
        user = await session.scalar(select(User))
    assert user is not None
    assert user.base_currency == "JPY"


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        ({"base_currency": "eur"}, ["body", "base_currency"]),
        ({"base_currency": "XYZ"}, ["body", "base_currency"]),
        ({"base_currency": None}, ["body", "base_currency"]),
        ({}, ["body", "base_currency"]),
        ({"base_currency": "EUR", "email": "eve@example.com"}, ["body", "email"]),
    ],
)
async def test_patch_me_refuses_bad_input(client, auth, db, settings, payload, loc):
    response = await client.patch("/users/me", json=payload, headers=auth["headers"])
    body = assert_problem(response, 422, "validation-error", settings)
    assert error_locs(body) == [loc]
    async with db.read_session() as session:
        user = await session.scalar(select(User))
    assert user is not None
    assert (user.email, user.base_currency) == ("ada@example.com", "GBP")


async def test_patch_me_with_a_read_only_token_is_403(client, auth, db, settings):
    created = await client.post(
        "/auth/tokens", json={"name": "reader", "scopes": ["read"]}, headers=auth["headers"]
    )
    assert created.status_code == 201
    read_only = bearer(created.json()["token"])
    response = await client.patch("/users/me", json={"base_currency": "EUR"}, headers=read_only)
    assert_problem(response, 403, "insufficient-scope", settings)
    async with db.read_session() as session:
        user = await session.scalar(select(User))
    assert user is not None
    assert user.base_currency == "GBP"
    # The same token can still read.
    assert (await client.get("/users/me", headers=read_only)).status_code == 200


async def test_users_only_see_themselves(client):
    ada = await register_and_login(client, "ada@example.com")
    bob = await register_and_login(client, "bob@example.com")
    me_ada = (await client.get("/users/me", headers=ada["headers"])).json()
    me_bob = (await client.get("/users/me", headers=bob["headers"])).json()
    assert me_ada["email"] == "ada@example.com"
    assert me_bob["email"] == "bob@example.com"
    await client.patch("/users/me", json={"base_currency": "USD"}, headers=bob["headers"])
    assert (await client.get("/users/me", headers=ada["headers"])).json()["base_currency"] == "GBP"


# ---------------------------------------------------------------- concurrency


async def test_concurrent_registrations_of_one_email_make_one_user(client, db, settings):
    emails = ["ada@example.com", "ADA@example.com", "Ada@Example.com", "ada@EXAMPLE.com"]
    responses = await asyncio.gather(
        *(client.post("/auth/register", json={"email": e, "password": PASSWORD}) for e in emails)
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201, 409, 409, 409]
    for response in responses:
        if response.status_code == 409:
            assert_problem(response, 409, "email-taken", settings)
    assert await count_rows(db, User) == 1


async def test_concurrent_refreshes_of_one_token_rotate_it_once(client, db, settings):
    """Two clients racing with one refresh token: exactly one rotation wins; the loser is a
    reuse, so the whole family (including the winner's new tokens) ends."""
    tokens = await register_and_login(client)
    responses = await asyncio.gather(
        *(
            client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
            for _ in range(2)
        )
    )
    winners = [r for r in responses if r.status_code == 200]
    losers = [r for r in responses if r.status_code != 200]
    assert len(winners) == 1, [r.text for r in responses]
    assert len(losers) == 1
    assert_unauthorized(losers[0], settings, "refresh-token-reused")
    pair = winners[0].json()
    assert_unauthorized(
        await client.get("/users/me", headers=bearer(pair["access_token"])), settings
    )
    again = await client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert_unauthorized(again, settings, "invalid-refresh-token")
    async with db.read_session() as session:
        rows = list(await session.scalars(select(RefreshToken)))
    assert len(rows) == 2  # the original and the winner's; the loser issued nothing

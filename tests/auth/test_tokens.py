"""Access tokens (JWT) that were tampered with, and personal access tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
import warnings
from datetime import datetime, timedelta
from typing import Any

import jwt
import pytest
from sqlalchemy import delete, select, update

from conftest import register_and_login
from tests.kit.helpers import (
    assert_problem,
    assert_unauthorized,
    bearer,
    count_rows,
    error_locs,
)
from worthline.auth.models import AuthSession, PersonalToken, RefreshToken, User
from worthline.kit.db import Base, utcnow
from worthline.kit.security import PERSONAL_PREFIX, AccessClaims, AccessTokens, InvalidToken

# ---------------------------------------------------------------- forging access tokens


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _claims(access_token: str) -> dict[str, Any]:
    return jwt.decode(access_token, options={"verify_signature": False})


def _now() -> int:
    return int(utcnow().timestamp())


def _payload(auth: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A fresh, valid payload for the logged-in user's session; `None` drops a claim."""
    real = _claims(auth["access_token"])
    now = _now()
    payload = {
        "iss": real["iss"],
        "aud": real["aud"],
        "sub": real["sub"],
        "sid": real["sid"],
        "scope": real["scope"],
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }
    payload.update(changes)
    return {k: v for k, v in payload.items() if v is not None}


def _sign(payload: dict[str, Any], key: str, algorithm: str = "HS256") -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyJWT warns that the test key is short for HS512
        return jwt.encode(payload, key, algorithm=algorithm)


def _hand_made(header: dict[str, Any], payload: dict[str, Any], key: str | None) -> str:
    """A JWT built by hand, for headers PyJWT will not write; HMAC-SHA256 over it if `key`."""
    signing_input = _b64(json.dumps(header).encode()) + b"." + _b64(json.dumps(payload).encode())
    signature = _b64(hmac.new(key.encode(), signing_input, hashlib.sha256).digest()) if key else b""
    return (signing_input + b"." + signature).decode()


async def test_a_correctly_forged_token_is_accepted(client, auth, settings):
    """The control for every refusal below: the same construction with nothing wrong works."""
    token = _sign(_payload(auth), settings.jwt_signing_key)
    response = await client.get("/users/me", headers=bearer(token))
    assert response.status_code == 200, response.text
    by_hand = _hand_made({"alg": "HS256", "typ": "JWT"}, _payload(auth), settings.jwt_signing_key)
    assert (await client.get("/users/me", headers=bearer(by_hand))).status_code == 200


TAMPERED = {
    "alg-none": lambda auth, key: _sign(_payload(auth), None, "none"),  # type: ignore[arg-type]
    "alg-none-by-hand": lambda auth, key: _hand_made({"alg": "none"}, _payload(auth), None),
    "alg-None-capitalised": lambda auth, key: _hand_made({"alg": "None"}, _payload(auth), None),
    "wrong-key": lambda auth, key: _sign(_payload(auth), "another-key-" + key),
    "signature-stripped": lambda auth, key: auth["access_token"].rsplit(".", 1)[0] + ".",
    "payload-swapped": lambda auth, key: ".".join(
        [
            auth["access_token"].split(".")[0],
            _b64(json.dumps(_payload(auth, scope="read write admin")).encode()).decode(),
            auth["access_token"].split(".")[2],
        ]
    ),
    "hs512-same-key": lambda auth, key: _sign(_payload(auth), key, "HS512"),
    "hs384-same-key": lambda auth, key: _sign(_payload(auth), key, "HS384"),
    "rs256-header-hmac-signature": lambda auth, key: _hand_made(
        {"alg": "RS256", "typ": "JWT"}, _payload(auth), key
    ),
    "expired": lambda auth, key: _sign(
        _payload(auth, iat=_now() - 3600, nbf=_now() - 3600, exp=_now() - 60), key
    ),
    "not-yet-valid": lambda auth, key: _sign(
        _payload(auth, nbf=_now() + 3600, exp=_now() + 7200), key
    ),
    "wrong-audience": lambda auth, key: _sign(_payload(auth, aud="some-other-api"), key),
    "no-audience": lambda auth, key: _sign(_payload(auth, aud=None), key),
    "wrong-issuer": lambda auth, key: _sign(_payload(auth, iss="someone-else"), key),
    "no-issuer": lambda auth, key: _sign(_payload(auth, iss=None), key),
    "no-sid": lambda auth, key: _sign(_payload(auth, sid=None), key),
    "no-sub": lambda auth, key: _sign(_payload(auth, sub=None), key),
    "no-exp": lambda auth, key: _sign(_payload(auth, exp=None), key),
    "no-iat": lambda auth, key: _sign(_payload(auth, iat=None), key),
    "sid-not-a-uuid": lambda auth, key: _sign(_payload(auth, sid="session-1"), key),
    "sub-not-a-uuid": lambda auth, key: _sign(_payload(auth, sub="ada"), key),
    "sub-a-number": lambda auth, key: _sign(_payload(auth, sub=1), key),
    "unknown-session": lambda auth, key: _sign(_payload(auth, sid=str(uuid.uuid4())), key),
    "unknown-user": lambda auth, key: _sign(_payload(auth, sub=str(uuid.uuid4())), key),
    "garbage": lambda auth, key: "garbage",
    "three-dots": lambda auth, key: "a.b.c",
    "truncated": lambda auth, key: auth["access_token"][:-10],
    "unknown-personal-token": lambda auth, key: PERSONAL_PREFIX + "x" * 43,
}


@pytest.mark.parametrize("kind", list(TAMPERED))
async def test_tampered_access_tokens_are_401(client, auth, settings, kind):
    token = TAMPERED[kind](auth, settings.jwt_signing_key)
    response = await client.get("/users/me", headers=bearer(token))
    assert_unauthorized(response, settings)
    # The same refusal on a write.
    response = await client.patch("/users/me", json={"base_currency": "EUR"}, headers=bearer(token))
    assert_unauthorized(response, settings)


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic YWRhOnBhc3N3b3Jk", "Token abc", "bearer"],
)
async def test_missing_or_malformed_authorization_is_401(client, settings, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = await client.get("/users/me", headers=headers)
    assert_unauthorized(response, settings)


async def test_bearer_scheme_is_case_insensitive(client, auth):
    response = await client.get(
        "/users/me", headers={"Authorization": "bearer " + auth["access_token"]}
    )
    assert response.status_code == 200


async def test_expired_token_issued_by_the_service(client, auth, ctx, settings):
    claims = _claims(auth["access_token"])
    access = AccessClaims(uuid.UUID(claims["sub"]), uuid.UUID(claims["sid"]), frozenset({"read"}))
    fresh = ctx.access_tokens.issue(access, utcnow())
    assert (await client.get("/users/me", headers=bearer(fresh))).status_code == 200
    stale = ctx.access_tokens.issue(access, utcnow() - 2 * ctx.access_tokens.ttl)
    assert_unauthorized(await client.get("/users/me", headers=bearer(stale)), settings)


KEY = "test-signing-key-" + "k" * 40


def test_a_remembered_token_still_expires_on_time():
    """Verified tokens are remembered (no second parse and HMAC), but each use re-checks the
    time claims: the token stops working the second its `exp` passes, as with PyJWT."""
    tokens = AccessTokens(KEY, "worthline", timedelta(seconds=2))
    access = AccessClaims(uuid.uuid4(), uuid.uuid4(), frozenset({"read"}))
    token = tokens.issue(access, utcnow())
    exp = _claims(token)["exp"]
    assert tokens.verify(token) == access
    assert tokens.verify(token) == access  # remembered
    time.sleep(max(0.0, exp - time.time()) + 0.05)
    with pytest.raises(InvalidToken):
        tokens.verify(token)
    with pytest.raises(InvalidToken):
        tokens.verify(token)


def test_a_token_not_yet_valid_is_not_remembered_as_valid():
    tokens = AccessTokens(KEY, "worthline", timedelta(minutes=5))
    access = AccessClaims(uuid.uuid4(), uuid.uuid4(), frozenset({"read"}))
    future = tokens.issue(access, utcnow() + timedelta(minutes=1))
    for _ in range(2):
        with pytest.raises(InvalidToken):
            tokens.verify(future)
    other = AccessTokens("another-key-" + "k" * 40, "worthline", timedelta(minutes=5))
    valid = tokens.issue(access, utcnow())
    assert tokens.verify(valid) == access
    with pytest.raises(InvalidToken):
        other.verify(valid)  # what one key remembers is not another's


async def test_a_session_of_another_user_is_not_accepted(client, auth, settings):
    bob = await register_and_login(client, "bob@example.com")
    token = _sign(_payload(auth, sid=_claims(bob["access_token"])["sid"]), settings.jwt_signing_key)
    assert_unauthorized(await client.get("/users/me", headers=bearer(token)), settings)


async def test_a_deleted_session_ends_its_access_tokens(client, auth, db, settings):
    async with db.write_session() as session:
        await session.execute(delete(AuthSession))
        await session.commit()
    assert await count_rows(db, RefreshToken) == 0  # cascaded
    assert_unauthorized(await client.get("/users/me", headers=auth["headers"]), settings)


async def test_a_deleted_user_ends_its_access_tokens(client, auth, db, settings):
    async with db.write_session() as session:
        await session.execute(delete(User))
        await session.commit()
    assert_unauthorized(await client.get("/users/me", headers=auth["headers"]), settings)


async def test_a_read_scoped_access_token_cannot_write(client, auth, settings, db):
    token = _sign(_payload(auth, scope="read"), settings.jwt_signing_key)
    assert (await client.get("/users/me", headers=bearer(token))).status_code == 200
    response = await client.patch("/users/me", json={"base_currency": "EUR"}, headers=bearer(token))
    assert_problem(response, 403, "insufficient-scope", settings)
    async with db.read_session() as session:
        assert await session.scalar(select(User.base_currency)) == "GBP"


# ---------------------------------------------------------------- personal access tokens


async def _create_pat(client, auth, **body: Any) -> dict[str, Any]:
    payload = {"name": "script", "scopes": ["read", "write"], **body}
    response = await client.post("/auth/tokens", json=payload, headers=auth["headers"])
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_personal_token(client, auth, db):
    created = await _create_pat(client, auth, name="ci", scopes=["write", "read"])
    assert set(created) == {"id", "name", "scopes", "created_at", "expires_at", "token"}
    assert created["name"] == "ci"
    assert created["scopes"] == ["read", "write"]
    assert created["expires_at"] is None
    assert created["created_at"].endswith("Z")
    assert created["token"].startswith(PERSONAL_PREFIX)
    assert len(created["token"]) >= len(PERSONAL_PREFIX) + 43  # 256 bits, base64url
    async with db.read_session() as session:
        row = await session.scalar(select(PersonalToken))
    assert row is not None
    assert row.id == uuid.UUID(created["id"])
    assert row.scopes == "read write"


async def test_personal_token_with_an_expiry(client, auth):
    created = await _create_pat(client, auth, expires_in_days=30)
    created_at = datetime.fromisoformat(created["created_at"])
    expires_at = datetime.fromisoformat(created["expires_at"])
    assert expires_at - created_at == timedelta(days=30)
    assert (await client.get("/users/me", headers=bearer(created["token"]))).status_code == 200


async def test_personal_tokens_are_stored_as_sha256_digests_only(client, auth, db):
    created = await _create_pat(client, auth)
    secret = created["token"]
    async with db.read_session() as session:
        row = await session.scalar(select(PersonalToken))
        assert row is not None
        assert row.token_digest == hashlib.sha256(secret.encode()).digest()
        # No column of any table holds the secret (or its random part) in any form.
        needles = (secret, secret.removeprefix(PERSONAL_PREFIX))
        for table in Base.metadata.sorted_tables:
            for record in (await session.execute(select(table))).all():
                for value in record:
                    text = value.hex() if isinstance(value, bytes) else str(value)
                    raw = value if isinstance(value, bytes) else text.encode()
                    for needle in needles:
                        assert needle not in text, (table.name, value)
                        assert needle.encode() not in raw, (table.name, value)


async def test_list_never_shows_secrets(client, auth):
    first = await _create_pat(client, auth, name="first", scopes=["read"])
    second = await _create_pat(client, auth, name="second")
    response = await client.get("/auth/tokens", headers=auth["headers"])
    assert response.status_code == 200
    body = response.json()
    assert body["total_count"] == 2
    assert [t["name"] for t in body["tokens"]] == ["first", "second"]
    assert [t["id"] for t in body["tokens"]] == [first["id"], second["id"]]
    for token in body["tokens"]:
        assert set(token) == {"id", "name", "scopes", "created_at", "expires_at"}
    assert body["tokens"][0]["scopes"] == ["read"]
    assert first["token"] not in response.text
    assert second["token"] not in response.text
    assert first["token"].removeprefix(PERSONAL_PREFIX) not in response.text


async def test_personal_token_is_a_bearer_token(client, auth, db):
    created = await _create_pat(client, auth)
    headers = bearer(created["token"])
    me = await client.get("/users/me", headers=headers)
    assert me.status_code == 200
    assert me.json()["email"] == "ada@example.com"
    patched = await client.patch("/users/me", json={"base_currency": "CHF"}, headers=headers)
    assert patched.status_code == 200
    async with db.read_session() as session:
        assert await session.scalar(select(User.base_currency)) == "CHF"


async def test_read_only_personal_token_reads_but_cannot_write(client, auth, db, settings):
    created = await _create_pat(client, auth, scopes=["read"])
    headers = bearer(created["token"])
    assert (await client.get("/users/me", headers=headers)).status_code == 200
    patch = await client.patch("/users/me", json={"base_currency": "EUR"}, headers=headers)
    assert_problem(patch, 403, "insufficient-scope", settings)
    post = await client.post(
        "/auth/tokens", json={"name": "x", "scopes": ["read"]}, headers=headers
    )
    assert_problem(post, 403, "insufficient-scope", settings)
    delete_ = await client.delete(f"/auth/tokens/{created['id']}", headers=headers)
    assert_problem(delete_, 403, "insufficient-scope", settings)
    assert await count_rows(db, PersonalToken) == 1
    async with db.read_session() as session:
        row = await session.scalar(select(PersonalToken))
        assert row is not None
        assert row.revoked_at is None
        assert await session.scalar(select(User.base_currency)) == "GBP"


async def test_revoked_personal_token_is_401(client, auth, db, settings):
    created = await _create_pat(client, auth)
    headers = bearer(created["token"])
    assert (await client.get("/users/me", headers=headers)).status_code == 200
    revoked = await client.delete(f"/auth/tokens/{created['id']}", headers=auth["headers"])
    assert revoked.status_code == 204
    assert revoked.content == b""
    assert_unauthorized(await client.get("/users/me", headers=headers), settings)
    listed = await client.get("/auth/tokens", headers=auth["headers"])
    assert listed.json() == {"tokens": [], "total_count": 0}
    again = await client.delete(f"/auth/tokens/{created['id']}", headers=auth["headers"])
    assert_problem(again, 404, "not-found", settings)
    async with db.read_session() as session:
        row = await session.scalar(select(PersonalToken))
    assert row is not None
    assert row.revoked_at is not None


async def test_expired_personal_token_is_401(client, auth, db, settings):
    created = await _create_pat(client, auth, expires_in_days=1)
    headers = bearer(created["token"])
    assert (await client.get("/users/me", headers=headers)).status_code == 200
    async with db.write_session() as session:
        await session.execute(
            update(PersonalToken).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    assert_unauthorized(await client.get("/users/me", headers=headers), settings)


async def test_expired_personal_tokens_are_not_listed(client, auth, db):
    """The list is of active tokens: an expired one (401 as a Bearer) is left out, count too."""
    expiring = await _create_pat(client, auth, name="expiring", expires_in_days=1)
    lasting = await _create_pat(client, auth, name="lasting", expires_in_days=30)
    forever = await _create_pat(client, auth, name="forever")
    async with db.write_session() as session:
        await session.execute(
            update(PersonalToken)
            .where(PersonalToken.id == uuid.UUID(expiring["id"]))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    body = (await client.get("/auth/tokens", headers=auth["headers"])).json()
    assert [t["id"] for t in body["tokens"]] == [lasting["id"], forever["id"]]
    assert body["total_count"] == 2


async def test_personal_token_of_a_deleted_user_is_401(client, auth, db, settings):
    created = await _create_pat(client, auth)
    async with db.write_session() as session:
        await session.execute(delete(User))
        await session.commit()
    assert await count_rows(db, PersonalToken) == 0  # cascaded
    assert_unauthorized(await client.get("/users/me", headers=bearer(created["token"])), settings)


async def test_another_users_token_cannot_be_revoked(client, auth, db, settings):
    ada_token = await _create_pat(client, auth)
    bob = await register_and_login(client, "bob@example.com")
    response = await client.delete(f"/auth/tokens/{ada_token['id']}", headers=bob["headers"])
    body = assert_problem(response, 404, "not-found", settings)
    # Exactly the answer for a token that does not exist at all.
    missing = await client.delete(f"/auth/tokens/{uuid.uuid4()}", headers=bob["headers"])
    missing_body = assert_problem(missing, 404, "not-found", settings)
    assert body["detail"] == missing_body["detail"]
    assert body["title"] == missing_body["title"]
    # Bob does not see it either; Ada's token keeps working.
    assert (await client.get("/auth/tokens", headers=bob["headers"])).json()["total_count"] == 0
    assert (await client.get("/users/me", headers=bearer(ada_token["token"]))).status_code == 200
    async with db.read_session() as session:
        row = await session.scalar(select(PersonalToken))
    assert row is not None
    assert row.revoked_at is None


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/auth/tokens"), ("GET", "/auth/tokens"), ("DELETE", "/auth/tokens/{id}")],
)
async def test_personal_tokens_cannot_manage_tokens(client, auth, db, settings, method, path):
    created = await _create_pat(client, auth)
    kwargs: dict[str, Any] = {"headers": bearer(created["token"])}
    if method == "POST":
        kwargs["json"] = {"name": "child", "scopes": ["read", "write"]}
    response = await client.request(method, path.format(id=created["id"]), **kwargs)
    assert_problem(response, 403, "session-required", settings)
    assert created["token"] not in response.text
    assert await count_rows(db, PersonalToken) == 1
    async with db.read_session() as session:
        row = await session.scalar(select(PersonalToken))
    assert row is not None
    assert row.revoked_at is None


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        ({"name": "x", "scopes": ["write"]}, ["body", "scopes"]),
        ({"name": "x", "scopes": ["admin"]}, ["body", "scopes", 0]),
        ({"name": "x", "scopes": ["read", "admin"]}, ["body", "scopes", 1]),
        ({"name": "x", "scopes": []}, ["body", "scopes"]),
        ({"name": "x", "scopes": "read"}, ["body", "scopes"]),
        ({"name": "x"}, ["body", "scopes"]),
        ({"name": "", "scopes": ["read"]}, ["body", "name"]),
        ({"name": "x" * 101, "scopes": ["read"]}, ["body", "name"]),
        ({"name": "x", "scopes": ["read"], "expires_in_days": 0}, ["body", "expires_in_days"]),
        ({"name": "x", "scopes": ["read"], "expires_in_days": 3651}, ["body", "expires_in_days"]),
        ({"name": "x", "scopes": ["read"], "expires_in_days": 1.5}, ["body", "expires_in_days"]),
        ({"name": "x", "scopes": ["read"], "owner": "bob"}, ["body", "owner"]),
    ],
)
async def test_personal_token_validation(client, auth, db, settings, payload, loc):
    response = await client.post("/auth/tokens", json=payload, headers=auth["headers"])
    body = assert_problem(response, 422, "validation-error", settings)
    assert error_locs(body) == [loc]
    assert await count_rows(db, PersonalToken) == 0


async def test_duplicate_scopes_are_folded(client, auth):
    created = await _create_pat(client, auth, scopes=["read", "read"])
    assert created["scopes"] == ["read"]


async def test_bad_token_id_in_path_is_422(client, auth, settings):
    response = await client.delete("/auth/tokens/not-a-uuid", headers=auth["headers"])
    body = assert_problem(response, 422, "validation-error", settings)
    assert error_locs(body) == [["path", "token_id"]]

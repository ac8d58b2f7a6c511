"""Every failure is an RFC 9457 problem with a trace id; the body limit; crashes leak nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI

from conftest import PASSWORD, make_settings
from tests.kit.helpers import (
    NEW_TRACE_ID,
    app_client,
    assert_problem,
    bearer,
    count_rows,
    error_locs,
)
from worthline.auth.models import User
from worthline.kit.deps import Session
from worthline.kit.problems import Conflict

# ---------------------------------------------------------------- routing


@pytest.mark.parametrize("path", ["/api/v1/no-such-thing", "/nowhere", "/api/v2/users/me"])
async def test_unknown_route_is_a_404_problem(client, settings, path):
    response = await client.get("http://test" + path)
    body = assert_problem(response, 404, "not-found", settings)
    assert body["instance"] == path
    assert path in body["detail"]


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("DELETE", "/users/me", {"GET", "PATCH"}),
        ("PUT", "/users/me", {"GET", "PATCH"}),
        ("GET", "/auth/login", {"POST"}),
        ("DELETE", "/auth/register", {"POST"}),
        ("PATCH", "/auth/tokens", {"GET", "POST"}),
    ],
)
async def test_wrong_method_is_a_405_problem(client, settings, db, method, path, allow):
    response = await client.request(method, path, json={"email": "ada@example.com"})
    body = assert_problem(response, 405, "method-not-allowed", settings)
    assert method in body["detail"]
    assert {m.strip() for m in response.headers["allow"].split(",")} == allow
    assert await count_rows(db, User) == 0


@pytest.mark.parametrize("path", ["/health", "/ready"])
async def test_head_on_health_and_ready_answers_like_get_without_a_body(client, path):
    """Load-balancer probes use HEAD: the GET's status and headers, no body (it was 405)."""
    got = await client.get("http://test" + path)
    head = await client.head("http://test" + path)
    assert (got.status_code, head.status_code) == (200, 200)
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["content-length"] == str(len(got.content))
    assert head.headers["x-trace-id"]


async def test_head_on_ready_when_not_ready_is_a_503_without_a_body(client, ctx, monkeypatch):
    async def down() -> None:
        raise ConnectionError("database down")

    monkeypatch.setattr(ctx.db, "ping", down)
    got = await client.get("http://test/ready")
    assert got.status_code == 503
    head = await client.head("http://test/ready")
    assert (head.status_code, head.content) == (503, b"")
    assert head.headers["content-type"] == got.headers["content-type"]


async def test_bad_uuid_in_path_is_a_422_problem(client, auth, settings):
    response = await client.delete("/auth/tokens/not-a-uuid", headers=auth["headers"])
    body = assert_problem(response, 422, "validation-error", settings)
    assert error_locs(body) == [["path", "token_id"]]
    assert body["errors"][0]["msg"]


async def test_domain_problem_carries_its_own_type(client, settings):
    """A Problem subclass raised anywhere renders with its slug under the configured base."""
    await client.post("/auth/register", json={"email": "ada@example.com", "password": PASSWORD})
    response = await client.post(
        "/auth/register", json={"email": "ada@example.com", "password": PASSWORD}
    )
    body = assert_problem(response, 409, "email-taken", settings)
    assert body["title"] == "Email Already Registered"


async def test_problem_type_base_is_configurable(database_url, tmp_path):
    settings = make_settings(database_url, tmp_path, problem_type_base="https://errors.test/p")
    assert settings.problem_type_base == "https://errors.test/p/"
    async with app_client(settings) as (client, _):
        response = await client.get("/users/me")
    body = assert_problem(response, 401, "invalid-token", settings)
    assert body["type"] == "https://errors.test/p/invalid-token"


# ---------------------------------------------------------------- body limit


def _register_body(size: int) -> bytes:
    """A registration body of exactly `size` bytes (padded inside the JSON)."""
    base = {"email": "ada@example.com", "password": PASSWORD, "base_currency": "GBP"}
    empty = json.dumps({**base, "pad": ""}).encode()
    body = json.dumps({**base, "pad": "x" * (size - len(empty))}).encode()
    assert len(body) == size
    return body


async def _chunks(body: bytes, size: int = 100) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
async def test_oversized_body_is_413(database_url, tmp_path, db, streamed):
    settings = make_settings(database_url, tmp_path, max_body_bytes=1024)
    body = _register_body(1025)
    async with app_client(settings) as (client, _):
        content = _chunks(body) if streamed else body
        response = await client.post(
            "/auth/register", content=content, headers={"Content-Type": "application/json"}
        )
    if streamed:
        assert "content-length" not in response.request.headers
        assert response.request.headers["transfer-encoding"] == "chunked"
    else:
        assert response.request.headers["content-length"] == "1025"
    problem = assert_problem(response, 413, "payload-too-large", settings)
    assert "1024" in problem["detail"]
    assert await count_rows(db, User) == 0


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
async def test_body_at_the_limit_is_read(database_url, tmp_path, db, streamed):
    """Exactly max_body_bytes passes the limit (and then fails validation on the pad field)."""
    settings = make_settings(database_url, tmp_path, max_body_bytes=1024)
    body = _register_body(1024)
    async with app_client(settings) as (client, _):
        content = _chunks(body) if streamed else body
        response = await client.post(
            "/auth/register", content=content, headers={"Content-Type": "application/json"}
        )
    problem = assert_problem(response, 422, "validation-error", settings)
    assert error_locs(problem) == [["body", "pad"]]
    assert await count_rows(db, User) == 0


async def test_oversized_body_with_a_valid_token_is_413(database_url, tmp_path, db):
    settings = make_settings(database_url, tmp_path, max_body_bytes=1024)
    async with app_client(settings) as (client, _):
        await client.post("/auth/register", json={"email": "ada@example.com", "password": PASSWORD})
        login = await client.post(
            "/auth/login", json={"email": "ada@example.com", "password": PASSWORD}
        )
        headers = {**bearer(login.json()["access_token"]), "Content-Type": "application/json"}
        padded = json.dumps({"base_currency": "EUR", "pad": "x" * 2000}).encode()
        response = await client.patch("/users/me", content=_chunks(padded), headers=headers)
        assert_problem(response, 413, "payload-too-large", settings)
        me = await client.get("/users/me", headers=headers)
    assert me.json()["base_currency"] == "GBP"


# ---------------------------------------------------------------- trace ids


@pytest.mark.parametrize("incoming", ["abc-123_trace.ID9", "0123456789abcdef", "x" * 128])
async def test_valid_incoming_trace_id_is_echoed(client, settings, incoming):
    ok = await client.get("http://test/health", headers={"X-Trace-Id": incoming})
    assert ok.status_code == 200
    assert ok.headers["x-trace-id"] == incoming
    problem = await client.get("/users/me", headers={"X-Trace-Id": incoming})
    body = assert_problem(problem, 401, "invalid-token", settings)
    assert body["trace_id"] == incoming


@pytest.mark.parametrize(
    "incoming",
    ["has spaces in it", "short", "x" * 129, "semi;colon;value", "slash/in/the/id", ""],
)
async def test_invalid_incoming_trace_id_is_replaced(client, settings, incoming):
    response = await client.get("/users/me", headers={"X-Trace-Id": incoming})
    body = assert_problem(response, 401, "invalid-token", settings)
    assert response.headers["x-trace-id"] != incoming
    assert NEW_TRACE_ID.match(response.headers["x-trace-id"])
    assert body["trace_id"] == response.headers["x-trace-id"]


async def test_every_response_has_a_fresh_trace_id(client, auth, settings):
    responses = [
        await client.get("http://test/health"),
        await client.get("/users/me", headers=auth["headers"]),
        await client.post(
            "/auth/register", json={"email": "bob@example.com", "password": PASSWORD}
        ),
        await client.post("/auth/logout", json={"refresh_token": auth["refresh_token"]}),
        await client.get("/users/me", headers=auth["headers"]),
        await client.get("/nowhere"),
        await client.put("/users/me"),
        await client.post("/auth/register", json={}),
        await client.post(
            "/auth/register", content=b"{", headers={"Content-Type": "application/json"}
        ),
        await client.get("http://test/openapi.json"),
    ]
    statuses = [r.status_code for r in responses]
    assert statuses == [200, 200, 201, 204, 401, 404, 405, 422, 400, 200]
    trace_ids = [r.headers["x-trace-id"] for r in responses]
    assert all(NEW_TRACE_ID.match(t) for t in trace_ids)
    assert len(set(trace_ids)) == len(trace_ids)


# ---------------------------------------------------------------- unexpected failures


SECRET_MESSAGE = "db password is hunter2 at /srv/worthline/secret.py"


def _add_crashing_routes(app: FastAPI) -> None:
    async def crash() -> None:
        raise RuntimeError(SECRET_MESSAGE)

    async def crash_after_writing(session: Session) -> None:
        session.add(User(email="ghost@example.com", password_hash="x", base_currency="GBP"))
        await session.flush()
        raise RuntimeError(SECRET_MESSAGE)

    async def conflict_after_writing(session: Session) -> None:
        session.add(User(email="ghost@example.com", password_hash="x", base_currency="GBP"))
        await session.flush()
        raise Conflict("Nope")

    app.add_api_route("/api/v1/test-crash", crash, methods=["GET"])
    app.add_api_route("/api/v1/test-crash-write", crash_after_writing, methods=["POST"])
    app.add_api_route("/api/v1/test-conflict-write", conflict_after_writing, methods=["POST"])


async def test_unexpected_error_is_a_500_problem_without_details(app, client, settings):
    _add_crashing_routes(app)
    response = await client.get("/test-crash", headers={"X-Trace-Id": "crash-trace-0001"})
    body = assert_problem(response, 500, "internal-error", settings)
    assert body["trace_id"] == "crash-trace-0001"
    for leak in ("Traceback", "hunter2", "RuntimeError", "secret.py", 'File "'):
        assert leak not in response.text


@pytest.mark.parametrize(
    ("path", "status", "slug"),
    [("/test-crash-write", 500, "internal-error"), ("/test-conflict-write", 409, "conflict")],
)
async def test_a_failed_request_rolls_its_writes_back(
    app, client, db, settings, path, status, slug
):
    _add_crashing_routes(app)
    response = await client.post(path)
    assert_problem(response, status, slug, settings)
    assert "hunter2" not in response.text
    assert await count_rows(db, User) == 0

"""The OpenAPI document lists every route and documents problems as problems."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts

PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
UNAUTHENTICATED = {
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/auth/logout"),
}
AUTH_OPERATIONS = {
    *UNAUTHENTICATED,
    ("get", "/api/v1/users/me"),
    ("patch", "/api/v1/users/me"),
    ("get", "/api/v1/auth/tokens"),
    ("post", "/api/v1/auth/tokens"),
    ("delete", "/api/v1/auth/tokens/{token_id}"),
    ("get", "/health"),
    ("get", "/ready"),
}


@pytest.fixture
async def document(client) -> dict[str, Any]:
    response = await client.get("http://test/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method, path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }


async def test_document_is_openapi_3_1(document):
    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"] == "Worthline"


async def test_every_route_is_listed(app, document):
    operations = _operations(document)
    expected = {
        (method.lower(), context.path_format)
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute) and context.include_in_schema
        for method in context.methods
    }
    assert len(expected) >= len(AUTH_OPERATIONS)
    assert expected <= set(operations), expected - set(operations)
    assert set(operations) >= AUTH_OPERATIONS, AUTH_OPERATIONS - set(operations)
    assert set(operations) == expected


async def test_every_api_operation_documents_its_problems(document):
    problems: dict[tuple[str, str], list[str]] = {}
    for (method, path), operation in _operations(document).items():
        if not path.startswith("/api/v1/"):
            continue
        codes = set(operation["responses"])
        assert codes & {"401", "422"}, (method, path)
        assert "429" in codes, (method, path)
        for code, response in operation["responses"].items():
            if int(code) >= 400:
                assert response.get("content") == PROBLEM_CONTENT, (method, path, code)
                problems.setdefault(code, []).append(path)
    assert {"401", "422", "429"} <= set(problems)


async def test_operations_with_a_body_document_the_body_problems(document):
    """Any JSON body can be malformed (400), too large (413) or of another media type (415)."""
    with_body = {k: op for k, op in _operations(document).items() if "requestBody" in op}
    assert len(with_body) > 10
    for key, operation in with_body.items():
        assert {"400", "413", "415"} <= set(operation["responses"]), key


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/api/v1/balances"), ("get", "/api/v1/accounts/{account_id}/balance")],
)
async def test_an_out_of_range_instant_is_a_documented_400(document, method, path):
    # `at` / `known_at` before 1900 or from 2200 answer 400 invalid-date-range.
    assert "400" in document["paths"][path][method]["responses"]


async def test_authenticated_operations_declare_bearer_security(document):
    for key, operation in _operations(document).items():
        _method, path = key
        if not path.startswith("/api/v1/"):
            continue
        if key in UNAUTHENTICATED:
            assert "security" not in operation, key
            continue
        assert {"HTTPBearer": []} in operation.get("security", []), key
        assert "401" in operation["responses"], key
    scheme = document["components"]["securitySchemes"]["HTTPBearer"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}


async def test_problem_schema(document):
    schemas = document["components"]["schemas"]
    problem = schemas["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "instance", "trace_id"}
    assert {"type", "title", "status", "detail", "instance", "trace_id", "errors"} <= set(
        problem["properties"]
    )
    # FastAPI's own validation error shape is never what a client gets, so it is not documented.
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas


async def test_docs_page_is_served(client):
    response = await client.get("http://test/docs")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert "/openapi.json" in response.text

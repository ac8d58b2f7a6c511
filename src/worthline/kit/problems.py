"""One error hierarchy, rendered once as RFC 9457 `application/problem+json`.

Each subclass names its HTTP status, a stable slug (the tail of the problem `type` URI) and a
title. Domain errors subclass these next to the service that raises them; the handlers at the
bottom of this module are the only place a failure becomes a response.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import compile_path

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal Server Error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = dict(headers or {})
        self.extra = extra


class BadRequest(Problem):
    status, slug, title = 400, "bad-request", "Bad Request"


class MalformedBody(BadRequest):
    slug, title = "malformed-body", "Malformed Request Body"


class Unauthorized(Problem):
    status, slug, title = 401, "unauthorized", "Unauthorized"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="worthline"'})
        super().__init__(detail, **kwargs)


class Forbidden(Problem):
    status, slug, title = 403, "forbidden", "Forbidden"


class NotFound(Problem):
    status, slug, title = 404, "not-found", "Not Found"


class MethodNotAllowed(Problem):
    status, slug, title = 405, "method-not-allowed", "Method Not Allowed"


class Conflict(Problem):
    status, slug, title = 409, "conflict", "Conflict"


class PayloadTooLarge(Problem):
    status, slug, title = 413, "payload-too-large", "Payload Too Large"


class UnsupportedMediaType(Problem):
    status, slug, title = 415, "unsupported-media-type", "Unsupported Media Type"


class ValidationProblem(Problem):
    status, slug, title = 422, "validation-error", "Validation Error"

    def __init__(self, detail: str, errors: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(detail, errors=[dict(e) for e in errors])


class RateLimited(Problem):
    status, slug, title = 429, "rate-limited", "Too Many Requests"


class ServiceUnavailable(Problem):
    status, slug, title = 503, "service-unavailable", "Service Unavailable"


_BY_STATUS: dict[int, type[Problem]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        PayloadTooLarge,
        UnsupportedMediaType,
        RateLimited,
        ServiceUnavailable,
    )
}


def problem_body(problem: Problem, *, type_base: str, instance: str, trace_id: str) -> bytes:
    body: dict[str, Any] = {
        "type": type_base + problem.slug,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": instance,
        "trace_id": trace_id,
    }
    body.update(problem.extra)
    return orjson.dumps(body)


def problem_response(problem: Problem, request: Request) -> Response:
    settings = request.app.state.settings
    return Response(
        problem_body(
            problem,
            type_base=settings.problem_type_base,
            instance=request.url.path,
            trace_id=request.scope.get("state", {}).get("trace_id", ""),
        ),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


def _validation_errors(exc: RequestValidationError) -> Problem:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return MalformedBody("The request body is not valid JSON")
    rendered = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in errors
    ]
    return ValidationProblem("The request is not valid; see errors[] for each field", rendered)


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        if route.path and route.methods and compile_path(route.path)[0].match(request.url.path):
            methods |= route.methods
    return sorted(methods)


def _is_json(content_type: str) -> bool:
    return content_type == "application/json" or content_type.endswith("+json")


def install_problem_handlers(app: FastAPI) -> None:
    """Every failure leaves as a problem. Unexpected exceptions are caught (and logged with the
    trace id) by `kit.middleware.RequestContextMiddleware`, so that even a 500 carries
    X-Trace-Id."""

    async def on_problem(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Problem)
        return problem_response(exc, request)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        body_failed = any(e.get("loc", ("",))[0] == "body" for e in exc.errors())
        if body_failed and content_type and not _is_json(content_type):
            return problem_response(
                UnsupportedMediaType(f"Send the body as application/json, not {content_type}"),
                request,
            )
        return problem_response(_validation_errors(exc), request)

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if isinstance(exc.__cause__, Problem):
            # FastAPI turns any error while reading the body into a 400 "error parsing the
            # body"; the body limit (a streamed upload over it) must still answer 413.
            return problem_response(exc.__cause__, request)
        if exc.status_code == 400 and exc.__cause__ is not None:
            # The rest of those are bodies JSON cannot read (not UTF-8, nested too deep): the
            # same kind of problem as any other malformed body.
            return problem_response(MalformedBody("The request body is not valid JSON"), request)
        cls = _BY_STATUS.get(exc.status_code, Problem)
        detail = exc.detail if isinstance(exc.detail, str) else None
        headers = dict(exc.headers or {})
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"No resource at {request.url.path}"
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
            # Starlette names the methods of the first route on the path only (RFC 9110 15.5.6
            # wants all of them: GET and PATCH on /users/me, say).
            headers["Allow"] = ", ".join(_allowed_methods(request))
        problem = cls(detail, headers=headers)
        return problem_response(problem, request)

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)


def document_body_problems(openapi: dict[str, Any]) -> None:
    """Every operation that reads a body can answer what the handlers above answer for any
    body: malformed (400), too large (413), not JSON (415)."""
    for item in openapi.get("paths", {}).values():
        for operation in item.values():
            if "requestBody" not in operation:
                continue
            responses = operation.setdefault("responses", {})
            for status, entry in problem_responses(
                MalformedBody, PayloadTooLarge, UnsupportedMediaType
            ).items():
                responses.setdefault(str(status), entry)


def problem_responses(*problems: type[Problem]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries so that each endpoint documents the problems it can return."""
    out: dict[int | str, dict[str, Any]] = {}
    for cls in (*problems, ValidationProblem, RateLimited):
        out[cls.status] = {
            "description": cls.title,
            "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    return out

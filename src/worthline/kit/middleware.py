"""The outermost layer of every request, written as plain ASGI (no per-request task overhead).

- gives each request a trace id (a valid incoming `X-Trace-Id`, else a new one), binds it to the
  logs and returns it on every response;
- adds the `X-RateLimit-*` headers that the limiter recorded;
- refuses bodies over the limit with 413 before they are read into memory;
- turns any unexpected exception into a 500 problem without a stack trace, logged with the trace
  id (so that even a crash carries `X-Trace-Id`);
- writes one access-log line per request;
- once the app has started (lifespan startup complete), freezes the start-up heap out of the
  garbage collector (`gc.freeze()`): a full collection otherwise walks every module, route and
  mapper, ~100 ms during which no request in flight moves (it was the p99 of a busy worker).
"""

from __future__ import annotations

import gc
import os
import re
import time
from typing import Any

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worthline.kit.config import Settings
from worthline.kit.problems import PROBLEM_JSON, PayloadTooLarge, Problem, problem_body

_TRACE_ID = re.compile(r"[A-Za-z0-9._-]{8,128}\Z")
log = structlog.get_logger("worthline.http")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings, large_body_paths: tuple[str, ...] = ()):
        self.app = app
        self.settings = settings
        self.large_body_paths = large_body_paths

    def _body_limit(self, path: str) -> int:
        if path.startswith(self.large_body_paths) and self.large_body_paths:
            return self.settings.max_journal_bytes
        return self.settings.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self.app(scope, receive, _freeze_after_startup(send))
            else:
                await self.app(scope, receive, send)
            return

        headers = dict(scope["headers"])
        incoming = headers.get(b"x-trace-id", b"").decode("latin-1")
        trace_id = incoming if _TRACE_ID.match(incoming) else os.urandom(16).hex()
        state = scope.setdefault("state", {})
        state["trace_id"] = trace_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(trace_id=trace_id)
        started = time.perf_counter()
        status = 500
        response_started = False
        head = scope["method"] == "HEAD"

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                extra = [(b"x-trace-id", trace_id.encode())]
                quota = state.get("quota")
                present = {k.lower() for k, _ in message.get("headers", [])}
                if quota is not None and b"x-ratelimit-limit" not in present:
                    extra += [(k.lower().encode(), v.encode()) for k, v in quota.headers().items()]
                message["headers"] = [*message.get("headers", []), *extra]
            elif head and message["type"] == "http.response.body":
                # A HEAD answer is the GET's status and headers (Content-Length included),
                # never a body, whatever the server in front of us does with one.
                message = {**message, "body": b""}
            await send(message)

        limit = self._body_limit(scope["path"])
        declared = headers.get(b"content-length")
        try:
            if declared is not None and (not declared.isdigit() or int(declared) > limit):
                await self._send_problem(
                    send_wrapper,
                    scope,
                    PayloadTooLarge(f"The request body exceeds {limit} bytes"),
                    trace_id,
                )
                return
            await self.app(scope, _limited(receive, limit), send_wrapper)
        except Exception:
            log.exception("unhandled-error", path=scope["path"], method=scope["method"])
            if not response_started:
                await self._send_problem(
                    send_wrapper,
                    scope,
                    Problem("An unexpected error occurred; quote the trace id when reporting it"),
                    trace_id,
                )
        finally:
            log.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
            )

    async def _send_problem(
        self, send: Send, scope: Scope, problem: Problem, trace_id: str
    ) -> None:
        body = problem_body(
            problem,
            type_base=self.settings.problem_type_base,
            instance=scope["path"],
            trace_id=trace_id,
        )
        await send(
            {
                "type": "http.response.start",
                "status": problem.status,
                "headers": [
                    (b"content-type", PROBLEM_JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                    *[(k.lower().encode(), v.encode()) for k, v in problem.headers.items()],
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _freeze_after_startup(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "lifespan.startup.complete":
            gc.collect()  # garbage frozen now would never be collected
            gc.freeze()
        await send(message)

    return wrapped


def _limited(receive: Receive, limit: int) -> Receive:
    """Count streamed body bytes: a chunked upload without Content-Length is limited too."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message: dict[str, Any] = dict(await receive())
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise PayloadTooLarge(f"The request body exceeds {limit} bytes")
        return message

    return wrapped

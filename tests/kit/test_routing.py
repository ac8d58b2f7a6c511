"""Requests are dispatched by the app's own router, route by route in the order declared."""

from __future__ import annotations

from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Route


async def test_every_route_is_the_apps_own(app):
    # `include_router` would put each domain router behind an `_IncludedRouter`, which matches a
    # request twice after scanning the routers before it (app._add_routes says why not).
    assert all(type(route) in (APIRoute, Route) for route in app.routes), app.routes


async def test_the_caller_is_one_dependency(app):
    # The bearer scheme authenticates as it is read: no second dependency to solve per request.
    routes = (context.original_route for context in iter_route_contexts(app.routes))
    me = next(r for r in routes if isinstance(r, APIRoute) and r.name == "me")
    (caller,) = me.dependant.dependencies
    assert caller.dependencies == []

"""`GET /events`: the caller's live events as server-sent events; `POST /events/ticket`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from worthline.eventstream import service
from worthline.eventstream.schemas import TicketOut
from worthline.eventstream.service import InvalidTicket
from worthline.kit.context import AppContext
from worthline.kit.db import unit_of_work
from worthline.kit.deps import (
    Ctx,
    CurrentUser,
    InsufficientScope,
    InvalidAccessToken,
    Session,
    _bearer,
    _principal,
)
from worthline.kit.eventbus import BusMessage, StreamLimitReached, Subscription
from worthline.kit.problems import BadRequest, problem_responses
from worthline.kit.ratelimit import Policy

router = APIRouter(tags=["events"])

LARGEST_EVENT_ID = 2**63 - 1  # the id column's
LOG_POLL_SECONDS = 2.0  # without Redis: how often an idle stream reads the log


class InvalidLastEventId(BadRequest):
    slug, title = "invalid-last-event-id", "Invalid Last-Event-ID"


@router.post(
    "/events/ticket",
    status_code=status.HTTP_201_CREATED,
    response_model=TicketOut,
    responses=problem_responses(InvalidAccessToken, InsufficientScope),
)
async def create_ticket(principal: CurrentUser, session: Session) -> TicketOut:
    """A ticket for `GET /events?ticket=…`, for clients that cannot send an Authorization
    header (a browser's EventSource): single use, valid 60 seconds."""
    ticket, expires_at = await service.issue_ticket(session, principal.user_id)
    return TicketOut(ticket=ticket, expires_at=expires_at)


async def _stream_owner(
    request: Request,
    ctx: Ctx,
    session: Session,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ticket: Annotated[
        str | None, Query(max_length=200, description="From POST /events/ticket")
    ] = None,
) -> uuid.UUID:
    """The Bearer token (any scope), else a ticket, which is consumed here."""
    if ticket is None or credentials is not None:
        return (await _principal(request, session, ctx, credentials)).user_id
    owner = await service.ticket_owner(session, ticket)
    if owner is not None:  # no room for another stream: 429 before the ticket is used up
        ctx.bus.check_room(owner)
    async with unit_of_work(ctx.db) as writing:  # claiming deletes: a writing transaction
        user_id = await service.claim_ticket(writing, ticket)
    request.state.quota = await ctx.limiter.hit(Policy.API_READ, f"user:{user_id}")
    return user_id


def _sse(message: BusMessage) -> ServerSentEvent:
    return ServerSentEvent(data=message.data, event=message.event, id=str(message.id))


async def _stream(
    ctx: AppContext,
    subscription: Subscription,
    user_id: uuid.UUID,
    last_id: int | None,
    start: int,
) -> AsyncIterator[ServerSentEvent | bytes]:
    """Replay (ids above `last_id`, from the log) then live; without `last_id`, live events
    after `start` (the user's last event id when the stream opened). The subscription was
    opened before the replay query, so nothing committed meanwhile is missed; what both see is
    sent once, and live events go out in log order (`service.in_order`). A `last_id` that was
    purged, or that is past the user's events, is announced in a comment, and live events
    follow.
    A stream lasts at most `sse_max_stream_seconds`: the credential it was opened with may have
    expired or been revoked since, so the client reconnects (and re-authenticates) to go on."""
    expiry = asyncio.get_running_loop().call_later(
        ctx.settings.sse_max_stream_seconds,
        subscription.close,
        "time to re-authenticate (this stream reached its maximum lifetime)",
    )
    try:
        sent = start
        if last_id is not None:
            async with ctx.db.read_session() as session:
                horizon = await service.purged_through(session)
                newest = await service.last_event_id(session, user_id) or 0
            if last_id > max(newest, horizon):  # no event of yours: another server's, or a
                # log that was reset (a new data directory)
                yield ServerSentEvent(
                    comment=(
                        f"Last-Event-ID {last_id} is past every event this server has sent "
                        "you (was its event log reset?); reload current state. Resuming with "
                        "live events."
                    )
                )
                sent = newest
            elif last_id < horizon:
                yield ServerSentEvent(
                    comment=(
                        f"events up to id {horizon} were purged (kept "
                        f"{ctx.settings.event_retention_days} days): some after Last-Event-ID "
                        f"{last_id} are lost; reload current state. Resuming with live events."
                    )
                )
                sent = newest
            else:
                sent = last_id
                # A page at a time: a long absence may have left many.
                async for page in service.log_pages(ctx.db, user_id, last_id):
                    for message in page:
                        yield _sse(message)
                    sent = page[-1].id
        # Without Redis, events committed by another process (a CLI import) reach no bus:
        # an idle stream reads the log for them.
        poll = None if ctx.bus.shared else LOG_POLL_SECONDS
        while True:
            try:
                batch = await asyncio.wait_for(subscription.get_many(), poll)
            except TimeoutError:
                batch = []
            live = [m for m in batch if m is not None]
            messages, sent = await service.in_order(ctx.db, user_id, sent, live)
            if not batch:
                messages = await service.from_log(ctx.db, user_id, sent)
                sent = messages[-1].id if messages else sent
            if messages:
                yield b"".join(_sse(m).encode() for m in messages)  # one write for all
            if batch and batch[-1] is None:
                yield ServerSentEvent(
                    comment=f"stream closed: {subscription.closed_reason}; reconnect to resume"
                )
                return
    finally:
        expiry.cancel()
        subscription.close()


@router.get(
    "/events",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The event stream"},
        **problem_responses(InvalidAccessToken, InvalidTicket, InvalidLastEventId),
        StreamLimitReached.status: problem_responses(StreamLimitReached)[429],
    },
)
async def stream_events(
    ctx: Ctx,
    user_id: Annotated[uuid.UUID, Depends(_stream_owner)],
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", description="Resume after this event id")
    ] = None,
) -> EventSourceResponse:
    """The caller's events as they are committed (`text/event-stream`): `id:` (increasing),
    `event:` (`portfolio.balance.updated`, `portfolio.holdings.updated`,
    `portfolio.networth.updated`), `data:` JSON, money as strings. With `Last-Event-ID`, the
    events after that id are replayed first, in order, then live ones follow with no gap and
    no repeat. A comment line is sent on idle streams at least every 15 s. Authenticate with
    the Bearer header (a read-only token suffices) or `?ticket=`."""
    last_id: int | None = None
    if last_event_id is not None and last_event_id.strip():
        try:
            last_id = int(last_event_id.strip())
        except ValueError as exc:
            raise InvalidLastEventId("Last-Event-ID must be an event id sent by /events") from exc
        if not 0 <= last_id <= LARGEST_EVENT_ID:
            raise InvalidLastEventId("Last-Event-ID must be an event id sent by /events")
    start = 0
    if last_id is None:  # live from now on. Read before subscribing: an event committed in
        # between, whose publication this stream misses, is read from the log when the next
        # one names it as the event before (`service.in_order`).
        async with ctx.db.read_session() as session:
            start = await service.last_event_id(session, user_id) or 0
    subscription = await ctx.bus.subscribe(user_id)  # before any replay query
    return EventSourceResponse(
        _stream(ctx, subscription, user_id, last_id, start),
        ping=ctx.settings.sse_heartbeat_seconds,
        background=BackgroundTask(subscription.close),
    )

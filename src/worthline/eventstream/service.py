"""Recording events in the caller's transaction, delivering them after it commits, replaying
them for a reconnecting stream, purging old ones, and stream tickets. Services flush; the edge
commits.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import uuid
import weakref
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import BigInteger, bindparam, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from worthline.eventstream.events import (
    EVENT_HANDLERS,
    Event,
    RecordedEvent,
    sse_message,
    to_payload,
)
from worthline.eventstream.models import EventPurge, EventRecord, EventTicket
from worthline.kit.db import Database, after_commit, utcnow
from worthline.kit.eventbus import BusMessage, EventBus
from worthline.kit.problems import Unauthorized
from worthline.kit.security import digest

log = structlog.get_logger("worthline.events")

TICKET_TTL = timedelta(seconds=60)
TICKET_PREFIX = "wl_evt_"
REPLAY_PAGE = 500


SERIALIZE_EVENTS = select(func.pg_advisory_xact_lock(bindparam("key", type_=BigInteger)))
"""What `serialize_events` runs (PostgreSQL), with `serialize_key(user_id)`."""


def serialize_key(user_id: uuid.UUID) -> dict[str, int]:
    """The parameters of `SERIALIZE_EVENTS` for `user_id`'s events."""
    return {"key": int.from_bytes(user_id.bytes[:8], "big", signed=True)}


async def serialize_events(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Make this transaction's events of `user_id` commit in id order (PostgreSQL).

    Event ids come from a sequence when inserted, but transactions commit in their own order:
    two concurrent writes of one user could commit ids 11 then 10, and a client resuming after
    11 would never see 10. A transaction-scoped advisory lock per user, taken by every write
    that records events *before* it locks any row (so never crosswise), orders them. SQLite has
    one writer at a time already."""
    if session.bind.dialect.name != "postgresql":
        return
    await session.execute(SERIALIZE_EVENTS, serialize_key(user_id))


async def record(session: AsyncSession, events: Sequence[Event]) -> list[RecordedEvent]:
    """Insert `events` into the log in the caller's transaction (one INSERT), and queue them
    for the handlers once the unit of work commits; a rollback emits nothing."""
    if not events:
        return []
    now = utcnow()
    rows = [
        {
            "user_id": event.user_id,
            "type": type(event).__name__,
            "payload": to_payload(event),
            "created_at": now,
        }
        for event in events
    ]
    # Under the users' event locks (`serialize_events`): no other write of theirs in between.
    users = {event.user_id for event in events}
    last = await session.execute(
        select(EventRecord.user_id, func.max(EventRecord.id))
        .where(EventRecord.user_id.in_(users))
        .group_by(EventRecord.user_id)
    )
    statement = insert(EventRecord).returning(EventRecord.id, sort_by_parameter_order=True)
    ids = list(await session.scalars(statement, rows))
    afters = chain(ids, [event.user_id for event in events], {user: id_ for user, id_ in last})
    recorded = [
        RecordedEvent(i, e, now, after) for i, e, after in zip(ids, events, afters, strict=True)
    ]
    for item in recorded:
        after_commit(session, item)
    return recorded


def chain(ids: Sequence[int], users: Sequence[uuid.UUID], last: dict[uuid.UUID, int]) -> list[int]:
    """For events just recorded (`ids`, of `users`): the id of each one's user's event before
    it, given the last id each user had before these (`last`; a user absent had none: 0)."""
    last = dict(last)
    afters = {}
    for event_id, user_id in sorted(zip(ids, users, strict=True)):
        afters[event_id] = last.get(user_id, 0)
        last[user_id] = event_id
    return [afters[event_id] for event_id in ids]


class Dispatcher:
    """`Database.on_commit`: hands committed events to their handlers, in log order. A handler
    that fails is logged and the others still run; the commit has happened, so the caller's
    answer must not change (a stream that missed it resumes from the log).

    Two writes of one user commit in id order (`serialize_events`), and each writer calls this
    as soon as it sees its commit, so dispatches begin in commit order. Those of one user then
    run one at a time, first come first served (`_UserTurns`): otherwise a dispatch that waits
    (a Redis publish per event) would interleave with the next one, and a live stream would see
    ids out of order. Different users' dispatches do not wait for each other."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self._turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _UserTurns] = (
            weakref.WeakKeyDictionary()
        )

    async def __call__(self, items: list[Any]) -> None:
        recorded = [item for item in items if isinstance(item, RecordedEvent)]
        if not recorded:
            return
        loop = asyncio.get_running_loop()
        turns = self._turns.get(loop)
        if turns is None:
            turns = self._turns[loop] = _UserTurns()
        async with turns.hold({event.user_id for event in recorded}):
            for event in recorded:
                for handler in EVENT_HANDLERS[type(event.event)]:
                    try:
                        await handler(event, self.bus)
                    except Exception:
                        log.exception(
                            "events.handler_failed",
                            handler=getattr(handler, "__name__", repr(handler)),
                            event_id=event.id,
                        )


class _UserTurns:
    """One first-come-first-served lock per user, kept only while held or awaited."""

    def __init__(self) -> None:
        self._locks: dict[uuid.UUID, tuple[asyncio.Lock, list[int]]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, users: set[uuid.UUID]) -> AsyncIterator[None]:
        """All of `users`' turns, taken in a fixed order (never crosswise: no deadlock)."""
        held: list[tuple[uuid.UUID, asyncio.Lock, list[int]]] = []
        try:
            for user in sorted(users):
                lock, count = self._locks.setdefault(user, (asyncio.Lock(), [0]))
                count[0] += 1  # before waiting: the lock stays while anyone waits for it
                try:
                    await lock.acquire()
                except BaseException:  # cancelled while waiting
                    self._drop(user, count)
                    raise
                held.append((user, lock, count))
            yield
        finally:
            for user, lock, count in reversed(held):
                lock.release()
                self._drop(user, count)

    def _drop(self, user: uuid.UUID, count: list[int]) -> None:
        count[0] -= 1
        if count[0] == 0:
            del self._locks[user]


# ------------------------------------------------------------------------------ replay


async def last_event_id(session: AsyncSession, user_id: uuid.UUID) -> int | None:
    return await session.scalar(
        select(func.max(EventRecord.id)).where(EventRecord.user_id == user_id)
    )


async def events_after(
    session: AsyncSession,
    user_id: uuid.UUID,
    after: int,
    limit: int = REPLAY_PAGE,
    through: int | None = None,
) -> list[BusMessage]:
    """The user's recorded events with an id above `after` (and at most `through`), oldest
    first."""
    query = (
        select(EventRecord.id, EventRecord.type, EventRecord.payload)
        .where(EventRecord.user_id == user_id, EventRecord.id > after)
        .order_by(EventRecord.id)
        .limit(limit)
    )
    if through is not None:
        query = query.where(EventRecord.id <= through)
    return [sse_message(i, t, p) for i, t, p in await session.execute(query)]


async def log_pages(
    db: Database, user_id: uuid.UUID, sent: int, through: int | None = None
) -> AsyncIterator[list[BusMessage]]:
    """The user's events after `sent` (up to `through`) from the log, a page at a time (each
    its own short read: a long replay holds no snapshot open while the client reads)."""
    while True:
        async with db.read_session() as session:
            page = await events_after(session, user_id, sent, through=through)
        if page:
            yield page
        if len(page) < REPLAY_PAGE:
            return
        sent = page[-1].id


async def from_log(
    db: Database, user_id: uuid.UUID, sent: int, through: int | None = None
) -> list[BusMessage]:
    """`log_pages`, all of them."""
    return [message async for page in log_pages(db, user_id, sent, through) for message in page]


async def in_order(
    db: Database, user_id: uuid.UUID, sent: int, live: Iterable[BusMessage]
) -> tuple[list[BusMessage], int]:
    """What a stream that has sent `user_id`'s events up to id `sent` sends of the `live`
    messages, and its new `sent`: each event once, in log order.

    One process relays its events in commit order (`Dispatcher`), but the publications of two
    worker processes can cross on their way through Redis: 12 may arrive before 11. A message
    says which event of its user came before it (`after`); when that one has not been sent,
    the events in between are read from the log, where they are already committed (a user's
    writes commit in id order), and the late message is dropped as a repeat when it comes. A
    publication lost on the way is caught up the same way, at the user's next event."""
    out: list[BusMessage] = []
    for message in live:
        if message.id <= sent:
            continue  # sent already (replayed, or read from the log below)
        if message.after is not None and message.after > sent:
            missed = await from_log(db, user_id, sent, through=message.id)
            out += missed
            if missed:
                sent = missed[-1].id
            if sent >= message.id:
                continue
        out.append(message)
        sent = message.id
    return out, sent


async def purged_through(session: AsyncSession) -> int:
    """The highest event id any purge has removed (0 if none)."""
    return await session.scalar(select(func.max(EventPurge.purged_through))) or 0


@dataclass(frozen=True, slots=True)
class PurgeResult:
    events: int
    tickets: int
    purged_through: int


async def purge(
    session: AsyncSession, retention_days: int, now: datetime | None = None
) -> PurgeResult:
    """Delete the events older than the retention period (and expired tickets), remembering
    the highest id removed so that a stream resuming from before it is told what it lost.

    The log goes from its oldest event up to the first one still inside the period, in id
    order: the events removed are the ones read (no index on `created_at`, which every event
    written would pay for). Ids follow the order of writing, so an event older than the
    period behind a newer one (clocks of two processes a moment apart) waits for the next
    purge; no event inside the period is ever removed."""
    now = now or utcnow()
    cutoff = now - timedelta(days=retention_days)
    first_kept = await session.scalar(
        select(EventRecord.id)
        .where(EventRecord.created_at >= cutoff)
        .order_by(EventRecord.id)
        .limit(1)
    )
    older = select(func.max(EventRecord.id))
    if first_kept is not None:  # else every event is older than the period
        older = older.where(EventRecord.id < first_kept)
    highest = await session.scalar(older)
    removed = 0
    if highest is not None:
        result = await session.execute(delete(EventRecord).where(EventRecord.id <= highest))
        removed = result.rowcount or 0  # type: ignore[attr-defined]
        session.add(EventPurge(purged_through=highest, purged_at=now))
    tickets = await session.execute(delete(EventTicket).where(EventTicket.expires_at <= now))
    await session.flush()
    return PurgeResult(removed, tickets.rowcount or 0, highest or 0)  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------ tickets


class InvalidTicket(Unauthorized):
    slug, title = "invalid-ticket", "Invalid Stream Ticket"


async def issue_ticket(
    session: AsyncSession, user_id: uuid.UUID, now: datetime | None = None
) -> tuple[str, datetime]:
    now = now or utcnow()
    ticket = TICKET_PREFIX + secrets.token_urlsafe(32)
    expires_at = now + TICKET_TTL
    session.add(EventTicket(digest=digest(ticket), user_id=user_id, expires_at=expires_at))
    await session.flush()
    return ticket, expires_at


async def ticket_owner(
    session: AsyncSession, ticket: str, now: datetime | None = None
) -> uuid.UUID | None:
    """Whose the ticket is, if it is still good, without using it up."""
    now = now or utcnow()
    return await session.scalar(
        select(EventTicket.user_id).where(
            EventTicket.digest == digest(ticket), EventTicket.expires_at > now
        )
    )


async def claim_ticket(
    session: AsyncSession, ticket: str, now: datetime | None = None
) -> uuid.UUID:
    """The ticket's user; the ticket is consumed whatever the outcome (single use). Unknown,
    reused and expired tickets are all the same 401."""
    now = now or utcnow()
    row = (
        await session.execute(
            delete(EventTicket)
            .where(EventTicket.digest == digest(ticket))
            .returning(EventTicket.user_id, EventTicket.expires_at)
        )
    ).first()
    if row is None or row.expires_at <= now:
        raise InvalidTicket("The stream ticket is unknown, expired or already used")
    return row.user_id

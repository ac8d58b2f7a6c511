"""Portfolio events (seed `portfolio_events.txt`): small frozen dataclasses, their SSE names,
and the registry that routes each event type to its handlers (Cosmic Python's
`EVENT_HANDLERS`).

These are operational notifications for live clients, recorded in the event log table in the
transaction that caused them and handed to the handlers only once that transaction has
committed (`worthline.eventstream.service`).
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson
import structlog

from worthline.kit.eventbus import BusMessage, EventBus

log = structlog.get_logger("worthline.events")


@dataclass(frozen=True, slots=True)
class AccountBalanceUpdated:
    """An account's balance (as of now) changed: `delta = new_balance - previous_balance`."""

    user_id: uuid.UUID
    account_id: uuid.UUID  # the account's public id
    previous_balance: Decimal
    new_balance: Decimal
    delta: Decimal
    currency: str


@dataclass(frozen=True, slots=True)
class AccountHoldingsUpdated:
    """A holdings sync changed an account's holdings."""

    user_id: uuid.UUID
    account_id: uuid.UUID
    holdings_count: int
    created_count: int
    updated_count: int
    deactivated_count: int


@dataclass(frozen=True, slots=True)
class PortfolioNetWorthRecalculated:
    """A user's net worth was recomputed (in `currency`, over `account_count` accounts)."""

    user_id: uuid.UUID
    previous_net_worth: Decimal
    new_net_worth: Decimal
    delta: Decimal
    currency: str
    account_count: int


Event = AccountBalanceUpdated | AccountHoldingsUpdated | PortfolioNetWorthRecalculated

SSE_NAMES: dict[type[Any], str] = {
    AccountBalanceUpdated: "portfolio.balance.updated",
    AccountHoldingsUpdated: "portfolio.holdings.updated",
    PortfolioNetWorthRecalculated: "portfolio.networth.updated",
}
EVENT_TYPES: dict[str, type[Any]] = {cls.__name__: cls for cls in SSE_NAMES}


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as stored in the log: its id there is the stream's `id:`. `after`: the id of
    the same user's event before it in the log (0: none), as the writer saw it under the
    user's event lock (`service.serialize_events`); None if not known."""

    id: int
    event: Event
    created_at: datetime
    after: int | None = None

    @property
    def user_id(self) -> uuid.UUID:
        return self.event.user_id


def to_payload(event: Event) -> dict[str, Any]:
    """The seed fields as JSON values: ids and money as strings (money never a JSON number,
    written with exactly its stored places), counts as integers."""
    out: dict[str, Any] = {}
    for name in _field_names(type(event)):
        value = getattr(event, name)
        if isinstance(value, Decimal):
            value = format(value, "f")
        elif isinstance(value, uuid.UUID):
            value = str(value)
        out[name] = value
    return out


@functools.cache
def _field_names(event_type: type) -> tuple[str, ...]:
    return tuple(field.name for field in fields(event_type))  # (a third of `to_payload`'s time)


def sse_message(
    event_id: int, type_name: str, payload: dict[str, Any], after: int | None = None
) -> BusMessage:
    cls = EVENT_TYPES[type_name]
    return BusMessage(
        event_id,
        uuid.UUID(payload["user_id"]),
        SSE_NAMES[cls],
        orjson.dumps(payload).decode(),
        after,
    )


# ------------------------------------------------------------------------------ handlers

Handler = Callable[[RecordedEvent, EventBus], Awaitable[None]]


def _log_handler(level: int) -> Handler:
    async def log_event(recorded: RecordedEvent, bus: EventBus) -> None:
        event = recorded.event
        log.log(level, SSE_NAMES[type(event)], event_id=recorded.id, **to_payload(event))

    log_event.__name__ = f"log_event_{logging.getLevelName(level).lower()}"
    return log_event


async def broadcast(recorded: RecordedEvent, bus: EventBus) -> None:
    """SSE fan-out: to this process's streams, or through Redis to every worker's."""
    event = recorded.event
    await bus.publish(
        [sse_message(recorded.id, type(event).__name__, to_payload(event), recorded.after)]
    )


EVENT_HANDLERS: dict[type[Any], list[Handler]] = {
    AccountBalanceUpdated: [_log_handler(logging.DEBUG), broadcast],
    AccountHoldingsUpdated: [_log_handler(logging.DEBUG), broadcast],
    PortfolioNetWorthRecalculated: [_log_handler(logging.INFO), broadcast],
}

"""Balance snapshot endpoints (seed `balance_snapshots_api.txt`, API.md "Balance snapshots").

Each read answers in a constant number of queries (the caller's token, then one statement),
however many accounts or snapshots there are.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from worthline.kit.deps import Ctx, CurrentUser, InsufficientScope, InvalidAccessToken, Session
from worthline.kit.problems import problem_responses
from worthline.ledger import repository as ledger_repo
from worthline.ledger.endpoints import InvalidDateRange
from worthline.ledger.models import Account
from worthline.ledger.service import EARLIEST, LATEST, AccountNotFound
from worthline.snapshots import repository as repo
from worthline.snapshots import service
from worthline.snapshots.jsontext import dumps
from worthline.snapshots.models import MANUAL_SYNC
from worthline.snapshots.schemas import (
    LatestSnapshots,
    Reconciliation,
    ReportedSnapshotIn,
    SnapshotHistory,
    SnapshotOut,
    SyncIn,
    history_array_json,
    history_json,
    latest_json,
    reconciliation_json,
    snapshot_json,
)
from worthline.snapshots.service import InvalidSnapshot, InvalidSnapshotSource, ReportedSnapshot

router = APIRouter(tags=["snapshots"])
AUTH = (InvalidAccessToken, InsufficientScope)
MAX_HISTORY = 10_000
"""Snapshots one balance-history answer may hold; a wider range is refused, never cut short."""

SourceFilter = Annotated[
    str | None, Query(max_length=64, description="Only snapshots of this source")
]


def _instant(value: str, name: str) -> datetime:
    """An ISO 8601 datetime (UTC when it has no zone) or a plain date (midnight UTC)."""
    try:
        parsed = datetime.fromisoformat(value)
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidDateRange(f"{name} is not an ISO 8601 date or datetime: {value!r}") from exc
    if not EARLIEST <= parsed < LATEST:
        raise InvalidDateRange(f"{name} must lie between 1900-01-01 and 2200-01-01")
    return parsed


async def _account(session: Session, principal: CurrentUser, account_id: uuid.UUID) -> Account:
    account = await ledger_repo.account(session, principal.user_id, account_id)
    if account is None:
        raise AccountNotFound()
    return account


def _json(body: dict[str, Any], status_code: int = status.HTTP_200_OK) -> Response:
    # The body is already what `response_model` describes (see schemas.py): sent as it is.
    return Response(dumps(body), status_code=status_code, media_type="application/json")


def _source(source: str | None) -> str | None:
    return None if source is None else service.check_source(source)


@router.get(
    "/balance-snapshots", response_model=LatestSnapshots, responses=problem_responses(*AUTH)
)
async def latest_snapshots(principal: CurrentUser, session: Session) -> Response:
    """The most recent snapshot of each of your accounts (ordered by account path), each with
    the change from that account's previous snapshot, and the total per currency."""
    return _json(latest_json(await repo.latest_per_account(session, principal.user_id)))


@router.get(
    "/accounts/{account_id}/balance-history",
    response_model=SnapshotHistory,
    responses=problem_responses(*AUTH, AccountNotFound, InvalidDateRange, InvalidSnapshotSource),
)
async def balance_history(
    account_id: uuid.UUID,
    principal: CurrentUser,
    ctx: Ctx,
    start_date: Annotated[
        str,
        Query(
            max_length=64,
            description="Start of the range, inclusive (ISO 8601; a date is midnight UTC)",
            examples=["2025-01-01T00:00:00Z"],
        ),
    ],
    end_date: Annotated[
        str,
        Query(
            max_length=64,
            description="End of the range, inclusive (ISO 8601; a date is midnight UTC)",
            examples=["2025-12-31T23:59:59Z"],
        ),
    ],
    source: SourceFilter = None,
) -> Response:
    """Snapshots captured in the range, oldest first, each with the change from the previous
    snapshot in the range (the first has none), plus the change over the whole range.
    400 when the range is invalid or holds more than 10,000 snapshots."""
    start = _instant(start_date, "start_date")
    end = _instant(end_date, "end_date")
    if start > end:
        raise InvalidDateRange("start_date must not be after end_date")
    wanted = _source(source)
    # The database writes the snapshots' JSON; no session unless the account must be looked up.
    found = await repo.history_array(
        ctx.db, principal.user_id, account_id, start, end, wanted, MAX_HISTORY + 1
    )
    if found.total_count > MAX_HISTORY:
        raise InvalidDateRange(f"The range holds more than {MAX_HISTORY:,} snapshots; narrow it")
    if found.total_count:
        currency, exponent = found.currency, found.exponent
    else:
        async with ctx.db.read_session() as session:
            account = await _account(session, principal, account_id)
        currency, exponent = account.currency, account.exponent
    return _json(history_array_json(currency, exponent, found))


@router.get(
    "/accounts/{account_id}/balance-snapshots",
    response_model=SnapshotHistory,
    responses=problem_responses(*AUTH, AccountNotFound, InvalidSnapshotSource),
)
async def recent_snapshots(
    account_id: uuid.UUID,
    principal: CurrentUser,
    session: Session,
    limit: Annotated[int, Query(ge=1, le=100, description="How many, newest first")] = 30,
    source: SourceFilter = None,
) -> Response:
    """The account's most recent snapshots, newest first, each with the change from the one
    before it (among those of `source`, when given). Same body as balance-history, over this
    page; `total_count` counts all the account's snapshots (of `source`), not just the page."""
    wanted = _source(source)
    rows = await repo.recent(session, principal.user_id, account_id, limit, wanted)
    if rows:
        currency, exponent = rows[0].currency, rows[0].exponent
    else:  # the rows carry the account's currency and exponent: look it up only without them
        account = await _account(session, principal, account_id)
        currency, exponent = account.currency, account.exponent
    total = len(rows)
    if total == limit:  # a full page may have more behind it
        total = await repo.recent_count(session, principal.user_id, account_id, wanted)
    return _json(history_json(currency, exponent, rows, newest_first=True, total_count=total))


@router.post(
    "/accounts/{account_id}/sync",
    status_code=status.HTTP_201_CREATED,
    response_model=SnapshotOut,
    responses=problem_responses(*AUTH, AccountNotFound, InvalidSnapshotSource, InvalidSnapshot),
)
async def sync_account(
    account_id: uuid.UUID,
    principal: CurrentUser,
    session: Session,
    body: SyncIn | None = None,
) -> Response:
    """Capture a snapshot from the account's current ledger balance. The account's first
    snapshot is recorded as `initial_connection`. Asset and Liability accounts only (422
    `invalid-snapshot` for Equity, Income and Expense)."""
    source = body.source if body and body.source is not None else MANUAL_SYNC
    row = await service.capture_account(session, principal.user_id, account_id, source)
    return _json(snapshot_json(row), status.HTTP_201_CREATED)


@router.post(
    "/accounts/{account_id}/balance-snapshots",
    status_code=status.HTTP_201_CREATED,
    response_model=SnapshotOut,
    responses=problem_responses(*AUTH, AccountNotFound, InvalidSnapshotSource, InvalidSnapshot),
)
async def report_snapshot(
    account_id: uuid.UUID, body: ReportedSnapshotIn, principal: CurrentUser, session: Session
) -> Response:
    """Record a balance reported from outside Worthline, now or in the past (back-filling).
    Amounts with more decimals than the account allows, another currency, a future
    `captured_at` or metadata over 16 KB are refused (422); an unknown source is 400."""
    row = await service.report_snapshot(
        session,
        principal.user_id,
        account_id,
        ReportedSnapshot(
            balance=body.balance,
            source=body.source,
            available_balance=body.available_balance,
            holdings_value=body.holdings_value,
            cash_value=body.cash_value,
            currency=body.currency,
            captured_at=body.captured_at,
            provider_metadata=body.provider_metadata,
        ),
    )
    return _json(snapshot_json(row), status.HTTP_201_CREATED)


@router.get(
    "/accounts/{account_id}/reconciliation",
    response_model=Reconciliation,
    responses=problem_responses(*AUTH, AccountNotFound),
)
async def reconciliation(
    account_id: uuid.UUID, principal: CurrentUser, session: Session
) -> Response:
    """Reported snapshots (those recorded through POST .../balance-snapshots) whose balance
    differs from the ledger's balance at their `captured_at`: balance assertions that fail."""
    account = await _account(session, principal, account_id)
    checked, drifts = await service.reconcile(session, account)
    return _json(reconciliation_json(account, checked, drifts))

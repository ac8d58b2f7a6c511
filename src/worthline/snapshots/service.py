"""Capturing, reporting and reconciling balance snapshots. Services flush; the edge commits.

Two kinds of snapshot:

- **Captured** (basis "ledger"): Worthline reads the account's ledger balance now and records
  it as `cash_value` (an Asset's or a Liability's alike); for an account with holdings,
  `holdings_value` is the holdings at market value (prices and rates in force that day,
  converted into the account's currency, what cannot be valued left out and listed in
  `provider_metadata.holdings.stale`), and `balance` their sum. Sources: `manual_sync`
  (POST /sync), `account_sync` (after a journal import), `scheduled_sync` (the daily capture,
  once per account per UTC day), `holdings_sync` (holdings syncs). An account's first
  snapshot of any kind is recorded as `initial_connection`, with the source asked for kept in
  `provider_metadata.requested_source`.
- **Reported** (basis "reported"): balances from outside Worthline (a bank feed, a statement),
  possibly back-filled with a past `captured_at`. These are the balance assertions that
  reconciliation checks against the ledger.

Captures (scheduled, after an import, on request) cover the accounts that hold value, `Asset`
and `Liability`: in a double-entry ledger every account's balances sum to zero, so snapshots of
`Income`, `Expense` and `Equity` accounts would make `total_balance_by_currency` meaningless. A
sync of one of those is refused (422, as a holdings sync is); a reported snapshot works on any
account the caller names.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from worthline.kit.db import utcnow
from worthline.kit.ids import uuid7
from worthline.kit.logging import log
from worthline.kit.money import from_minor, to_minor
from worthline.kit.problems import BadRequest, ValidationProblem
from worthline.ledger import repository as ledger_repo
from worthline.ledger.models import Account
from worthline.ledger.service import EARLIEST, AccountNotFound
from worthline.portfolio.valuation import HoldingsValue, holdings_values
from worthline.snapshots import repository as repo
from worthline.snapshots.jsontext import snapshot_head
from worthline.snapshots.models import (
    ACCOUNT_SYNC,
    AMOUNT_SCALE,
    HOLDINGS_SYNC,
    INITIAL_CONNECTION,
    MANUAL_SYNC,
    SCHEDULED_SYNC,
    SOURCES,
    BalanceSnapshot,
)
from worthline.snapshots.repository import LedgerState, SnapshotRow

CAPTURED_TYPES = ("Asset", "Liability")
SYNC_SOURCES = (MANUAL_SYNC, ACCOUNT_SYNC, HOLDINGS_SYNC)
"""What POST /accounts/{id}/sync may be asked for: `scheduled_sync` belongs to the daily
capture (once a day) and `initial_connection` is Worthline's to assign."""
CAPTURE_SOURCES = (*SYNC_SOURCES, SCHEDULED_SYNC)
BULK_SOURCES = (SCHEDULED_SYNC, MANUAL_SYNC)
MAX_METADATA_BYTES = 16 * 1024
MAX_AMOUNT = Decimal(2**63 - 1).scaleb(-AMOUNT_SCALE)
"""The largest magnitude every engine stores exactly (SQLite keeps a scaled 64-bit integer)."""
CHUNK = 5_000  # accounts per statement: well inside both engines' bound-parameter limits

LEDGER = "ledger"
REPORTED = "reported"


class InvalidSnapshotSource(BadRequest):
    slug, title = "invalid-snapshot-source", "Invalid Snapshot Source"


class InvalidSnapshot(ValidationProblem):
    slug, title = "invalid-snapshot", "Invalid Snapshot"


def _invalid(loc: Sequence[str | int], msg: str) -> InvalidSnapshot:
    return InvalidSnapshot(msg, [{"loc": list(loc), "msg": msg, "type": "value_error"}])


def check_source(source: str, allowed: Sequence[str] = SOURCES) -> str:
    """A known source that may be used here; 400 otherwise (API.md: an unknown source is 400)."""
    if source not in SOURCES:
        raise InvalidSnapshotSource(
            f"Unknown snapshot source {source!r}; one of {', '.join(SOURCES)}"
        )
    if source not in allowed:
        raise InvalidSnapshotSource(
            f"Snapshot source {source!r} cannot be used here; one of {', '.join(allowed)}"
        )
    return source


def _check_exponent(account: Account) -> None:
    if account.exponent < -AMOUNT_SCALE:
        raise _invalid(
            ["path", "account_id"],
            f"{account.full_path} has {-account.exponent} decimals; "
            f"snapshots hold at most {AMOUNT_SCALE}",
        )


async def _locked_account(
    session: AsyncSession, user_id: uuid.UUID, public_id: uuid.UUID
) -> Account:
    """The caller's account, locked against concurrent writers (404 for anyone else's)."""
    account = (await ledger_repo.lock_accounts(session, user_id, [public_id])).get(public_id)
    if account is None:
        raise AccountNotFound()
    return account


# ------------------------------------------------------------------------------ capture


def iso_z(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _captured_row(
    state: LedgerState, requested: str, now: datetime, holdings: HoldingsValue | None = None
) -> dict[str, Any] | None:
    """The row of a capture from the ledger (and the account's holdings, when it has any), or
    None when an amount (the balance, or the cash or holdings value it sums) is beyond what a
    snapshot stores (logged: an automatic capture must not fail every other account for one).

    `cash_value` is the ledger balance; with holdings, `holdings_value` is their market value
    in the account's currency, and `balance` the sum of both."""
    account = state.account
    cash = from_minor(state.balance, account.exponent)
    held = holdings.value if holdings is not None else Decimal(0)
    balance = cash + held
    if max(abs(balance), abs(cash), abs(held)) > MAX_AMOUNT:
        log.warning("snapshots.balance_too_large", account_id=str(account.public_id))
        return None
    source = requested if state.has_snapshots else INITIAL_CONNECTION
    metadata: dict[str, Any] = {
        "basis": LEDGER,
        "ledger_balance_at": iso_z(now),
        "last_movement_id": str(state.last_movement_id) if state.last_movement_id else None,
        "last_movement_value_time": (
            iso_z(state.last_movement_value_time) if state.last_movement_value_time else None
        ),
    }
    if source != requested:
        metadata["requested_source"] = requested
    if holdings is not None:
        metadata["holdings"] = holdings.metadata(now.date())
    return {
        "id": uuid7(),
        "account_id": account.id,
        "balance_amount": balance,
        # No holds: everything booked is available.
        "available_balance_amount": balance,
        "holdings_value_amount": holdings.value if holdings is not None else None,
        "cash_value_amount": cash,
        "currency": account.currency,
        "source": source,
        "captured_at": now,
        "scheduled_on": now.date() if requested == SCHEDULED_SYNC else None,
        "created_at": now,
        "provider_metadata": metadata,
    }


def _with_head(row: dict[str, Any], account: Account) -> dict[str, Any]:
    """`row` with the JSON head it is stored with (`BalanceSnapshot.json_head`)."""
    row["json_head"] = snapshot_head(row, account.public_id, account.exponent)
    return row


async def capture_account(
    session: AsyncSession,
    user_id: uuid.UUID,
    public_id: uuid.UUID,
    source: str = MANUAL_SYNC,
    now: datetime | None = None,
    captured_at: datetime | None = None,
    holdings: HoldingsValue | None = None,
) -> SnapshotRow:
    """Capture one account of the caller from its ledger balance and holdings at `captured_at`
    (default now: POST /sync; a holdings sync captures as of its `as_of`, with `holdings`
    valued already)."""
    check_source(source, SYNC_SOURCES)
    now = now or utcnow()
    at = captured_at or now
    account = await _locked_account(session, user_id, public_id)
    if account.account_type not in CAPTURED_TYPES:
        raise _invalid(
            ["path", "account_id"],
            f"{account.full_path} is an {account.account_type} account; "
            "snapshots are captured of Asset (or Liability) accounts",
        )
    _check_exponent(account)
    [state] = await repo.ledger_states(session, [Account.id == account.id], at)
    if holdings is None:  # a holdings sync passes the valuation it has just made
        holdings = (await holdings_values(session, [account], at.date())).get(account.id)
    row = _captured_row(state, source, at, holdings)
    if row is None:
        raise _invalid(
            ["path", "account_id"],
            f"the balance, cash or holdings value is beyond ±{MAX_AMOUNT:,.0f} "
            "(the most a snapshot stores)",
        )
    row["created_at"] = now
    snapshot = BalanceSnapshot(**_with_head(row, account))
    session.add(snapshot)
    await session.flush()
    return await repo.one(session, account, snapshot.id)


def _capturable() -> list[Any]:
    return [Account.account_type.in_(CAPTURED_TYPES), Account.exponent >= -AMOUNT_SCALE]


async def _capture(
    session: AsyncSession, where: list[Any], source: str, now: datetime
) -> list[uuid.UUID]:
    states = await repo.ledger_states(session, [*_capturable(), *where], now)
    holdings = await holdings_values(session, [s.account for s in states], now.date())
    rows = [
        _with_head(row, state.account)
        for state in states
        if (row := _captured_row(state, source, now, holdings.get(state.account.id))) is not None
    ]
    return await repo.insert_snapshots(
        session, rows, skip_scheduled_duplicates=source == SCHEDULED_SYNC
    )


async def capture_accounts(
    session: AsyncSession, account_ids: Collection[int], source: str, now: datetime | None = None
) -> int:
    """Capture accounts the caller has already resolved (a journal import's touched accounts):
    one ledger query and one insert per 5,000 accounts. Returns the number captured."""
    check_source(source, CAPTURE_SOURCES)
    now = now or utcnow()
    ids = sorted(account_ids)
    captured = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        captured += len(await _capture(session, [Account.id.in_(chunk)], source, now))
    return captured


async def capture_all(
    session: AsyncSession,
    source: str = SCHEDULED_SYNC,
    now: datetime | None = None,
    user_id: uuid.UUID | None = None,
) -> int:
    """Capture every Asset and Liability account (of one user, or everyone's).

    `scheduled_sync` captures only accounts without a scheduled capture on today's UTC date,
    and the unique (account, day) index turns a concurrent run's duplicate into a no-op, so
    running it any number of times a day captures each account once. `manual_sync` captures
    every account again. Returns the number captured."""
    check_source(source, BULK_SOURCES)
    now = now or utcnow()
    where = [] if user_id is None else [Account.user_id == user_id]
    if source == SCHEDULED_SYNC:
        where.append(repo.not_scheduled_on(now.date()))
    return len(await _capture(session, where, source, now))


# ------------------------------------------------------------------------------ reported


@dataclass(frozen=True, slots=True)
class ReportedSnapshot:
    balance: Decimal
    source: str
    available_balance: Decimal | None = None
    holdings_value: Decimal | None = None
    cash_value: Decimal | None = None
    currency: str | None = None
    captured_at: datetime | None = None
    provider_metadata: dict[str, Any] | None = None


def _amount(value: Decimal | None, account: Account, field: str) -> Decimal | None:
    """An input amount quantized to the account's exponent; 422 (never rounded) when it has
    more decimals than the account allows or is beyond what a snapshot stores."""
    if value is None:
        return None
    try:
        amount = from_minor(to_minor(value, account.exponent), account.exponent)
    except ValueError as exc:
        raise _invalid(
            ["body", field], f"{exc} ({account.currency} allows {-account.exponent})"
        ) from exc
    if abs(amount) > MAX_AMOUNT:
        raise _invalid(["body", field], f"{field} is beyond ±{MAX_AMOUNT:,.0f}")
    return amount


def _non_finite(metadata: dict[str, Any]) -> list[str | int] | None:
    """The path to the first NaN or ±Infinity in `metadata`, if any. Python's JSON parser takes
    them, but they are not JSON: stored, SQLite's JSON functions fail on the text for ever
    after, and PostgreSQL's JSONB refuses the insert."""
    pending: list[tuple[list[str | int], Any]] = [([], metadata)]
    while pending:  # no recursion: the nesting depth is the client's
        path, value = pending.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return path
        if isinstance(value, dict):
            pending.extend(([*path, k], v) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            pending.extend(([*path, i], v) for i, v in reversed(list(enumerate(value))))
    return None


def check_metadata(metadata: Any) -> dict[str, Any]:
    """Provider metadata is a JSON object of at most 16 KB (as compact JSON), without NaN or
    Infinity."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise _invalid(["body", "provider_metadata"], "provider_metadata must be a JSON object")
    try:
        size = len(orjson.dumps(metadata))
    except TypeError as exc:
        raise _invalid(["body", "provider_metadata"], "provider_metadata is not JSON") from exc
    if size > MAX_METADATA_BYTES:
        raise _invalid(
            ["body", "provider_metadata"],
            f"provider_metadata is {size} bytes as JSON; at most {MAX_METADATA_BYTES}",
        )
    if (path := _non_finite(metadata)) is not None:
        name = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
        raise _invalid(
            ["body", "provider_metadata", *path],
            f"provider_metadata{name} is not a finite number (JSON has no NaN or Infinity)",
        )
    return metadata


async def report_snapshot(
    session: AsyncSession,
    user_id: uuid.UUID,
    public_id: uuid.UUID,
    spec: ReportedSnapshot,
    now: datetime | None = None,
) -> SnapshotRow:
    """Record a balance reported from outside Worthline, now or back-filled into the past."""
    now = now or utcnow()
    account = await _locked_account(session, user_id, public_id)
    check_source(spec.source)
    _check_exponent(account)
    if spec.currency is not None and spec.currency != account.currency:
        raise _invalid(
            ["body", "currency"],
            f"currency {spec.currency} does not match the account's {account.currency}",
        )
    captured_at = spec.captured_at or now
    if captured_at.tzinfo is None:
        raise _invalid(["body", "captured_at"], "captured_at needs a time zone")
    if not EARLIEST <= captured_at <= now:
        raise _invalid(["body", "captured_at"], "captured_at must lie between 1900-01-01 and now")
    metadata = check_metadata(spec.provider_metadata)
    row = {
        "id": uuid7(),
        "account_id": account.id,
        "balance_amount": _amount(spec.balance, account, "balance"),
        "available_balance_amount": _amount(spec.available_balance, account, "available_balance"),
        "holdings_value_amount": _amount(spec.holdings_value, account, "holdings_value"),
        "cash_value_amount": _amount(spec.cash_value, account, "cash_value"),
        "currency": account.currency,
        "source": spec.source,
        "captured_at": captured_at,
        "scheduled_on": None,
        "created_at": now,
        "provider_metadata": {"basis": REPORTED, "provider": metadata},
    }
    snapshot = BalanceSnapshot(**_with_head(row, account))
    session.add(snapshot)
    await session.flush()
    return await repo.one(session, account, snapshot.id)


# ------------------------------------------------------------------------------ reconcile


@dataclass(frozen=True, slots=True)
class Discrepancy:
    snapshot: BalanceSnapshot
    ledger_balance: Decimal

    @property
    def difference(self) -> Decimal:
        """Reported minus ledger: positive when the outside world holds more than the ledger."""
        return self.snapshot.balance_amount - self.ledger_balance


async def reconcile(session: AsyncSession, account: Account) -> tuple[int, list[Discrepancy]]:
    """The account's reported snapshots whose balance differs from the ledger's balance at their
    `captured_at` (as the ledger knows it now). Returns (how many were checked, the drifts).

    Captured snapshots (basis "ledger") are left out: they are the ledger's own balance at
    capture time and can only differ later through backdated movements, which is history
    being corrected, not an outside balance disagreeing."""
    rows = await repo.reported_with_ledger(session, account)
    drifts = []
    for snapshot, minor in rows:
        ledger = from_minor(minor, account.exponent)
        if snapshot.balance_amount != ledger:
            drifts.append(Discrepancy(snapshot, ledger))
    return len(rows), drifts

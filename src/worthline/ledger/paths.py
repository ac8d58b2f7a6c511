"""Account paths: `Type:Product[:AccountId[:Address]]`, as go-luca spells them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from worthline.ledger.models import ACCOUNT_TYPES

_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}\Z")
PENDING = "Pending"


@dataclass(frozen=True, slots=True)
class AccountPath:
    account_type: str
    product: str
    account_id: str | None
    address: str | None

    @property
    def full_path(self) -> str:
        parts = [self.account_type, self.product, self.account_id, self.address]
        return ":".join(p for p in parts if p is not None)

    @property
    def is_pending(self) -> bool:
        return self.address == PENDING


def parse_path(path: str) -> AccountPath:
    """Raise ValueError with a message fit for a client when the path is malformed."""
    parts = path.split(":")
    if not 2 <= len(parts) <= 4:
        raise ValueError("an account path has 2 to 4 segments: Type:Product[:AccountId[:Address]]")
    if parts[0] not in ACCOUNT_TYPES:
        allowed = ", ".join(ACCOUNT_TYPES)
        raise ValueError(f"account type must be one of {allowed}, not {parts[0]!r}")
    for part in parts[1:]:
        if not _SEGMENT.match(part):
            raise ValueError(
                f"segment {part!r} must be 1-64 letters, digits, '_', '-' or '.', "
                "starting with a letter or digit"
            )
    padded = parts + [None] * (4 - len(parts))
    return AccountPath(padded[0], padded[1], padded[2], padded[3])  # type: ignore[arg-type]

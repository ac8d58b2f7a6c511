from __future__ import annotations

from pydantic import BaseModel, Field

from worthline.kit.schemas import Timestamp


class TicketOut(BaseModel):
    """A single-use credential for `GET /events?ticket=`, valid for 60 seconds."""

    ticket: str = Field(description="Pass as `?ticket=`; shown once, usable once")
    expires_at: Timestamp

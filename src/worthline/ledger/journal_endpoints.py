from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from worthline.kit.deps import Ctx, CurrentUser, InsufficientScope, InvalidAccessToken, Session
from worthline.kit.problems import UnsupportedMediaType, problem_responses
from worthline.ledger.journal_io import JournalInvalid, export_journal, import_journal
from worthline.ledger.journal_io.text import journal_lines
from worthline.ledger.schemas import JournalImportOut

router = APIRouter(tags=["journal"])
SPOOL_IN_MEMORY = 8 * 1024 * 1024


@router.post(
    "/journal/import",
    response_model=JournalImportOut,
    responses=problem_responses(
        InvalidAccessToken, InsufficientScope, JournalInvalid, UnsupportedMediaType
    ),
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/plain": {"schema": {"type": "string"}}}}
    },
)
async def journal_import(
    request: Request, principal: CurrentUser, session: Session
) -> JournalImportOut:
    """Import a `.goluca` journal (text/plain). Atomic: a file records completely or not at
    all; an error answers 400 naming the line and column."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "text/plain":
        raise UnsupportedMediaType("Send the journal as text/plain")
    # Spool the body (to disk past 8 MiB) so that a large journal never sits in memory whole.
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
        async for chunk in request.stream():
            spool.write(chunk)
        spool.seek(0)
        result = await import_journal(session, principal.user_id, journal_lines(spool))
    return JournalImportOut(
        accounts_created=result.accounts_created, movements_recorded=result.movements_recorded
    )


@router.get(
    "/journal/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/plain": {}}}, **problem_responses(InvalidAccessToken)},
)
async def journal_export(principal: CurrentUser, ctx: Ctx) -> StreamingResponse:
    """Your whole ledger as a `.goluca` journal that imports back to the same ledger."""
    user_id, base_currency = principal.user_id, principal.user.base_currency

    async def body() -> AsyncIterator[bytes]:
        # Its own snapshot session (one consistent view, server-side cursor), open for as long
        # as the response streams.
        async with ctx.db.snapshot_session() as session:
            buffer: list[str] = []
            size = 0
            async for line in export_journal(session, user_id, base_currency):
                buffer.append(line)
                size += len(line)
                if size >= 1 << 16:
                    yield "".join(buffer).encode()
                    buffer, size = [], 0
            yield "".join(buffer).encode()

    return StreamingResponse(
        body(),
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="worthline.goluca"'},
    )

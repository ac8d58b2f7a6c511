"""Helpers for the event tests: a real HTTP server for an app (httpx's ASGI transport buffers
whole responses, so a stream needs a socket), and a small SSE reader."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import uvicorn
from fastapi import FastAPI


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """Serve `app` on a free loopback port; yields the API base URL."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        lifespan="off",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if task.done():
            task.result()
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@dataclass
class Message:
    id: str | None = None
    event: str | None = None
    data: str = ""
    comments: list[str] = field(default_factory=list)

    @property
    def json(self) -> dict[str, Any]:
        return orjson.loads(self.data)


def summary(messages: list[Message]) -> list[str]:
    """Each message as `balance 7.00` (an account's new balance) or `networth 7.00`."""
    out = []
    for m in messages:
        if m.event == "portfolio.networth.updated":
            out.append(f"networth {m.json['new_net_worth']}")
        else:
            out.append(f"balance {m.json['new_balance']}")
    return out


class Stream:
    """Reads SSE blocks from a streaming httpx response in a background task (cancelling a
    read midway would break the response's line iterator), parsed into messages."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.raw: list[str] = []
        self._blocks: asyncio.Queue[list[str] | None] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        block: list[str] = []
        try:
            async for line in self.response.aiter_lines():
                self.raw.append(line)
                if line == "":
                    if block:
                        self._blocks.put_nowait(block)
                    block = []
                    continue
                block.append(line)
        finally:
            self._blocks.put_nowait(None)

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader

    async def next(self, within: float = 5.0, *, comments: bool = False) -> Message:
        """The next message with an id (or, with `comments`, the next block of any kind)."""

        async def read() -> Message:
            while True:
                block = await self._blocks.get()
                if block is None:
                    self._blocks.put_nowait(None)
                    raise EOFError("the stream ended")
                message = Message()
                for line in block:
                    if line.startswith(":"):
                        message.comments.append(line[1:].strip())
                        continue
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "data":
                        message.data += value
                    elif name in ("id", "event"):
                        setattr(message, name, value)
                if comments or message.id is not None:
                    return message

        return await asyncio.wait_for(read(), within)

    async def take(self, count: int, within: float = 5.0) -> list[Message]:
        return [await self.next(within) for _ in range(count)]

    async def nothing_within(self, seconds: float) -> bool:
        try:
            await self.next(seconds)
        except TimeoutError:
            return True
        return False


@asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient, headers: dict[str, str] | None = None, **params: Any
) -> AsyncIterator[Stream]:
    async with client.stream("GET", "/events", headers=headers or {}, params=params) as response:
        assert response.status_code == 200, (await response.aread()).decode()
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = Stream(response)
        try:
            yield stream
        finally:
            await stream.close()

"""Settings from the environment (`WORTHLINE_` prefix, `.env` supported).

Everything has a default that runs the embedded engine: a SQLite file and a JWT key kept in the
data directory, in-process rate limits and event fan-out.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_JWT_KEY_FILE = "jwt-signing.key"


def _rate(value: str) -> str:
    """A policy is `N/unit` (parsed by `limits`), or `0` to switch it off."""
    from limits import parse_many

    value = value.strip()
    if value == "0":
        return value
    try:
        parse_many(value)
    except ValueError as exc:
        raise ValueError(f"not a rate limit such as '100/minute': {value!r}") from exc
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="WORTHLINE_", env_file=".env", extra="ignore", frozen=True
    )

    data_dir: Path = Path("data")
    database_url: str | None = None
    """Default: `sqlite+aiosqlite:///<data_dir>/worthline.db`."""
    redis_url: str | None = None
    db_pool_size: int = Field(default=10, ge=1, le=1000)
    """PostgreSQL connections each worker keeps open once used; single movements
    (`kit.direct`) keep up to as many again of their own."""
    db_max_overflow: int = Field(default=20, ge=0, le=1000)
    """PostgreSQL connections a worker may open beyond the pool at busy moments; each is
    closed again when given back (a connection per request under sustained load: raise the
    pool size instead, within the server's max_connections over all workers)."""

    jwt_signing_key: str | None = Field(default=None, repr=False)
    """Default: generated once and kept in `<data_dir>/jwt-signing.key`."""
    jwt_issuer: str = "worthline"
    access_token_ttl_seconds: int = Field(default=900, ge=30, le=86_400)
    refresh_token_ttl_days: int = Field(default=30, ge=1, le=365)

    password_hash_time_cost: int = Field(default=3, ge=1)
    password_hash_memory_kib: int = Field(default=65_536, ge=8)

    rate_limit_api_read: str = "100/minute"
    rate_limit_api_write: str = "50/minute"
    rate_limit_auth: str = "5/minute"

    problem_type_base: str = "https://worthline.dev/problems/"
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_journal_bytes: int = Field(default=512 * 1_048_576, ge=1024)

    sse_heartbeat_seconds: float = Field(default=15.0, gt=0, le=15)
    """A comment line on every idle event stream at least this often (keeps proxies open)."""
    sse_max_stream_seconds: float = Field(default=900.0, gt=0)
    """A stream is closed after this long; its client reconnects (re-authenticating) and
    resumes with Last-Event-ID, so an expired or revoked token does not stream forever."""
    sse_max_streams_per_user: int = Field(default=5, ge=1)
    """Open event streams per user per worker process; beyond: 429."""
    event_retention_days: int = Field(default=30, ge=1)
    """Events older than this are purged; `Last-Event-ID` cannot replay past it."""

    demo_data: Literal["auto", "off"] = "auto"
    """`auto`: `serve` loads the demo household into an empty embedded (SQLite) database."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "console"] = "json"
    opentelemetry: bool = False
    """FastAPI's own OpenTelemetry instrumentation (traces, metrics, logs to the providers
    configured in the process, e.g. with FASTAPI_OTEL_AUTO_CONFIGURE=true). Off, it costs
    nothing; on, it looks its providers up on every request."""

    @field_validator("rate_limit_api_read", "rate_limit_api_write", "rate_limit_auth")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        return _rate(value)

    @field_validator("problem_type_base")
    @classmethod
    def _slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"

    @cached_property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'worthline.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.effective_database_url.startswith("sqlite")

    @property
    def access_token_ttl(self) -> timedelta:
        return timedelta(seconds=self.access_token_ttl_seconds)

    @property
    def refresh_token_ttl(self) -> timedelta:
        return timedelta(days=self.refresh_token_ttl_days)

    @cached_property
    def signing_key(self) -> str:
        """The JWT key: from the environment, else generated once into the data directory."""
        if self.jwt_signing_key:
            if len(self.jwt_signing_key) < 32:
                raise ValueError("WORTHLINE_JWT_SIGNING_KEY must be at least 32 characters")
            return self.jwt_signing_key
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / _JWT_KEY_FILE
        try:
            # O_EXCL: two processes starting at once agree on one key.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_text().strip()
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(64))
        return path.read_text().strip()

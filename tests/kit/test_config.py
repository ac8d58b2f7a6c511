"""Settings from the environment: rate-limit syntax, the problem base, the JWT key file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from worthline.kit.config import Settings


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No stray .env (read from the working directory) or WORTHLINE_* variables."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith("WORTHLINE_")]:
        monkeypatch.delenv(name)


@pytest.mark.parametrize("value", ["100/minute", "5/second", "10 per hour", "1/day;100/year", "0"])
def test_rate_limit_policies_accept_limits_syntax(value):
    assert Settings(rate_limit_auth=value).rate_limit_auth == value


def test_rate_limit_policy_is_stripped():
    assert Settings(rate_limit_api_read=" 7/minute ").rate_limit_api_read == "7/minute"


@pytest.mark.parametrize("value", ["lots", "100", "100/fortnight", "-1/minute", ""])
def test_rate_limit_policies_refuse_nonsense(value):
    with pytest.raises(ValidationError) as caught:
        Settings(rate_limit_api_write=value)
    assert caught.value.errors()[0]["loc"] == ("rate_limit_api_write",)


def test_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("WORTHLINE_RATE_LIMIT_AUTH", "0")
    monkeypatch.setenv("WORTHLINE_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("WORTHLINE_PROBLEM_TYPE_BASE", "https://errors.example/")
    settings = Settings()
    assert settings.rate_limit_auth == "0"
    assert settings.problem_type_base == "https://errors.example/"
    assert settings.effective_database_url == (
        f"sqlite+aiosqlite:///{(tmp_path / 'elsewhere' / 'worthline.db').resolve()}"
    )
    assert settings.is_sqlite


def test_problem_type_base_gets_a_trailing_slash():
    assert Settings(problem_type_base="https://x.test/p").problem_type_base == "https://x.test/p/"


def test_database_url_wins_over_the_data_dir():
    url = "postgresql+asyncpg://u@db/w"
    settings = Settings(database_url=url)
    assert settings.effective_database_url == url
    assert not settings.is_sqlite


def test_signing_key_is_generated_once_and_kept_private(tmp_path):
    data = tmp_path / "data"
    key = Settings(data_dir=data).signing_key
    path = data / "jwt-signing.key"
    assert path.read_text().strip() == key
    assert len(key) >= 64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Another process (another Settings) finds the same key.
    assert Settings(data_dir=data).signing_key == key
    assert Settings(data_dir=tmp_path / "other").signing_key != key


def test_signing_key_from_the_environment_must_be_long_enough(tmp_path):
    with pytest.raises(ValueError, match="at least 32"):
        _ = Settings(data_dir=tmp_path, jwt_signing_key="short").signing_key
    key = "k" * 32
    assert Settings(data_dir=tmp_path, jwt_signing_key=key).signing_key == key
    assert not (tmp_path / "jwt-signing.key").exists()


def test_signing_key_is_not_in_the_repr():
    settings = Settings(jwt_signing_key="s3cret-" * 8)
    assert "s3cret" not in repr(settings)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("access_token_ttl_seconds", 10),
        ("max_body_bytes", 10),
        ("log_level", "LOUD"),
        ("db_pool_size", 0),
        ("db_max_overflow", -1),
    ],
)
def test_out_of_range_settings_are_refused(field, value):
    with pytest.raises(ValidationError):
        Settings(**{field: value})


async def test_postgres_pool_size_comes_from_the_settings(tmp_path):
    from worthline.kit.context import AppContext

    settings = Settings(
        data_dir=tmp_path,
        database_url="postgresql+asyncpg://postgres@127.0.0.1:5432/unused",
        jwt_signing_key="k" * 64,
        db_pool_size=3,
        db_max_overflow=4,
    )
    ctx = AppContext.build(settings)  # nothing connects until used
    try:
        pool = ctx.db.engine.sync_engine.pool
        assert (pool.size(), pool._max_overflow) == (3, 4)  # type: ignore[attr-defined]
    finally:
        await ctx.close()

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, Field, field_validator

from worthline.kit.currency import CurrencyCode
from worthline.kit.schemas import Timestamp

# A short list of the passwords that top every breach corpus; length does most of the work.
_COMMON = frozenset(
    {
        "password",
        "password1",
        "password12",
        "password123",
        "passw0rd",
        "qwerty",
        "qwertyuiop",
        "1234567890",
        "12345678910",
        "123456789a",
        "abcdefghij",
        "iloveyou",
        "letmein",
        "welcome1",
        "administrator",
        "worthline",
        "changeme",
        "trustno1",
        "football",
        "baseball",
        "sunshine",
    }
)


def _strong(password: str) -> str:
    if password.strip() != password:
        raise ValueError("must not begin or end with whitespace")
    if password.lower() in _COMMON or password.lower().rstrip("!0123456789") in _COMMON:
        raise ValueError("is too common")
    if len(set(password)) < 5:
        raise ValueError("must use at least 5 different characters")
    return password


Password = Annotated[str, Field(min_length=10, max_length=128), AfterValidator(_strong)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterIn(Strict):
    email: EmailStr = Field(max_length=320)
    password: Password
    base_currency: CurrencyCode = "GBP"


class LoginIn(Strict):
    email: str = Field(max_length=320)
    password: str = Field(max_length=128)


class RefreshIn(Strict):
    refresh_token: str = Field(min_length=1, max_length=200)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme, not a secret
    expires_in: int = Field(description="Seconds until the access token expires")


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    base_currency: str
    created_at: Timestamp


class UserPatch(Strict):
    base_currency: CurrencyCode


Scope = Literal["read", "write"]


def _scopes(scopes: list[Scope]) -> list[Scope]:
    unique = sorted(set(scopes))
    if unique not in (["read"], ["read", "write"]):
        raise ValueError('must be ["read"] or ["read", "write"]')
    return unique  # type: ignore[return-value]


class PersonalTokenIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    scopes: Annotated[list[Scope], AfterValidator(_scopes)]
    expires_in_days: int | None = Field(default=None, ge=1, le=3650)


class PersonalTokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    scopes: list[str]
    created_at: Timestamp
    expires_at: Timestamp | None

    @field_validator("scopes", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        return value.split() if isinstance(value, str) else value


class PersonalTokenCreated(PersonalTokenOut):
    token: str = Field(description="The secret. Shown once; store it now.")


class PersonalTokenList(BaseModel):
    tokens: list[PersonalTokenOut]
    total_count: int

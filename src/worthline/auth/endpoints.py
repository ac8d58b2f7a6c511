from __future__ import annotations

import uuid
from dataclasses import asdict

from fastapi import APIRouter, Depends, Response, status

from worthline.auth import repository as repo
from worthline.auth.models import User
from worthline.auth.schemas import (
    LoginIn,
    PersonalTokenCreated,
    PersonalTokenIn,
    PersonalTokenList,
    PersonalTokenOut,
    RefreshIn,
    RegisterIn,
    TokenPair,
    UserOut,
    UserPatch,
)
from worthline.auth.service import (
    EmailTaken,
    InvalidCredentials,
    InvalidRefreshToken,
    PersonalTokenNotFound,
    RefreshTokenReused,
    create_personal_token,
    revoke_personal_token,
)
from worthline.eventstream.service import serialize_events
from worthline.kit.db import utcnow
from worthline.kit.deps import (
    Ctx,
    CurrentUser,
    InsufficientScope,
    InvalidAccessToken,
    Principal,
    Session,
    address_rate_limit,
    auth_rate_limit,
)
from worthline.kit.problems import problem_responses
from worthline.portfolio.networth import net_worth_changed

router = APIRouter(tags=["auth"])


@router.post(
    "/auth/register",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    dependencies=[Depends(auth_rate_limit)],
    responses=problem_responses(EmailTaken),
)
async def register(body: RegisterIn, session: Session, ctx: Ctx) -> UserOut:
    """Create an account. Passwords need at least 10 characters and must not be a common one."""
    user = await ctx.auth.register(session, body.email, body.password, body.base_currency, utcnow())
    return UserOut.model_validate(user, from_attributes=True)


@router.post(
    "/auth/login",
    response_model=TokenPair,
    dependencies=[Depends(auth_rate_limit)],
    responses=problem_responses(InvalidCredentials),
)
async def login(body: LoginIn, session: Session, ctx: Ctx) -> TokenPair:
    """Exchange email and password for a short-lived access token and a refresh token."""
    issued = await ctx.auth.login(session, body.email, body.password, utcnow())
    return TokenPair(**asdict(issued))


@router.post(
    "/auth/refresh",
    response_model=TokenPair,
    dependencies=[Depends(auth_rate_limit)],
    responses=problem_responses(InvalidRefreshToken),
)
async def refresh(body: RefreshIn, session: Session, ctx: Ctx) -> TokenPair:
    """Rotate a refresh token: the old one stops working. Presenting an already-rotated token
    revokes its whole session (every token descended from the same login)."""
    try:
        issued = await ctx.auth.refresh(session, body.refresh_token, utcnow())
    except RefreshTokenReused:
        # The revocation must stand although the request fails: the edge commits it here.
        await session.commit()
        raise
    return TokenPair(**asdict(issued))


@router.post(
    "/auth/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    dependencies=[Depends(address_rate_limit)],
    responses=problem_responses(InvalidRefreshToken),
)
async def logout(body: RefreshIn, session: Session, ctx: Ctx) -> Response:
    """Revoke the session that this refresh token belongs to, with all its tokens."""
    await ctx.auth.logout(session, body.refresh_token, utcnow())
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/users/me", response_model=UserOut, responses=problem_responses(InvalidAccessToken))
async def me(principal: CurrentUser) -> Response:
    """The caller's profile."""
    # Serialised here, once: FastAPI would validate the model it was just built from again.
    user = UserOut.model_validate(principal.user, from_attributes=True)
    return Response(user.model_dump_json(), media_type="application/json")


@router.patch(
    "/users/me",
    response_model=UserOut,
    responses=problem_responses(InvalidAccessToken, InsufficientScope),
)
async def update_me(body: UserPatch, principal: CurrentUser, session: Session) -> UserOut:
    """Change the base currency that net worth is reported in. The net worth is recomputed in
    the new currency (a `portfolio.networth.updated` event with a delta of 0 says so)."""
    user = await session.get(User, principal.user_id)  # in this unit of work, flushed with it
    if user is None:  # deleted since the token was checked
        raise InvalidAccessToken("The token is invalid, expired or revoked")
    if user.base_currency != body.base_currency:
        await serialize_events(session, user.id)
        user.base_currency = body.base_currency
        net_worth_changed(session, user.id)
    await session.flush()
    return UserOut.model_validate(user, from_attributes=True)


class PersonalTokensNeedSession(InsufficientScope):
    slug, title = "session-required", "Login Session Required"


def _session_only(principal: Principal) -> None:
    # A leaked personal token must not be able to mint more of them.
    if principal.kind != "session":
        raise PersonalTokensNeedSession(
            "Personal access tokens are managed with a login session's access token"
        )


@router.post(
    "/auth/tokens",
    status_code=status.HTTP_201_CREATED,
    response_model=PersonalTokenCreated,
    responses=problem_responses(InvalidAccessToken, InsufficientScope),
)
async def create_token(
    body: PersonalTokenIn, principal: CurrentUser, session: Session
) -> PersonalTokenCreated:
    """Create a personal access token for scripts. The secret is in this answer only."""
    _session_only(principal)
    token, secret = await create_personal_token(
        session, principal.user_id, body.name, body.scopes, body.expires_in_days, utcnow()
    )
    return PersonalTokenCreated.model_validate(
        {**PersonalTokenOut.model_validate(token).model_dump(), "token": secret}
    )


@router.get(
    "/auth/tokens",
    response_model=PersonalTokenList,
    responses=problem_responses(InvalidAccessToken, InsufficientScope),
)
async def list_tokens(principal: CurrentUser, session: Session) -> PersonalTokenList:
    """The caller's active personal access tokens (never their secrets)."""
    _session_only(principal)
    tokens = await repo.personal_tokens(session, principal.user_id, utcnow())
    return PersonalTokenList(
        tokens=[PersonalTokenOut.model_validate(t) for t in tokens], total_count=len(tokens)
    )


@router.delete(
    "/auth/tokens/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(InvalidAccessToken, InsufficientScope, PersonalTokenNotFound),
)
async def revoke_token(token_id: uuid.UUID, principal: CurrentUser, session: Session) -> Response:
    """Revoke a personal access token at once."""
    _session_only(principal)
    await revoke_personal_token(session, principal.user_id, token_id, utcnow())
    return Response(status_code=status.HTTP_204_NO_CONTENT)

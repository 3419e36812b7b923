"""`/api/auth`: sign-up and sign-in (public), and `me` (bearer token).

Sign-in counts the attempt before checking the password (see `sql/users/record_sign_in_attempt.sql`),
checks an unknown email against a dummy hash (same work, same answer as a wrong password), and
clears the count only on success.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency

from app import metrics
from app.auth.passwords import Passwords
from app.auth.repository import UserRepository
from app.auth.schemas import (
    SIGN_IN_RULES,
    SIGN_UP_RULES,
    AuthEnvelope,
    AuthSession,
    SignIn,
    SignUp,
    User,
    UserEnvelope,
)
from app.auth.tokens import Caller, TokenIssuer
from app.body import ApiOperation, documented_body, read_json
from app.errors import ApiError, error_responses

BAD_CREDENTIALS = "Invalid email or password."


def _session(tokens: TokenIssuer, user: User) -> AuthEnvelope:
    token = tokens.issue(user.id, user.email, user.name)
    return AuthEnvelope(AuthSession(token, "Bearer", tokens.ttl_s, user))


class AccountsController(Controller):
    """Public: mounted only when this service can issue tokens its own middleware accepts."""

    path = "/api/auth"
    tags = ["Accounts"]

    @post(
        "/signup",
        operation_id="SignUp",
        summary="Create an account and get a token",
        exclude_from_auth=True,
        status_code=201,
        operation_class=documented_body(SignUp),
        responses=error_responses(400, 409, 413, 415, 422, 503),
    )
    async def sign_up(
        self,
        request: Request[Any, Any, Any],
        users: NamedDependency[UserRepository],
        passwords: NamedDependency[Passwords],
        tokens: NamedDependency[TokenIssuer],
    ) -> Response[AuthEnvelope]:
        """A new identity with a new id; 409 when an account already has this email (any case)."""
        data = await read_json(request, SignUp, field_rules=SIGN_UP_RULES)
        password_hash = await passwords.hash(data.password)
        user = await users.create_account(email=data.email.strip(), name=data.name.strip(), password_hash=password_hash)
        if user is None:
            raise ApiError(409, "An account with this email already exists.")
        return Response(_session(tokens, user), status_code=201)

    @post(
        "/signin",
        operation_id="SignIn",
        summary="Sign in with email and password",
        exclude_from_auth=True,
        status_code=200,
        operation_class=documented_body(SignIn),
        responses=error_responses(400, 401, 413, 415, 422, 429, 503),
    )
    async def sign_in(
        self,
        request: Request[Any, Any, Any],
        users: NamedDependency[UserRepository],
        passwords: NamedDependency[Passwords],
        tokens: NamedDependency[TokenIssuer],
    ) -> AuthEnvelope:
        """401 for an unknown email and a wrong password alike; 429 with `Retry-After` while locked out."""
        data = await read_json(request, SignIn, field_rules=SIGN_IN_RULES)
        email = data.email.strip()
        attempt = await users.record_sign_in_attempt(email)
        if attempt.retry_after_s is not None:
            metrics.sign_in_failed("locked_out")
            metrics.rejected("sign_in_lockout")
            raise ApiError(
                429,
                "Too many failed sign-in attempts for this email; try again later.",
                headers={"Retry-After": str(attempt.retry_after_s)},
            )
        if not await passwords.verify(attempt.password_hash, data.password) or attempt.user is None:
            metrics.sign_in_failed("bad_credentials")
            raise ApiError(401, BAD_CREDENTIALS, headers={"WWW-Authenticate": 'Bearer realm="api"'})
        await users.clear_sign_in_failures(email)
        if attempt.password_hash is not None and passwords.needs_rehash(attempt.password_hash):
            await users.update_password_hash(attempt.user.id, await passwords.hash(data.password))
        return _session(tokens, attempt.user)


class MeController(Controller):
    path = "/api/auth/me"
    tags = ["Accounts"]
    security = [{"BearerAuth": []}]

    @get(
        "/", operation_id="GetMe", operation_class=ApiOperation, summary="Who am I", responses=error_responses(401, 503)
    )
    async def get_me(self, request: Request[Caller, Any, Any], users: NamedDependency[UserRepository]) -> UserEnvelope:
        """The caller's user. A caller known only by an external token gets its row created from the
        token's claims on first need, as a first task would, so `created_at` is always a timestamp."""
        return UserEnvelope(await users.ensure(request.user))

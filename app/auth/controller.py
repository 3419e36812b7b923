"""`/api/auth`: sign-up and sign-in (public), and `me` (bearer token).

Both public endpoints, once the body is valid, take a hashing place (503 at once when the queue is
full), then count the attempt against the client address's rate (AUTH_RATE_PER_MIN, 429). Sign-in
then counts the attempt for its (email, address) pair and the email's ceiling before checking the
password (see `sql/users/record_sign_in_attempt.sql`), checks an unknown email against a dummy hash
(same work, same answer as a wrong password), and clears the pair's count only on success.
"""

from __future__ import annotations

from typing import Any

from email_validator import EmailNotValidError, validate_email
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency

from app.auth.passwords import Passwords, password_problem
from app.auth.repository import UserRepository, client_key, normalize_email
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
from app.errors import ApiError, FieldError, InvalidInput, RateLimited, error_responses

BAD_CREDENTIALS = "Invalid email or password."
TOO_MANY_ATTEMPTS = "Too many sign-up or sign-in attempts from this address; try again later."


def _check_new_account(data: SignUp) -> None:
    """Rules beyond the body's shape: the email's characters (email-validator: NFC, no invisible,
    bidi or control characters) and the password's (not only whitespace, not a common one)."""
    problems = []
    try:
        validate_email(normalize_email(data.email), check_deliverability=False)
    except EmailNotValidError as exc:
        problems.append(FieldError("email", f"email is not a valid address: {exc}"))
    if reason := password_problem(data.password):
        problems.append(FieldError("password", reason))
    if problems:
        raise InvalidInput(problems)


async def _count_client_attempt(request: Request[Any, Any, Any], users: UserRepository) -> str:
    """AUTH_RATE_PER_MIN per client address (the socket peer, or what a trusted proxy says): 429."""
    client = client_key(request.client.host if request.client else None)
    retry_after_s = await users.count_client_attempt(client)
    if retry_after_s is not None:
        raise RateLimited(TOO_MANY_ATTEMPTS, retry_after_s)
    return client


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
        responses=error_responses(400, 409, 413, 415, 422, 429, 503),
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
        _check_new_account(data)
        async with passwords.reserve():
            await _count_client_attempt(request, users)
            password_hash = await passwords.hash(data.password)
        user = await users.create_account(email=data.email, name=data.name.strip(), password_hash=password_hash)
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
        async with passwords.reserve():
            client = await _count_client_attempt(request, users)
            attempt = await users.record_sign_in_attempt(data.email, client)
            if attempt.retry_after_s is not None:
                raise RateLimited(
                    "Too many failed sign-in attempts for this email; try again later.", attempt.retry_after_s
                )
            if not await passwords.verify(attempt.password_hash, data.password) or attempt.user is None:
                raise ApiError(401, BAD_CREDENTIALS, headers={"WWW-Authenticate": 'Bearer realm="api"'})
            await users.clear_sign_in_failures(data.email, client)
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

"""Bearer authentication for everything under /api (except handlers marked `exclude_from_auth`).

Only `Authorization: Bearer <jwt>` is a credential (scheme word case-insensitive, RFC 7235); not
another scheme, not a bare token, not a query parameter, not a cookie. Any failure is a 401 with
`WWW-Authenticate: Bearer` (RFC 6750), plus `error="invalid_token"` when a token was sent.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp, Scope

from app.auth.tokens import TokenError, TokenVerifier, UnknownKey
from app.errors import ApiError

MAX_AUTHORIZATION_BYTES = 8192

_MESSAGES = {
    "missing": "Missing bearer token.",
    "expired": "The token has expired.",
    "invalid": "The token is invalid.",
}


def unauthorized(reason: str) -> ApiError:
    challenge = 'Bearer realm="api"' if reason == "missing" else 'Bearer realm="api", error="invalid_token"'
    return ApiError(401, _MESSAGES[reason], headers={"WWW-Authenticate": challenge})


def authorization_header(scope: Scope) -> str | None:
    """The `Authorization` header, straight from the ASGI scope.

    Building Litestar's header container (`connection.headers`) to read one value cost more than the
    cached token check itself. Authorization is not a list header: two of them are ambiguous, so
    neither is accepted.
    """
    found: str | None = None
    for name, value in scope["headers"]:
        if name.lower() == b"authorization":
            if found is not None:
                raise TokenError("invalid", "malformed", "two Authorization headers")
            found = value.decode("latin-1")
    return found


def bearer_token(value: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header, or raise `TokenError("missing")`."""
    if not value:
        raise TokenError("missing")
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token or len(value) > MAX_AUTHORIZATION_BYTES:
        # A token was sent in some form, just not one we accept.
        raise TokenError("invalid", "not_bearer", "the Authorization header is not 'Bearer <token>'")
    return token


class JWTAuthMiddleware(AbstractAuthenticationMiddleware):
    """Verifies the bearer token and puts the `Caller` on `request.user`."""

    def __init__(self, app: ASGIApp, verifier: TokenVerifier, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.verifier = verifier

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        try:
            token = bearer_token(authorization_header(connection.scope))
            try:
                caller = self.verifier.verify(token)
            except UnknownKey:
                # The one path that may wait: an asymmetric token whose key is not cached (yet).
                caller = await self.verifier.verify_after_refresh(token)
        except TokenError as exc:
            if exc.reason != "missing":
                self.verifier.rejections.record(exc)
            raise unauthorized(exc.reason) from None
        return AuthenticationResult(user=caller, auth=None)

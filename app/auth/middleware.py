"""Bearer authentication for everything under /api (except handlers marked `exclude_from_auth`).

Only `Authorization: Bearer <jwt>` is a credential (scheme word case-insensitive, RFC 7235); not
another scheme, not a bare token, not a cookie, and a query parameter in one place only: a handler
marked `opt={"ticket_auth": True}` (`GET /api/events`, for the browser's EventSource) also accepts
`?ticket=` from `POST /api/events/ticket` when no Authorization header is sent (app/events/tickets.py).
Any failure is a 401 with `WWW-Authenticate: Bearer` (RFC 6750), plus `error="invalid_token"` when a
token (or a ticket) was sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from litestar.connection import ASGIConnection
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp, Scope

from app.auth.tokens import TokenError, TokenVerifier, UnknownKey
from app.errors import ApiError

if TYPE_CHECKING:
    from app.events.tickets import Tickets

MAX_AUTHORIZATION_BYTES = 8192

_MESSAGES = {
    "missing": "Missing bearer token.",
    "expired": "The token has expired.",
    "invalid": "The token is invalid.",
    "ticket": "The ticket is invalid, used or expired; ask POST /api/events/ticket for a new one.",
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


def query_ticket(query_string: bytes) -> str | None:
    """The `ticket` query parameter (the first one), if any."""
    if b"ticket" not in query_string:
        return None
    for name, value in parse_qsl(query_string.decode("utf-8", "replace"), keep_blank_values=True):
        if name == "ticket":
            return value
    return None


class JWTAuthMiddleware(AbstractAuthenticationMiddleware):
    """Verifies the bearer token and puts the `Caller` on `request.user`."""

    def __init__(self, app: ASGIApp, verifier: TokenVerifier, tickets: Tickets | None = None, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.verifier = verifier
        self.tickets = tickets

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        try:
            header = authorization_header(connection.scope)
            if header is None and self.tickets is not None and connection.route_handler.opt.get("ticket_auth"):
                ticket = query_ticket(connection.scope["query_string"])
                if ticket is not None:
                    ticket_caller = await self.tickets.use(ticket)
                    if ticket_caller is None:
                        raise unauthorized("ticket")
                    return AuthenticationResult(user=ticket_caller, auth=None)
            token = bearer_token(header)
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

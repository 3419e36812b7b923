"""Verifying bearer tokens (JWT) and turning their claims into the caller's identity."""

from __future__ import annotations

from typing import Any

import jwt
import msgspec

from app.config import Settings

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
MAX_USER_ID_CHARS = 255


class Caller(msgspec.Struct, frozen=True):
    """Who is calling: the token's subject and its optional profile claims. Put on `request.user`."""

    id: str
    email: str | None = None
    name: str | None = None


class TokenError(Exception):
    """The token is not acceptable. `reason` is safe to show: "expired" or "invalid"."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _text_claim(claims: dict[str, Any], name: str) -> str | None:
    """An optional profile claim, or None when it is not text PostgreSQL can store (NUL, lone surrogates)."""
    value = claims.get(name)
    if not isinstance(value, str) or not value or "\x00" in value:
        return None
    try:
        value.encode()
    except UnicodeEncodeError:
        return None
    return value


def identity_from_claims(claims: dict[str, Any]) -> Caller:
    """`sub`, or `user_id` when there is no `sub` (the hackathon frontend's claim); string or integer."""
    raw = claims.get("sub")
    if raw is None:
        raw = claims.get("user_id")
    # bool is an int subclass: `true` is not an identity.
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise TokenError("invalid")
    user_id = str(raw).strip()
    if not user_id or len(user_id) > MAX_USER_ID_CHARS or "\x00" in user_id or not user_id.isprintable():
        raise TokenError("invalid")
    return Caller(id=user_id, email=_text_claim(claims, "email"), name=_text_claim(claims, "name"))


class TokenVerifier:
    """Checks signature, `exp` (required), `nbf`/`iat` (with leeway) and `iss`/`aud` when configured."""

    def __init__(self, settings: Settings) -> None:
        self.secret = settings.jwt_secret
        self.hmac_algorithms = [a for a in settings.jwt_algorithms if a in HMAC_ALGORITHMS]
        self.leeway = settings.jwt_leeway_s
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.options: jwt.types.Options = {
            "require": ["exp"],
            # PyJWT >= 2.10 rejects a non-string `sub`; the contract accepts integers too.
            "verify_sub": False,
            "verify_iss": self.issuer is not None,
            "verify_aud": self.audience is not None,
        }

    def verify(self, token: str) -> Caller:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("invalid") from None
        algorithm = header.get("alg")
        if self.secret is None or algorithm not in self.hmac_algorithms:
            raise TokenError("invalid")
        try:
            claims = jwt.decode(
                token,
                key=self.secret,
                algorithms=self.hmac_algorithms,
                options=self.options,
                leeway=self.leeway,
                issuer=self.issuer,
                audience=self.audience,
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("expired") from None
        except jwt.PyJWTError:
            raise TokenError("invalid") from None
        return identity_from_claims(claims)

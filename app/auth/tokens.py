"""Verifying bearer tokens (JWT) and turning their claims into the caller's identity."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

import jwt
import msgspec

from app.config import Settings

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
MAX_USER_ID_CHARS = 255
# Verified tokens remembered (LRU), and for how long at most whatever their `exp` says, so that a
# change of keys (JWKS rotation) reaches tokens already seen within this many seconds.
TOKEN_CACHE_SIZE = 10_000
TOKEN_CACHE_MAX_AGE_S = 60.0


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
    value = claims.get(name)
    return value if isinstance(value, str) and value else None


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


def _int_claim(claims: dict[str, Any], name: str) -> int | None:
    # Already checked by PyJWT (an integer-like number) when present.
    value = claims.get(name)
    return None if value is None else int(value)


class TokenVerifier:
    """Checks signature, `exp` (required), `nbf`/`iat` (with leeway) and `iss`/`aud` when configured.

    A client sends the same token on every request until it expires, and verifying it (two base64
    and JSON decodes, an HMAC) was a fifth of a request's time. So verified tokens are remembered by
    their exact text in a bounded LRU, with the time window in which PyJWT would accept them
    (`nbf`/`iat` - leeway to `exp` + leeway, and at most `TOKEN_CACHE_MAX_AGE_S`): a hit outside it
    is verified again from scratch, so an expired token still gets "expired". Failures are never
    remembered. Same bytes, same secret, same answer: the cache changes no verdict.
    """

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
        # token -> (caller, valid from, valid until), in time.time() seconds
        self._verified: OrderedDict[str, tuple[Caller, float, float]] = OrderedDict()

    def verify(self, token: str) -> Caller:
        now = time.time()
        cached = self._verified.get(token)
        if cached is not None:
            caller, valid_from, valid_until = cached
            if valid_from <= now < valid_until:
                self._verified.move_to_end(token)
                return caller
            del self._verified[token]
        caller, claims = self._verify(token)
        exp = _int_claim(claims, "exp")
        assert exp is not None  # required
        not_before = max(_int_claim(claims, "nbf") or 0, _int_claim(claims, "iat") or 0)
        self._verified[token] = (
            caller,
            not_before - self.leeway,
            min(exp + self.leeway, now + TOKEN_CACHE_MAX_AGE_S),
        )
        if len(self._verified) > TOKEN_CACHE_SIZE:
            self._verified.popitem(last=False)
        return caller

    def _verify(self, token: str) -> tuple[Caller, dict[str, Any]]:
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
        return identity_from_claims(claims), claims

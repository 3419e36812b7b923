"""Verifying bearer tokens (JWT) and turning their claims into the caller's identity."""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import jwt
import msgspec

from app import metrics
from app.auth.jwks import JwksCache
from app.config import HMAC_ALGORITHMS, JWKS_ALGORITHMS, Settings

logger = logging.getLogger("app.auth.tokens")

MAX_USER_ID_CHARS = 255
# How many verified tokens are remembered (LRU): see `TokenVerifier`.
TOKEN_CACHE_SIZE = 10_000


class Caller(msgspec.Struct, frozen=True):
    """Who is calling: the token's subject and its optional profile claims. Put on `request.user`."""

    id: str
    email: str | None = None
    name: str | None = None


class TokenError(Exception):
    """The token is not acceptable. `reason` is safe to show the client: "missing", "expired" or
    "invalid". `cause` (a short label: metrics, log deduplication) and `detail` (one sentence, with
    the expected issuer/audience where relevant) are for the operator's log: never the token."""

    def __init__(self, reason: str, cause: str | None = None, detail: str | None = None) -> None:
        self.reason = reason
        self.cause = cause or reason
        self.detail = detail or self.cause.replace("_", " ")
        super().__init__(reason)


def _shown(value: object) -> str:
    """A client-chosen value (a `kid`) as it may appear in a log line: quoted, escaped, short."""
    text = repr(value)
    return text if len(text) <= 66 else text[:63] + "..."


class UnknownKey(TokenError):
    """An asymmetric token names a key the JWKS cache does not hold: `verify_after_refresh` may find it."""

    def __init__(self, kid: str = "", last_fetch_failed: bool = False) -> None:
        detail = f"unknown key: kid {_shown(kid)} is not in the JWKS"
        if last_fetch_failed:
            detail += " (the last JWKS fetch failed)"
        super().__init__("invalid", "unknown_key", detail)


REJECTION_LOG_INTERVAL_S = 10.0


class RejectionLog:
    """Logs why tokens are refused, at INFO, at most one line per cause per interval (per worker).

    A flood of bad tokens (a misconfigured client retrying, someone probing) makes one line per
    cause every `interval_s`, which says how many more were refused meanwhile; every refusal is
    still counted in the `token_rejections_total` metric.
    """

    def __init__(self, interval_s: float = REJECTION_LOG_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._logged_at: dict[str, float] = {}
        self._unlogged: dict[str, int] = {}

    def record(self, error: TokenError) -> None:
        metrics.token_rejected(error.cause)
        now = time.monotonic()
        logged_at = self._logged_at.get(error.cause)
        if logged_at is not None and now - logged_at < self.interval_s:
            self._unlogged[error.cause] = self._unlogged.get(error.cause, 0) + 1
            return
        self._logged_at[error.cause] = now
        unlogged = self._unlogged.pop(error.cause, 0)
        more = f" ({unlogged} more refused for this cause since the last line)" if unlogged else ""
        logger.info("token rejected: %s%s", error.detail, more, extra={"reason": error.cause})


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
        raise TokenError("invalid", "bad_subject", "no usable sub (or user_id) claim")
    user_id = str(raw).strip()
    if not user_id or len(user_id) > MAX_USER_ID_CHARS or "\x00" in user_id or not user_id.isprintable():
        raise TokenError("invalid", "bad_subject", "the sub (or user_id) claim is not a usable id")
    return Caller(id=user_id, email=_text_claim(claims, "email"), name=_text_claim(claims, "name"))


# NumericDate (RFC 7519): a JSON number of seconds. Beyond 2**53 a float no longer counts seconds.
_MAX_NUMERIC_DATE = 2**53
_TIME_CLAIMS = ("exp", "nbf", "iat")


def _numeric_dates(claims: dict[str, Any]) -> None:
    """`exp`/`nbf`/`iat`, when present, must be finite JSON numbers in range.

    PyJWT converts them with `int()`, so `"9999999999"` passed and `10**400` made a token that never
    expires.
    """
    for name in _TIME_CLAIMS:
        value = claims.get(name)
        if value is None and name not in claims:
            continue
        # bool is an int subclass: `true` is not a date.
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TokenError("invalid", "bad_time_claim", f"{name} is not a NumericDate")
        # (An int as large as 10**400 cannot become a float: compare before isfinite.)
        if not -_MAX_NUMERIC_DATE < value < _MAX_NUMERIC_DATE or not math.isfinite(value):
            raise TokenError("invalid", "bad_time_claim", f"{name} is out of range")


def _dates_are_numbers(token: str) -> bool:
    """For a token whose signature PyJWT has already verified: are its time claims NumericDates?"""
    try:
        _numeric_dates(jwt.decode(token, options={"verify_signature": False}))
    except (TokenError, jwt.PyJWTError):
        return False
    return True


def _int_claim(claims: dict[str, Any], name: str) -> int:
    # Present claims were already checked: finite numbers in range.
    value = claims.get(name)
    return 0 if value is None else int(value)


# The JWKS key an asymmetric token was verified with: (kid, alg, key).
KeyRef = tuple[str, str, jwt.PyJWK]


class TokenVerifier:
    """Checks signature, `exp` (required), `nbf`/`iat` (with leeway) and `iss`/`aud` when configured;
    the three time claims must be JSON numbers, and the lifetime at most JWT_MAX_LIFETIME_S.

    The token's `alg` (from the allow-list) picks the keys: HMAC algorithms only the secret,
    asymmetric ones only the JWKS keys named by `kid` whose type fits the algorithm.

    A client sends the same token on every request until it expires, and verifying it (two base64
    and JSON decodes, an HMAC) was a fifth of a request's time. So verified tokens are remembered by
    their exact text in a bounded LRU, with the time window in which PyJWT accepts them (`nbf`/`iat`
    - leeway to `exp` + leeway) and, for a JWKS token, the key object it was verified with. A hit is
    used only inside that window and while the JWKS cache still holds that very key (a refreshed
    key set has new objects, so a removed key stops working exactly as without the cache); anything
    else is verified again from scratch, so an expired token still gets "expired". Failures are
    never remembered. Same bytes, same key, same answer: the cache changes no verdict.
    """

    def __init__(self, settings: Settings) -> None:
        self.secret = settings.jwt_secret
        self.hmac_algorithms = [a for a in settings.jwt_algorithms if a in HMAC_ALGORITHMS]
        self.leeway = settings.jwt_leeway_s
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.max_lifetime_s = settings.jwt_max_lifetime_s
        self.options: jwt.types.Options = {
            "require": ["exp"],
            # PyJWT >= 2.10 rejects a non-string `sub`; the contract accepts integers too.
            "verify_sub": False,
            "verify_iss": self.issuer is not None,
            "verify_aud": self.audience is not None,
        }
        self.jwks: JwksCache | None = None
        self.jwks_algorithms: frozenset[str] = frozenset()
        if settings.jwt_jwks_url is not None:
            self.jwks_algorithms = frozenset(a for a in settings.jwt_algorithms if a in JWKS_ALGORITHMS)
            self.jwks = JwksCache(settings.jwt_jwks_url, self.jwks_algorithms, settings.jwt_jwks_refresh_s)
        # Public keys come from elsewhere: refuse weak ones (e.g. RSA under 2048 bits) rather than warn.
        self.jwks_options: jwt.types.Options = {**self.options, "enforce_minimum_key_length": True}
        self.rejections = RejectionLog()
        # token -> (caller, valid from, valid until (time.time() seconds), JWKS key or None)
        self._verified: OrderedDict[str, tuple[Caller, float, float, KeyRef | None]] = OrderedDict()

    @asynccontextmanager
    async def lifespan(self, _app: object) -> AsyncIterator[None]:
        """Starts the JWKS prefetch (in the background) and closes its HTTP client at shutdown."""
        if self.jwks is None:
            yield
            return
        async with self.jwks.running():
            yield

    def verify(self, token: str) -> Caller:
        """Never waits. Raises `UnknownKey` for an asymmetric token whose key is not cached."""
        cached = self._verified.get(token)
        if cached is not None:
            caller, valid_from, valid_until, key_ref = cached
            if valid_from <= time.time() < valid_until and (key_ref is None or self._still_published(key_ref)):
                self._verified.move_to_end(token)
                return caller
            del self._verified[token]
        return self._remember(token, *self._claims(token))

    def _claims(self, token: str) -> tuple[dict[str, Any], KeyRef | None]:
        header = _header(token)
        algorithm = header.get("alg")
        if algorithm not in self.hmac_algorithms:
            kid, algorithm = self._jwks_target(header)
            key = self.jwks.cached(kid, algorithm) if self.jwks is not None else None
            if key is None:
                raise UnknownKey(kid, self.jwks is not None and self.jwks.last_fetch_failed)
            return self._claims_with_key(token, key, algorithm), (kid, algorithm, key)
        if self.secret is None:
            raise TokenError("invalid", "algorithm_not_allowed", f"algorithm {_shown(algorithm)} needs JWT_SECRET")
        return self._decode(token, self.secret, self.hmac_algorithms, self.options), None

    async def verify_after_refresh(self, token: str) -> Caller:
        """For a token `verify` answered with `UnknownKey`: refresh the JWKS (rate-limited) and retry."""
        kid, algorithm = self._jwks_target(_header(token))
        key = await self.jwks.refreshed(kid, algorithm) if self.jwks is not None else None
        if key is None:
            raise UnknownKey(kid, self.jwks is not None and self.jwks.last_fetch_failed)
        return self._remember(token, self._claims_with_key(token, key, algorithm), (kid, algorithm, key))

    def _remember(self, token: str, claims: dict[str, Any], key_ref: KeyRef | None) -> Caller:
        caller = identity_from_claims(claims)
        valid_from = max(_int_claim(claims, "nbf"), _int_claim(claims, "iat")) - self.leeway
        valid_until = _int_claim(claims, "exp") + self.leeway
        self._verified[token] = (caller, valid_from, valid_until, key_ref)
        if len(self._verified) > TOKEN_CACHE_SIZE:
            self._verified.popitem(last=False)
        return caller

    def _still_published(self, key_ref: KeyRef) -> bool:
        kid, algorithm, key = key_ref
        return self.jwks is not None and self.jwks.cached(kid, algorithm) is key

    def _jwks_target(self, header: dict[str, Any]) -> tuple[str, str]:
        """`(kid, alg)` of a token to check against the JWKS, or raise: the alg must be allowed."""
        algorithm = header.get("alg")
        kid = header.get("kid")
        # isinstance first: a crafted header may carry an unhashable `alg`.
        if not isinstance(algorithm, str) or algorithm not in self.jwks_algorithms:
            raise TokenError(
                "invalid", "algorithm_not_allowed", f"algorithm {_shown(algorithm)} is not in JWT_ALGORITHMS"
            )
        if not isinstance(kid, str) or not kid:
            raise TokenError("invalid", "no_kid", "an asymmetric token without a kid")
        return kid, algorithm

    def _claims_with_key(self, token: str, key: jwt.PyJWK, algorithm: str) -> dict[str, Any]:
        return self._decode(token, key, [algorithm], self.jwks_options)

    def _decode(
        self, token: str, key: str | jwt.PyJWK, algorithms: list[str], options: jwt.types.Options
    ) -> dict[str, Any]:
        """Signature, exp/nbf/iat (with leeway), iss/aud: PyJWT's checks, as TokenError's two reasons."""
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=algorithms,
                options=options,
                leeway=self.leeway,
                issuer=self.issuer,
                audience=self.audience,
            )
        except jwt.ExpiredSignatureError:
            # PyJWT read `exp` with int(): "expired" only for a real NumericDate (`true` is 1).
            if not _dates_are_numbers(token):
                raise TokenError("invalid", "bad_time_claim", "exp, nbf or iat is not a NumericDate") from None
            raise TokenError("expired", "expired", "expired (exp is past, beyond JWT_LEEWAY_S)") from None
        except jwt.InvalidIssuerError:
            raise TokenError("invalid", "wrong_issuer", f"wrong issuer (expected {self.issuer!r})") from None
        except jwt.InvalidAudienceError:
            raise TokenError("invalid", "wrong_audience", f"wrong audience (expected {self.audience!r})") from None
        except jwt.InvalidSignatureError:
            raise TokenError("invalid", "bad_signature", "bad signature") from None
        except jwt.ImmatureSignatureError:
            raise TokenError("invalid", "not_yet_valid", "not valid yet (nbf or iat in the future)") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError("invalid", "missing_claim", f"missing required claim {exc.claim!r}") from None
        except jwt.PyJWTError as exc:
            raise TokenError("invalid", "malformed", f"malformed ({type(exc).__name__})") from None
        self._check_times(claims)
        return claims

    def _check_times(self, claims: dict[str, Any]) -> None:
        """NumericDates only, and a lifetime (`exp` - `iat`, or `exp` - now) within JWT_MAX_LIFETIME_S.

        A token that passes keeps passing while cached: its `exp` - `iat` never changes and its
        `exp` - now only shrinks.
        """
        _numeric_dates(claims)
        issued = claims.get("iat")
        lifetime = claims["exp"] - (time.time() if issued is None else issued)
        if lifetime > self.max_lifetime_s:
            raise TokenError(
                "invalid", "lifetime_too_long", f"lifetime beyond JWT_MAX_LIFETIME_S ({self.max_lifetime_s} s)"
            )


def _header(token: str) -> dict[str, Any]:
    try:
        return jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenError("invalid", "malformed", "malformed (not a JWT)") from None


class TokenIssuer:
    """Issues the tokens of sign-up and sign-in: HS256 with the same secret the verifier uses, with
    `sub`, `user_id`, `email`, `name`, `iat`, `exp` (and `iss`/`aud` when configured), so that this
    API and a frontend sharing the secret accept the same tokens."""

    ALGORITHM = "HS256"

    def __init__(self, secret: str, *, ttl_s: int, issuer: str | None, audience: str | None) -> None:
        self.secret = secret
        self.ttl_s = ttl_s
        self.issuer = issuer
        self.audience = audience

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenIssuer | None:
        """None when this service's own tokens would not be accepted (no secret, or HS256 not allowed)."""
        if settings.jwt_secret is None or cls.ALGORITHM not in settings.jwt_algorithms:
            return None
        return cls(
            settings.jwt_secret,
            ttl_s=settings.access_token_ttl_s,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )

    def issue(self, user_id: str, email: str | None, name: str | None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": user_id,
            "user_id": user_id,
            "email": email,
            "name": name,
            "iat": now,
            "exp": now + self.ttl_s,
        }
        if self.issuer is not None:
            claims["iss"] = self.issuer
        if self.audience is not None:
            claims["aud"] = self.audience
        return jwt.encode(claims, self.secret, algorithm=self.ALGORITHM)

"""The public keys of asymmetric tokens: a cache of the JWKS at `JWT_JWKS_URL`.

The policy, in one place:
- Keys are looked up by `(kid, alg)`. A JWK serves an algorithm only when its key type fits it
  (`KEY_TYPES`: OKP Ed25519 for EdDSA, EC P-256 for ES256, RSA for RS256, ...), when its own `alg`
  (if any) is that algorithm and its `use` (if any) is `sig`. HMAC (`oct`) keys are never taken
  from a JWKS. Keys without a `kid` are ignored: a token must name its key.
- An unknown `kid` triggers a refresh, but at most one fetch starts per `refresh_interval_s` for the
  whole cache (not per kid), so a flood of tokens with random kids causes at most one fetch per
  interval. Requests arriving while a fetch is in flight wait for that same fetch.
- After a failed fetch the wait is shorter, `FAILED_FETCH_COOLDOWN_S` (as `jose`'s remote key sets
  do): a JWKS that was down (at start, say) is used within seconds of coming back, and while it
  stays down the cache still tries at most once per cooldown, one fetch at a time.
- A successful fetch replaces the whole key set, so a key removed from the JWKS stops working.
  A failed fetch (unreachable, timeout, not 200, not a JWKS) keeps the keys already cached and
  logs a warning "JWKS fetch failed" with the URL.
- Once the set is older than `max_age_s` (5 x the interval), the next lookup starts a
  refresh in the background and is answered from the cache meanwhile: removals are noticed even
  when no unknown kid shows up, and no request waits for it.
- Every fetch is bounded by `FETCH_TIMEOUT_S` in total; nothing waits on the JWKS at start-up.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import jwt
import msgspec

logger = logging.getLogger("app.auth.jwks")

FETCH_TIMEOUT_S = 3.0
FAILED_FETCH_COOLDOWN_S = 2.0
MAX_AGE_INTERVALS = 5
# A JWKS is a few keys; anything much larger is not one.
MAX_JWKS_BYTES = 256 * 1024

_ANY_CURVE: frozenset[str] = frozenset()
# alg -> (kty, accepted curves; empty: the key type has none).
KEY_TYPES: dict[str, tuple[str, frozenset[str]]] = {
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "RS256": ("RSA", _ANY_CURVE),
    "RS384": ("RSA", _ANY_CURVE),
    "RS512": ("RSA", _ANY_CURVE),
    "PS256": ("RSA", _ANY_CURVE),
    "PS384": ("RSA", _ANY_CURVE),
    "PS512": ("RSA", _ANY_CURVE),
}

Keys = dict[tuple[str, str], jwt.PyJWK]


class JwksError(Exception):
    """The JWKS response is not usable (status, size, shape)."""


def _fits(jwk: dict[str, Any], algorithm: str) -> bool:
    kty, curves = KEY_TYPES[algorithm]
    return (
        jwk.get("kty") == kty
        and (not curves or jwk.get("crv") in curves)
        and jwk.get("alg", algorithm) == algorithm
        and jwk.get("use", "sig") == "sig"
    )


def parse_jwks(body: bytes, algorithms: Iterable[str]) -> Keys:
    """The usable keys of a JWKS document for `algorithms`, by `(kid, alg)`; unusable keys are skipped."""
    try:
        document = msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise JwksError("not JSON") from None
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise JwksError('no "keys" list')
    wanted = [a for a in algorithms if a in KEY_TYPES]
    keys: Keys = {}
    for jwk in entries:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str) or not jwk["kid"]:
            continue
        for algorithm in wanted:
            if not _fits(jwk, algorithm):
                continue
            try:
                keys[(jwk["kid"], algorithm)] = jwt.PyJWK(jwk, algorithm)
            except jwt.PyJWTError:
                logger.warning("JWKS key %r is not a valid %s key: skipped", jwk["kid"], algorithm)
    return keys


class JwksCache:
    """The JWKS keys of one URL, fetched with a non-blocking client; see the module docstring."""

    def __init__(self, url: str, algorithms: Iterable[str], refresh_interval_s: float) -> None:
        self.url = url
        self.algorithms = tuple(a for a in algorithms if a in KEY_TYPES)
        self.refresh_interval_s = refresh_interval_s
        self.max_age_s = MAX_AGE_INTERVALS * refresh_interval_s
        self.failed_cooldown_s = min(FAILED_FETCH_COOLDOWN_S, refresh_interval_s)
        # Whether the latest fetch failed (none has happened yet: nothing to wait for either).
        self.last_fetch_failed = False
        self._keys: Keys = {}
        self._fetched_at: float | None = None
        self._attempted_at = -math.inf
        self._inflight: asyncio.Task[None] | None = None
        # Created on first use, inside the event loop that serves requests.
        self._client: httpx.AsyncClient | None = None

    def __deepcopy__(self, memo: dict[int, Any]) -> JwksCache:
        # Litestar deep-copies a Router when it is registered, middleware kwargs included: the
        # middleware's verifier and the lifespan's must still share this one cache.
        return self

    def cached(self, kid: str, algorithm: str) -> jwt.PyJWK | None:
        """The cached key, without waiting; a set past its max age starts a background refresh."""
        if self._fetched_at is not None and time.monotonic() - self._fetched_at > self.max_age_s:
            self._start_refresh()
        return self._keys.get((kid, algorithm))

    async def refreshed(self, kid: str, algorithm: str) -> jwt.PyJWK | None:
        """The key after a refresh, when one may start now or is already in flight; else the cache's."""
        fetch = self._start_refresh()
        if fetch is not None:
            # shield: a client that hangs up must not cancel the fetch other requests wait for.
            await asyncio.shield(fetch)
        return self._keys.get((kid, algorithm))

    def _start_refresh(self) -> asyncio.Task[None] | None:
        """The fetch in flight, else a new one if the last one started long enough ago, else None."""
        if self._inflight is not None:
            return self._inflight
        now = time.monotonic()
        wait = self.failed_cooldown_s if self.last_fetch_failed else self.refresh_interval_s
        if now - self._attempted_at < wait:
            return None
        self._attempted_at = now
        self._inflight = asyncio.get_running_loop().create_task(self._refresh(), name="jwks-refresh")
        return self._inflight

    async def _refresh(self) -> None:
        try:
            keys = await self._fetch()
        except Exception as exc:  # any failure: keep the keys we have (CancelledError is not one)
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            self.last_fetch_failed = True
            logger.warning(
                "JWKS fetch failed: %s (%s); next attempt allowed in %s s", self.url, reason, self.failed_cooldown_s
            )
        else:
            self.last_fetch_failed = False
            self._keys = keys
            self._fetched_at = time.monotonic()
            logger.info("JWKS fetched from %s: %d usable key(s)", self.url, len(keys))
        finally:
            self._inflight = None

    async def _fetch(self) -> Keys:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=FETCH_TIMEOUT_S, headers={"Accept": "application/json"})
        body = bytearray()
        # httpx's timeout bounds each network operation; this bounds the whole fetch.
        async with asyncio.timeout(FETCH_TIMEOUT_S), self._client.stream("GET", self.url) as response:
            if response.status_code != 200:
                raise JwksError(f"HTTP {response.status_code}")
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise JwksError("response too large")
        return parse_jwks(bytes(body), self.algorithms)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """For the app's lifespan: prefetch in the background (start-up never waits), close at the end."""
        self._start_refresh()
        try:
            yield
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        if self._inflight is not None:
            self._inflight.cancel()
            await asyncio.gather(self._inflight, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

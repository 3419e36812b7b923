"""The verified-token cache changes no verdict: same answers as PyJWT, only fewer decodes."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest

from app.auth import tokens
from app.auth.tokens import TokenError, TokenVerifier
from app.config import Settings

SECRET = "cache-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
LEEWAY = 30


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Drives both the cache's clock and PyJWT's."""
    fake = Clock()
    monkeypatch.setattr(tokens, "time", fake)

    class FakeDatetime:
        @staticmethod
        def now(tz: Any = None) -> Any:
            class Stamp:
                @staticmethod
                def timestamp() -> float:
                    return fake.now

            return Stamp()

    monkeypatch.setattr(jwt.api_jwt, "datetime", FakeDatetime)
    return fake


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(tokens.jwt, "decode", counting)
    return calls


@pytest.fixture
def verifier() -> TokenVerifier:
    return TokenVerifier(Settings.from_mapping({"JWT_SECRET": SECRET, "JWT_LEEWAY_S": str(LEEWAY)}))


def token(now: float, *, sub: str = "alice", **claims: Any) -> str:
    payload: dict[str, Any] = {"sub": sub, "iat": int(now), "exp": int(now) + 3600, **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, SECRET, algorithm="HS256")


def test_a_token_is_verified_once_then_remembered(verifier: TokenVerifier, clock: Clock, decodes: list[str]) -> None:
    tok = token(clock.now, email="a@example.com")
    first = verifier.verify(tok)
    assert verifier.verify(tok) == first
    assert first.id == "alice" and first.email == "a@example.com"
    assert len(decodes) == 1


def test_an_expired_token_is_expired_even_when_remembered(
    verifier: TokenVerifier, clock: Clock, decodes: list[str]
) -> None:
    tok = token(clock.now, exp=int(clock.now) + 10)
    verifier.verify(tok)
    clock.now += 10 + LEEWAY - 1  # still inside the leeway
    verifier.verify(tok)
    clock.now += 2
    with pytest.raises(TokenError) as caught:
        verifier.verify(tok)
    assert caught.value.reason == "expired"


def test_failures_are_not_remembered(verifier: TokenVerifier, clock: Clock, decodes: list[str]) -> None:
    # Not valid yet (beyond the leeway): refused, and accepted once its time has come.
    tok = token(clock.now, nbf=int(clock.now) + LEEWAY + 60)
    with pytest.raises(TokenError):
        verifier.verify(tok)
    with pytest.raises(TokenError):
        verifier.verify(tok)
    clock.now += 61
    assert verifier.verify(tok).id == "alice"
    assert len(decodes) == 3


def test_a_tampered_token_is_not_the_remembered_one(verifier: TokenVerifier, clock: Clock) -> None:
    tok = token(clock.now)
    verifier.verify(tok)
    head, _payload, signature = tok.split(".")
    forged = f"{head}.{token(clock.now, sub='mallory').split('.')[1]}.{signature}"
    with pytest.raises(TokenError):
        verifier.verify(forged)


def test_the_cache_is_bounded(
    verifier: TokenVerifier, clock: Clock, decodes: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens, "TOKEN_CACHE_SIZE", 3)
    toks = [token(clock.now, sub=f"user-{i}") for i in range(5)]
    for tok in toks:
        verifier.verify(tok)
    assert len(verifier._verified) == 3
    verifier.verify(toks[-1])  # recent: still there
    assert len(decodes) == 5
    verifier.verify(toks[0])  # evicted: verified again
    assert len(decodes) == 6

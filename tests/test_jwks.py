"""Asymmetric tokens verified against a JWKS (issue 6).

Real HTTP against the real app, and a real JWKS endpoint: a small HTTP server on 127.0.0.1 whose
key set and availability each test changes, counting the fetches it answers. Keys are generated
here with `cryptography`. Intervals are short (`JWT_JWKS_REFRESH_S` below one second) to keep the
rate-limit and rotation tests fast.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import math
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from conftest import SECRET, LiveServer, bearer, free_port, make_token
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from harness import recording
from jwt.algorithms import ECAlgorithm

from app.auth.jwks import FAILED_FETCH_COOLDOWN_S, FETCH_TIMEOUT_S, KEY_TYPES
from app.config import JWKS_ALGORITHMS, ConfigError, Settings

PROBE = "/api/tasks?limit=1"
BETTER_AUTH_URL = "http://localhost:3000"


# --- keys -------------------------------------------------------------------------------------


@dataclass
class SigningKey:
    """A private key, its public JWK as a JWKS would publish it, and a way to sign tokens."""

    kid: str
    alg: str
    private: Any
    jwk: dict[str, Any]

    def token(self, sub: Any = "jwks-user", *, alg: str | None = None, **claims: Any) -> str:
        return make_token(sub, secret=self.private, algorithm=alg or self.alg, headers={"kid": self.kid}, **claims)

    def public_pem(self) -> bytes:
        return bytes(
            self.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


def new_key(kind: str, *, alg: str, publish_alg: bool = False, rsa_bits: int = 2048, **extra: Any) -> SigningKey:
    """`kind`: ed25519, ed448, p256, p384, p521 or rsa. `publish_alg`: put `alg` in the JWK."""
    private: Any
    if kind == "ed25519":
        private = ed25519.Ed25519PrivateKey.generate()
    elif kind == "ed448":
        private = ed448.Ed448PrivateKey.generate()
    elif kind == "rsa":
        private = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    else:
        curve = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1(), "p521": ec.SECP521R1()}[kind]
        private = ec.generate_private_key(curve)
    jwk = jwt.get_algorithm_by_name(alg).to_jwk(private.public_key(), as_dict=True)
    kid = f"{kind}-{uuid.uuid4().hex[:8]}"
    jwk.update(kid=kid, **extra)
    if publish_alg:
        jwk["alg"] = alg
    return SigningKey(kid=kid, alg=alg, private=private, jwk=jwk)


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    """Keys as real providers publish them: Better Auth's Ed25519 JWK has no `alg`, Auth0's RSA has."""
    return {
        "ed25519": new_key("ed25519", alg="EdDSA"),
        "ed448": new_key("ed448", alg="EdDSA", publish_alg=True),
        "p256": new_key("p256", alg="ES256", publish_alg=True),
        "p384": new_key("p384", alg="ES384"),
        "p521": new_key("p521", alg="ES512"),
        "rsa": new_key("rsa", alg="RS256"),
        "rs256": new_key("rsa", alg="RS256", publish_alg=True, use="sig"),
        "rsa1024": new_key("rsa", alg="RS256", rsa_bits=1024),
        "encryption": new_key("p256", alg="ES256", use="enc"),
    }


# --- the JWKS endpoint ------------------------------------------------------------------------


class JwksServer:
    """A JWKS endpoint on 127.0.0.1.

    `mode`: ok, error (503), garbage (200, not JSON), hang (no answer), drip (a byte now and then).
    """

    def __init__(self, keys: list[dict[str, Any]] | None = None) -> None:
        self.keys: list[dict[str, Any]] = list(keys or [])
        self.mode = "ok"
        self.delay_s = 0.0
        self.fetches = 0  # requests received
        self.served = 0  # responses finished (or given up, when hanging)
        self._lock = threading.Lock()
        self._release = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with owner._lock:
                    owner.fetches += 1
                try:
                    owner._answer(self)
                finally:
                    with owner._lock:
                        owner.served += 1

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api/auth/jwks"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        if self.mode == "hang":
            self._release.wait(30)
            return
        if self.mode == "drip":
            handler.send_response(200)
            handler.send_header("Content-Length", "100000")
            handler.end_headers()
            while not self._release.wait(0.2):
                try:
                    handler.wfile.write(b" ")
                    handler.wfile.flush()
                except OSError:
                    return
            return
        time.sleep(self.delay_s)
        if self.mode == "error":
            status, body = 503, b"unavailable"
        elif self.mode == "garbage":
            status, body = 200, b"<html>not a jwks</html>"
        else:
            status, body = 200, json.dumps({"keys": self.keys}).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def publish(self, *keys: SigningKey) -> None:
        """Replace the published key set."""
        self.keys = [key.jwk for key in keys]

    def wait_served(self, count: int, timeout: float = 10) -> None:
        """Until `count` responses went out, plus a moment for the app to take the keys in."""
        deadline = time.monotonic() + timeout
        while self.served < count:
            assert time.monotonic() < deadline, f"JWKS served {self.served} of {count} responses"
            time.sleep(0.01)
        time.sleep(0.05)

    def close(self) -> None:
        self._release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.close()


# --- the app ----------------------------------------------------------------------------------


ALL_ALGORITHMS = ("EdDSA", "ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512")


def jwks_settings(base: Settings, url: str, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "jwt_jwks_url": url,
        "jwt_algorithms": (*ALL_ALGORITHMS, "HS256"),
        "jwt_jwks_refresh_s": 60.0,
        "db_pool_min_size": 1,
        "db_pool_max_size": 4,
    }
    values.update(changes)
    return base.with_(**values)


@pytest.fixture
def start_app(base_settings: Settings) -> Iterator[Callable[..., LiveServer]]:
    """Start the real app with JWKS settings (`jwks_settings` keywords); stopped after the test."""
    started: list[LiveServer] = []

    def start(url: str, **changes: Any) -> LiveServer:
        server = LiveServer(jwks_settings(base_settings, url, **changes)).__enter__()
        started.append(server)
        return server

    yield start
    for server in started:
        server.__exit__()


@pytest.fixture(scope="module")
def full_jwks(keys: dict[str, SigningKey]) -> Iterator[JwksServer]:
    """Every test key, plus an HMAC (`oct`) key that must never be used."""
    server = JwksServer([key.jwk for key in keys.values()] + [OCT_JWK])
    yield server
    server.close()


@pytest.fixture(scope="module")
def full_app(base_settings: Settings, full_jwks: JwksServer) -> Iterator[LiveServer]:
    """Both modes at once: every asymmetric algorithm via the JWKS, and HS256 with the secret."""
    with LiveServer(jwks_settings(base_settings, full_jwks.url)) as server:
        full_jwks.wait_served(1)
        yield server


OCT_SECRET = b"an-hmac-key-published-in-a-jwks-0123456789"
OCT_JWK = {"kty": "oct", "kid": "oct-1", "k": base64.urlsafe_b64encode(OCT_SECRET).rstrip(b"=").decode()}


def status(server: LiveServer, token: str) -> int:
    return httpx.get(server.url + PROBE, headers=bearer(token), timeout=30).status_code


def statuses(server: LiveServer, tokens: list[str]) -> list[int]:
    """All requests at once, as concurrent clients would send them."""

    async def run() -> list[int]:
        limits = httpx.Limits(max_connections=len(tokens))
        async with httpx.AsyncClient(base_url=server.url, timeout=30, limits=limits) as http:
            answers = await asyncio.gather(*(http.get(PROBE, headers=bearer(t)) for t in tokens))
        return [answer.status_code for answer in answers]

    return asyncio.run(run())


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made_token(
    header: dict[str, Any], payload: dict[str, Any], sign: Callable[[bytes], bytes] | None = None
) -> str:
    """A token PyJWT would refuse to produce (`alg: none`, an HMAC keyed with a public key...)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = sign(signing_input.encode()) if sign is not None else b""
    return f"{signing_input}.{b64(signature)}"


def hmac_sha256(key: bytes) -> Callable[[bytes], bytes]:
    return lambda message: hmac.new(key, message, hashlib.sha256).digest()


def claims(sub: str = "jwks-user", **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": sub, "iat": now, "exp": now + 600, **extra}


# --- each algorithm, identity -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_name", "alg"),
    [
        ("ed25519", "EdDSA"),
        ("ed448", "EdDSA"),
        ("p256", "ES256"),
        ("p384", "ES384"),
        ("p521", "ES512"),
        ("rs256", "RS256"),
        ("rsa", "RS256"),
        ("rsa", "RS384"),
        ("rsa", "RS512"),
        ("rsa", "PS256"),
        ("rsa", "PS384"),
        ("rsa", "PS512"),
    ],
)
def test_each_algorithm_passes(full_app: LiveServer, keys: dict[str, SigningKey], key_name: str, alg: str) -> None:
    assert status(full_app, keys[key_name].token(alg=alg)) == 200


def test_identity_rules_are_the_same_as_for_hs256(
    full_app: LiveServer, keys: dict[str, SigningKey], db: psycopg.Connection[Any]
) -> None:
    """`sub` (else `user_id`), email and name as Better Auth sends them; the user row on first write."""
    user_id = f"ba-{uuid.uuid4()}"
    token = keys["ed25519"].token(user_id, email="ada@example.com", name="Ada", iss=BETTER_AUTH_URL)
    created = httpx.post(full_app.url + "/api/tasks", json={"title": "From Better Auth"}, headers=bearer(token))
    assert created.status_code == 201
    assert created.json()["data"]["user_id"] == user_id
    row = db.execute("SELECT email, name FROM users WHERE id = %s", [user_id]).fetchone()
    assert row == ("ada@example.com", "Ada")

    numeric = keys["p256"].token(None, user_id=uuid.uuid4().int % 10**15)
    listed = httpx.get(full_app.url + "/api/tasks", headers=bearer(numeric))
    assert listed.status_code == 200
    assert listed.json()["meta"]["total"] == 0

    assert status(full_app, keys["ed25519"].token(None)) == 401  # no identity at all


def test_both_modes_at_once(full_app: LiveServer, keys: dict[str, SigningKey]) -> None:
    assert status(full_app, make_token("hs-user")) == 200
    assert status(full_app, keys["ed25519"].token()) == 200
    # An HS256 token is checked against the secret whatever `kid` it names.
    assert status(full_app, make_token("hs-user", headers={"kid": keys["rsa"].kid})) == 200
    assert status(full_app, make_token("hs-user", secret=SECRET[::-1])) == 401


# --- what must be rejected --------------------------------------------------------------------


def test_wrong_key_tampered_or_expired_token_is_rejected(full_app: LiveServer, keys: dict[str, SigningKey]) -> None:
    known = keys["ed25519"]
    impostor = new_key("ed25519", alg="EdDSA")
    impostor.kid = known.kid  # signed by another key, naming the published one
    assert status(full_app, impostor.token()) == 401

    header, payload, signature = known.token("alice").split(".")
    forged = b64(json.dumps(claims("mallory")).encode())
    assert status(full_app, f"{header}.{forged}.{signature}") == 401
    assert status(full_app, f"{header}.{payload}.{signature[:-4]}AAAA") == 401
    assert status(full_app, f"{header}.{payload}.{signature}") == 200

    expired = httpx.get(full_app.url + PROBE, headers=bearer(known.token(exp_in=-3600)))
    assert expired.status_code == 401
    assert "expired" in expired.json()["error"]["message"]
    assert status(full_app, known.token(exp_in=None)) == 401  # `exp` is required


def test_key_type_must_fit_the_algorithm(full_app: LiveServer, keys: dict[str, SigningKey]) -> None:
    # The RS256-only JWK (its `alg` says so) does not serve PS256, though it is an RSA key.
    assert status(full_app, keys["rs256"].token(alg="PS256")) == 401
    # An ES256 token naming the Ed25519 key's kid (signed with some P-256 key).
    mismatched = new_key("p256", alg="ES256")
    mismatched.kid = keys["ed25519"].kid
    assert status(full_app, mismatched.token()) == 401
    # A P-384 key does not serve ES256 (signed with it and SHA-256 all the same).
    es256_with_p384 = ECAlgorithm(ECAlgorithm.SHA256)
    token = hand_made_token(
        {"alg": "ES256", "kid": keys["p384"].kid},
        claims(),
        lambda message: es256_with_p384.sign(message, keys["p384"].private),
    )
    assert status(full_app, token) == 401


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # signing with RSA-1024
def test_weak_or_encryption_keys_are_not_used(full_app: LiveServer, keys: dict[str, SigningKey]) -> None:
    assert status(full_app, keys["rsa1024"].token()) == 401
    assert status(full_app, keys["encryption"].token()) == 401  # `use: enc`


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # HS512, the secret as is
def test_algorithm_not_in_allow_list_is_rejected(
    start_app: Callable[..., LiveServer], full_jwks: JwksServer, keys: dict[str, SigningKey]
) -> None:
    server = start_app(full_jwks.url, jwt_algorithms=("EdDSA", "HS256"))
    assert status(server, keys["ed25519"].token()) == 200
    # The JWKS publishes these keys, but the allow-list does not name their algorithms.
    assert status(server, keys["rs256"].token()) == 401
    assert status(server, keys["p256"].token()) == 401
    assert status(server, make_token("hs-user", algorithm="HS512")) == 401


def test_algorithm_confusion_is_rejected(full_app: LiveServer, keys: dict[str, SigningKey]) -> None:
    """HS256 signed with a public key as the secret, or with an HMAC key from the JWKS: never."""
    for key in (keys["rsa"], keys["ed25519"], keys["p256"]):
        header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
        assert status(full_app, hand_made_token(header, claims(), hmac_sha256(key.public_pem()))) == 401
        jwk_bytes = json.dumps(key.jwk).encode()
        assert status(full_app, hand_made_token(header, claims(), hmac_sha256(jwk_bytes))) == 401
    oct_token = hand_made_token({"alg": "HS256", "kid": "oct-1"}, claims(), hmac_sha256(OCT_SECRET))
    assert status(full_app, oct_token) == 401


def test_alg_none_and_malformed_headers_are_rejected(full_app: LiveServer, keys: dict[str, SigningKey]) -> None:
    kid = keys["ed25519"].kid
    for header in (
        {"alg": "none"},
        {"alg": "none", "kid": kid},
        {"alg": "None", "kid": kid},
        {"kid": kid},
        {"alg": ["EdDSA"], "kid": kid},
        {"alg": {"EdDSA": 1}, "kid": kid},
        {"alg": "EdDSA"},
        {"alg": "EdDSA", "kid": ""},
        {"alg": "EdDSA", "kid": 7},
    ):
        assert status(full_app, hand_made_token(header, claims())) == 401, header


def test_hs256_fails_when_only_the_jwks_is_configured(
    start_app: Callable[..., LiveServer], full_jwks: JwksServer, keys: dict[str, SigningKey]
) -> None:
    server = start_app(full_jwks.url, jwt_secret=None, jwt_algorithms=("EdDSA", "HS256"))
    assert status(server, keys["ed25519"].token()) == 200
    assert status(server, make_token("hs-user")) == 401


def test_issuer_and_audience_apply_to_every_token(
    start_app: Callable[..., LiveServer], full_jwks: JwksServer, keys: dict[str, SigningKey]
) -> None:
    server = start_app(full_jwks.url, jwt_issuer=BETTER_AUTH_URL, jwt_audience=BETTER_AUTH_URL)
    key = keys["ed25519"]
    right = {"iss": BETTER_AUTH_URL, "aud": BETTER_AUTH_URL}
    assert status(server, key.token(**right)) == 200
    assert status(server, key.token(iss=BETTER_AUTH_URL, aud=[BETTER_AUTH_URL, "other"])) == 200
    assert status(server, key.token(**{**right, "iss": "https://evil.example"})) == 401
    assert status(server, key.token(**{**right, "aud": "https://other.example"})) == 401
    assert status(server, key.token(aud=BETTER_AUTH_URL)) == 401  # no iss
    assert status(server, key.token(iss=BETTER_AUTH_URL)) == 401  # no aud
    assert status(server, make_token("hs-user", **right)) == 200
    assert status(server, make_token("hs-user")) == 401


# --- fetching, caching, rotation --------------------------------------------------------------


def test_unknown_kid_triggers_one_refresh(
    start_app: Callable[..., LiveServer], jwks: JwksServer, keys: dict[str, SigningKey]
) -> None:
    old, new = keys["ed25519"], keys["p256"]
    jwks.publish(old)
    server = start_app(jwks.url, jwt_jwks_refresh_s=1.0)
    jwks.wait_served(1)  # the background prefetch at start-up
    started = time.monotonic()
    assert status(server, old.token()) == 200
    assert jwks.fetches == 1  # a cached key needs no fetch

    jwks.publish(old, new)
    assert status(server, new.token()) == 401  # within the interval: no fetch yet
    assert jwks.fetches == 1
    assert time.monotonic() - started < 1.0, "too slow to check the rate limit"

    time.sleep(max(0.0, started + 1.1 - time.monotonic()))
    assert status(server, new.token()) == 200  # unknown kid, interval over: one refresh
    assert jwks.fetches == 2
    assert status(server, new.token()) == 200
    assert status(server, old.token()) == 200
    assert status(server, new.token(alg="ES256") + "x") == 401
    assert jwks.fetches == 2


def test_concurrent_requests_share_one_fetch(
    start_app: Callable[..., LiveServer], jwks: JwksServer, keys: dict[str, SigningKey]
) -> None:
    jwks.publish(keys["ed25519"])
    jwks.delay_s = 0.4
    server = start_app(jwks.url, jwt_jwks_refresh_s=0.3)
    jwks.wait_served(1)
    time.sleep(0.35)

    jwks.publish(keys["ed25519"], keys["rsa"])
    tokens = [keys["rsa"].token(f"user-{n}") for n in range(20)]
    assert statuses(server, tokens) == [200] * 20  # all waited for the one fetch in flight
    assert jwks.fetches == 2


def test_a_storm_of_random_kids_causes_no_storm_of_fetches(
    start_app: Callable[..., LiveServer], jwks: JwksServer, keys: dict[str, SigningKey]
) -> None:
    attacker = new_key("ed25519", alg="EdDSA")
    jwks.publish(keys["ed25519"])
    server = start_app(jwks.url, jwt_jwks_refresh_s=1.0)
    jwks.wait_served(1)
    time.sleep(1.1)

    def storm() -> list[str]:
        tokens = []
        for _ in range(50):
            attacker.kid = uuid.uuid4().hex
            tokens.append(attacker.token())
        return tokens

    assert statuses(server, storm()) == [401] * 50
    assert 2 <= jwks.fetches <= 3  # the prefetch, then one refresh (two if the storm outlasted 1 s)
    fetches = jwks.fetches
    assert statuses(server, storm()) == [401] * 50
    assert jwks.fetches == fetches  # within the interval: none
    assert status(server, keys["ed25519"].token()) == 200


def test_rotation_without_restart(
    start_app: Callable[..., LiveServer], jwks: JwksServer, keys: dict[str, SigningKey]
) -> None:
    """A new key passes once fetched; the removed one fails once the cache has been refreshed."""
    old, new = keys["ed25519"], keys["rs256"]
    jwks.publish(old)
    server = start_app(jwks.url, jwt_jwks_refresh_s=0.3)
    jwks.wait_served(1)
    assert status(server, old.token()) == 200

    jwks.publish(new)
    time.sleep(0.35)
    assert status(server, new.token()) == 200
    assert status(server, old.token()) == 401
    assert jwks.fetches == 2


def test_removed_key_fails_after_max_age_without_any_unknown_kid(
    start_app: Callable[..., LiveServer], jwks: JwksServer, keys: dict[str, SigningKey]
) -> None:
    """The key set is re-fetched in the background once older than 5 x JWT_JWKS_REFRESH_S."""
    key = keys["ed25519"]
    jwks.publish(key)
    server = start_app(jwks.url, jwt_jwks_refresh_s=0.2)
    jwks.wait_served(1)
    assert status(server, key.token()) == 200

    jwks.publish()  # revoked
    time.sleep(0.6)
    assert status(server, key.token()) == 200  # still fresh enough: cached
    assert jwks.fetches == 1
    time.sleep(0.6)
    assert status(server, key.token()) == 200  # stale: answered from cache, refresh in background
    jwks.wait_served(2)
    assert status(server, key.token()) == 401


# --- the JWKS endpoint down -------------------------------------------------------------------


@pytest.fixture
def jwks_log() -> Iterator[list[str]]:
    messages: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = Collect(level=logging.WARNING)
    logger = logging.getLogger("app.auth.jwks")
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)


def test_jwks_unreachable_at_start(
    start_app: Callable[..., LiveServer], keys: dict[str, SigningKey], jwks_log: list[str]
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/api/auth/jwks"  # nothing listens there
    started = time.monotonic()
    server = start_app(nowhere)
    assert time.monotonic() - started < 5
    assert httpx.get(server.url + "/health").status_code == 200
    assert status(server, keys["ed25519"].token()) == 401
    assert status(server, make_token("hs-user")) == 200
    deadline = time.monotonic() + 5
    while not any("JWKS fetch failed" in m for m in jwks_log) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert any("JWKS fetch failed" in m and nowhere in m for m in jwks_log)


def test_jwks_failing_at_start_then_recovering(
    start_app: Callable[..., LiveServer], jwks: JwksServer, keys: dict[str, SigningKey]
) -> None:
    jwks.publish(keys["ed25519"])
    jwks.mode = "error"
    server = start_app(jwks.url, jwt_jwks_refresh_s=0.3)
    jwks.wait_served(1)
    assert httpx.get(server.url + "/health").status_code == 200
    assert status(server, keys["ed25519"].token()) == 401
    assert status(server, make_token("hs-user")) == 200

    jwks.mode = "ok"
    time.sleep(0.35)
    assert status(server, keys["ed25519"].token()) == 200  # no restart needed


def test_jwks_down_at_run_time(
    start_app: Callable[..., LiveServer], jwks: JwksServer, keys: dict[str, SigningKey], jwks_log: list[str]
) -> None:
    cached = keys["ed25519"]
    jwks.publish(cached)
    server = start_app(jwks.url, jwt_jwks_refresh_s=0.3, jwt_algorithms=("EdDSA", "HS256"))
    jwks.wait_served(1)
    assert status(server, cached.token()) == 200
    unknown = new_key("ed25519", alg="EdDSA")
    jwks.publish(cached, unknown)

    sent: list[str] = []
    for mode in ("error", "garbage"):
        jwks.mode = mode
        time.sleep(0.35)
        fetches = jwks.fetches
        sent.append(unknown.token())
        started = time.monotonic()
        assert status(server, sent[-1]) == 401
        assert time.monotonic() - started < 2
        assert jwks.fetches == fetches + 1
        sent.append(cached.token())
        assert status(server, sent[-1]) == 200  # a failed fetch keeps the cached keys

    time.sleep(1.6)  # past the max age (5 x 0.3 s): the background refresh fails, keys are kept
    fetches = jwks.fetches
    assert status(server, cached.token()) == 200
    jwks.wait_served(fetches + 1)
    assert status(server, cached.token()) == 200

    failures = [m for m in jwks_log if "JWKS fetch failed" in m]
    assert len(failures) >= 2
    assert all(jwks.url in m for m in failures)
    assert not any(token in m for m in jwks_log for token in sent)


@pytest.mark.parametrize("mode", ["hang", "drip"])
def test_hanging_jwks_never_hangs_a_request(
    start_app: Callable[..., LiveServer], jwks: JwksServer, keys: dict[str, SigningKey], mode: str
) -> None:
    """No answer at all, or one that trickles in forever: the fetch gives up after its timeout."""
    cached = keys["ed25519"]
    jwks.publish(cached)
    server = start_app(jwks.url, jwt_jwks_refresh_s=0.3)
    jwks.wait_served(1)
    jwks.mode = mode
    time.sleep(0.35)

    waiting: dict[str, float] = {}

    def unknown_kid() -> None:
        started = time.monotonic()
        assert status(server, new_key("ed25519", alg="EdDSA").token()) == 401
        waiting["unknown"] = time.monotonic() - started

    thread = threading.Thread(target=unknown_kid)
    thread.start()
    time.sleep(0.3)
    assert jwks.fetches == 2  # the fetch is hanging now
    started = time.monotonic()
    assert status(server, cached.token()) == 200  # others are not held up by it
    assert time.monotonic() - started < 1
    thread.join(timeout=FETCH_TIMEOUT_S + 5)
    assert waiting["unknown"] < FETCH_TIMEOUT_S + 1.5  # bounded by the fetch timeout


# --- configuration ----------------------------------------------------------------------------


def test_every_jwks_algorithm_has_a_key_type() -> None:
    assert set(KEY_TYPES) == JWKS_ALGORITHMS


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"JWT_ALGORITHMS": "EdDSA,HS256"}, "need JWT_JWKS_URL"),
        ({"JWT_JWKS_URL": "https://auth.example/api/auth/jwks"}, "no asymmetric algorithm"),
        ({"JWT_JWKS_URL": "auth.example/jwks", "JWT_ALGORITHMS": "EdDSA"}, "http(s) URL"),
        ({"JWT_JWKS_URL": "file:///etc/jwks.json", "JWT_ALGORITHMS": "EdDSA"}, "http(s) URL"),
        ({"JWT_ALGORITHMS": "HS256,ES257"}, "unsupported ES257"),
        ({"JWT_ALGORITHMS": "eddsa"}, "unsupported eddsa"),
        ({"JWT_JWKS_REFRESH_S": "0"}, "JWT_JWKS_REFRESH_S"),
        ({"JWT_JWKS_REFRESH_S": "soon"}, "JWT_JWKS_REFRESH_S"),
    ],
)
def test_jwks_settings_are_validated_at_start_up(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_mapping({"JWT_SECRET": SECRET, **env})


def test_jwks_settings_are_read() -> None:
    settings = Settings.from_mapping(
        {
            "JWT_JWKS_URL": "https://app.example/api/auth/jwks",
            "JWT_ALGORITHMS": "EdDSA, ES256,RS256",
            "JWT_JWKS_REFRESH_S": "0.5",
        }
    )
    assert settings.jwt_algorithms == ("EdDSA", "ES256", "RS256")
    assert settings.jwt_jwks_refresh_s == 0.5
    assert settings.jwt_secret is None


# --- why a token was refused; recovering from a JWKS that was down (issue 12) ----------------


def test_rejection_reasons_are_logged_with_the_expected_values_never_the_token(
    start_app: Callable[..., LiveServer], full_jwks: JwksServer, keys: dict[str, SigningKey]
) -> None:
    server = start_app(full_jwks.url, jwt_issuer=BETTER_AUTH_URL, jwt_audience=BETTER_AUTH_URL)
    full_jwks.wait_served(1)
    key = keys["ed25519"]
    right = {"iss": BETTER_AUTH_URL, "aud": BETTER_AUTH_URL}
    refused = {
        "expired": key.token(exp_in=-3600, **right),
        "wrong_issuer": key.token(**{**right, "iss": "https://evil.example"}),
        "wrong_audience": key.token(**{**right, "aud": "https://other.example"}),
        "unknown_key": make_token("x", secret=key.private, algorithm="EdDSA", headers={"kid": "no-such-kid"}, **right),
        # Signed with another key under this key's kid.
        "bad_signature": make_token(
            "x", secret=keys["ed448"].private, algorithm="EdDSA", headers={"kid": key.kid}, **right
        ),
    }
    with recording("app.auth.tokens") as logs:
        for token in refused.values():
            assert status(server, token) == 401
    lines = {getattr(r, "reason", None): r for r in logs.records}
    assert set(refused) <= lines.keys(), logs.text()
    assert all(record.levelno == logging.INFO for record in logs.records)
    assert f"expected '{BETTER_AUTH_URL}'" in lines["wrong_issuer"].getMessage()
    assert f"expected '{BETTER_AUTH_URL}'" in lines["wrong_audience"].getMessage()
    assert "no-such-kid" in lines["unknown_key"].getMessage()
    assert "bad signature" in lines["bad_signature"].getMessage()
    text = logs.text()
    for token in refused.values():
        assert token not in text and token.rsplit(".", 1)[1] not in text


def test_a_flood_of_refused_tokens_logs_one_line_per_cause(
    start_app: Callable[..., LiveServer], full_jwks: JwksServer, keys: dict[str, SigningKey]
) -> None:
    server = start_app(full_jwks.url, jwt_issuer=BETTER_AUTH_URL)
    full_jwks.wait_served(1)
    wrong = keys["ed25519"].token(iss="https://evil.example")
    with recording("app.auth.tokens") as logs:
        assert statuses(server, [wrong] * 40) == [401] * 40
    assert len([r for r in logs.records if getattr(r, "reason", None) == "wrong_issuer"]) == 1, logs.text()


def test_valid_tokens_work_within_seconds_of_the_jwks_coming_back(
    start_app: Callable[..., LiveServer], jwks: JwksServer, keys: dict[str, SigningKey]
) -> None:
    """Down at start, with the default 60 s interval: the first fetch after a failure may come after
    FAILED_FETCH_COOLDOWN_S, so the keys are in use a couple of seconds after the JWKS is back; and
    while it is down, a stream of requests makes at most one fetch per cooldown."""
    key = keys["ed25519"]
    jwks.publish(key)
    jwks.mode = "error"
    server = start_app(jwks.url, jwt_jwks_refresh_s=60.0)
    jwks.wait_served(1)
    down_since = time.monotonic()
    while time.monotonic() - down_since < 3:
        assert status(server, key.token()) == 401
        time.sleep(0.05)
    # ~60 requests in 3 s: the start-up fetch plus at most one retry per cooldown.
    assert jwks.fetches <= 1 + math.ceil(3 / FAILED_FETCH_COOLDOWN_S), jwks.fetches

    jwks.mode = "ok"
    back = time.monotonic()
    wait_for = FAILED_FETCH_COOLDOWN_S + FETCH_TIMEOUT_S
    while status(server, key.token()) != 200:
        assert time.monotonic() - back < wait_for, "valid tokens still refused"
        time.sleep(0.05)
    recovered_in = time.monotonic() - back
    assert recovered_in <= FAILED_FETCH_COOLDOWN_S + 2.0, recovered_in  # a fetch and a request, on a busy machine
    fetched = jwks.fetches
    assert status(server, keys["p256"].token()) == 401  # after a success: back to the 60 s interval
    assert jwks.fetches == fetched

"""Token abuse: only `Authorization: Bearer <valid JWT>` is a credential; everything else is a 401.

Every refusal has the same envelope and `WWW-Authenticate: Bearer`; an invalid token's body is the
same whatever was wrong with it (it never says why a signature failed).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
import warnings
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from assertions import assert_error, nothing_changes
from conftest import SECRET, LiveServer, User, make_token

from app.config import Settings

LEEWAY_S = 30  # the default JWT_LEEWAY_S, which the session server uses


def _b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unsigned(payload: dict[str, Any], alg: str = "none") -> str:
    """A token with `alg: none` (or a variant spelling) and no signature."""
    return f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(payload)}."


def now() -> int:
    return int(time.time())


def claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "token-abuser", "iat": now(), "exp": now() + 3600, **extra}


VALID = make_token("token-abuser")


def _tampered() -> str:
    header, _, signature = VALID.split(".")
    return f"{header}.{_b64(claims(sub='someone-else'))}.{signature}"


def _jwk_injected() -> str:
    """A header that offers its own key (`jwk`) and key URL (`jku`): never trusted."""
    key = _b64(b"attacker-secret-attacker-secret-attacker!")
    headers = {"jwk": {"kty": "oct", "k": key}, "jku": "https://attacker.example/jwks.json", "kid": "x"}
    return jwt.encode(claims(), "attacker-secret-attacker-secret-attacker!", headers=headers)


def _alg_confusion() -> str:
    """`RS256` in the header but an HMAC signature made with the shared secret."""
    header = _b64({"alg": "RS256", "typ": "JWT"})
    body = _b64(claims())
    signature = hmac.new(SECRET.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def _hmac_token(algorithm: str) -> str:
    """Signed with the right secret, but with an algorithm outside the allow-list (HS256 only)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return make_token("token-abuser", algorithm=algorithm)


# Built when a test runs: times are relative to then, whatever the order and length of the run.
INVALID_TOKENS: dict[str, Callable[[], str]] = {
    "wrong signature": lambda: make_token("token-abuser", secret="another-secret-0123456789-abcdefghijklmn"),
    "tampered payload": lambda: _tampered(),
    "signature stripped": lambda: VALID.rsplit(".", 1)[0] + ".",
    "alg none": lambda: unsigned(claims()),
    "alg None": lambda: unsigned(claims(), "None"),
    "alg NONE": lambda: unsigned(claims(), "NONE"),
    "alg none with the original signature": lambda: unsigned(claims()) + VALID.rsplit(".", 1)[1],
    "HS512 (not allowed)": lambda: _hmac_token("HS512"),
    "HS384 (not allowed)": lambda: _hmac_token("HS384"),
    "RS256 header, HMAC signature": lambda: _alg_confusion(),
    "jwk/jku header injection": lambda: _jwk_injected(),
    "no exp": lambda: make_token("token-abuser", exp_in=None),
    "exp not a number": lambda: jwt.encode(claims(exp="tomorrow"), SECRET),
    "nbf in the future": lambda: jwt.encode(claims(nbf=now() + LEEWAY_S + 120), SECRET),
    "iat in the future": lambda: jwt.encode(claims(iat=now() + LEEWAY_S + 120), SECRET),
    "iat not a number": lambda: jwt.encode(claims(iat="now"), SECRET),
    # NumericDate: JSON numbers only (PyJWT alone converts these with int()).
    "exp a numeric string": lambda: jwt.encode(claims(exp=str(now() + 3600)), SECRET),
    "nbf a numeric string": lambda: jwt.encode(claims(nbf=str(now())), SECRET),
    "iat a numeric string": lambda: jwt.encode(claims(iat=str(now())), SECRET),
    "exp 10**400": lambda: jwt.encode(claims(exp=10**400), SECRET),
    "exp 1e300": lambda: jwt.encode(claims(exp=1e300, iat=None), SECRET),
    "exp Infinity": lambda: jwt.encode(claims(exp=float("inf")), SECRET),
    "exp true": lambda: jwt.encode(claims(exp=True), SECRET),
    "exp null": lambda: jwt.encode(claims(exp=None), SECRET),
    "iat null": lambda: jwt.encode(claims(iat=None), SECRET),
    # JWT_MAX_LIFETIME_S (default 30 days).
    "lifetime exp - iat over 30 days": lambda: jwt.encode(claims(exp=now() + 31 * 86_400), SECRET),
    "lifetime exp - iat over 30 days, iat in the past": lambda: jwt.encode(
        claims(iat=now() - 40 * 86_400, exp=now() + 3600), SECRET
    ),
    "no iat, exp over 30 days ahead": lambda: jwt.encode({"sub": "token-abuser", "exp": now() + 31 * 86_400}, SECRET),
    "no identity": lambda: jwt.encode({"iat": now(), "exp": now() + 3600}, SECRET),
    "sub empty": lambda: jwt.encode(claims(sub=""), SECRET),
    "sub blank": lambda: jwt.encode(claims(sub="   "), SECRET),
    "sub true": lambda: jwt.encode(claims(sub=True), SECRET),
    "sub false": lambda: jwt.encode(claims(sub=False), SECRET),
    "sub object": lambda: jwt.encode(claims(sub={}), SECRET),
    "sub array": lambda: jwt.encode(claims(sub=["a"]), SECRET),
    "sub float": lambda: jwt.encode(claims(sub=1.5), SECRET),
    "sub with NUL": lambda: jwt.encode(claims(sub="a\x00b"), SECRET),
    "sub with a newline": lambda: jwt.encode(claims(sub="a\nb"), SECRET),
    "sub too long": lambda: jwt.encode(claims(sub="x" * 256), SECRET),
    "user_id object": lambda: jwt.encode({"user_id": {"id": 1}, "iat": now(), "exp": now() + 3600}, SECRET),
    "not a JWT": lambda: "not-a-jwt",
    "two segments": lambda: "abc.def",
    "four segments": lambda: VALID + ".extra",
    "garbage base64": lambda: "!!!.@@@.###",
    "header not JSON": lambda: f"{_b64(b'not json')}.{_b64(claims())}.sig",
    "payload not an object": lambda: jwt.encode({"a": 1}, SECRET).split(".")[0] + f".{_b64(b'[1,2]')}.x",
}


def _auth(value: str | bytes) -> dict[str, str | bytes]:
    return {"Authorization": value}


# Authorization header values that are not `Bearer <jwt>` (a token was sent in some form).
MALFORMED_HEADERS: dict[str, str] = {
    "bare token": VALID,
    "Token scheme": f"Token {VALID}",
    "JWT scheme": f"JWT {VALID}",
    "Basic scheme": "Basic " + base64.b64encode(b"user:pass").decode(),
    "Bearer only": "Bearer",
    "extra part": f"Bearer {VALID} extra",
    "two tokens": f"Bearer {VALID} {VALID}",
    "comma-joined tokens": f"Bearer {VALID},{VALID}",
    "tab separator": f"Bearer\t{VALID}",
    "colon separator": f"Bearer:{VALID}",
    "equals separator": f"Bearer={VALID}",
    "scheme with suffix": f"BearerX {VALID}",
    "quoted token": f'Bearer "{VALID}"',
    "scheme twice": f"Bearer Bearer {VALID}",
    "trailing semicolon": f"Bearer {VALID};",
}


def refuse(response: httpx.Response, *, token_sent: bool) -> dict[str, Any]:
    error = assert_error(response, 401)
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer ")
    assert ('error="invalid_token"' in challenge) is token_sent
    for word in ("signature", "algorithm", "alg", "secret", "key", "decode", "segment", "padding"):
        assert word not in error["message"].lower()
    return error


@pytest.fixture(scope="module")
def invalid_body(live: LiveServer) -> bytes:
    """The one body every invalid token gets."""
    response = httpx.get(f"{live.url}/api/tasks", headers={"Authorization": "Bearer not-a-jwt"})
    refuse(response, token_sent=True)
    return response.content


@pytest.mark.parametrize("make", INVALID_TOKENS.values(), ids=list(INVALID_TOKENS))
def test_invalid_tokens_get_one_identical_401(
    client: httpx.Client, db: psycopg.Connection[Any], invalid_body: bytes, make: Callable[[], str]
) -> None:
    token = make()
    with nothing_changes(db):
        for method, path in (("GET", "/api/tasks"), ("POST", "/api/tasks"), ("DELETE", "/api/tasks/1")):
            response = client.request(method, path, json={"title": "x"}, headers=_auth(f"Bearer {token}"))
            refuse(response, token_sent=True)
            assert response.content == invalid_body


@pytest.mark.parametrize("value", MALFORMED_HEADERS.values(), ids=list(MALFORMED_HEADERS))
def test_authorization_that_is_not_exactly_bearer_jwt_is_401(
    client: httpx.Client, db: psycopg.Connection[Any], invalid_body: bytes, value: str
) -> None:
    with nothing_changes(db):
        response = client.post("/api/tasks", json={"title": "x"}, headers=_auth(value))
    refuse(response, token_sent=True)
    assert response.content == invalid_body


def test_an_empty_authorization_header_is_a_missing_token(client: httpx.Client) -> None:
    refuse(client.get("/api/tasks", headers=_auth("")), token_sent=False)


@pytest.mark.parametrize(
    "value",
    [f"bearer {VALID}", f"BEARER {VALID}", f"BeArEr {VALID}", f"Bearer  {VALID}"],
    ids=["lowercase", "uppercase", "mixed case", "two spaces"],
)
def test_the_scheme_word_is_case_insensitive(client: httpx.Client, value: str) -> None:
    """RFC 7235: the scheme is case-insensitive and separated by one or more spaces."""
    assert client.get("/api/tasks", headers=_auth(value)).status_code == 200


def test_two_authorization_headers_are_not_a_credential(client: httpx.Client, invalid_body: bytes) -> None:
    """Authorization is not a list header: two of them are ambiguous, whichever comes first."""
    for values in ([f"Bearer {VALID}", "Bearer not-a-jwt"], ["Bearer not-a-jwt", f"Bearer {VALID}"]):
        request = client.build_request("GET", "/api/tasks")
        request.headers = httpx.Headers([("Host", "x"), *(("Authorization", v) for v in values)])
        response = client.send(request)
        refuse(response, token_sent=True)
    same = client.build_request("GET", "/api/tasks")
    same.headers = httpx.Headers([("Host", "x"), *[("Authorization", f"Bearer {VALID}")] * 2])
    refuse(client.send(same), token_sent=True)


@pytest.mark.parametrize("query", ["token", "access_token", "jwt", "authorization", "Authorization", "bearer"])
def test_a_token_in_the_query_string_is_not_a_credential(client: httpx.Client, query: str) -> None:
    for value in (VALID, f"Bearer {VALID}"):
        response = client.get("/api/tasks", params={query: value})
        refuse(response, token_sent=False)


@pytest.mark.parametrize(
    "cookie",
    ["token", "access_token", "jwt", "Authorization", "better-auth.session_token", "session"],
)
def test_a_token_in_a_cookie_is_not_a_credential(live: LiveServer, cookie: str) -> None:
    for value in (VALID, f"Bearer%20{VALID}"):
        response = httpx.get(f"{live.url}/api/tasks", headers={"Cookie": f"{cookie}={value}"})
        refuse(response, token_sent=False)


def test_no_authorization_is_a_missing_token(client: httpx.Client) -> None:
    error = refuse(client.get("/api/tasks"), token_sent=False)
    assert "missing" in error["message"].lower()


def test_an_expired_token_says_expired_and_nothing_more(client: httpx.Client) -> None:
    expired = jwt.encode(claims(exp=now() - LEEWAY_S - 60), SECRET)
    error = refuse(client.get("/api/tasks", headers=_auth(f"Bearer {expired}")), token_sent=True)
    assert "expired" in error["message"].lower()


@pytest.mark.parametrize(
    ("claim", "offset"),
    [("exp", -LEEWAY_S // 2), ("nbf", LEEWAY_S // 2), ("iat", LEEWAY_S // 2)],
    ids=["exp just past", "nbf just ahead", "iat just ahead"],
)
def test_clock_skew_within_the_leeway_is_tolerated(client: httpx.Client, claim: str, offset: int) -> None:
    token = jwt.encode(claims(**{claim: now() + offset}), SECRET)
    assert client.get("/api/tasks", headers=_auth(f"Bearer {token}")).status_code == 200


@pytest.mark.parametrize(
    "times",
    [
        {"iat": "now", "exp": 29 * 86_400},
        {"exp": 29 * 86_400},
        {"iat": "now", "exp": 3600.5, "nbf": -0.25},
    ],
    ids=["29 days with iat", "29 days without iat", "fractional dates"],
)
def test_numeric_dates_within_the_longest_lifetime_are_accepted(client: httpx.Client, times: dict[str, Any]) -> None:
    start = time.time()
    payload = {"sub": "token-abuser", **{k: start if v == "now" else start + v for k, v in times.items()}}
    token = jwt.encode(payload, SECRET)
    for _ in range(2):  # the second answer comes from the verified-token cache
        assert client.get("/api/tasks", headers=_auth(f"Bearer {token}")).status_code == 200


def test_the_longest_lifetime_comes_from_settings(
    serve: Callable[[Settings], LiveServer], base_settings: Settings
) -> None:
    server = serve(base_settings.with_(jwt_max_lifetime_s=7200, access_token_ttl_s=3600))
    within = make_token("token-abuser", exp_in=7000)
    beyond = make_token("token-abuser", exp_in=7300)
    assert httpx.get(f"{server.url}/api/tasks", headers=_auth(f"Bearer {within}")).status_code == 200
    refuse(httpx.get(f"{server.url}/api/tasks", headers=_auth(f"Bearer {beyond}")), token_sent=True)


@pytest.mark.parametrize(
    "payload",
    [
        {"sub": 42},
        {"user_id": "frontend-user"},
        {"user_id": 7},
        {"sub": None, "user_id": "frontend-user-2"},
    ],
    ids=["integer sub", "user_id string", "user_id integer", "null sub, user_id"],
)
def test_identities_the_contract_accepts(client: httpx.Client, payload: dict[str, Any]) -> None:
    token = jwt.encode({"iat": now(), "exp": now() + 3600, **payload}, SECRET)
    response = client.post("/api/tasks", json={"title": "mine"}, headers=_auth(f"Bearer {token}"))
    assert response.status_code == 201, response.text
    expected = payload.get("sub") if payload.get("sub") is not None else payload["user_id"]
    assert response.json()["data"]["user_id"] == str(expected)


# --- issuer and audience, when configured ------------------------------------------------------

ISSUER = "https://auth.example.test"
AUDIENCE = "tasks-api"


@pytest.fixture(scope="module")
def strict_server(serve: Callable[[Settings], LiveServer], base_settings: Settings) -> LiveServer:
    return serve(base_settings.with_(jwt_issuer=ISSUER, jwt_audience=AUDIENCE))


@pytest.mark.parametrize(
    ("extra", "accepted"),
    [
        ({"iss": ISSUER, "aud": AUDIENCE}, True),
        ({"iss": ISSUER, "aud": ["other", AUDIENCE]}, True),
        ({}, False),
        ({"aud": AUDIENCE}, False),
        ({"iss": ISSUER}, False),
        ({"iss": "https://evil.example", "aud": AUDIENCE}, False),
        ({"iss": ISSUER + "/", "aud": AUDIENCE}, False),
        ({"iss": ISSUER, "aud": "other"}, False),
        ({"iss": ISSUER, "aud": []}, False),
        ({"iss": [ISSUER], "aud": AUDIENCE}, False),
    ],
    ids=[
        "right",
        "aud list",
        "neither",
        "no iss",
        "no aud",
        "wrong iss",
        "iss with slash",
        "wrong aud",
        "empty aud",
        "iss list",
    ],
)
def test_issuer_and_audience_are_enforced_when_configured(
    strict_server: LiveServer, extra: dict[str, Any], accepted: bool
) -> None:
    # PyJWT refuses to encode some of these (a list `iss`): sign the JSON ourselves.
    token = jwt.api_jws.encode(json.dumps(claims(**extra)).encode(), SECRET, algorithm="HS256")
    response = httpx.get(f"{strict_server.url}/api/tasks", headers=_auth(f"Bearer {token}"))
    if accepted:
        assert response.status_code == 200, response.text
    else:
        refuse(response, token_sent=True)


# --- oversized headers ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [8 * 1024, 16 * 1024, 64 * 1024, 1024 * 1024], ids=["8K", "16K", "64K", "1M"])
@pytest.mark.parametrize("shape", ["bearer", "bare"])
def test_a_huge_authorization_header_is_401_or_431_never_5xx(live: LiveServer, size: int, shape: str) -> None:
    value = ("Bearer " if shape == "bearer" else "") + VALID + "A" * size
    status, body = _raw_request(live.port, f"GET /api/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: {value}\r\n")
    assert status in (400, 401, 431), status
    if status == 401:
        assert json.loads(body)["error"]["code"] == "UNAUTHORIZED"
    assert httpx.get(f"{live.url}/health").status_code == 200


def test_many_headers_of_many_kilobytes_never_5xx(live: LiveServer) -> None:
    filler = "".join(f"X-Filler-{i}: {'a' * 8000}\r\n" for i in range(16))
    status, _ = _raw_request(live.port, f"GET /api/tasks HTTP/1.1\r\nHost: x\r\n{filler}")
    assert status in (400, 401, 431), status
    assert httpx.get(f"{live.url}/health").status_code == 200


def _raw_request(port: int, head: str) -> tuple[int, bytes]:
    """Send a request by hand (clients refuse headers this big) and read the status and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(head.encode() + b"Connection: close\r\n\r\n")
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    status_line, _, rest = received.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def test_a_valid_token_works_and_other_users_tokens_do_not_leak(client: httpx.Client) -> None:
    """The control case: the same requests with a valid token succeed, for that token's user only."""
    alice, bob = User(), User()
    created = client.post("/api/tasks", json={"title": "alice's"}, headers=alice.headers)
    assert created.status_code == 201
    task_id = created.json()["data"]["id"]
    assert client.get(f"/api/tasks/{task_id}", headers=alice.headers).status_code == 200
    assert_error(client.get(f"/api/tasks/{task_id}", headers=bob.headers), 404)

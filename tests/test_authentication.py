"""The contract's Authentication section: bearer JWT (HS256), identity claims, 401 shape."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest
from conftest import SECRET, LiveServer, bearer, make_token

from app.config import Settings


def assert_401(response: httpx.Response, *, token_sent: bool = True) -> dict[str, Any]:
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "UNAUTHORIZED"
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith("Bearer")
    assert ('error="invalid_token"' in challenge) is token_sent
    return response.json()["error"]  # type: ignore[no-any-return]


def test_no_token_is_401_missing(client: httpx.Client) -> None:
    error = assert_401(client.get("/api/tasks"), token_sent=False)
    assert "missing" in error["message"].lower()


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_scheme_word_is_case_insensitive(client: httpx.Client, scheme: str) -> None:
    token = make_token(f"u-{uuid.uuid4()}")
    assert client.get("/api/tasks", headers={"Authorization": f"{scheme} {token}"}).status_code == 200


@pytest.mark.parametrize(
    "header",
    ["Token {t}", "Basic {t}", "JWT {t}", "{t}", "Bearer", "Bearer  {t} x", "Bearer {t} extra", "Bearer{t}"],
)
def test_anything_but_bearer_token_is_401(client: httpx.Client, header: str) -> None:
    token = make_token(f"u-{uuid.uuid4()}")
    assert_401(client.get("/api/tasks", headers={"Authorization": header.format(t=token)}))


def test_token_in_query_or_cookie_is_not_a_credential(client: httpx.Client) -> None:
    token = make_token(f"u-{uuid.uuid4()}")
    assert_401(client.get(f"/api/tasks?token={token}&access_token={token}"), token_sent=False)
    cookie = f"token={token}; access_token={token}; Authorization=Bearer%20{token}"
    assert_401(client.get("/api/tasks", headers={"Cookie": cookie}), token_sent=False)


def test_string_sub_is_the_user_id(client: httpx.Client) -> None:
    sub = f"u-{uuid.uuid4()}"
    task = client.post("/api/tasks", json={"title": "x"}, headers=bearer(make_token(sub))).json()["data"]
    assert task["user_id"] == sub


def test_integer_sub_is_handled_as_text(client: httpx.Client) -> None:
    sub = int(time.time() * 1000) + 7
    token = make_token(sub)
    task = client.post("/api/tasks", json={"title": "x"}, headers=bearer(token)).json()["data"]
    assert task["user_id"] == str(sub)
    assert client.get(f"/api/tasks/{task['id']}", headers=bearer(make_token(str(sub)))).status_code == 200


@pytest.mark.parametrize("user_id", ["hackathon-user", 424242])
def test_user_id_claim_is_used_when_there_is_no_sub(client: httpx.Client, user_id: str | int) -> None:
    unique = f"{user_id}-{uuid.uuid4()}" if isinstance(user_id, str) else user_id + int(time.time() * 1000)
    token = make_token(user_id=unique)
    task = client.post("/api/tasks", json={"title": "x"}, headers=bearer(token)).json()["data"]
    assert task["user_id"] == str(unique)


def test_sub_wins_over_user_id(client: httpx.Client) -> None:
    sub = f"u-{uuid.uuid4()}"
    token = make_token(sub, user_id="someone-else")
    assert client.post("/api/tasks", json={"title": "x"}, headers=bearer(token)).json()["data"]["user_id"] == sub


@pytest.mark.parametrize("claims", [{}, {"sub": ""}, {"sub": "  "}, {"sub": True}, {"sub": {"id": 1}}, {"sub": [1]}])
def test_missing_or_unusable_identity_is_401(client: httpx.Client, claims: dict[str, Any]) -> None:
    payload = {"exp": int(time.time()) + 60, **claims}
    assert_401(client.get("/api/tasks", headers=bearer(jwt.encode(payload, SECRET, algorithm="HS256"))))


def test_exp_is_required(client: httpx.Client) -> None:
    assert_401(client.get("/api/tasks", headers=bearer(make_token("u-1", exp_in=None))))


def test_expired_token_says_expired(client: httpx.Client) -> None:
    error = assert_401(client.get("/api/tasks", headers=bearer(make_token("u-1", exp_in=-120))))
    assert "expired" in error["message"].lower()


def test_expiry_within_leeway_is_accepted(client: httpx.Client) -> None:
    assert client.get("/api/tasks", headers=bearer(make_token("u-lw", exp_in=-10))).status_code == 200


def test_nbf_in_the_future_is_401_and_within_leeway_ok(client: httpx.Client) -> None:
    now = int(time.time())
    assert_401(client.get("/api/tasks", headers=bearer(make_token("u-1", nbf=now + 300))))
    assert client.get("/api/tasks", headers=bearer(make_token("u-1", nbf=now + 10))).status_code == 200


def test_iat_in_the_future_beyond_leeway_is_401(client: httpx.Client) -> None:
    now = int(time.time())
    assert_401(client.get("/api/tasks", headers=bearer(make_token("u-1", iat=now + 600))))
    assert client.get("/api/tasks", headers=bearer(make_token("u-1", iat=now + 10))).status_code == 200


def test_wrong_signature_gives_the_same_message_as_garbage(client: httpx.Client) -> None:
    forged = assert_401(client.get("/api/tasks", headers=bearer(make_token("u-1", secret="x" * 40))))
    garbage = assert_401(client.get("/api/tasks", headers=bearer("not.a.jwt")))
    assert forged == garbage
    assert "signature" not in forged["message"].lower()


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_alg_none_and_algorithms_outside_the_allow_list_are_401(client: httpx.Client) -> None:
    payload = {"sub": "u-1", "exp": int(time.time()) + 60}
    unsigned = jwt.encode(payload, None, algorithm="none")
    assert_401(client.get("/api/tasks", headers=bearer(unsigned)))
    assert_401(client.get("/api/tasks", headers=bearer(jwt.encode(payload, SECRET, algorithm="HS512"))))


@pytest.fixture(scope="module")
def strict_server(serve: Callable[[Settings], LiveServer], base_settings: Settings) -> LiveServer:
    return serve(base_settings.with_(jwt_issuer="https://auth.example.com", jwt_audience="tasks-api"))


@pytest.mark.parametrize(
    ("claims", "status"),
    [
        ({"iss": "https://auth.example.com", "aud": "tasks-api"}, 200),
        ({"iss": "https://auth.example.com", "aud": ["other", "tasks-api"]}, 200),
        ({"iss": "https://evil.example.com", "aud": "tasks-api"}, 401),
        ({"iss": "https://auth.example.com", "aud": "other"}, 401),
        ({"aud": "tasks-api"}, 401),
        ({"iss": "https://auth.example.com"}, 401),
    ],
)
def test_issuer_and_audience_are_enforced_when_configured(
    strict_server: LiveServer, claims: dict[str, Any], status: int
) -> None:
    response = httpx.get(f"{strict_server.url}/api/tasks", headers=bearer(make_token("u-iss", **claims)))
    assert response.status_code == status


def test_without_configured_audience_tokens_with_aud_still_pass(client: httpx.Client) -> None:
    # Frontends often stamp an `aud`; with JWT_AUDIENCE unset it is not checked.
    assert client.get("/api/tasks", headers=bearer(make_token("u-aud", aud="anything"))).status_code == 200


def test_every_401_has_the_same_shape(client: httpx.Client) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, bearer(make_token("u", exp_in=-999))):
        response = client.delete("/api/tasks/1", headers=headers)
        assert response.status_code == 401
        assert set(response.json()["error"]) == {"code", "message"}

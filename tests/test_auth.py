"""Accounts: sign-up, sign-in, `me`, and the sign-in lockout kept in PostgreSQL.

Real HTTP against the real app on a real PostgreSQL. Every test signs up accounts with fresh emails,
so accounts and lockout counters never leak between tests.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import argon2
import httpx
import jwt
import psycopg
import pytest
from conftest import SECRET, LiveServer, User, bearer, make_token, scratch_database
from factories import signup_body, task_body

from app.config import Settings
from app.migrate import apply, rollback

BAD_CREDENTIALS = {"error": {"code": "UNAUTHORIZED", "message": "Invalid email or password."}}
USER_KEYS = {"id", "email", "name", "created_at"}


def signup(http: httpx.Client, **overrides: Any) -> tuple[dict[str, Any], httpx.Response]:
    body = signup_body(**overrides)
    return body, http.post("/api/auth/signup", json=body)


def account(http: httpx.Client, **overrides: Any) -> dict[str, Any]:
    """A signed-up account: its sign-up body (email, password, name) plus `user` and `token`."""
    body, response = signup(http, **overrides)
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    return {**body, "user": data["user"], "token": data["access_token"]}


def signin(http: httpx.Client, email: str, password: str) -> httpx.Response:
    return http.post("/api/auth/signin", json={"email": email, "password": password})


def parse_ts(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value)


@pytest.fixture(scope="module")
def strict_settings(base_settings: Settings) -> Settings:
    """Three failures lock an email out for the default 15 minutes."""
    return base_settings.with_(auth_max_failed_attempts=3, auth_lockout_s=900)


@pytest.fixture(scope="module")
def strict(serve: Callable[[Settings], LiveServer], strict_settings: Settings) -> LiveServer:
    return serve(strict_settings)


@pytest.fixture
def strict_client(strict: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=strict.url, timeout=30) as http:
        yield http


# --- sign-up -------------------------------------------------------------------------------------


def test_signup_answers_201_with_a_token_and_the_user(client: httpx.Client, db: psycopg.Connection[Any]) -> None:
    _, response = signup(client, email="  Ada.Lovelace@Example.COM ", name="  Ada Lovelace  ")
    assert response.status_code == 201
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    data = response.json()["data"]
    assert set(data) == {"access_token", "token_type", "expires_in", "user"}
    assert data["token_type"] == "Bearer"
    assert data["expires_in"] == 86_400
    user = data["user"]
    assert set(user) == USER_KEYS
    assert isinstance(user["id"], str)
    uuid.UUID(user["id"])  # a fresh id of our own, not taken from anything the client sent
    assert user["email"] == "Ada.Lovelace@Example.COM"  # trimmed, case kept
    assert user["name"] == "Ada Lovelace"  # trimmed
    parse_ts(user["created_at"])
    row = db.execute("SELECT email, name FROM users WHERE id = %s", (user["id"],)).fetchone()
    assert row == ("Ada.Lovelace@Example.COM", "Ada Lovelace")


def test_issued_token_carries_the_contract_claims(client: httpx.Client) -> None:
    acc = account(client)
    token = acc["token"]
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["sub"] == claims["user_id"] == acc["user"]["id"]
    assert claims["email"] == acc["email"]
    assert claims["name"] == acc["name"]
    assert claims["exp"] - claims["iat"] == 86_400
    assert abs(claims["iat"] - time.time()) < 60
    assert "iss" not in claims and "aud" not in claims


def test_token_ttl_issuer_and_audience_come_from_configuration(
    serve: Callable[[Settings], LiveServer], base_settings: Settings, client: httpx.Client
) -> None:
    server = serve(base_settings.with_(access_token_ttl_s=120, jwt_issuer="tasks-api", jwt_audience="tasks-web"))
    with httpx.Client(base_url=server.url, timeout=30) as http:
        acc = account(http)
        claims = jwt.decode(acc["token"], SECRET, algorithms=["HS256"], audience="tasks-web")
        assert claims["iss"] == "tasks-api" and claims["aud"] == "tasks-web"
        assert claims["exp"] - claims["iat"] == 120
        response = signin(http, acc["email"], acc["password"])
        assert response.json()["data"]["expires_in"] == 120
        # Its own middleware (which enforces iss/aud there) accepts it.
        assert http.get("/api/auth/me", headers=bearer(acc["token"])).status_code == 200
        # A token without iss/aud (from the default server) is not accepted there.
        other = account(client)
        assert http.get("/api/auth/me", headers=bearer(other["token"])).status_code == 401


def test_token_from_signup_works_on_tasks(client: httpx.Client) -> None:
    acc = account(client)
    headers = bearer(acc["token"])
    created = client.post("/api/tasks", json=task_body(title="From an account"), headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["data"]["user_id"] == acc["user"]["id"]
    listed = client.get("/api/tasks", headers=headers).json()
    assert [t["title"] for t in listed["data"]] == ["From an account"]


def test_signup_is_public_even_with_a_bad_authorization_header(client: httpx.Client) -> None:
    response = client.post("/api/auth/signup", json=signup_body(), headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 201


def test_password_is_stored_only_as_an_argon2id_hash_and_never_returned(
    client: httpx.Client, db: psycopg.Connection[Any]
) -> None:
    body, response = signup(client)
    password = body["password"]
    signed_in = signin(client, body["email"], password)
    me = client.get("/api/auth/me", headers=bearer(response.json()["data"]["access_token"]))
    for r in (response, signed_in, me):
        assert r.status_code in (200, 201)
        assert "argon2" not in r.text and password not in r.text and "hash" not in r.text
    row = db.execute(
        "SELECT password_hash FROM users WHERE id = %s", (response.json()["data"]["user"]["id"],)
    ).fetchone()
    assert row is not None
    assert row[0].startswith("$argon2id$") and password not in row[0]
    assert argon2.PasswordHasher().verify(row[0], password)


def test_duplicate_email_in_another_case_is_409(client: httpx.Client, db: psycopg.Connection[Any]) -> None:
    local = uuid.uuid4().hex
    account(client, email=f"{local}@example.com")
    _, response = signup(client, email=f"  {local.upper()}@EXAMPLE.com ")
    assert response.status_code == 409
    assert response.json() == {"error": {"code": "CONFLICT", "message": "An account with this email already exists."}}
    count = db.execute("SELECT count(*) FROM users WHERE lower(email) = %s", (f"{local}@example.com",))
    assert count.fetchone() == (1,)


def test_concurrent_duplicate_signups_give_exactly_one_201(live: LiveServer, db: psycopg.Connection[Any]) -> None:
    local = uuid.uuid4().hex
    # Ten spellings of one address, all sent at the same moment.
    emails = [
        "".join(c.upper() if (i >> (j % 5)) & 1 else c for j, c in enumerate(local)) + "@Example.com" for i in range(10)
    ]

    def attempt(email: str) -> int:
        with httpx.Client(base_url=live.url, timeout=30) as http:
            return http.post("/api/auth/signup", json=signup_body(email=email)).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = Counter(pool.map(attempt, emails))
    assert statuses == {201: 1, 409: 9}
    count = db.execute("SELECT count(*) FROM users WHERE lower(email) = lower(%s)", (emails[0],))
    assert count.fetchone() == (1,)


VALID = {"email": "valid@example.com", "password": "s3cret-password", "name": "Valid Name"}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": None}, "email"),
        ({"email": 42}, "email"),
        ({"email": ""}, "email"),
        ({"email": "no-at-sign.example.com"}, "email"),
        ({"email": "two@at@example.com"}, "email"),
        ({"email": "with space@example.com"}, "email"),
        ({"email": "someone@localhost"}, "email"),
        ({"email": "someone@example..com"}, "email"),
        ({"email": "someone@.example.com"}, "email"),
        ({"email": "someone@example.com."}, "email"),
        ({"email": "@example.com"}, "email"),
        ({"email": "nul\u0000@example.com"}, "email"),
        ({"email": "x" * 243 + "@example.com"}, "email"),  # 255 characters
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "n" * 101}, "name"),
        ({"name": "nul \u0000 name"}, "name"),
        ({"name": ["a list"]}, "name"),
        ({"password": "short7!"}, "password"),  # 7 characters
        ({"password": "p" * 129}, "password"),
        ({"password": "has a \u0000 in it"}, "password"),
        ({"password": 12345678}, "password"),
    ],
)
def test_signup_validation_is_422_and_never_echoes_the_password(
    client: httpx.Client, changes: dict[str, Any], field: str
) -> None:
    body = {**VALID, **changes}
    body = {key: value for key, value in body.items() if value is not None}
    response = client.post("/api/auth/signup", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert [d["field"] for d in error["details"]] == [field]
    password = body.get("password")
    if isinstance(password, str) and len(password) > 3:
        assert password not in response.text


@pytest.mark.parametrize(
    ("email", "name", "password"),
    [
        # {u}: 12 unique characters, so that every run signs up a new address.
        ("{u}@b.co", "N", "k9#Lp2qZ"),  # shortest name and password
        ("{u}" + "x" * 230 + "@example.com", "n" * 100, "p" * 128),  # longest: 254, 100, 128
        ("  {u}@example.com\t", "  " + "n" * 100 + "  ", "  lo ng  "),  # trimmed; a password is not
        ("jürgen{u}@bücher.example", "Jürgen Ümlaut", "pässwörd"),  # characters, not bytes
        ("emoji{u}@example.com", "🙂" * 100, "🔑" * 128),
    ],
)
def test_signup_limits_count_characters_after_trimming(
    client: httpx.Client, email: str, name: str, password: str
) -> None:
    email = email.format(u=uuid.uuid4().hex[:12])
    response = client.post("/api/auth/signup", json={"email": email, "name": name, "password": password})
    assert response.status_code == 201, response.text
    user = response.json()["data"]["user"]
    assert (user["email"], user["name"]) == (email.strip(), name.strip())
    assert signin(client, email.upper(), password).status_code == 200


@pytest.mark.parametrize("path", ["/api/auth/signup", "/api/auth/signin"])
@pytest.mark.parametrize(("content", "status"), [(b"{not json", 400), (b"\xff\xfe{}", 400), (b"", 400), (b"[]", 422)])
def test_unparseable_bodies_are_4xx(client: httpx.Client, path: str, content: bytes, status: int) -> None:
    response = client.post(path, content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == status
    assert response.json()["error"]["code"] == ("BAD_REQUEST" if status == 400 else "VALIDATION_ERROR")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"password": "whatever-password"}, "email"),
        ({"email": "a@example.com"}, "password"),
        ({"email": "a\u0000@example.com", "password": "whatever-password"}, "email"),
        ({"email": "a@example.com", "password": "nul\u0000password"}, "password"),
        ({"email": "a@example.com", "password": True}, "password"),
    ],
)
def test_signin_with_a_malformed_body_is_422(client: httpx.Client, body: dict[str, Any], field: str) -> None:
    response = client.post("/api/auth/signin", json=body)
    assert response.status_code == 422
    assert [d["field"] for d in response.json()["error"]["details"]] == [field]


# --- sign-in -------------------------------------------------------------------------------------


def test_signin_is_case_insensitive_and_returns_the_account(client: httpx.Client) -> None:
    acc = account(client)
    response = signin(client, f"  {acc['email'].upper()} ", acc["password"])
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["token_type"] == "Bearer"
    assert data["user"] == acc["user"]
    claims = jwt.decode(data["access_token"], SECRET, algorithms=["HS256"])
    assert claims["sub"] == acc["user"]["id"]


def test_wrong_password_and_unknown_email_get_the_same_401(client: httpx.Client) -> None:
    acc = account(client)
    wrong = signin(client, acc["email"], acc["password"] + "x")
    unknown = signin(client, f"nobody-{uuid.uuid4().hex}@example.com", acc["password"])
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.json() == BAD_CREDENTIALS
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_an_unknown_email_costs_the_same_hashing_work(client: httpx.Client) -> None:
    """No enumeration by timing: without an account the password is checked against a dummy hash."""
    acc = account(client)

    def median_of_three(email: Callable[[], str]) -> float:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            assert signin(client, email(), "wrong-password").status_code == 401
            times.append(time.perf_counter() - started)
        return sorted(times)[1]

    known = median_of_three(lambda: acc["email"])
    unknown = median_of_three(lambda: f"nobody-{uuid.uuid4().hex}@example.com")
    # An Argon2 check is ~0.1 s; a sign-in skipping it would take a few milliseconds.
    assert unknown > 0.3 * known, (unknown, known)


def test_external_token_user_cannot_sign_in_by_password(client: httpx.Client, user: User) -> None:
    # The external user's row (with its email claim) is created by its first task.
    assert client.post("/api/tasks", json=task_body(), headers=user.headers).status_code == 201
    for password in ("", "Test User", "password", user.id):
        response = signin(client, f"{user.id}@example.com", password)
        assert response.status_code == 401
        assert response.json() == BAD_CREDENTIALS


def test_external_user_with_an_accounts_email_can_still_create_tasks(client: httpx.Client) -> None:
    acc = account(client)
    outsider = f"ext-{uuid.uuid4()}"
    token = make_token(outsider, email=acc["email"].upper(), name="Someone Else")
    created = client.post("/api/tasks", json=task_body(), headers=bearer(token))
    assert created.status_code == 201, created.text
    assert created.json()["data"]["user_id"] == outsider
    me = client.get("/api/auth/me", headers=bearer(token)).json()["data"]
    assert me["id"] == outsider
    # The account is untouched: same user, and its sign-in still works.
    assert signin(client, acc["email"], acc["password"]).json()["data"]["user"] == acc["user"]


def test_signup_with_an_external_identitys_email_is_a_new_identity(client: httpx.Client) -> None:
    outsider = f"ext-{uuid.uuid4()}"
    email = f"{outsider}@example.com"
    outsider_token = make_token(outsider, email=email, name="Outsider")
    assert client.post("/api/tasks", json=task_body(title="mine"), headers=bearer(outsider_token)).status_code == 201

    acc = account(client, email=email.upper())
    assert acc["user"]["id"] != outsider
    # Nothing of the external identity is taken over: not its tasks, not its profile.
    assert client.get("/api/tasks", headers=bearer(acc["token"])).json()["data"] == []
    outsider_tasks = client.get("/api/tasks", headers=bearer(outsider_token)).json()["data"]
    assert [t["title"] for t in outsider_tasks] == ["mine"]
    assert signin(client, email, acc["password"]).json()["data"]["user"]["id"] == acc["user"]["id"]


def test_a_weaker_hash_is_upgraded_on_sign_in(client: httpx.Client, db: psycopg.Connection[Any]) -> None:
    acc = account(client)
    weak = argon2.PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(acc["password"])
    db.execute("UPDATE users SET password_hash = %s WHERE id = %s", (weak, acc["user"]["id"]))
    assert signin(client, acc["email"], acc["password"]).status_code == 200
    row = db.execute("SELECT password_hash FROM users WHERE id = %s", (acc["user"]["id"],)).fetchone()
    assert row is not None and row[0] != weak
    assert not argon2.PasswordHasher().check_needs_rehash(row[0])
    assert signin(client, acc["email"], acc["password"]).status_code == 200


# --- me ------------------------------------------------------------------------------------------


def test_me_returns_the_account(client: httpx.Client) -> None:
    acc = account(client)
    response = client.get("/api/auth/me", headers=bearer(acc["token"]))
    assert response.status_code == 200
    assert response.json() == {"data": acc["user"]}


def test_me_for_an_external_token_user_creates_its_row_once(client: httpx.Client, db: psycopg.Connection[Any]) -> None:
    ext = f"ext-{uuid.uuid4()}"
    token = make_token(ext, email="ext@example.com", name="External")
    first = client.get("/api/auth/me", headers=bearer(token))
    assert first.status_code == 200
    data = first.json()["data"]
    assert set(data) == USER_KEYS
    assert (data["id"], data["email"], data["name"]) == (ext, "ext@example.com", "External")
    parse_ts(data["created_at"])
    assert db.execute("SELECT count(*) FROM users WHERE id = %s", (ext,)).fetchone() == (1,)
    # Stable afterwards, also once the user has tasks.
    assert client.post("/api/tasks", json=task_body(), headers=bearer(token)).status_code == 201
    assert client.get("/api/auth/me", headers=bearer(token)).json() == first.json()


def test_me_without_profile_claims_has_null_email_and_name(client: httpx.Client) -> None:
    token = make_token(None, user_id=987_654_321_012)
    data = client.get("/api/auth/me", headers=bearer(token)).json()["data"]
    assert (data["id"], data["email"], data["name"]) == ("987654321012", None, None)


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Missing bearer token."),
        ({"Authorization": "Bearer not.a.jwt"}, "The token is invalid."),
        ({"Authorization": "Token " + make_token("someone")}, "The token is invalid."),
        ({"Authorization": "Bearer " + make_token("someone", exp_in=-3600)}, "The token has expired."),
        (
            {"Authorization": "Bearer " + make_token("someone", secret="another-secret-" * 4)},
            "The token is invalid.",
        ),
    ],
)
def test_me_needs_a_valid_token(client: httpx.Client, headers: dict[str, str], message: str) -> None:
    response = client.get("/api/auth/me", headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": {"code": "UNAUTHORIZED", "message": message}}
    assert response.headers["www-authenticate"].startswith("Bearer")


# --- lockout -------------------------------------------------------------------------------------


def assert_locked(response: httpx.Response, at_most: int) -> int:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "RATE_LIMITED"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= at_most
    return retry_after


def test_lockout_after_max_failures_even_with_the_right_password(strict_client: httpx.Client) -> None:
    acc = account(strict_client)
    # One address, however it is spelled.
    for email in (acc["email"], acc["email"].upper(), f" {acc['email']} "):
        assert signin(strict_client, email, "wrong-password").json() == BAD_CREDENTIALS
    first = assert_locked(signin(strict_client, acc["email"], acc["password"]), at_most=900)
    assert first >= 890  # seconds until the window (opened at the first failure) closes
    time.sleep(1.05)
    second = assert_locked(signin(strict_client, acc["email"].upper(), acc["password"]), at_most=900)
    assert second <= first - 1  # counts down: it is the time left, not a constant
    # Other emails are not affected.
    other = account(strict_client)
    assert signin(strict_client, other["email"], other["password"]).status_code == 200


def test_failures_for_unknown_emails_are_counted_too(strict_client: httpx.Client) -> None:
    email = f"nobody-{uuid.uuid4().hex}@example.com"
    for _ in range(3):
        assert signin(strict_client, email, "any-password").json() == BAD_CREDENTIALS
    assert_locked(signin(strict_client, email, "any-password"), at_most=900)


def test_successful_sign_in_clears_the_failures(strict_client: httpx.Client) -> None:
    acc = account(strict_client)
    for _ in range(2):
        assert signin(strict_client, acc["email"], "wrong-password").status_code == 401
    assert signin(strict_client, acc["email"], acc["password"]).status_code == 200
    # A fresh count: three more failures are needed for a lockout.
    for _ in range(3):
        assert signin(strict_client, acc["email"], "wrong-password").status_code == 401
    assert_locked(signin(strict_client, acc["email"], acc["password"]), at_most=900)


def test_concurrent_guesses_never_exceed_the_limit(strict: LiveServer, strict_settings: Settings) -> None:
    email = f"target-{uuid.uuid4().hex}@example.com"

    def guess(i: int) -> int:
        with httpx.Client(base_url=strict.url, timeout=30) as http:
            return signin(http, email, f"guess-{i}").status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = Counter(pool.map(guess, range(12)))
    # Exactly three guesses were checked. The others are refused: 429 (locked out), or 503 when
    # they arrived while every place of the hashing queue (CPUs + AUTH_HASH_QUEUE) was taken;
    # never a fourth 401.
    places = (os.cpu_count() or 2) + strict_settings.auth_hash_queue
    assert statuses[401] == 3
    assert set(statuses) <= {401, 429, 503}
    assert statuses[503] <= max(0, 12 - places)


def test_lockout_is_shared_by_two_instances_on_one_database(
    serve: Callable[[Settings], LiveServer], strict_settings: Settings
) -> None:
    one, two = serve(strict_settings), serve(strict_settings)
    with httpx.Client(base_url=one.url, timeout=30) as a, httpx.Client(base_url=two.url, timeout=30) as b:
        acc = account(a)
        for http in (a, b, a):
            assert signin(http, acc["email"], "wrong-password").status_code == 401
        assert_locked(signin(b, acc["email"], acc["password"]), at_most=900)
        assert_locked(signin(a, acc["email"], acc["password"]), at_most=900)


def test_lockout_expires_when_its_window_closes(
    serve: Callable[[Settings], LiveServer], base_settings: Settings
) -> None:
    server = serve(base_settings.with_(auth_max_failed_attempts=2, auth_lockout_s=2))
    with httpx.Client(base_url=server.url, timeout=30) as http:
        acc = account(http)
        for _ in range(2):
            assert signin(http, acc["email"], "wrong-password").status_code == 401
        retry_after = assert_locked(signin(http, acc["email"], acc["password"]), at_most=2)
        time.sleep(retry_after + 0.05)
        # The window has closed: a new one starts with this attempt, and the password is right.
        assert signin(http, acc["email"], "wrong-password").status_code == 401
        assert signin(http, acc["email"], acc["password"]).status_code == 200


# --- configuration, documentation, migrations -----------------------------------------------------


def test_accounts_are_off_when_hs256_is_not_allowed(
    serve: Callable[[Settings], LiveServer], base_settings: Settings
) -> None:
    # An RS256-only deployment (its keys from a JWKS, unreachable here: start-up does not need it).
    server = serve(base_settings.with_(jwt_algorithms=("RS256",), jwt_jwks_url="http://127.0.0.1:9/jwks"))
    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert http.post("/api/auth/signup", json=signup_body()).status_code == 404
        assert http.post("/api/auth/signin", json={"email": "a@b.co", "password": "x"}).status_code == 404
        paths = http.get("/schema/openapi.json").json()["paths"]
        assert "/api/auth/signup" not in paths and "/api/auth/me" in paths


def test_openapi_documents_the_accounts_endpoints(client: httpx.Client) -> None:
    doc = client.get("/schema/openapi.json").json()
    signup_op = doc["paths"]["/api/auth/signup"]["post"]
    signin_op = doc["paths"]["/api/auth/signin"]["post"]
    me_op = doc["paths"]["/api/auth/me"]["get"]
    assert (signup_op["operationId"], signin_op["operationId"], me_op["operationId"]) == (
        "SignUp",
        "SignIn",
        "GetMe",
    )
    assert {"201", "409", "422"} <= set(signup_op["responses"])
    assert {"200", "401", "422", "429"} <= set(signin_op["responses"])
    assert {"200", "401"} <= set(me_op["responses"])
    assert "security" not in signup_op and "security" not in signin_op
    assert me_op["security"] == [{"BearerAuth": []}]
    for op, fields in ((signup_op, {"email", "password", "name"}), (signin_op, {"email", "password"})):
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        assert set(schema["required"]) == fields
    password = signup_op["requestBody"]["content"]["application/json"]["schema"]["properties"]["password"]
    assert (password["minLength"], password["maxLength"]) == (8, 128)
    # Every reference in the document resolves (request bodies included).
    refs = set(re.findall(r'"\$ref": ?"#/components/schemas/([^"]+)"', json.dumps(doc)))
    assert refs <= set(doc["components"]["schemas"]), refs - set(doc["components"]["schemas"])


def test_accounts_migration_rolls_back_and_reapplies(server_url: str) -> None:
    with scratch_database(server_url, "tasks_rollback", migrate=False) as url:
        # Roll back this migration and any that came after it.
        later = [m for m in apply(url) if m >= "0002"]
        assert "0002_accounts" in rollback(url, steps=len(later))
        with psycopg.connect(url) as conn:
            columns = conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'users'"
            ).fetchall()
            assert ("password_hash",) not in columns and ("email_key",) not in columns
            assert conn.execute("SELECT to_regclass('sign_in_failures')").fetchone() == (None,)
        assert "0002_accounts" in apply(url)

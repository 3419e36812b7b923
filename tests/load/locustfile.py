"""`just load`: locust users that use the API the way people use a todo app.

Each simulated user gets an identity once, then, with a think time between actions (default 1-3 s),
mostly lists and reads its tasks, and now and then creates, edits, ticks off and deletes one.

Identity (on start, once per user):
- default: mint an HS256 token with `JWT_SECRET` from the environment (the server's secret), falling
  back to the secret `just dev` generated in `.devdb/jwt_secret`. Claims as the service issues them:
  `sub`, `user_id`, `email`, `name`, `iat`, `exp`.
- `LOAD_SIGNUP=1`: sign up through `POST /api/auth/signup` (a real account per simulated user).

Failures are counted by status: every response whose status is not the expected one (200, 201, 204)
is a failure, so any 5xx is one. Knobs (environment): LOAD_SIGNUP, LOAD_WAIT_MIN_S / LOAD_WAIT_MAX_S
(think time), LOAD_TOKEN_TTL_S, JWT_SECRET. Host, users, spawn rate and duration: `just load`'s
arguments (see the justfile) or locust's own options.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from locust import FastHttpUser, between, events, task
from locust.contrib.fasthttp import FastResponse

ROOT = Path(__file__).resolve().parents[2]
DEV_SECRET_FILE = ROOT / ".devdb" / "jwt_secret"
WAIT_MIN_S = float(os.environ.get("LOAD_WAIT_MIN_S", "1"))
WAIT_MAX_S = float(os.environ.get("LOAD_WAIT_MAX_S", "3"))
TOKEN_TTL_S = int(os.environ.get("LOAD_TOKEN_TTL_S", "86400"))
SIGNUP = os.environ.get("LOAD_SIGNUP", "0") == "1"
PASSWORD = "load-test-password-1"

TITLES = ["Buy milk", "Call the bank", "Write the report", "Book flights", "Water the plants", "Pay rent"]


def jwt_secret() -> str:
    secret = os.environ.get("JWT_SECRET") or os.environ.get("BETTER_AUTH_SECRET")
    if not secret and DEV_SECRET_FILE.is_file():
        secret = DEV_SECRET_FILE.read_text().strip()
    if not secret:
        raise SystemExit("load: set JWT_SECRET to the server's secret (or LOAD_SIGNUP=1 to sign up)")
    return secret


@events.init.add_listener
def _check_identity_source(environment: Any, **_: Any) -> None:
    if not SIGNUP:
        jwt_secret()  # fail at start, not in every user


def mint_token(user_id: str, email: str, name: str) -> str:
    now = int(time.time())
    claims = {"sub": user_id, "user_id": user_id, "email": email, "name": name, "iat": now}
    claims["exp"] = now + TOKEN_TTL_S
    return jwt.encode(claims, jwt_secret(), algorithm="HS256")


class TodoUser(FastHttpUser):
    """One person with a todo list, in a browser tab."""

    wait_time = between(WAIT_MIN_S, WAIT_MAX_S)

    def on_start(self) -> None:
        self.task_ids: list[int] = []
        suffix = uuid.uuid4().hex[:12]
        email = f"load-{suffix}@example.com"
        name = f"Load User {suffix}"
        if SIGNUP:
            body = {"email": email, "password": PASSWORD, "name": name}
            with self.client.post(
                "/api/auth/signup", json=body, name="/api/auth/signup", catch_response=True
            ) as response:
                if not self._expect(response, 201):
                    self.stop()
                    return
                token = response.json()["data"]["access_token"]
        else:
            token = mint_token(f"load-{suffix}", email, name)
        self.headers = {"Authorization": f"Bearer {token}"}
        # The first visit: look at the list, add a couple of tasks.
        self.list_tasks()
        for _ in range(2):
            self.create_task()

    @staticmethod
    def _expect(response: FastResponse, status: int) -> bool:
        if response.status_code == status:
            response.success()
            return True
        response.failure(f"expected {status}, got {response.status_code}")
        return False

    def _some_task(self) -> int | None:
        if not self.task_ids:
            self.create_task()
        return random.choice(self.task_ids) if self.task_ids else None

    @task(10)
    def list_tasks(self) -> None:
        query = random.choice(["", "", "", "?status=pending", "?sort=-updated_at&limit=20", "?q=milk"])
        with self.client.get(
            f"/api/tasks{query}", headers=self.headers, name="GET /api/tasks", catch_response=True
        ) as response:
            if self._expect(response, 200):
                self.task_ids = [t["id"] for t in response.json()["data"]] or self.task_ids

    @task(4)
    def get_task(self) -> None:
        task_id = self._some_task()
        if task_id is None:
            return
        with self.client.get(
            f"/api/tasks/{task_id}", headers=self.headers, name="GET /api/tasks/{id}", catch_response=True
        ) as response:
            self._expect(response, 200)

    @task(3)
    def create_task(self) -> None:
        body: dict[str, Any] = {"title": random.choice(TITLES)}
        if random.random() < 0.5:
            body["description"] = "Added by the load test."
        with self.client.post(
            "/api/tasks", json=body, headers=self.headers, name="POST /api/tasks", catch_response=True
        ) as response:
            if self._expect(response, 201):
                self.task_ids.append(response.json()["data"]["id"])

    @task(3)
    def toggle_task(self) -> None:
        task_id = self._some_task()
        if task_id is None:
            return
        with self.client.patch(
            f"/api/tasks/{task_id}/complete",
            headers=self.headers,
            name="PATCH /api/tasks/{id}/complete",
            catch_response=True,
        ) as response:
            self._expect(response, 200)

    @task(2)
    def update_task(self) -> None:
        task_id = self._some_task()
        if task_id is None:
            return
        body = {"title": f"{random.choice(TITLES)} (edited)", "description": None}
        with self.client.put(
            f"/api/tasks/{task_id}",
            json=body,
            headers=self.headers,
            name="PUT /api/tasks/{id}",
            catch_response=True,
        ) as response:
            self._expect(response, 200)

    @task(1)
    def delete_task(self) -> None:
        if len(self.task_ids) < 3:  # people keep a few tasks around
            return
        task_id = self.task_ids.pop(random.randrange(len(self.task_ids)))
        with self.client.delete(
            f"/api/tasks/{task_id}", headers=self.headers, name="DELETE /api/tasks/{id}", catch_response=True
        ) as response:
            self._expect(response, 204)

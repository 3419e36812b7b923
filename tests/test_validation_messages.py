"""A 422's `message` is for people (the seed frontend shows `error.message`): it names the first
offending field and its rule. `details` keep their field-by-field entries as before.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from assertions import assert_error
from conftest import User

from app.errors import FieldError, plain_rule


@pytest.mark.parametrize(
    ("query", "message", "field"),
    [
        ("limit=0", "limit must be an integer between 1 and 1000", "limit"),
        ("limit=5000", "limit must be an integer between 1 and 1000", "limit"),
        ("limit=abc", "limit must be an integer between 1 and 1000", "limit"),
        ("offset=-1", "offset must be an integer of at least 0", "offset"),
        (
            "sort=bad",
            "sort must be one of: created_at, -created_at, updated_at, -updated_at, title, -title, due_at, -due_at, "
            "priority, -priority",
            "sort",
        ),
        ("completed=maybe", "completed must be one of: true, false", "completed"),
        ("status=done", "status must be one of: all, pending, completed", "status"),
        ("q=a%00b", "q is not in the accepted format", "q"),
    ],
)
def test_query_parameter_messages(client: httpx.Client, user: User, query: str, message: str, field: str) -> None:
    error = assert_error(client.get(f"/api/tasks?{query}", headers=user.headers), 422)
    assert error["message"] == message
    assert error["details"][0]["field"] == field


BODY_CASES: list[tuple[Any, str, str]] = [
    ({}, "title is required", "title"),
    ({"title": ""}, "title must be 1-500 characters after trimming, without NUL characters", "title"),
    ({"title": "   "}, "title must be 1-500 characters after trimming, without NUL characters", "title"),
    ({"title": 5}, "title must be 1-500 characters after trimming, without NUL characters", "title"),
    ({"title": "x", "completed": "yes"}, "completed must be a JSON boolean", "completed"),
    ([], "the request body must be a JSON object", "body"),
]


@pytest.mark.parametrize(("body", "message", "field"), BODY_CASES)
def test_body_messages(client: httpx.Client, user: User, body: Any, message: str, field: str) -> None:
    error = assert_error(client.post("/api/tasks", json=body, headers=user.headers), 422)
    assert error["message"] == message
    assert error["details"][0]["field"] == field


def test_sign_up_message_names_the_field(client: httpx.Client) -> None:
    body = {"email": "not-an-address", "password": "long enough", "name": "A"}
    error = assert_error(client.post("/api/auth/signup", json=body), 422)
    assert error["message"].startswith("email must be")


def test_details_keep_every_field(client: httpx.Client, user: User) -> None:
    error = assert_error(client.get("/api/tasks?limit=5000&offset=-2", headers=user.headers), 422)
    assert error["message"] == "limit must be an integer between 1 and 1000"
    assert [d["field"] for d in error["details"]] == ["limit", "offset"]
    assert error["details"][0]["message"] == "Expected `int` <= 1000"


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        (FieldError("title", "Expected `str`, got `int`"), "title must be a string"),
        (FieldError("n", "Expected `int` >= 3"), "n must be at least 3"),
        (FieldError("name", "Expected `str` of length <= 100"), "name must be at most 100 characters"),
        (FieldError("x", "something unforeseen"), "x: something unforeseen"),
    ],
)
def test_plain_rules(problem: FieldError, message: str) -> None:
    assert plain_rule(problem.field, problem.message) == message

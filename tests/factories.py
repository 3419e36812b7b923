"""polyfactory factories for request bodies: valid data by construction, varied on every call."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from polyfactory.factories.msgspec_factory import MsgspecFactory

from app.auth.schemas import SignUp
from app.tasks.schemas import TaskCreate, TaskUpdate

RULES = (
    "FREQ=DAILY",
    "FREQ=WEEKLY;BYDAY=MO,WE,FR",
    "FREQ=MONTHLY;INTERVAL=2",
    "FREQ=YEARLY;COUNT=5",
    "FREQ=DAILY;INTERVAL=3;UNTIL=20301231T235959Z",
)


class _Organizing:
    """Valid organizing fields, varied: the task factories share them."""

    __faker__: Any
    __random__: Any

    @classmethod
    def priority(cls) -> str | None:
        return str(cls.__random__.choice(["none", "low", "medium", "high"]))

    @classmethod
    def tags(cls) -> list[str]:
        words = cls.__faker__.words(nb=cls.__random__.randint(0, 4), unique=True)
        return [str(w).capitalize() if cls.__random__.random() < 0.3 else str(w) for w in words]

    @classmethod
    def due_at(cls) -> datetime | None:
        if cls.__random__.random() < 0.3:
            return None
        start = datetime(2026, 1, 1, tzinfo=UTC)
        return start + timedelta(minutes=cls.__random__.randint(0, 3 * 365 * 24 * 60))

    @classmethod
    def recurrence(cls) -> None:
        # A rule needs a due date: `recurring_body` sets both; the other fields are independent.
        return None


class TaskCreateFactory(_Organizing, MsgspecFactory[TaskCreate]):
    __check_model__ = False

    @classmethod
    def title(cls) -> str:
        return cls.__faker__.sentence(nb_words=4)

    @classmethod
    def description(cls) -> str | None:
        return cls.__random__.choice([None, cls.__faker__.paragraph()])


class TaskUpdateFactory(_Organizing, MsgspecFactory[TaskUpdate]):
    __check_model__ = False

    @classmethod
    def title(cls) -> str:
        return cls.__faker__.sentence(nb_words=3)

    @classmethod
    def description(cls) -> str | None:
        return cls.__random__.choice([None, cls.__faker__.paragraph()])

    @classmethod
    def completed(cls) -> bool:
        return cls.__random__.choice([True, False])


def task_body(**overrides: Any) -> dict[str, Any]:
    """A JSON-ready body for POST /api/tasks."""
    body: dict[str, Any] = msgspec.to_builtins(TaskCreateFactory.build())
    body.update(overrides)
    return body


def update_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(TaskUpdateFactory.build())
    body.update(overrides)
    return body


def recurring_body(**overrides: Any) -> dict[str, Any]:
    """A POST body for a recurring task: a rule of the subset and a due date."""
    body = task_body(recurrence=TaskCreateFactory.__random__.choice(RULES))
    if body["due_at"] is None:
        body["due_at"] = "2026-06-15T09:30:00Z"
    body.update(overrides)
    return body


class SignUpFactory(MsgspecFactory[SignUp]):
    __check_model__ = False

    @classmethod
    def email(cls) -> str:
        # Unique per call: every test gets accounts (and lockout counters) of its own.
        return f"{uuid.uuid4().hex[:16]}@{cls.__faker__.domain_name()}"

    @classmethod
    def name(cls) -> str:
        return str(cls.__faker__.name())

    @classmethod
    def password(cls) -> str:
        return str(cls.__faker__.password(length=cls.__random__.randint(8, 40)))


def signup_body(**overrides: Any) -> dict[str, Any]:
    """A JSON-ready body for POST /api/auth/signup, with a fresh email."""
    body: dict[str, Any] = msgspec.to_builtins(SignUpFactory.build())
    body.update(overrides)
    return body

"""polyfactory factories for request bodies: valid data by construction, varied on every call."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from polyfactory.factories.msgspec_factory import MsgspecFactory

from app.auth.schemas import SignUp
from app.tasks.schemas import TaskCreate, TaskUpdate


class TaskCreateFactory(MsgspecFactory[TaskCreate]):
    __check_model__ = False

    @classmethod
    def title(cls) -> str:
        return cls.__faker__.sentence(nb_words=4)

    @classmethod
    def description(cls) -> str | None:
        return cls.__random__.choice([None, cls.__faker__.paragraph()])


class TaskUpdateFactory(MsgspecFactory[TaskUpdate]):
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

"""polyfactory factories for request bodies: valid data by construction, varied on every call."""

from __future__ import annotations

from typing import Any

import msgspec
from polyfactory.factories.msgspec_factory import MsgspecFactory

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

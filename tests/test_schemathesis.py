"""A schema-driven fuzzer against the app's own OpenAPI document: it must find nothing.

Schemathesis (v4) takes the document the app serves at `/schema/openapi.json`, generates valid and
invalid requests for every operation (with a valid bearer token) and sends them to a real server,
running every built-in check: no 5xx; every status code, header, content type and body as
documented; invalid data rejected; valid data accepted; authentication not ignored; unsupported
methods answered 405. A fixed seed and budget keep the run reproducible and about a minute long.

The document is built in-process at import (collection needs it before any fixture runs; the lazy
`schemathesis.pytest.from_fixture` loader does not work with pytest 9), and
`test_the_fuzzed_document_is_the_served_one` proves it is byte for byte what the server serves.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from conftest import SECRET, LiveServer, User
from hypothesis import HealthCheck, Phase, seed, settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.specs.openapi.checks import positive_data_acceptance

from app.config import Settings
from app.main import create_app

# Per operation and generation mode (valid / invalid data).
MAX_EXAMPLES = 150
SEED = 20260206
STATEFUL_EXAMPLES = 80

load_all_checks()
ALL_CHECKS = CHECKS.get_all()


def _document() -> dict[str, Any]:
    # Building the app opens nothing: the pool connects only in the lifespan, never run here.
    app = create_app(Settings(database_url="postgresql://unused@127.0.0.1:9/unused", jwt_secret=SECRET))
    return app.openapi_schema.to_schema()


DOCUMENT = _document()


# Rules of a task's organizing fields that JSON Schema cannot state: a recurrence rule's meaning
# beyond its syntax (each part once, BYDAY with WEEKLY only, COUNT and UNTIL not together, UNTIL a
# real date), a recurrence needs a due date (on PUT, possibly the one stored), a due date whose UTC
# form falls outside the years 1-9999. Their 422 names the field, and only these.
CROSS_FIELD = {"recurrence", "due_at"}


def positive_data_acceptance_but_made_up_values(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """The built-in check, except for answers to values no schema can describe: the fuzzer draws
    Idempotency-Key values from a small space and reuses one for another request, which the API
    rightly refuses with 422 IDEMPOTENCY_KEY_REUSED; an `after` it made up (or sent beside
    `offset`) is no list cursor of ours, a 422 naming `after`; and a 422 naming only fields of
    CROSS_FIELD. All documented."""
    if response.status_code == 422 and b'"IDEMPOTENCY_KEY_REUSED"' in response.content:
        return None
    if response.status_code == 422:
        details = response.json()["error"].get("details") or []
        fields = {detail["field"] for detail in details}
        if details and fields <= CROSS_FIELD:
            return None
    if response.status_code == 422 and case.operation.definition.raw.get("operationId") == "ListTasks":
        details = response.json()["error"].get("details") or []
        if [detail["field"] for detail in details] == ["after"]:
            return None
    return positive_data_acceptance(ctx, response, case)  # type: ignore[no-any-return]


CHECKS_USED = [positive_data_acceptance_but_made_up_values if c is positive_data_acceptance else c for c in ALL_CHECKS]
assert positive_data_acceptance in ALL_CHECKS


FUZZED_USER = User()
schema = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "headers": FUZZED_USER.headers,
            "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
            # A well-formed request may still fail its precondition: an `If-Match` the fuzzer made
            # up names a version the task does not have (412), a `since` it made up is no cursor of
            # ours (410), as a made-up id is no task (404); all documented on those operations.
            "checks": {
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "410", "412", "429", "5xx"]
                }
            },
            # A new account's email must pass email-validator (NFC, no invisible or unassigned
            # characters, a real-looking domain) and its password must not be whitespace only or a
            # common one: rules JSON Schema cannot state, so a schema-valid sign-up may get 422.
            "operations": [
                # The event stream stays open until the client leaves: a request would hang until its
                # timeout. tests/test_events.py covers it (statuses, headers, the envelope on errors).
                {"include-operation-id": "StreamEvents", "enabled": False},
                {
                    "include-operation-id": "SignUp",
                    "checks": {
                        "positive_data_acceptance": {
                            "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
                        }
                    },
                },
            ],
        }
    ),
)


def test_the_fuzzed_document_is_the_served_one(live: LiveServer) -> None:
    served = httpx.get(f"{live.url}/schema/openapi.json")
    assert served.status_code == 200
    assert served.json() == DOCUMENT


def test_every_reference_in_the_document_resolves() -> None:
    """A `$ref` to a missing component makes the fuzzer skip bodies silently (it did, once)."""

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    found = set(refs(DOCUMENT))
    assert found
    for ref in found:
        target: Any = DOCUMENT
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
    bodies = [op["requestBody"] for path in DOCUMENT["paths"].values() for op in path.values() if "requestBody" in op]
    assert len(bodies) == 5  # create, update, complete, sign-up, sign-in


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)
def test_the_api_matches_its_openapi_document(case: schemathesis.Case, live: LiveServer) -> None:
    case.call_and_validate(base_url=live.url, headers=FUZZED_USER.headers, checks=CHECKS_USED, timeout=30)


@pytest.mark.parametrize("server", ["live", "live_pooled"], ids=["direct", "pgbouncer"])
def test_stateful_sequences_match_the_document(request: pytest.FixtureRequest, server: str) -> None:
    """Chains of calls linked through the document (create, then read/update/complete/delete it),
    straight to PostgreSQL and through PgBouncer in transaction mode."""
    live: LiveServer = request.getfixturevalue(server)

    class TasksStateMachine(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            # A user of its own per scenario: what a scenario sees depends only on what it did.
            self.user = User()

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"base_url": live.url, "headers": self.user.headers, "timeout": 30}

        def validate_response(self, response: Any, case: schemathesis.Case, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS_USED, transport_kwargs=kwargs)

    # Responses feed later steps, so Hypothesis may only generate (no replay or shrinking of stored
    # runs), as schemathesis' own runner does; the seed makes the scenarios reproducible.
    seed(SEED)(TasksStateMachine).run(
        settings=settings(
            max_examples=STATEFUL_EXAMPLES,
            stateful_step_count=6,
            phases=[Phase.generate],
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )

"""The committed openapi.json is the app's document (clients are generated from it)."""

from __future__ import annotations

import json

import httpx

from app.openapi import OPENAPI_FILE, document, render


def test_the_committed_openapi_json_is_the_apps_document() -> None:
    committed = OPENAPI_FILE.read_text(encoding="utf-8") if OPENAPI_FILE.exists() else ""
    assert committed == render(document()), "openapi.json is out of date with the app: run `just openapi` and commit it"


def test_the_export_is_what_the_running_service_publishes(client: httpx.Client) -> None:
    served = client.get("/schema/openapi.json")
    assert served.status_code == 200
    assert served.json() == json.loads(OPENAPI_FILE.read_text(encoding="utf-8")), (
        "the served document differs from openapi.json: run `just openapi` (or make the export's settings match)"
    )


def test_the_export_is_stable_and_carries_no_server_specific_value() -> None:
    text = OPENAPI_FILE.read_text(encoding="utf-8")
    assert render(document()) == render(document())
    assert json.loads(text)["servers"] == [{"url": "/"}]
    for leak in ("openapi-export", "127.0.0.1", "localhost:8000"):
        assert leak not in text

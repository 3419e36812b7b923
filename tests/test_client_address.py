"""The client address the app sees (`request.client.host`, what per-address limits key on): the
socket peer, and `X-Forwarded-For` only from a peer listed in TRUSTED_PROXIES.

The server is uvicorn with the configuration of `just serve` (`app.serve.uvicorn_config`); the app
behind it only echoes the address and scheme uvicorn hands it.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from conftest import LiveServer

from app.config import Settings

FORGED = "203.0.113.9"


async def echo_client(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = json.dumps({"host": scope["client"][0], "scheme": scope["scheme"]}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def seen(settings: Settings, headers: dict[str, str]) -> dict[str, str]:
    with LiveServer(settings, app=echo_client) as server:
        response = httpx.get(f"{server.url}/", headers=headers)
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


FORWARDED = {"X-Forwarded-For": FORGED, "X-Forwarded-Proto": "https"}


def test_without_trusted_proxies_a_forged_forwarded_for_changes_nothing(base_settings: Settings) -> None:
    assert base_settings.trusted_proxies == ()
    assert seen(base_settings, FORWARDED) == {"host": "127.0.0.1", "scheme": "http"}


@pytest.mark.parametrize("trusted", [("127.0.0.1",), ("10.0.0.1", "127.0.0.0/8")], ids=["address", "cidr"])
def test_a_listed_proxy_is_believed(base_settings: Settings, trusted: tuple[str, ...]) -> None:
    settings = base_settings.with_(trusted_proxies=trusted)
    assert seen(settings, FORWARDED) == {"host": FORGED, "scheme": "https"}


def test_a_peer_outside_the_list_is_not_believed(base_settings: Settings) -> None:
    settings = base_settings.with_(trusted_proxies=("10.0.0.0/8",))
    assert seen(settings, FORWARDED) == {"host": "127.0.0.1", "scheme": "http"}

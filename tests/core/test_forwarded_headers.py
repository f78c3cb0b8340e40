"""Whose X-Forwarded-For `datagate serve` believes: only the configured proxy's."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from app.cli import uvicorn_config
from tests.conftest import make_settings
from tests.server_process import free_port


async def echo_client(scope: Any, receive: Any, send: Any) -> None:
    """The client address and scheme the app is told, as the throttle and cookies see them."""
    if scope["type"] != "http":
        return
    body = f"{scope['client'][0]} {scope['scheme']}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@contextmanager
def serving(tmp_path: Path, **settings: Any) -> Iterator[str]:
    port = free_port()
    config = uvicorn_config(echo_client, make_settings(tmp_path, port=port, **settings))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


FORGED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}


def test_a_local_client_cannot_choose_its_address_by_default(tmp_path: Path) -> None:
    """Rotating X-Forwarded-For from loopback escaped the wrong-key throttle (issue 18)."""
    with serving(tmp_path) as url:
        assert httpx.get(url, headers=FORGED).text == "127.0.0.1 http"


def test_the_configured_proxy_is_believed(tmp_path: Path) -> None:
    with serving(tmp_path, trusted_proxies="127.0.0.1") as url:
        assert httpx.get(url, headers=FORGED).text == "203.0.113.9 https"

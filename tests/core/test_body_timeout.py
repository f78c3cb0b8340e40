"""A request body that stalls is refused with 408 and leaves no spool file behind."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from starlette.types import Message

from app.core.body_timeout import BodyTimeout, BodyTimeoutMiddleware
from app.core.security import Authenticator
from app.main import create_app
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio

BOUNDARY = "b0undary"


async def call(app: Any, messages: list[Message], path: str = "/echo") -> list[Message]:
    """Run one request through `app`; after `messages` the client stalls (receive never returns)."""
    pending = list(messages)
    sent: list[Message] = []

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        await asyncio.Event().wait()  # a client that stopped sending
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)
    return sent


def echo_app() -> FastAPI:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.exception_handler(BodyTimeout)
    async def _timeout(_: Request, exc: BodyTimeout) -> Any:
        from fastapi.responses import JSONResponse

        return JSONResponse({"code": exc.code}, status_code=exc.status_code)

    return app


async def test_stalled_body_is_refused_with_408() -> None:
    app = BodyTimeoutMiddleware(echo_app(), timeout_s=0.2)
    sent = await call(app, [{"type": "http.request", "body": b"abc", "more_body": True}])
    assert sent[0]["status"] == 408


async def test_complete_body_passes_however_slow_the_route_is() -> None:
    app = BodyTimeoutMiddleware(echo_app(), timeout_s=0.2)
    sent = await call(
        app,
        [
            {"type": "http.request", "body": b"abc", "more_body": True},
            {"type": "http.request", "body": b"de", "more_body": False},
        ],
    )
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == b'{"bytes":5}'


async def test_service_refuses_a_stalled_upload_and_removes_its_spool_file(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, body_timeout_s=0.3)
    settings.ensure_dirs()
    app = create_app(settings)
    # No lifespan: the upload is refused before the route needs anything but these.
    app.state.settings = settings
    app.state.auth = Authenticator(settings)
    app.state.validations = None
    part = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="data"; filename="d.csv"\r\n'
        "Content-Type: text/csv\r\n\r\na,b\n1,2\n"
    ).encode()
    sent = await call(
        app, [{"type": "http.request", "body": part, "more_body": True}], "/v1/validations"
    )
    assert sent[0]["status"] == 408
    body = b"".join(m.get("body", b"") for m in sent[1:])
    assert b"request_timeout" in body
    assert list(settings.uploads_dir.iterdir()) == []

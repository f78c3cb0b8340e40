"""Refuse a request whose body stalls: uvicorn has no body read timeout, so this layer adds one.

A client that sends headers and then stops sending must not hold a connection, an upload's spool
file or a worker thread forever: each wait for the next body chunk is bounded.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import DatagateError


class BodyTimeout(DatagateError):
    status_code = 408
    code = "request_timeout"


class BodyTimeoutMiddleware:
    """Each `receive()` of the request body must deliver within `timeout_s` seconds.

    Only the body is bounded: once its last chunk arrived, later `receive()` calls (which wait
    for the client to disconnect) pass through untouched. The error is raised inside the route
    that reads the body, so the upload code discards its spool files and the domain error
    handler answers 408.
    """

    def __init__(self, app: ASGIApp, *, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = False

        async def bounded_receive() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                async with asyncio.timeout(self.timeout_s):
                    message = await receive()
            except TimeoutError:
                raise BodyTimeout(
                    f"the request body stalled: no data for {self.timeout_s:g} s "
                    "(DATAGATE_BODY_TIMEOUT_S)"
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        await self.app(scope, bounded_receive, send)

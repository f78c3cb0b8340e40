"""HEAD on every GET route: the GET's status and headers, no body (RFC 9110 section 9.3.2).

FastAPI routes answer only the methods they declare, so a HEAD (link checkers, monitors, `curl -I`)
met 405. Here a HEAD runs as the GET it stands for and only the body is dropped, so the headers
(Content-Length, Content-Type, caching, security headers) are the GET's own.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGetMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)

"""DNS rebinding: a service without keys answers only to the host names it is known by.

A keyless service listens on loopback only (`check_startup`), so no other machine can reach it;
a browser on the same machine can. A page served from `attacker.example` whose name the attacker
then rebinds to 127.0.0.1 is, for the browser, still same-origin with itself: it can post suites,
validate and read the answers, and the Origin check cannot tell, because Origin and Host both say
`attacker.example`. The Host header is what gives it away: a keyless service answers only to
loopback names (`localhost`, `*.localhost`, loopback addresses), to the host of
DATAGATE_PUBLIC_URL, and to the names in DATAGATE_ALLOWED_HOSTS. Anything else is a 403 that
names the Host and the settings, before any route runs.

With API keys the keys are the defence (a rebound page has no key), so the guard is off unless
DATAGATE_ALLOWED_HOSTS is set, which turns it on whatever the auth.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.config import Settings
from app.core.logging import request_id_var
from app.core.security import is_loopback, parse_api_keys


def host_name(header: str) -> str:
    """The name of a Host header, without its port, lower case: `[::1]:8000` -> `::1`."""
    text = header.strip().lower()
    if text.startswith("["):
        return text[1 : text.find("]")] if "]" in text else text
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


def is_loopback_name(name: str) -> bool:
    # RFC 6761: `localhost` and every name under it resolve to loopback and never to the network.
    return name == "localhost" or name.endswith(".localhost") or is_loopback(name)


class HostGuard:
    """Which Host headers a service answers to; None when it answers to any."""

    def __init__(self, settings: Settings) -> None:
        keyless = settings.auth == "enabled" and not parse_api_keys(settings.api_keys)
        self.active = keyless or bool(settings.allowed_hosts)
        names = {name.lower() for name in settings.allowed_hosts}
        if settings.public_url:
            public = urlsplit(settings.public_url).hostname
            if public:
                names.add(public.lower())
        self.names = frozenset(names)

    def allows(self, header: str | None) -> bool:
        if not self.active:
            return True
        if not header:
            # HTTP/1.0 without Host: no browser sends that, and a rebound page cannot omit it.
            return True
        name = host_name(header)
        return is_loopback_name(name) or name in self.names


class HostGuardMiddleware:
    def __init__(self, app: ASGIApp, guard: HostGuard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = next(
            (v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"), None
        )
        if self.guard.allows(header):
            await self.app(scope, receive, send)
            return
        shown = (header or "")[:100]
        body = json.dumps(
            {
                "error": {
                    "code": "forbidden",
                    "message": f"Host {shown!r} is not a name this service answers to without "
                    "API keys (loopback names only): add it to DATAGATE_ALLOWED_HOSTS, or set "
                    "DATAGATE_PUBLIC_URL or DATAGATE_API_KEYS",
                    "request_id": request_id_var.get(),
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

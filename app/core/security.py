"""API keys: who may read reports and who may submit validations; refuse unsafe start-ups."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from typing import Literal

from starlette.requests import Request

from app.core.config import Settings
from app.core.errors import DatagateError, Unauthorized

Scope = Literal["read", "write"]
KEY_COOKIE = "datagate_key"


class UnsafeConfiguration(Exception):
    """The service must not start as configured; the message says why and what to set."""


class InsufficientScope(DatagateError):
    status_code = 403
    code = "insufficient_scope"


@dataclass(frozen=True)
class ApiKey:
    key: str
    scope: Scope


def parse_api_keys(text: str) -> list[ApiKey]:
    """`key1:write,key2:read` -> keys. A malformed entry stops start-up rather than open a hole."""
    keys: list[ApiKey] = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        key, sep, scope = entry.rpartition(":")
        if not sep or scope not in ("read", "write") or len(key) < 16:
            raise UnsafeConfiguration(
                "DATAGATE_API_KEYS entries must be `key:read` or `key:write` with keys of at "
                f"least 16 characters; got an entry ending in {entry[-6:]!r}"
            )
        keys.append(ApiKey(key=key, scope=scope))  # type: ignore[arg-type]
    return keys


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_startup(settings: Settings, host: str) -> None:
    """Without keys, serve only on loopback unless the operator opted out explicitly."""
    keys = parse_api_keys(settings.api_keys)
    if not keys and settings.auth == "enabled" and not is_loopback(host):
        raise UnsafeConfiguration(
            f"refusing to listen on {host} without API keys: set DATAGATE_API_KEYS "
            "(`key:write,key:read`), or DATAGATE_AUTH=disabled to accept unauthenticated "
            "requests on purpose, or bind 127.0.0.1"
        )


class Authenticator:
    def __init__(self, settings: Settings) -> None:
        self.keys = parse_api_keys(settings.api_keys)
        self.disabled = settings.auth == "disabled" or not self.keys
        self.public_reads = settings.public_reads

    def presented_key(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token:
            return token.strip()
        return request.cookies.get(KEY_COOKIE)

    def scope_of(self, presented: str) -> Scope | None:
        """Constant-time: every key is compared, whatever matches first.

        Digests of equal length are compared, so the time taken does not reveal a key's length
        either (compare_digest returns early on a length mismatch).
        """
        found: Scope | None = None
        offered = hashlib.sha256(presented.encode()).digest()
        for api_key in self.keys:
            if hmac.compare_digest(hashlib.sha256(api_key.key.encode()).digest(), offered):
                found = api_key.scope
        return found

    def authorize(self, request: Request, needed: Scope) -> None:
        if self.disabled or (needed == "read" and self.public_reads):
            return
        presented = self.presented_key(request)
        if not presented:
            raise Unauthorized(
                "an API key is required: send `Authorization: Bearer <key>`",
                headers={"WWW-Authenticate": "Bearer"},
            )
        scope = self.scope_of(presented)
        if scope is None:
            raise Unauthorized("the API key is not valid", headers={"WWW-Authenticate": "Bearer"})
        if needed == "write" and scope != "write":
            raise InsufficientScope("this API key may only read; this route needs a write key")

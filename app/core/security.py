"""API keys: who may read reports and who may submit validations; refuse unsafe start-ups."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from starlette.requests import Request

from app.core.config import Settings
from app.core.errors import DatagateError, Forbidden, TooManyFailures, Unauthorized

Scope = Literal["read", "write"]
# The browser's sign-in: a session token signed with the key it was issued for, never the key.
SESSION_COOKIE = "datagate_session"
SESSION_TTL_S = 12 * 3600
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS = {"http": 80, "https": 443}
# Where a sign-in goes when the page that asked for it is unknown or not a safe local path.
AFTER_SIGN_IN = "/reports"
MAX_NEXT_CHARS = 2048
Origin = tuple[str, str, int]  # scheme, host, port


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


def origin_of(url: str) -> Origin | None:
    """(scheme, host, port) of an http(s) URL, the port filled in; None if it has none."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return (parts.scheme, parts.hostname.lower(), port or DEFAULT_PORTS[parts.scheme])


def parse_callback_origins(text: str) -> set[Origin]:
    """`hooks.example.com, http://127.0.0.1:9000` -> the (scheme, host, port) callbacks may reach.

    A bare host allows http on 80 and https on 443 only: listing a host must not open its other
    services (a database, Redis, an admin port) to signed POSTs.
    """
    origins: set[Origin] = set()
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        bare = "://" not in entry
        parts = urlsplit(f"//{entry}" if bare else entry)
        origin = origin_of(f"http:{parts.geturl()}" if bare else entry)
        if (
            origin is None
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or parts.username is not None
            or (bare and parts.port is not None)
        ):
            raise UnsafeConfiguration(
                f"DATAGATE_CALLBACK_HOSTS entry {entry!r} is neither a host name nor an origin "
                "scheme://host[:port] (http or https, no path): e.g. hooks.example.com or "
                "http://127.0.0.1:9000"
            )
        if bare:
            origins.update((scheme, origin[1], port) for scheme, port in DEFAULT_PORTS.items())
        else:
            origins.add(origin)
    return origins


def check_startup(settings: Settings, host: str) -> None:
    """Without keys, serve only on loopback unless the operator opted out explicitly; refuse a
    callback allow-list that cannot be read."""
    parse_callback_origins(settings.callback_hosts)
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
        # Wrong keys per address, shared by /login and Bearer keys: guessing through the API
        # is no faster than guessing through the sign-in form.
        self.throttle = LoginThrottle(settings.login_max_failures)

    def presented_key(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token:
            return token.strip()
        return None

    def issue_session(self, key: str, now: float | None = None) -> str:
        """A browser session for a valid key: `<expiry>.<nonce>.<mac>`, the mac keyed by the key.

        Signing with the key itself needs no secret of its own, holds across replicas, and ends
        every session of a key when the key is removed. The key cannot be read back from it.
        """
        expires = int((time.time() if now is None else now) + SESSION_TTL_S)
        nonce = secrets.token_urlsafe(16)
        return f"{expires}.{nonce}.{_session_mac(key, expires, nonce)}"

    def session_valid(self, token: str, now: float | None = None) -> bool:
        """A session token issued by this service for a key still configured, not expired."""
        expires_text, _, rest = token.partition(".")
        nonce, _, mac = rest.partition(".")
        if not (expires_text.isdigit() and nonce and mac) or len(token) > 200:
            return False
        expires = int(expires_text)
        current = time.time() if now is None else now
        if not current < expires <= current + SESSION_TTL_S:
            return False
        found = False
        offered = mac.encode()  # bytes: compare_digest refuses non-ASCII str with a TypeError
        for api_key in self.keys:  # every key, whichever matches: no timing signal
            if hmac.compare_digest(_session_mac(api_key.key, expires, nonce).encode(), offered):
                found = True
        return found

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
        session = request.cookies.get(SESSION_COOKIE)
        if not presented and session:
            # A browser sends the cookie with any form another page submits (SameSite does not
            # separate ports of one host): the sign-in only ever reads.
            if needed == "write":
                raise InsufficientScope(
                    "the browser sign-in only reads; writes need `Authorization: Bearer "
                    "<write key>`"
                )
            if self.session_valid(session):
                return
            raise Unauthorized(
                "the sign-in has expired or its key was removed; sign in again at /login",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not presented:
            raise Unauthorized(
                "an API key is required: send `Authorization: Bearer <key>`",
                headers={"WWW-Authenticate": "Bearer"},
            )
        address = request.client.host if request.client else "unknown"
        # Refused before the key is compared: a locked-out address learns nothing from guesses.
        wait_s = self.throttle.retry_after(address)
        if wait_s is not None:
            raise TooManyFailures(
                f"too many wrong API keys from this address; try again in {wait_s} s",
                headers={"Retry-After": str(wait_s)},
            )
        scope = self.scope_of(presented)
        if scope is None:
            self.throttle.failed(address)
            raise Unauthorized("the API key is not valid", headers={"WWW-Authenticate": "Bearer"})
        if needed == "write" and scope != "write":
            raise InsufficientScope("this API key may only read; this route needs a write key")


def local_next(target: str | None) -> str:
    """Where a sign-in may send the browser: `target` when it is a path on this service,
    else /reports.

    Only an absolute path (`/reports/abc?x=1`) is kept. Refused: anything a browser could
    resolve to another host (`//host`, `/\\host`, `http://...`, `javascript:`), backslashes
    (browsers read them as slashes), control characters and whitespace (stripped or
    reinterpreted by browsers), and very long values.
    """
    if not target or len(target) > MAX_NEXT_CHARS:
        return AFTER_SIGN_IN
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return AFTER_SIGN_IN
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in target):
        return AFTER_SIGN_IN
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return AFTER_SIGN_IN
    return target


def _session_mac(key: str, expires: int, nonce: str) -> str:
    message = f"datagate-session:{expires}:{nonce}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def own_origin(request: Request, public_url: str | None) -> str:
    """The service's origin: DATAGATE_PUBLIC_URL's when set, else the one the request named."""
    if public_url:
        parts = urlsplit(public_url)
        return f"{parts.scheme}://{parts.netloc}".lower()
    return f"{request.url.scheme}://{request.headers.get('host', '')}".lower()


def check_origin(request: Request, public_url: str | None) -> None:
    """Refuse a state-changing request a browser sent from another origin (another port too).

    Clients (CLI, the Python client, curl) send no Origin; browsers send it with every POST, and
    `null` from sandboxed frames such as the stored deepchecks views.
    """
    origin = request.headers.get("origin")
    if request.method not in UNSAFE_METHODS or origin is None:
        return
    expected = own_origin(request, public_url)
    if origin.lower() != expected:
        raise Forbidden(
            f"cross-origin request refused: Origin {origin[:100]!r} is not this service's "
            f"origin {expected!r} (set DATAGATE_PUBLIC_URL if a proxy changes the host)"
        )


class LoginThrottle:
    """Failed sign-ins per client address in a sliding window; past the limit, wait.

    Kept per process: with several replicas an address gets the limit once per replica, which
    still turns guessing 16-character keys from seconds per hundred into hours.
    """

    MAX_ADDRESSES = 10_000  # bounded memory: the oldest address is forgotten first

    def __init__(self, max_failures: int, window_s: float = 60.0) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str, now: float | None = None) -> int | None:
        """Seconds until `address` may try again, or None if it may try now."""
        current = time.monotonic() if now is None else now
        failures = self._failures.get(address)
        if failures is None:
            return None
        while failures and failures[0] <= current - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        if len(failures) < self.max_failures:
            return None
        return max(1, int(failures[0] + self.window_s - current + 0.999))

    def failed(self, address: str, now: float | None = None) -> None:
        current = time.monotonic() if now is None else now
        self._failures.setdefault(address, deque(maxlen=self.max_failures)).append(current)
        self._failures.move_to_end(address)
        while len(self._failures) > self.MAX_ADDRESSES:
            self._failures.popitem(last=False)

"""API keys and the refusal to serve a network address without them."""

from __future__ import annotations

import time

import pytest
from starlette.requests import Request

from app.core.config import Settings
from app.core.errors import Forbidden, Unauthorized
from app.core.security import (
    SESSION_COOKIE,
    SESSION_TTL_S,
    Authenticator,
    InsufficientScope,
    LoginThrottle,
    UnsafeConfiguration,
    check_origin,
    check_startup,
    local_next,
    parse_api_keys,
    parse_callback_origins,
)

WRITE_KEY = "w" * 20
READ_KEY = "r" * 20


def request_with(headers: dict[str, str], method: str = "GET") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    scope = {"type": "http", "headers": raw, "method": method, "path": "/", "scheme": "http"}
    return Request(scope)


def test_keys_parse_with_their_scopes() -> None:
    keys = parse_api_keys(f"{WRITE_KEY}:write, {READ_KEY}:read")
    assert [(k.key, k.scope) for k in keys] == [(WRITE_KEY, "write"), (READ_KEY, "read")]


@pytest.mark.parametrize("entry", ["short:write", f"{WRITE_KEY}:admin", WRITE_KEY])
def test_malformed_key_entries_stop_start_up(entry: str) -> None:
    with pytest.raises(UnsafeConfiguration, match="DATAGATE_API_KEYS"):
        parse_api_keys(entry)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.5"])
def test_loopback_without_keys_is_allowed(host: str) -> None:
    check_startup(Settings(), host)


def test_network_address_without_keys_is_refused_saying_what_to_set() -> None:
    with pytest.raises(UnsafeConfiguration) as refused:
        check_startup(Settings(), "0.0.0.0")
    assert "DATAGATE_API_KEYS" in str(refused.value)
    assert "DATAGATE_AUTH=disabled" in str(refused.value)


def test_network_address_is_allowed_with_keys_or_explicit_opt_out() -> None:
    check_startup(Settings(api_keys=f"{WRITE_KEY}:write"), "0.0.0.0")
    check_startup(Settings(auth="disabled"), "0.0.0.0")


def test_write_routes_need_a_write_key() -> None:
    auth = Authenticator(Settings(api_keys=f"{WRITE_KEY}:write,{READ_KEY}:read"))
    with pytest.raises(Unauthorized):
        auth.authorize(request_with({}), "write")
    with pytest.raises(Unauthorized):
        auth.authorize(request_with({"Authorization": "Bearer " + "x" * 20}), "write")
    with pytest.raises(InsufficientScope):
        auth.authorize(request_with({"Authorization": f"Bearer {READ_KEY}"}), "write")
    auth.authorize(request_with({"Authorization": f"Bearer {WRITE_KEY}"}), "write")


def test_read_routes_accept_read_and_write_keys_and_a_signed_in_session() -> None:
    auth = Authenticator(Settings(api_keys=f"{WRITE_KEY}:write,{READ_KEY}:read"))
    auth.authorize(request_with({"Authorization": f"Bearer {READ_KEY}"}), "read")
    auth.authorize(request_with({"Authorization": f"Bearer {WRITE_KEY}"}), "read")
    session = auth.issue_session(READ_KEY)
    auth.authorize(request_with({"Cookie": f"{SESSION_COOKIE}={session}"}), "read")


def test_the_session_cookie_is_not_the_key_and_a_key_is_no_session() -> None:
    auth = Authenticator(Settings(api_keys=f"{WRITE_KEY}:write,{READ_KEY}:read"))
    session = auth.issue_session(WRITE_KEY)
    assert WRITE_KEY not in session and READ_KEY not in session
    assert auth.issue_session(WRITE_KEY) != session, "each sign-in gets its own token"
    with pytest.raises(Unauthorized):
        auth.authorize(request_with({"Cookie": f"{SESSION_COOKIE}={WRITE_KEY}"}), "read")


def test_a_session_ends_when_it_expires_or_its_key_is_removed() -> None:
    auth = Authenticator(Settings(api_keys=f"{WRITE_KEY}:write,{READ_KEY}:read"))
    session = auth.issue_session(READ_KEY, now=1_000_000.0)
    assert auth.session_valid(session, now=1_000_000.0 + SESSION_TTL_S - 1)
    assert not auth.session_valid(session, now=1_000_000.0 + SESSION_TTL_S + 1)
    expires, nonce, mac = session.split(".")
    # A later expiry with the same mac is a forgery: the expiry is signed.
    assert not auth.session_valid(f"{int(expires) + 60}.{nonce}.{mac}", now=1_000_000.0)
    rotated = Authenticator(Settings(api_keys=f"{WRITE_KEY}:write"))
    assert not rotated.session_valid(session, now=1_000_000.0)


@pytest.mark.parametrize(
    "cookie", ["", "x", "1.2", "99999999999.n.m", "SOON.nonce.\u00e9\u00e9", "SOON.b.c.d"]
)
def test_a_forged_or_garbled_session_is_401_not_an_error(cookie: str) -> None:
    auth = Authenticator(Settings(api_keys=f"{WRITE_KEY}:write"))
    cookie = cookie.replace("SOON", str(int(time.time()) + 60))  # unexpired: the mac is compared
    assert not auth.session_valid(cookie)
    if cookie:
        with pytest.raises(Unauthorized):
            auth.authorize(request_with({"Cookie": f"{SESSION_COOKIE}={cookie}"}), "read")


def test_a_signed_in_session_never_authorizes_a_write() -> None:
    """A cross-site form carries the cookie (SameSite does not separate ports): it must not
    write."""
    auth = Authenticator(Settings(api_keys=f"{WRITE_KEY}:write"))
    session = auth.issue_session(WRITE_KEY)
    with pytest.raises(InsufficientScope, match="Authorization: Bearer"):
        auth.authorize(request_with({"Cookie": f"{SESSION_COOKIE}={session}"}, "POST"), "write")


@pytest.mark.parametrize(
    ("origin", "public_url", "refused"),
    [
        (None, None, False),  # a client, not a browser
        ("http://127.0.0.1:8000", None, False),
        ("http://127.0.0.1:9999", None, True),  # another port of the same host
        ("null", None, True),  # a sandboxed frame, such as a stored deepchecks view
        ("https://evil.example", None, True),
        ("https://gate.example.com", "https://gate.example.com/", False),
        ("http://127.0.0.1:8000", "https://gate.example.com", True),
    ],
)
def test_a_write_from_another_origin_is_refused(
    origin: str | None, public_url: str | None, refused: bool
) -> None:
    headers = {"Host": "127.0.0.1:8000"} | ({"Origin": origin} if origin else {})
    request = request_with(headers, "POST")
    if refused:
        with pytest.raises(Forbidden, match="cross-origin"):
            check_origin(request, public_url)
    else:
        check_origin(request, public_url)
    check_origin(request_with(headers, "GET"), public_url)  # reads are not refused


def test_login_throttle_refuses_after_the_limit_and_forgets_after_the_window() -> None:
    throttle = LoginThrottle(max_failures=3, window_s=60)
    for second in range(3):
        assert throttle.retry_after("10.0.0.1", now=100.0 + second) is None
        throttle.failed("10.0.0.1", now=100.0 + second)
    assert throttle.retry_after("10.0.0.1", now=103.0) == 57
    assert throttle.retry_after("10.0.0.2", now=103.0) is None, "per client address"
    assert throttle.retry_after("10.0.0.1", now=161.0) is None, "the first failure aged out"


def test_callback_allow_list_is_by_scheme_host_and_port() -> None:
    origins = parse_callback_origins("hooks.example.com, http://127.0.0.1:9000,https://[::1]")
    assert origins == {
        ("http", "hooks.example.com", 80),
        ("https", "hooks.example.com", 443),
        ("http", "127.0.0.1", 9000),
        ("https", "::1", 443),
    }


@pytest.mark.parametrize(
    "entry", ["127.0.0.1:6379", "ftp://x.example", "http://x.example/path", "http://u@x.example"]
)
def test_unreadable_callback_entries_stop_start_up(entry: str) -> None:
    with pytest.raises(UnsafeConfiguration, match="DATAGATE_CALLBACK_HOSTS"):
        check_startup(Settings(callback_hosts=entry), "127.0.0.1")


def test_public_reads_open_reads_only() -> None:
    auth = Authenticator(Settings(api_keys=f"{WRITE_KEY}:write", public_reads=True))
    auth.authorize(request_with({}), "read")
    with pytest.raises(Unauthorized):
        auth.authorize(request_with({}), "write")


def test_key_comparison_is_constant_time() -> None:
    """Every configured key is compared with hmac.compare_digest, whichever matches."""
    import hmac
    from unittest import mock

    auth = Authenticator(Settings(api_keys=f"{WRITE_KEY}:write,{READ_KEY}:read"))
    with mock.patch("app.core.security.hmac.compare_digest", wraps=hmac.compare_digest) as cmp:
        assert auth.scope_of(WRITE_KEY) == "write"
    assert cmp.call_count == 2


@pytest.mark.parametrize(
    "target",
    ["/reports/abc", "/reports?status=failed&suite=penguins", "/docs", "/reports/a%2F%2Fb"],
)
def test_a_sign_in_goes_back_to_a_local_path(target: str) -> None:
    assert local_next(target) == target


@pytest.mark.parametrize(
    "target",
    [
        None,
        "",
        "//evil.example/reports",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/reports\\..\\..\\evil",
        "http://evil.example/reports",
        "https:evil.example",
        "javascript:alert(1)",
        "reports",
        "/\t/evil.example",
        "/ /evil.example",
        "/reports\r\nSet-Cookie: x=1",
        "/" + "a" * 3000,
    ],
    ids=[
        "none", "empty", "protocol-relative", "triple-slash", "slash-backslash", "backslashes",
        "backslash-path", "absolute-url", "scheme-no-slashes", "javascript", "relative",
        "tab", "space", "header-injection", "too-long",
    ],
)  # fmt: skip
def test_a_sign_in_never_leaves_for_another_host_or_a_strange_path(target: str | None) -> None:
    assert local_next(target) == "/reports"

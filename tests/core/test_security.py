"""API keys and the refusal to serve a network address without them."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from app.core.config import Settings
from app.core.errors import Unauthorized
from app.core.security import (
    Authenticator,
    InsufficientScope,
    UnsafeConfiguration,
    check_startup,
    parse_api_keys,
)

WRITE_KEY = "w" * 20
READ_KEY = "r" * 20


def request_with(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    return Request({"type": "http", "headers": raw, "method": "GET", "path": "/"})


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


def test_read_routes_accept_read_and_write_keys_and_a_cookie() -> None:
    auth = Authenticator(Settings(api_keys=f"{WRITE_KEY}:write,{READ_KEY}:read"))
    auth.authorize(request_with({"Authorization": f"Bearer {READ_KEY}"}), "read")
    auth.authorize(request_with({"Authorization": f"Bearer {WRITE_KEY}"}), "read")
    auth.authorize(request_with({"Cookie": f"datagate_key={READ_KEY}"}), "read")


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

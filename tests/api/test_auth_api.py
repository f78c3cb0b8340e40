"""Access control through the app: every write route needs a write key, reads need a read key."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient

from app.core.security import SESSION_COOKIE
from app.main import create_app
from tests.conftest import EXAMPLES, REPO, RunningApp, make_settings

pytestmark = pytest.mark.anyio

WRITE_KEY = "write-key-0123456789abcdef"
READ_KEY = "read-key-0123456789abcdef"
WRONG_KEY = "wrong-key-0123456789abcdef"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# Open on purpose: probes for orchestrators, the API description, the sign-in form itself, and
# the pages' static files (a stylesheet and plotly.js: no data, and the 401 page needs them).
PUBLIC = {
    ("GET", "/static/0123456789abcdef"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/login"),
    ("POST", "/login"),
}


@pytest.fixture(scope="module")
def keyed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    # No allowed hosts: with keys the Host header is not what keeps a caller out.
    settings = make_settings(
        tmp_path_factory.mktemp("auth"),
        api_keys=f"{WRITE_KEY}:write,{READ_KEY}:read",
        allowed_hosts=[],
    )
    running = RunningApp(create_app(settings))
    yield running
    running.close()


@pytest.fixture
async def client(keyed_app: RunningApp) -> AsyncIterator[AsyncClient]:
    async with keyed_app.client() as http:
        yield http


def walk(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            # FastAPI >= 0.16x keeps an included router as one entry (not public API): open it,
            # with the prefix it was included under. Routes hidden from OpenAPI count too.
            yield from walk(included.routes, prefix + route.include_context.prefix)
            continue
        path = re.sub(r"\{[^}]+\}", "0123456789abcdef", prefix + getattr(route, "path", ""))
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":
                yield method, path


def routes(app: RunningApp) -> list[tuple[str, str]]:
    """Every (method, path) the app answers, path parameters filled in."""
    return list(walk(app.app.routes))


def bearer(key: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def test_the_app_has_write_and_read_routes_to_check(keyed_app: RunningApp) -> None:
    found = routes(keyed_app)
    assert ("POST", "/v1/validations") in found
    assert ("GET", "/v1/reports/0123456789abcdef") in found
    documented = {
        (method.upper(), re.sub(r"\{[^}]+\}", "0123456789abcdef", path))
        for path, operations in keyed_app.app.openapi()["paths"].items()
        for method in operations
    }
    assert documented <= set(found), "the walk must see every route the OpenAPI schema lists"


@pytest.mark.parametrize(
    ("key", "status"),
    [(None, 401), (WRONG_KEY, 401), (READ_KEY, 403)],
    ids=["none", "wrong", "read"],
)
async def test_every_write_route_refuses_a_missing_wrong_or_read_only_key(
    client: AsyncClient, keyed_app: RunningApp, key: str | None, status: int
) -> None:
    found = routes(keyed_app)
    writes = [(m, p) for m, p in found if m not in SAFE_METHODS and (m, p) not in PUBLIC]
    assert writes, "no write route found: the enumeration is broken"
    for i, (method, path) in enumerate(writes):
        # Wrong keys are throttled per address: each route is asked from an address of its own.
        async with client_at(keyed_app, f"198.51.100.{i + 1}") as asking:
            response = await asking.request(
                method, path, headers=bearer(key), files={"data": ("d.csv", b"a\n1\n")}
            )
        assert response.status_code == status, (method, path, response.text)
        if status == 401:
            assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("key", [None, WRONG_KEY], ids=["none", "wrong"])
async def test_every_read_route_refuses_a_missing_or_wrong_key(
    client: AsyncClient, keyed_app: RunningApp, key: str | None
) -> None:
    reads = [(m, p) for m, p in routes(keyed_app) if m in SAFE_METHODS and (m, p) not in PUBLIC]
    assert ("GET", "/metrics") in reads
    for i, (method, path) in enumerate(reads):
        async with client_at(keyed_app, f"192.0.2.{i + 1}") as asking:
            response = await asking.request(method, path, headers=bearer(key))
        assert response.status_code == 401, (method, path, response.text)


@pytest.mark.parametrize("key", [READ_KEY, WRITE_KEY], ids=["read", "write"])
async def test_read_routes_answer_a_read_or_write_key(client: AsyncClient, key: str) -> None:
    for path in ("/v1/reports", "/v1/suites", "/metrics"):
        response = await client.get(path, headers=bearer(key))
        assert response.status_code == 200, (path, response.text)


async def test_write_key_validates(client: AsyncClient) -> None:
    response = await client.post(
        "/v1/validations",
        headers=bearer(WRITE_KEY),
        files={"data": ("penguins.csv", (EXAMPLES / "penguins.csv").read_bytes())},
        data={"suite": "penguins"},
    )
    assert response.status_code == 200
    assert response.json()["status"] == "passed"


async def test_login_sets_an_httponly_strict_session_cookie_that_opens_reads(
    client: AsyncClient,
) -> None:
    assert "API key" in (await client.get("/login")).text
    response = await client.post("/login", data={"key": READ_KEY})
    assert response.status_code == 303
    assert response.headers["location"] == "/reports"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert READ_KEY not in cookie, "the cookie holds a session token, never the key"
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie, "plain http: a Secure cookie would never come back"
    session = response.cookies[SESSION_COOKIE]
    client.cookies.clear()  # each request below names its cookie itself
    listed = await client.get("/v1/reports", cookies={SESSION_COOKIE: session})
    assert listed.status_code == 200
    # The old cookie holding a raw key opens nothing.
    old = await client.get("/v1/reports", cookies={"datagate_key": READ_KEY})
    assert old.status_code == 401


async def signed_in(client: AsyncClient, key: str) -> str:
    response = await client.post("/login", data={"key": key})
    assert response.status_code == 303, response.text
    client.cookies.clear()  # each request names the cookie it sends
    return response.cookies[SESSION_COOKIE]


async def report_count(client: AsyncClient) -> int:
    listed = await client.get("/v1/reports", headers=bearer(READ_KEY))
    assert listed.status_code == 200
    total: int = listed.json()["total"]
    return total


@pytest.mark.parametrize(
    "origin", [None, "http://testserver:8081", "null"], ids=["no-origin", "other-port", "sandbox"]
)
async def test_a_form_post_riding_on_the_write_key_sign_in_is_refused_and_stores_nothing(
    client: AsyncClient, origin: str | None
) -> None:
    """CSRF: signed in with a write key, a page on another port of the same host auto-submits a
    form to POST /v1/validations. The browser sends the cookie (SameSite=Strict does not tell
    ports apart); the service must refuse it."""
    session = await signed_in(client, WRITE_KEY)
    before = await report_count(client)
    response = await client.post(
        "/v1/validations",
        cookies={SESSION_COOKIE: session},
        headers={"Origin": origin} if origin else {},
        files={"data": ("penguins.csv", (EXAMPLES / "penguins.csv").read_bytes())},
        data={"suite": "penguins"},
    )
    assert response.status_code == 403, response.text
    message = response.json()["error"]["message"]
    assert ("cross-origin" in message) if origin else ("Authorization: Bearer" in message)
    assert await report_count(client) == before


async def test_every_write_route_refuses_a_signed_in_session(
    client: AsyncClient, keyed_app: RunningApp
) -> None:
    session = await signed_in(client, WRITE_KEY)
    writes = [
        (m, p) for m, p in routes(keyed_app) if m not in SAFE_METHODS and (m, p) not in PUBLIC
    ]
    for method, path in writes:
        response = await client.request(method, path, cookies={SESSION_COOKIE: session})
        assert response.status_code == 403, (method, path, response.text)


async def test_a_write_with_the_key_from_a_client_still_works_with_a_same_origin_header(
    client: AsyncClient,
) -> None:
    response = await client.post(
        "/v1/validations",
        headers={**bearer(WRITE_KEY), "Origin": "http://testserver"},
        files={"data": ("penguins.csv", (EXAMPLES / "penguins.csv").read_bytes())},
        data={"suite": "penguins"},
    )
    assert response.status_code == 200, response.text


def client_at(running: RunningApp, address: str) -> AsyncClient:
    """A client whose requests come from `address` (the throttle counts per address)."""
    transport = ASGITransport(app=running.app, client=(address, 40000))
    return AsyncClient(transport=transport, base_url="http://testserver")


async def test_sign_in_is_throttled_per_address_after_ten_failures(keyed_app: RunningApp) -> None:
    """Guessing keys at /login: after 10 failures in a minute an address gets 429 with
    Retry-After, even for the right key; another address is not held up."""

    def from_address(address: str) -> AsyncClient:
        return client_at(keyed_app, address)

    async with from_address("203.0.113.7") as guesser, from_address("203.0.113.8") as other:
        for _ in range(10):
            assert (await guesser.post("/login", data={"key": WRONG_KEY})).status_code == 401
        refused = await guesser.post("/login", data={"key": WRONG_KEY})
        assert refused.status_code == 429
        assert 0 < int(refused.headers["retry-after"]) <= 60
        assert "Too many failed sign-ins" in refused.text
        right = await guesser.post("/login", data={"key": READ_KEY})
        assert right.status_code == 429 and "set-cookie" not in right.headers
        assert (await other.post("/login", data={"key": READ_KEY})).status_code == 303


async def test_wrong_bearer_keys_are_throttled_per_address_with_the_sign_in(
    keyed_app: RunningApp,
) -> None:
    """Guessing keys through the API is no faster than through /login: after 10 wrong Bearer
    keys in a minute the address gets 429 with Retry-After, even with the right key, and so does
    its sign-in; another address is not held up."""
    async with (
        client_at(keyed_app, "203.0.113.20") as guesser,
        client_at(keyed_app, "203.0.113.21") as other,
    ):
        for _ in range(10):
            wrong = await guesser.get("/v1/reports", headers=bearer(WRONG_KEY))
            assert wrong.status_code == 401
        refused = await guesser.get("/v1/reports", headers=bearer(WRONG_KEY))
        assert refused.status_code == 429
        assert 0 < int(refused.headers["retry-after"]) <= 60
        assert "too many wrong API keys" in refused.json()["error"]["message"]
        right = await guesser.get("/v1/reports", headers=bearer(READ_KEY))
        assert right.status_code == 429
        assert (await guesser.post("/login", data={"key": READ_KEY})).status_code == 429
        assert (await other.get("/v1/reports", headers=bearer(READ_KEY))).status_code == 200


async def test_a_forged_host_header_puts_no_foreign_url_in_reports_or_location(
    client: AsyncClient,
) -> None:
    """`Host: evil.example` must not become the link every later reader of the report follows."""
    upload = {"data": ("penguins.csv", (EXAMPLES / "penguins.csv").read_bytes())}
    evil = {**bearer(WRITE_KEY), "Host": "evil.example"}
    done = await client.post(
        "/v1/validations", headers=evil, files=upload, data={"suite": "penguins"}
    )
    assert done.status_code == 200, done.text
    report_id = done.json()["id"]
    assert done.json()["report_url"] == f"/reports/{report_id}"
    stored = await client.get(f"/v1/reports/{report_id}", headers=bearer(READ_KEY))
    assert "evil.example" not in stored.text

    queued = await client.post(
        "/v1/validations", headers=evil, files=upload, data={"suite": "penguins", "wait": "false"}
    )
    assert queued.status_code == 202, queued.text
    job_id = queued.json()["id"]
    assert queued.headers["location"] == f"/v1/validations/{job_id}"
    assert "evil.example" not in queued.text
    state = await client.get(f"/v1/validations/{job_id}", headers=evil)
    assert "evil.example" not in state.text


async def test_head_answers_every_get_route_like_get_without_a_body(
    client: AsyncClient, keyed_app: RunningApp
) -> None:
    gets = [p for m, p in routes(keyed_app) if m == "GET"]
    assert "/v1/reports" in gets and "/login" in gets
    for path in gets:
        got = await client.get(path, headers=bearer(READ_KEY))
        head = await client.head(path, headers=bearer(READ_KEY))
        assert head.status_code == got.status_code != 405, (path, head.status_code)
        assert head.content == b"", path
        assert head.headers.get("content-type") == got.headers.get("content-type"), path
    for path in ("/healthz", "/login", "/openapi.json"):
        got, head = await client.get(path), await client.head(path)
        assert head.headers["content-length"] == got.headers["content-length"] != "0", path
    # HEAD where there is no GET is still 405, naming what is allowed.
    refused = await client.head("/v1/validations", headers=bearer(READ_KEY))
    assert refused.status_code == 405 and refused.headers["allow"] == "POST"


async def test_login_over_https_marks_the_cookie_secure(keyed_app: RunningApp) -> None:
    transport = ASGITransport(app=keyed_app.app)
    async with AsyncClient(transport=transport, base_url="https://testserver") as https:
        response = await https.post("/login", data={"key": READ_KEY})
    assert "Secure" in response.headers["set-cookie"]


async def test_login_with_a_wrong_key_is_401_and_sets_no_cookie(client: AsyncClient) -> None:
    response = await client.post("/login", data={"key": WRONG_KEY})
    assert response.status_code == 401
    assert "set-cookie" not in response.headers


@pytest.mark.process
def test_serving_a_network_address_without_keys_exits_2_saying_why(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATAGATE_")}
    env["DATAGATE_DATA_DIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--host", "0.0.0.0", "--port", "1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "refusing to listen on 0.0.0.0 without API keys" in done.stderr
    assert "DATAGATE_API_KEYS" in done.stderr and "DATAGATE_AUTH=disabled" in done.stderr


async def test_a_report_link_without_a_key_shows_the_sign_in_form(client: AsyncClient) -> None:
    response = await client.get("/reports/anything", headers={"Accept": "text/html"})
    assert response.status_code == 401
    assert '<form method="post" action="/login">' in response.text


async def test_a_report_link_signs_in_and_lands_back_on_that_report(client: AsyncClient) -> None:
    asked = await client.get("/reports/some-report?tab=checks", headers={"Accept": "text/html"})
    assert asked.status_code == 401
    hidden = re.search(r'<input type="hidden" name="next" value="([^"]*)">', asked.text)
    assert hidden is not None
    next_path = hidden.group(1).replace("&amp;", "&")
    assert next_path == "/reports/some-report?tab=checks"

    signed = await client.post("/login", data={"key": READ_KEY, "next": next_path})
    client.cookies.clear()
    assert signed.status_code == 303
    assert signed.headers["location"] == "/reports/some-report?tab=checks"


async def test_the_sign_in_form_keeps_next_through_a_wrong_key(client: AsyncClient) -> None:
    form = await client.get("/login", params={"next": "/reports?status=failed"})
    wrong = await client.post("/login", data={"key": WRONG_KEY, "next": "/reports/r1"})

    assert 'name="next" value="/reports?status=failed"' in form.text
    assert wrong.status_code == 401
    assert 'name="next" value="/reports/r1"' in wrong.text


@pytest.mark.parametrize(
    "hostile",
    ["//evil.example", "/\\evil.example", "https://evil.example/", "javascript:alert(1)"],
    ids=["protocol-relative", "backslash", "absolute", "javascript"],
)
async def test_sign_in_never_redirects_to_another_host(client: AsyncClient, hostile: str) -> None:
    form = await client.get("/login", params={"next": hostile})
    signed = await client.post("/login", data={"key": READ_KEY, "next": hostile})
    client.cookies.clear()

    assert 'name="next" value="/reports"' in form.text
    assert signed.status_code == 303
    assert signed.headers["location"] == "/reports"


async def test_the_sign_in_page_is_styled_like_the_other_pages(client: AsyncClient) -> None:
    page = await client.get("/login")

    assert page.status_code == 200
    assert '<link rel="stylesheet" href="/static/datagate.css">' in page.text
    assert '<header class="topbar">' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]

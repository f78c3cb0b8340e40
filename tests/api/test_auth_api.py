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
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    ("GET", "/login"),
    ("POST", "/login"),
}


@pytest.fixture(scope="module")
def keyed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    settings = make_settings(
        tmp_path_factory.mktemp("auth"), api_keys=f"{WRITE_KEY}:write,{READ_KEY}:read"
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
    for method, path in writes:
        response = await client.request(
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
    for method, path in reads:
        response = await client.request(method, path, headers=bearer(key))
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


async def test_login_sets_an_httponly_strict_cookie_that_opens_reads(client: AsyncClient) -> None:
    assert "API key" in (await client.get("/login")).text
    response = await client.post("/login", data={"key": READ_KEY})
    assert response.status_code == 303
    assert response.headers["location"] == "/reports"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"datagate_key={READ_KEY};")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Secure" not in cookie, "plain http: a Secure cookie would never come back"
    listed = await client.get("/v1/reports", cookies={"datagate_key": READ_KEY})
    assert listed.status_code == 200


async def test_login_over_https_marks_the_cookie_secure(keyed_app: RunningApp) -> None:
    transport = ASGITransport(app=keyed_app.app)
    async with AsyncClient(transport=transport, base_url="https://testserver") as https:
        response = await https.post("/login", data={"key": READ_KEY})
    assert "Secure" in response.headers["set-cookie"]


async def test_login_with_a_wrong_key_is_401_and_sets_no_cookie(client: AsyncClient) -> None:
    response = await client.post("/login", data={"key": WRONG_KEY})
    assert response.status_code == 401
    assert "set-cookie" not in response.headers


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

"""DNS rebinding: a keyless service answers only to loopback names and the names it is given."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from httpx import ASGITransport, AsyncClient

from app.core.host_guard import HostGuard, host_name
from app.main import create_app
from tests.conftest import EXAMPLES, RunningApp, make_settings

pytestmark = pytest.mark.anyio

KEY = "write-key-0123456789abcdef"


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("localhost:8000", "localhost"),
        ("LocalHost", "localhost"),
        ("127.0.0.1:8000", "127.0.0.1"),
        ("[::1]:8000", "::1"),
        ("[::1]", "::1"),
        ("attacker.example:8000", "attacker.example"),
    ],
)
def test_host_name_drops_the_port_and_the_case(header: str, name: str) -> None:
    assert host_name(header) == name


def test_a_keyless_service_answers_to_loopback_names_only(tmp_path: Path) -> None:
    guard = HostGuard(make_settings(tmp_path, allowed_hosts=[]))
    for allowed in ("localhost:8000", "127.0.0.1", "127.0.0.2:8000", "[::1]:8000", "a.localhost"):
        assert guard.allows(allowed), allowed
    for refused in ("attacker.example", "127.0.0.1.attacker.example", "localhost.attacker.example"):
        assert not guard.allows(refused), refused


def test_the_public_url_and_the_allow_list_add_names(tmp_path: Path) -> None:
    guard = HostGuard(
        make_settings(
            tmp_path, allowed_hosts=["gate.internal"], public_url="https://datagate.example.com"
        )
    )
    assert guard.allows("gate.internal:8000") and guard.allows("datagate.example.com")
    assert not guard.allows("attacker.example")


def test_with_keys_any_host_unless_an_allow_list_is_set(tmp_path: Path) -> None:
    assert HostGuard(make_settings(tmp_path, api_keys=f"{KEY}:write", allowed_hosts=[])).allows(
        "attacker.example"
    )
    listed = HostGuard(make_settings(tmp_path, api_keys=f"{KEY}:write", allowed_hosts=["a.b"]))
    assert not listed.allows("attacker.example") and listed.allows("a.b")


def test_an_explicitly_open_service_answers_to_any_host(tmp_path: Path) -> None:
    # DATAGATE_AUTH=disabled (the compose stack, reached as `datagate:8000`): the operator's choice.
    open_service = make_settings(tmp_path, auth="disabled", allowed_hosts=[])
    assert HostGuard(open_service).allows("datagate:8000")


@pytest.fixture(scope="module")
def keyless_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    running = RunningApp(create_app(make_settings(tmp_path_factory.mktemp("rebind"))))
    yield running
    running.close()


def as_host(running: RunningApp, host: str) -> AsyncClient:
    return AsyncClient(transport=ASGITransport(app=running.app), base_url=f"http://{host}")


async def test_a_rebound_page_can_neither_validate_nor_read(keyless_app: RunningApp) -> None:
    """The attack: a page on attacker.example:8000, its name rebound to 127.0.0.1, is
    same-origin with itself, so Origin and Host both name attacker.example."""
    upload = {"data": ("penguins.csv", (EXAMPLES / "penguins.csv").read_bytes())}
    origin = {"Origin": "http://attacker.example:8000"}
    async with as_host(keyless_app, "attacker.example:8000") as page:
        posted = await page.post(
            "/v1/validations", headers=origin, files=upload, data={"suite": "penguins"}
        )
        assert posted.status_code == 403
        message = posted.json()["error"]["message"]
        assert "attacker.example:8000" in message and "DATAGATE_ALLOWED_HOSTS" in message
        assert (await page.get("/v1/reports")).status_code == 403
        assert (await page.get("/reports")).status_code == 403
    async with as_host(keyless_app, "localhost:8000") as local:
        listed = await local.get("/v1/reports")
        assert listed.status_code == 200 and listed.json()["items"] == []
        done = await local.post("/v1/validations", files=upload, data={"suite": "penguins"})
        assert done.status_code == 200, done.text

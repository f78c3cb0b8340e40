"""Suite files reload without a restart: added, changed and removed files are picked up, checked
first, and a broken version never replaces a good one."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient

from app.main import create_app
from tests.conftest import EXAMPLES, RunningApp, make_settings

pytestmark = pytest.mark.anyio

WAIT_S = 90  # a generous bound on a busy machine; the service polls every 0.2 s here


def suite(*expectations: dict[str, Any]) -> str:
    return json.dumps({"expectations": list(expectations)})


NOT_NULL = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "species"}}
IN_SET = {
    "type": "expect_column_values_to_be_in_set",
    "kwargs": {"column": "species", "value_set": ["Adelie"]},
}


@pytest.fixture(scope="module")
def reloading_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    settings = make_settings(tmp_path_factory.mktemp("reload"), suites_poll_s=0.2)
    running = RunningApp(create_app(settings))
    yield running
    running.close()


@pytest.fixture
def folder(reloading_app: RunningApp) -> Path:
    path: Path = reloading_app.app.state.settings.expectations_dir
    return path


@pytest.fixture
async def client(reloading_app: RunningApp) -> AsyncIterator[AsyncClient]:
    async with reloading_app.client() as http:
        yield http


async def listing(client: AsyncClient) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get("/v1/suites")).json()
    return body


async def eventually(
    client: AsyncClient, holds: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    """The suites listing once `holds` is true of it (the watcher polls the folder)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        body = await listing(client)
        if holds(body):
            return body
        if time.monotonic() > deadline:
            pytest.fail(f"the suites listing never changed as expected: {body}")
        await asyncio.sleep(0.2)


def item(body: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((s for s in body["items"] if s["name"] == name), None)


def broken(body: dict[str, Any]) -> dict[str, str]:
    return {b["name"]: b["error"] for b in body["broken"]}


async def test_an_added_suite_file_is_loaded_and_validates(
    client: AsyncClient, folder: Path
) -> None:
    (folder / "added.json").write_text(suite(NOT_NULL))

    body = await eventually(client, lambda b: item(b, "added") is not None)

    assert item(body, "added") == {
        "name": "added",
        "origin": "file",
        "sha256": item(body, "added")["sha256"],  # type: ignore[index]
        "expectations": 1,
        "not_reloaded": None,
    }
    response = await client.post(
        "/v1/validations",
        files={"data": ("penguins.csv", (EXAMPLES / "penguins.csv").read_bytes())},
        data={"suite": "added"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["summary"]["evaluated"] == 1


async def test_a_broken_change_keeps_the_good_version_and_says_why(
    client: AsyncClient, folder: Path
) -> None:
    path = folder / "kept.json"
    path.write_text(suite(NOT_NULL))
    good = await eventually(client, lambda b: item(b, "kept") is not None)
    good_hash = item(good, "kept")["sha256"]  # type: ignore[index]

    path.write_text('{"expectations": [')  # invalid JSON
    body = await eventually(client, lambda b: (item(b, "kept") or {}).get("not_reloaded"))
    assert "invalid JSON" in item(body, "kept")["not_reloaded"]  # type: ignore[index]
    assert item(body, "kept")["sha256"] == good_hash  # type: ignore[index]
    assert "kept" not in broken(body)
    ready = (await client.get("/readyz")).json()
    assert "invalid JSON" in ready["suites_not_reloaded"]["kept"]

    # An expectation type Great Expectations does not know: refused by the worker's check.
    path.write_text(suite({"type": "expect_magic", "kwargs": {}}))
    body = await eventually(
        client, lambda b: "expect_magic" in ((item(b, "kept") or {}).get("not_reloaded") or "")
    )
    assert item(body, "kept")["sha256"] == good_hash  # type: ignore[index]
    shown = (await client.get("/v1/suites/kept")).json()
    assert shown["sha256"] == good_hash

    # Fixed: the new version replaces the old one and the complaint goes.
    path.write_text(suite(NOT_NULL, IN_SET))
    body = await eventually(client, lambda b: (item(b, "kept") or {}).get("expectations") == 2)
    assert item(body, "kept")["not_reloaded"] is None  # type: ignore[index]
    assert "suites_not_reloaded" not in (await client.get("/readyz")).json()


async def test_a_new_broken_file_is_listed_broken_and_a_removed_file_is_gone(
    client: AsyncClient, folder: Path
) -> None:
    (folder / "never_good.json").write_text(suite({"type": "expect_magic", "kwargs": {}}))
    body = await eventually(client, lambda b: "never_good" in broken(b))
    assert "expect_magic" in broken(body)["never_good"]
    refused = await client.post(
        "/v1/validations",
        files={"data": ("penguins.csv", (EXAMPLES / "penguins.csv").read_bytes())},
        data={"suite": "never_good"},
    )
    assert refused.status_code == 422

    (folder / "gone.json").write_text(suite(NOT_NULL))
    await eventually(client, lambda b: item(b, "gone") is not None)
    (folder / "gone.json").unlink()
    await eventually(client, lambda b: item(b, "gone") is None)
    assert (await client.get("/v1/suites/gone")).status_code == 404

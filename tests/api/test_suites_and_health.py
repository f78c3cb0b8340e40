"""Suites listing and the health probes."""

from __future__ import annotations

import pytest
from httpx import AsyncClient

pytestmark = pytest.mark.anyio


async def test_suites_list_shows_each_suite_with_hash_and_the_broken_ones(
    client: AsyncClient,
) -> None:
    body = (await client.get("/v1/suites")).json()
    names = {s["name"]: s for s in body["items"]}
    assert "penguins" in names
    assert len(names["penguins"]["sha256"]) == 64
    assert names["penguins"]["origin"] == "file"
    broken = {b["name"]: b["error"] for b in body["broken"]}
    assert set(broken) >= {"broken_json", "unknown_type"}
    assert "expect_magic" in broken["unknown_type"]


async def test_one_suite_shows_its_definition(client: AsyncClient) -> None:
    body = (await client.get("/v1/suites/penguins")).json()
    assert body["definition"]["expectations"]


async def test_probes_answer(client: AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["database"] == "ok"


async def test_every_response_carries_a_request_id(client: AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "abc123"})
    assert response.headers["X-Request-ID"] == "abc123"
    assert (await client.get("/healthz")).headers["X-Request-ID"]

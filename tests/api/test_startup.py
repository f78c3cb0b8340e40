"""Start-up: /healthz answers while the workers are still warming up; /readyz says why it is not
ready until a worker can take a job and has checked the suites."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from httpx import ASGITransport, AsyncClient

import app.main
from app.checks.workers import WorkerPool
from app.main import create_app
from tests.conftest import make_settings

pytestmark = pytest.mark.anyio


async def test_healthz_answers_at_once_and_readyz_waits_for_a_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker_ready = asyncio.Event()
    real_first_worker = app.main._first_worker

    async def held_back(pool: WorkerPool) -> None:
        await worker_ready.wait()
        await real_first_worker(pool)

    monkeypatch.setattr(app.main, "_first_worker", held_back)
    service = create_app(make_settings(tmp_path))
    async with (
        service.router.lifespan_context(service),
        AsyncClient(transport=ASGITransport(app=service), base_url="http://testserver") as client,
    ):
        health = await client.get("/healthz")
        starting = await client.get("/readyz")
        assert health.status_code == 200
        assert starting.status_code == 503
        assert starting.json()["reason"].startswith("starting: ")

        worker_ready.set()
        await service.state.startup
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ready"

"""Workers killed while idle: the next validation still succeeds, and /readyz tells the truth."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from httpx import AsyncClient

from app.checks.workers import WorkerPool
from app.main import create_app
from tests.conftest import EXAMPLES, RunningApp, make_settings

pytestmark = [pytest.mark.anyio, pytest.mark.fault]

PENGUINS = EXAMPLES / "penguins.csv"


@pytest.fixture(scope="module")
def pool_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    running = RunningApp(create_app(make_settings(tmp_path_factory.mktemp("pool-health"))))
    yield running
    running.close()


@pytest.fixture
async def client(pool_app: RunningApp) -> AsyncIterator[AsyncClient]:
    async with pool_app.client() as http:
        yield http


def kill_idle_workers(pool: WorkerPool) -> list[int]:
    pids = [w.process.pid for w in list(pool._all) if w.process.pid is not None]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    return pids


async def wait_until(condition: object, within: float = 180) -> None:
    assert callable(condition)
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def validate(client: AsyncClient) -> tuple[int, dict[str, object]]:
    response = await client.post(
        "/v1/validations",
        files={"data": ("penguins.csv", PENGUINS.read_bytes())},
        data={"suite": "penguins"},
    )
    return response.status_code, response.json()


async def test_readyz_is_not_ready_while_no_worker_is_usable_then_ready_again(
    client: AsyncClient, pool_app: RunningApp
) -> None:
    pool = pool_app.app.state.pool
    assert (await client.get("/readyz")).json()["workers"] == {"usable": 1, "size": 1}
    kill_idle_workers(pool)
    await wait_until(lambda: pool.usable() == 0)
    response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready" and body["workers"] == {"usable": 0, "size": 1}
    assert "no usable validation worker" in body["reason"]
    # Nobody sent a request: the pool replaced the dead worker by itself.
    await wait_until(lambda: pool.usable() == 1)
    assert (await client.get("/readyz")).status_code == 200
    assert (await validate(client))[0] == 200


async def test_validation_right_after_its_idle_worker_was_killed_succeeds(
    client: AsyncClient, pool_app: RunningApp
) -> None:
    pool = pool_app.app.state.pool
    assert (await validate(client))[0] == 200  # the worker is started and idle
    restarts = pool.restarts
    killed = kill_idle_workers(pool)
    status, report = await validate(client)
    assert status == 200, report
    assert report["status"] == "passed"
    assert pool.restarts == restarts + 1
    assert not set(killed) & {w.process.pid for w in pool._all}

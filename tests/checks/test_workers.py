"""The worker pool runs jobs in other processes, stops a job over its limit, survives crashes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from app.checks.workers import WorkerCrashed, WorkerPool
from app.core.errors import ServiceBusy, ValidationTimeout
from tests.checks import pool_jobs

pytestmark = pytest.mark.anyio


@pytest.fixture
def pool() -> Iterator[WorkerPool]:
    workers = WorkerPool(1, max_queue=2, preload=None)
    workers.start()
    yield workers
    workers.shutdown()


async def test_job_runs_in_another_process(pool: WorkerPool) -> None:
    assert await pool.run(pool_jobs.pid_of_worker) != os.getpid()


async def test_exception_in_a_job_reaches_the_caller_and_the_worker_stays(
    pool: WorkerPool,
) -> None:
    first = await pool.run(pool_jobs.pid_of_worker)
    with pytest.raises(ValueError, match="bad column"):
        await pool.run(pool_jobs.raise_value_error, "bad column")
    assert await pool.run(pool_jobs.pid_of_worker) == first


async def test_job_over_its_time_limit_is_stopped_and_the_pool_recovers(
    pool: WorkerPool,
) -> None:
    before = await pool.run(pool_jobs.pid_of_worker)
    with pytest.raises(ValidationTimeout, match="longer than"):
        await pool.run(pool_jobs.sleep_then_return, 30, 1, time_limit=0.5)
    assert await pool.run(pool_jobs.sleep_then_return, 0, 7) == 7
    assert await pool.run(pool_jobs.pid_of_worker) != before
    assert pool.restarts == 1


async def test_crashed_worker_is_replaced(pool: WorkerPool) -> None:
    with pytest.raises(WorkerCrashed):
        await pool.run(pool_jobs.die_abruptly)
    assert await pool.run(pool_jobs.sleep_then_return, 0, 3) == 3


async def test_workers_are_recycled_after_n_jobs() -> None:
    workers = WorkerPool(1, max_jobs_per_worker=2, preload=None)
    workers.start()
    try:
        pids = [await workers.run(pool_jobs.pid_of_worker) for _ in range(4)]
    finally:
        workers.shutdown()
    assert pids[0] == pids[1] and pids[2] == pids[3] and pids[0] != pids[2]


async def test_full_queue_answers_busy_with_retry_after(pool: WorkerPool) -> None:
    await pool.run(pool_jobs.pid_of_worker)  # started and warm
    jobs = [asyncio.create_task(pool.run(pool_jobs.sleep_then_return, 1, i)) for i in range(3)]
    await asyncio.sleep(0.2)
    with pytest.raises(ServiceBusy) as busy:
        await pool.run(pool_jobs.sleep_then_return, 0, 99)
    assert busy.value.headers["Retry-After"]
    assert sorted(await asyncio.gather(*jobs)) == [0, 1, 2]


async def test_shutdown_stops_a_running_job_instead_of_waiting_it_out() -> None:
    workers = WorkerPool(1, preload=None)
    workers.start()
    await workers.run(pool_jobs.pid_of_worker)
    running = asyncio.create_task(workers.run(pool_jobs.sleep_then_return, 600, 1))
    while workers.running == 0:  # noqa: ASYNC110 - the pool has no event to wait on
        await asyncio.sleep(0.01)
    await asyncio.to_thread(workers.shutdown)  # returns long before the job's 600 s
    with pytest.raises(WorkerCrashed):
        await running

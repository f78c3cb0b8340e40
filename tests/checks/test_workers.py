"""The worker pool runs jobs in other processes, stops a job over its limit, survives crashes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.checks.workers import JobNotSent, WorkerCrashed, WorkerPool
from app.core.errors import ServiceBusy, ValidationTimeout
from tests.checks import pool_jobs
from tests.conftest import REPO

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


@pytest.mark.fault
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


# --- issue 18: the pool survives what a job or the machine does to its workers ---------------


async def test_job_too_deep_to_pickle_is_refused_and_the_worker_stays(pool: WorkerPool) -> None:
    before = await pool.run(pool_jobs.pid_of_worker)
    deep = pool_jobs.nested(5000)
    # More refusals than the pool has workers and queue slots: none may be lost to one.
    for _ in range(pool.size + pool.max_queue + 2):
        with pytest.raises(JobNotSent, match="could not be handed to a worker") as refused:
            await pool.run(pool_jobs.identity, deep)
        assert refused.value.status_code == 422
    assert await pool.run(pool_jobs.pid_of_worker) == before
    assert pool.restarts == 0 and pool.usable() == 1


async def test_unpicklable_job_is_refused_and_the_next_job_runs(pool: WorkerPool) -> None:
    with pytest.raises(JobNotSent, match=r"\(TypeError\)"):
        await pool.run(pool_jobs.identity, threading.RLock())
    assert await pool.run(pool_jobs.sleep_then_return, 0, 5) == 5


async def test_job_the_worker_cannot_unpickle_or_answer_leaves_it_working(
    pool: WorkerPool,
) -> None:
    before = await pool.run(pool_jobs.pid_of_worker)
    with pytest.raises(Exception, match="could not be read"):
        await pool.run(pool_jobs.identity, pool_jobs.UnpicklesBadly())
    with pytest.raises(Exception, match="could not be sent back"):
        await pool.run(pool_jobs.return_a_lock)
    with pytest.raises(Exception, match="could not be sent back"):
        await pool.run(pool_jobs.nested, 5000)
    assert await pool.run(pool_jobs.pid_of_worker) == before


@pytest.mark.fault
async def test_idle_worker_killed_is_found_dead_and_the_next_job_runs_on_a_fresh_one() -> None:
    workers = WorkerPool(1, preload=None, monitor_s=None)  # only the dispatch-time check
    workers.start()
    try:
        killed = await workers.run(pool_jobs.pid_of_worker)
        os.kill(killed, signal.SIGKILL)
        await wait_for(lambda: workers.usable() == 0)
        assert await workers.run(pool_jobs.sleep_then_return, 0, 9) == 9
        assert await workers.run(pool_jobs.pid_of_worker) != killed
        assert workers.restarts == 1
    finally:
        workers.shutdown()


@pytest.mark.fault
async def test_monitor_replaces_a_dead_idle_worker_without_a_request() -> None:
    workers = WorkerPool(2, preload=None, monitor_s=0.1)
    workers.start()
    try:
        await workers.warm_up()
        await wait_for(lambda: workers.usable() == 2)
        for worker in list(workers._all):
            os.kill(worker.process.pid, signal.SIGKILL)
        await wait_for(lambda: workers.restarts == 2)
        await wait_for(lambda: workers.usable() == 2)
        assert await workers.run(pool_jobs.sleep_then_return, 0, 4) == 4
    finally:
        workers.shutdown()


async def test_cancelled_job_stops_its_worker_and_frees_the_slot(pool: WorkerPool) -> None:
    before = await pool.run(pool_jobs.pid_of_worker)
    running = asyncio.create_task(pool.run(pool_jobs.sleep_then_return, 600, 1))
    await wait_for(lambda: pool.running == 1)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert pool.cancellations == 1
    # The next job gets a fresh worker at once, not after the abandoned job's 600 s.
    assert await pool.run(pool_jobs.pid_of_worker, time_limit=60) != before
    assert pool.restarts == 1 and pool.queued == 0


WORKERS_OF_A_KILLED_POOL = """
import asyncio, sys, time
sys.path.insert(0, {root!r})
from app.checks.workers import WorkerPool
from tests.checks import pool_jobs

async def main():
    pool = WorkerPool(2, preload=None)
    pool.start()
    await pool.warm_up()
    busy = asyncio.ensure_future(pool.run(pool_jobs.sleep_then_return, 600, 1))
    while pool.running == 0:
        await asyncio.sleep(0.01)
    print(" ".join(str(w.process.pid) for w in pool._all), flush=True)
    await busy

if __name__ == "__main__":  # spawned workers import this file again
    asyncio.run(main())
"""


@pytest.mark.fault
def test_workers_die_with_their_parent_killed_9(tmp_path: Path) -> None:
    script = tmp_path / "pool.py"
    script.write_text(WORKERS_OF_A_KILLED_POOL.format(root=str(REPO)))
    parent = subprocess.Popen(
        [sys.executable, str(script)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(alive(pid) for pid in pids)  # one busy, one idle
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if alive(pid)], "workers outlived their killed parent"


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for whoever adopted it to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


async def wait_for(condition: Callable[[], bool], within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)

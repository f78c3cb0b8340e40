"""The dispatcher under database faults: one job the database keeps refusing is retried a bounded
number of times, never blocks the jobs behind it, and never turns the loop into a busy loop."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from app.checks.runner import DataInput, ValidationJob
from app.core.config import Settings
from app.core.db import make_engine, make_sessionmaker, migrate
from app.core.metrics import Metrics
from app.ingest.formats import DataFormat
from app.jobs.callbacks import CallbackSender
from app.jobs.dispatcher import Dispatcher
from app.jobs.queue import JobQueue
from app.reports.model import DatasetInfo, Report
from tests.conftest import REPO, make_settings

pytestmark = pytest.mark.anyio

MAX_ATTEMPTS = 3


class RefusingQueue(JobQueue):
    """The real SQL queue, except that the database refuses every write about `refused` jobs
    (what a row no driver can encode did before issue 18)."""

    def __init__(self, *args: Any, refused: set[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refused = refused
        self.calls: dict[str, int] = {}

    def _refuse(self, job_id: str) -> None:
        if job_id in self.refused:
            self.calls[job_id] = self.calls.get(job_id, 0) + 1
            raise RuntimeError(f"the database refused job {job_id}")

    def finish(self, job_id: str, report: Report) -> Report | None:
        self._refuse(job_id)
        return super().finish(job_id, report)

    def requeue_or_fail(self, job_id: str, reason: str, **kwargs: Any) -> str:
        self._refuse(job_id)
        return super().requeue_or_fail(job_id, reason, **kwargs)


class PassingPool:
    """Answers every validation at once with a passed report: the pool is not under test."""

    async def run(self, fn: Any, job: ValidationJob, **_: Any) -> Report:
        dataset = DatasetInfo(name=job.data.name, format="csv", rows=1)
        return Report(id=job.id, status="passed", success=True, dataset=dataset)


def spec(job_id: str) -> str:
    data = DataInput(format=DataFormat.CSV, name=f"{job_id}.csv", path=Path("/nonexistent"))
    return ValidationJob(id=job_id, data=data, max_rows=10).model_dump_json()


def settings_for(tmp_path: Path) -> Settings:
    return make_settings(
        tmp_path,
        job_poll_s=0.05,
        job_heartbeat_s=0.05,
        job_stale_after_s=0.001,
        job_max_attempts=MAX_ATTEMPTS,
    )


def queue_of(settings: Settings, owner: str, refused: set[str]) -> RefusingQueue:
    engine = make_engine(settings.db_url)
    migrate(engine)
    return RefusingQueue(make_sessionmaker(engine), owner=owner, refused=refused)


async def run_until(dispatcher: Dispatcher, done: Any, within: float = 30) -> None:
    dispatcher.start()
    try:
        deadline = time.monotonic() + within
        while not done():
            assert time.monotonic() < deadline, "the jobs did not end in time"
            await asyncio.sleep(0.02)
        await asyncio.sleep(1)  # long enough for a busy loop to show in the counters
    finally:
        await dispatcher.stop()


def ended(queue: JobQueue) -> bool:
    return all(queue.get(job_id).status == "done" for job_id in ("good1", "good2"))


def test_a_job_is_bounded_by_minutes_by_default() -> None:
    assert Settings.model_fields["job_timeout_s"].default == 600
    readme = (REPO / "README.md").read_text()
    assert "| `DATAGATE_JOB_TIMEOUT_S` | `600` |" in readme


async def test_a_stale_job_that_cannot_be_taken_over_does_not_block_the_queue(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path)
    settings.ensure_dirs()
    dead = queue_of(settings, "dead", set())
    dead.enqueue("poison", spec("poison"))
    assert dead.claim() is not None  # its replica was killed while it ran
    queue = queue_of(settings, "alive", {"poison"})
    for name in ("good1", "good2"):
        queue.enqueue(name, spec(name))
    dispatcher = Dispatcher(settings, queue, PassingPool(), Metrics(), CallbackSender("", ""))  # type: ignore[arg-type]
    await run_until(dispatcher, lambda: ended(queue) and queue.calls.get("poison") == MAX_ATTEMPTS)
    assert queue.calls["poison"] == MAX_ATTEMPTS, "take-over tried a bounded number of times"
    assert dispatcher.dispatch_failures == MAX_ATTEMPTS
    assert queue.stale(timedelta(0)) == ["poison"]  # left for an operator, not retried forever


async def test_a_report_the_database_keeps_refusing_is_retried_a_bounded_number_of_times(
    tmp_path: Path,
) -> None:
    settings = settings_for(tmp_path)
    settings.ensure_dirs()
    queue = queue_of(settings, "alive", {"poison"})
    for name in ("poison", "good1", "good2"):
        queue.enqueue(name, spec(name))
    dispatcher = Dispatcher(settings, queue, PassingPool(), Metrics(), CallbackSender("", ""))  # type: ignore[arg-type]
    await run_until(dispatcher, lambda: ended(queue) and queue.calls["poison"] == 2 * MAX_ATTEMPTS)
    # Finishing is retried, then the job is left to the take-over, itself bounded.
    assert queue.calls["poison"] == 2 * MAX_ATTEMPTS
    assert dispatcher.dispatch_failures == 2 * MAX_ATTEMPTS + 1

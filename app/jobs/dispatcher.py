"""The loop that drains the job queue: claims jobs, runs them in the pool, stores their reports."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from datetime import timedelta
from pathlib import Path

from app.checks.runner import ValidationJob, run_validation
from app.checks.workers import WorkerCrashed, WorkerPool
from app.core.config import Settings
from app.core.errors import DatagateError, ServiceBusy
from app.core.metrics import Metrics
from app.jobs.callbacks import CallbackSender
from app.jobs.notifications import Notifier
from app.jobs.queue import Job, JobQueue
from app.reports.model import DatasetInfo, Report, link

log = logging.getLogger(__name__)


def error_report(job_id: str, spec: str, message: str) -> Report:
    """The report of a job that could not produce one: status error, with the reason.

    Never raises: a job whose spec cannot be read (written by another version, or damaged) must
    still end, or it would be taken over and fail again forever."""
    try:
        data = ValidationJob.model_validate_json(spec).data
        dataset = DatasetInfo(
            name=data.name,
            format=data.format.value,
            rows=0,
            sha256=data.sha256,
            bytes=data.bytes,
            source=data.source,
        )
    except Exception as exc:
        dataset = DatasetInfo(name="(unreadable job)", format="unknown", rows=0)
        message = f"{message} (the job's spec could not be read: {type(exc).__name__})"
    return Report(id=job_id, status="error", success=False, dataset=dataset, error=message)


def job_inputs_dir(settings: Settings, job_id: str) -> Path:
    return settings.data_dir / "jobs" / job_id


class Dispatcher:
    """One per replica. Runs at most `capacity` jobs at once; others wait in the table."""

    def __init__(
        self,
        settings: Settings,
        queue: JobQueue,
        pool: WorkerPool,
        metrics: Metrics,
        callbacks: CallbackSender,
        notifier: Notifier | None = None,
    ) -> None:
        self.settings = settings
        self.notifier = notifier
        self.queue = queue
        self.pool = pool
        self.metrics = metrics
        self.callbacks = callbacks
        self.capacity = settings.workers
        self._running: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        # Rounds of the dispatch loop that failed (database away, a job that cannot be taken
        # over); consecutive ones back off, so that a fault never turns into a busy loop.
        self.dispatch_failures = 0
        self._takeover_failures: dict[str, int] = {}

    @property
    def running(self) -> int:
        return len(self._running)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._tasks = [
            asyncio.create_task(self._drain(), name="datagate-dispatch"),
            asyncio.create_task(self._heartbeat(), name="datagate-heartbeat"),
        ]

    def notify(self) -> None:
        """A job was queued: look now rather than at the next poll. Safe from any thread."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _drain(self) -> None:
        failed_in_a_row = 0
        while not self._stopping:
            try:
                await self._take_over_stale()
                while len(self._running) < self.capacity and not self._stopping:
                    job = await asyncio.to_thread(self.queue.claim)
                    if job is None:
                        break
                    log.info("job %s claimed (attempt %d)", job.id, job.attempts)
                    self._running[job.id] = asyncio.create_task(self._run(job))
                failed_in_a_row = 0
            except Exception:  # the database may be briefly away; try again, later each time
                self.dispatch_failures += 1
                failed_in_a_row += 1
                log.exception("job dispatch failed; retrying")
            self._wake.clear()
            wait = self.settings.job_poll_s * 2 ** min(failed_in_a_row, 5)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    async def _heartbeat(self) -> None:
        while not self._stopping:
            try:
                await asyncio.to_thread(self.queue.heartbeat, list(self._running))
                if self.settings.report_retention_days:
                    await self._purge()
            except Exception:
                log.exception("heartbeat failed; retrying")
            await asyncio.sleep(self.settings.job_heartbeat_s)

    async def _take_over_stale(self) -> None:
        stale = await asyncio.to_thread(
            self.queue.stale, timedelta(seconds=self.settings.job_stale_after_s)
        )
        for job_id in stale:
            if job_id in self._running:
                continue
            if self._takeover_failures.get(job_id, 0) >= self.settings.job_max_attempts:
                continue  # given up on here (logged): it must not hold up the others
            try:
                status = await asyncio.to_thread(
                    self.queue.requeue_or_fail,
                    job_id,
                    "its replica stopped (killed or crashed) while the job ran",
                    max_attempts=self.settings.job_max_attempts,
                    error_report=self._error_report,
                    stale_owner=True,
                    stale_after=timedelta(seconds=self.settings.job_stale_after_s),
                )
            except Exception:
                # One job that cannot be taken over must not stop the queue behind it.
                self.dispatch_failures += 1
                failures = self._takeover_failures.get(job_id, 0) + 1
                self._takeover_failures[job_id] = failures
                log.exception("job %s could not be taken over (%d time(s))", job_id, failures)
                if failures >= self.settings.job_max_attempts:
                    log.error(
                        "job %s: given up taking it over after %d tries; it stays `running` "
                        "until an operator looks at its row",
                        job_id,
                        failures,
                    )
                continue
            self._takeover_failures.pop(job_id, None)
            log.warning("job %s was left running by a stopped replica: now %s", job_id, status)
            if status == "error":
                await self._ended_in_error(job_id)

    async def _run(self, job: Job) -> None:
        try:
            report = await self._report_of(job)
            if report is None:
                return
            link(report, self._base_url())
            stored = await self._finish(job.id, report)
            if stored is not None:
                self.metrics.observe(stored, mode="async")
                if self.notifier is not None:
                    self.notifier.send(stored)
                self._remove_inputs(job.id)
                log.info("job %s ended: %s", job.id, stored.status)
                if job.callback_url:
                    self.callbacks.send(job.callback_url, stored)
        except Exception:
            # Whatever went wrong, this task must end: the job is left to the stale take-over,
            # which counts its attempts and ends it in error after job_max_attempts.
            self.dispatch_failures += 1
            log.exception("job %s could not be run or ended; left for take-over", job.id)
        finally:
            self._running.pop(job.id, None)
            self._wake.set()

    async def _report_of(self, job: Job) -> Report | None:
        """The job's report: its validation's, or an error report saying why there is none.
        None when its worker crashed and the job was queued again."""
        try:
            spec = ValidationJob.model_validate_json(job.spec)
            return await self._in_pool(spec)
        except WorkerCrashed as exc:
            status = await asyncio.to_thread(
                self.queue.requeue_or_fail,
                job.id,
                exc.message,
                max_attempts=self.settings.job_max_attempts,
                error_report=self._error_report,
            )
            log.warning("job %s: worker crashed; job is now %s", job.id, status)
            if status == "error":
                await self._ended_in_error(job.id)
            return None
        except DatagateError as exc:
            prefix = "timeout: " if exc.code == "validation_timeout" else ""
            return error_report(job.id, job.spec, f"{prefix}{exc.message}")
        except Exception as exc:
            log.exception("job %s failed", job.id)
            return error_report(job.id, job.spec, f"internal error: {type(exc).__name__}")

    async def _finish(self, job_id: str, report: Report) -> Report | None:
        """Store the report, retrying a failing database a bounded number of times."""
        attempts = self.settings.job_max_attempts
        for attempt in range(1, attempts + 1):
            try:
                return await asyncio.to_thread(self.queue.finish, job_id, report)
            except Exception:
                self.dispatch_failures += 1
                log.exception("job %s: finishing failed (%d/%d)", job_id, attempt, attempts)
                if attempt < attempts:
                    await asyncio.sleep(self.settings.job_poll_s * 2**attempt)
        raise RuntimeError(f"job {job_id} could not be finished after {attempts} attempts")

    async def _in_pool(self, spec: ValidationJob) -> Report:
        # Synchronous requests may fill the pool's queue; a job already claimed waits its turn
        # (still heartbeating) rather than ending in error for a reason that is not its own.
        while True:
            try:
                return await self.pool.run(
                    run_validation, spec, time_limit=self.settings.job_timeout_s
                )
            except ServiceBusy:
                await asyncio.sleep(self.settings.job_poll_s)

    def _error_report(self, job_id: str, spec: str, message: str) -> Report:
        report = error_report(job_id, spec, message)
        report.report_url = f"{self._base_url()}/reports/{job_id}"
        return report

    async def _ended_in_error(self, job_id: str) -> None:
        """A job given up after crashes: drop its inputs and tell its callback, like any end."""
        self._remove_inputs(job_id)
        job = await asyncio.to_thread(self.queue.get, job_id)
        report = self._error_report(job.id, job.spec, job.error or "error")
        self.metrics.observe(report, mode="async")
        if self.notifier is not None:
            self.notifier.send(report)
        if job.callback_url:
            self.callbacks.send(job.callback_url, report)

    def _base_url(self) -> str:
        # Relative links without DATAGATE_PUBLIC_URL: the bind address (0.0.0.0) is no address.
        return (self.settings.public_url or "").rstrip("/")

    def _remove_inputs(self, job_id: str) -> None:
        shutil.rmtree(job_inputs_dir(self.settings, job_id), ignore_errors=True)

    async def _purge(self) -> None:
        removed = await asyncio.to_thread(
            self.queue.purge_reports, timedelta(days=self.settings.report_retention_days)
        )
        for report_id in removed:
            shutil.rmtree(self.settings.artifacts_dir / report_id, ignore_errors=True)

    async def stop(self) -> None:
        """Graceful: stop claiming, let running jobs finish within the grace period, release the
        rest for another replica (or this one's next start)."""
        self._stopping = True
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        running = list(self._running.items())
        if running:
            _, pending = await asyncio.wait(
                [t for _, t in running], timeout=self.settings.shutdown_grace_s
            )
            for job_id, task in running:
                if task in pending:
                    await asyncio.to_thread(self.queue.release, job_id)
                    task.cancel()
                    log.info("job %s released for another replica", job_id)

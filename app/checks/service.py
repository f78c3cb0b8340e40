"""The validation use case: turn a request's inputs into a job, run it (now or queued), store it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from app.checks.check_config import check_expectation_types
from app.checks.deepchecks_engine import resolve_config
from app.checks.expectations import (
    SUITE_CHECK_SECONDS,
    LoadedSuite,
    SuiteRegistry,
    check_expectations,
)
from app.checks.runner import DataInput, ValidationJob, run_validation
from app.checks.workers import JobCancelled, WorkerPool
from app.core.config import Settings
from app.core.errors import DatagateError, InvalidRequest, ServiceBusy, SuiteInvalid
from app.core.metrics import Metrics
from app.ingest.formats import DecodeLimits
from app.jobs.dispatcher import Dispatcher, job_inputs_dir
from app.jobs.notifications import Notifier
from app.jobs.queue import JobQueue
from app.reports.model import Report, link
from app.reports.store import DATASET_NAME_CHARS, ReportStore

log = logging.getLogger(__name__)


def new_report_id() -> str:
    return uuid.uuid4().hex


def _fsync(path: Path) -> None:
    """Flush a file or folder to disk: a queued job's input must survive a power cut too."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class ValidationService:
    def __init__(
        self,
        settings: Settings,
        suites: SuiteRegistry,
        pool: WorkerPool,
        store: ReportStore,
        jobs: JobQueue,
        dispatcher: Dispatcher,
        metrics: Metrics,
        notifier: Notifier | None = None,
    ) -> None:
        self.settings = settings
        self.notifier = notifier
        self.suites = suites
        self.pool = pool
        self.store = store
        self.jobs = jobs
        self.dispatcher = dispatcher
        self.metrics = metrics

    def build_job(
        self,
        data: DataInput,
        *,
        suite_name: str | None,
        reference: DataInput | None = None,
        roles: dict[str, Any] | None = None,
        thresholds: dict[str, Any] | None = None,
        per_check: dict[str, Any] | None = None,
    ) -> ValidationJob:
        """Resolve names into a self-contained job; raises 4xx errors before any work starts."""
        if len(data.name) > DATASET_NAME_CHARS:
            # The report store's searchable column holds this many: a longer name could not
            # be stored with the report.
            raise InvalidRequest(
                f"field 'dataset_name' (or the file's name) is {len(data.name)} characters; "
                f"at most {DATASET_NAME_CHARS} are kept"
            )
        suite = self.suites.get(suite_name) if suite_name else None
        if per_check:
            # Checked here, so that a bad per_check is a 422 before any job is queued.
            _, settings = resolve_config(None, None, None, per_check)
            types = [e["type"] for e in suite.definition["expectations"]] if suite else []
            check_expectation_types(settings.per_check, types)
        return ValidationJob(
            id=new_report_id(),
            data=data,
            suite=suite,
            reference=reference,
            roles=roles or {},
            thresholds=thresholds or {},
            per_check=per_check or {},
            max_rows=self.settings.max_rows,
            limits=DecodeLimits.from_settings(self.settings),
            sample_values=self.settings.sample_values,
            max_failing_rows=self.settings.max_failing_rows,
            artifacts_dir=self.settings.artifacts_dir,
            check_timeout_s=self.settings.check_timeout_s,
        )

    async def check_suite(self, suite: LoadedSuite | None) -> None:
        """Have a worker check a suite version this process has not seen checked: one sent to
        PUT, or an API suite another replica stored. A rejected one raises SuiteInvalid (422);
        when it is the registered version, it is listed broken too."""
        if suite is None or self.suites.is_checked(suite):
            return
        try:
            await self.pool.run(
                check_expectations, suite, time_limit=SUITE_CHECK_SECONDS, what="the suite check"
            )
        except SuiteInvalid as exc:
            if self.suites.holds(suite):
                self.suites.mark_broken(suite.name, exc.message)
            raise
        self.suites.mark_checked(suite)

    async def run(
        self,
        job: ValidationJob,
        *,
        base_url: str,
        abandoned: Callable[[], Awaitable[None]] | None = None,
    ) -> Report:
        """Synchronous path: the caller waits for the report.

        `abandoned` returns when the caller has gone (the client disconnected): the validation
        is then cancelled, its worker stopped and replaced, so that no one waits behind work
        whose answer nobody will read."""
        await self.check_suite(job.suite)
        validation = asyncio.ensure_future(
            self.pool.run(run_validation, job, time_limit=self.settings.job_timeout_s)
        )
        if abandoned is None:
            report = await validation
        else:
            report = await self._unless_abandoned(job.id, validation, abandoned)
        link(report, base_url)
        # Storing is a blocking DB write: keep it off the event loop too. A report the
        # database refuses comes back as the minimal error report that was stored instead.
        report = await asyncio.to_thread(self.store.save, report)
        self.metrics.observe(report, mode="sync")
        if self.notifier is not None:
            self.notifier.send(report)
        log.info(
            "validation %s: %s (%d checks, %d failed)",
            report.id,
            report.status,
            len(report.checks),
            report.summary.failed,
            extra={"report_id": report.id},
        )
        return report

    async def _unless_abandoned(
        self,
        job_id: str,
        validation: asyncio.Future[Report],
        abandoned: Callable[[], Awaitable[None]],
    ) -> Report:
        watcher = asyncio.ensure_future(abandoned())
        both: set[asyncio.Future[Any]] = {validation, watcher}
        try:
            done, _ = await asyncio.wait(both, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            validation.cancel()
            raise
        finally:
            watcher.cancel()
        if validation in done:
            return validation.result()
        validation.cancel()
        with contextlib.suppress(asyncio.CancelledError, DatagateError):
            await validation
        log.warning(
            "validation %s cancelled: the client disconnected before its report",
            job_id,
            extra={"report_id": job_id},
        )
        raise JobCancelled("the client disconnected; the validation was cancelled")

    async def submit(self, job: ValidationJob, *, callback_url: str | None = None) -> None:
        """Asynchronous path: when this returns, the job and its input files are durable."""
        await self.check_suite(job.suite)
        queued = await asyncio.to_thread(self.jobs.queued_count)
        if queued >= self.settings.max_queue:
            raise ServiceBusy(
                f"{queued} validation jobs are queued (limit {self.settings.max_queue}); "
                "retry later",
                headers={"Retry-After": "30"},
            )
        folder = job_inputs_dir(self.settings, job.id)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            moved = {}
            for role, data in (("data", job.data), ("reference", job.reference)):
                if data is not None and data.source is None:
                    assert data.path is not None  # an upload always has its file
                    target = folder / f"{role}.{data.format.value}"
                    # Same filesystem (both under the data folder): a rename, not a copy.
                    shutil.move(data.path, target)
                    _fsync(target)
                    moved[role] = data.model_copy(update={"path": target})
            _fsync(folder)
            durable = job.model_copy(update=moved)
            await asyncio.to_thread(
                self.jobs.enqueue, job.id, durable.model_dump_json(), callback_url=callback_url
            )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self.dispatcher.notify()

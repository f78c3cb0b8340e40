"""The validation use case: turn a request's inputs into a job, run it off the loop, store it."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from app.checks.expectations import SuiteRegistry
from app.checks.runner import DataInput, ValidationJob, run_validation
from app.checks.workers import WorkerPool
from app.core.config import Settings
from app.reports.model import Report
from app.reports.store import ReportStore

log = logging.getLogger(__name__)


def new_report_id() -> str:
    return uuid.uuid4().hex


class ValidationService:
    def __init__(
        self, settings: Settings, suites: SuiteRegistry, pool: WorkerPool, store: ReportStore
    ) -> None:
        self.settings = settings
        self.suites = suites
        self.pool = pool
        self.store = store

    def build_job(
        self,
        data: DataInput,
        *,
        suite_name: str | None,
        reference: DataInput | None = None,
        roles: dict[str, Any] | None = None,
        thresholds: dict[str, Any] | None = None,
        report_id: str | None = None,
    ) -> ValidationJob:
        """Resolve names into a self-contained job; raises 4xx errors before any work starts."""
        suite = self.suites.get(suite_name) if suite_name else None
        return ValidationJob(
            id=report_id or new_report_id(),
            data=data,
            suite=suite,
            reference=reference,
            roles=roles or {},
            thresholds=thresholds or {},
            max_rows=self.settings.max_rows,
            sample_values=self.settings.sample_values,
        )

    async def run(self, job: ValidationJob, *, report_url: str | None = None) -> Report:
        report = await self.pool.run(run_validation, job)
        report.report_url = report_url
        # Storing is a blocking DB write: keep it off the event loop too.
        await asyncio.to_thread(self.store.save, report)
        log.info(
            "validation %s: %s (%d checks, %d failed)",
            report.id,
            report.status,
            len(report.checks),
            report.summary.failed,
            extra={"report_id": report.id},
        )
        return report

"""One validation run, executed inside a worker process: read the data, run the engines, report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from app.checks.expectations import LoadedSuite, run_suite
from app.ingest.formats import DataFormat, describe_columns, read_dataframe
from app.reports.model import CheckResult, DatasetInfo, Report, SuiteInfo, summarise


class DataInput(BaseModel):
    """A dataset the worker reads: a file the service already holds, and what is known of it."""

    path: Path
    format: DataFormat
    name: str
    sha256: str | None = None
    bytes: int | None = None
    source: dict[str, Any] | None = None


class ValidationJob(BaseModel):
    id: str
    data: DataInput
    suite: LoadedSuite | None = None
    reference: DataInput | None = None
    roles: dict[str, Any] = Field(default_factory=dict)
    thresholds: dict[str, Any] = Field(default_factory=dict)
    max_rows: int
    sample_values: int = 20
    artifacts_dir: Path | None = None

    model_config = {"arbitrary_types_allowed": True}


def run_validation(job: ValidationJob) -> Report:
    """The whole engine side of a validation. Raises domain errors for unreadable data."""
    started = time.monotonic()
    frame = read_dataframe(job.data.path, job.data.format, max_rows=job.max_rows)
    dataset = DatasetInfo(
        name=job.data.name,
        format=job.data.format.value,
        rows=len(frame),
        columns=describe_columns(frame),
        sha256=job.data.sha256,
        bytes=job.data.bytes,
        source=job.data.source,
    )
    checks: list[CheckResult] = []
    suite_info = None
    if job.suite is not None:
        suite_info = SuiteInfo(
            name=job.suite.name,
            sha256=job.suite.sha256,
            origin=job.suite.origin,
            expectations=job.suite.expectation_count,
        )
        checks.extend(run_suite(frame, job.suite, sample_values=job.sample_values))
    status, summary = summarise(checks)
    return Report(
        id=job.id,
        status=status,
        success=status == "passed",
        duration_ms=int((time.monotonic() - started) * 1000),
        dataset=dataset,
        suite=suite_info,
        summary=summary,
        checks=checks,
    )

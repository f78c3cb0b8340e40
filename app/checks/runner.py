"""One validation run, executed inside a worker process: read the data, run the engines, report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, Field

from app.checks.expectations import LoadedSuite, run_suite
from app.checks.sql_engine import validate_sql_batch
from app.core.config import get_settings
from app.ingest.formats import DataFormat, describe_columns, read_dataframe
from app.ingest.references import BatchReference, SqlFormat, read_reference, resolve_reference
from app.reports.model import CheckResult, DatasetInfo, Report, SuiteInfo, summarise


class DataInput(BaseModel):
    """A dataset the worker reads: a file the service already holds, or a batch reference
    (`location`, with `source` set so the service never moves it), and what is known of it."""

    path: Path | None = None
    format: DataFormat | SqlFormat
    name: str
    sha256: str | None = None
    bytes: int | None = None
    source: dict[str, Any] | None = None
    location: BatchReference | None = None


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
    location = job.data.location
    if location is not None and location.kind == "sql":
        dataset, checks = _validate_sql(location, job)
    else:
        frame = _read_input(job.data, max_rows=job.max_rows)
        dataset = DatasetInfo(
            name=job.data.name,
            format=job.data.format.value,
            rows=len(frame),
            columns=describe_columns(frame),
            sha256=job.data.sha256,
            bytes=job.data.bytes,
            source=job.data.source,
        )
        checks = []
        if job.suite is not None:
            checks.extend(run_suite(frame, job.suite, sample_values=job.sample_values))
    suite_info = None
    if job.suite is not None:
        suite_info = SuiteInfo(
            name=job.suite.name,
            sha256=job.suite.sha256,
            origin=job.suite.origin,
            expectations=job.suite.expectation_count,
        )
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


# --- batch references ---------------------------------------------------------------------------
# The worker reads connection URLs and S3 credentials from its own environment (it inherits the
# server's), so that no credential is ever written into a queued job.


def _read_input(data: DataInput, *, max_rows: int) -> pd.DataFrame:
    if data.location is not None:
        return read_reference(data.location, get_settings(), max_rows=max_rows).frame
    assert data.path is not None and isinstance(data.format, DataFormat)
    return read_dataframe(data.path, data.format, max_rows=max_rows)


def _validate_sql(
    location: BatchReference, job: ValidationJob
) -> tuple[DatasetInfo, list[CheckResult]]:
    """A SQL batch is validated inside its database, never read whole into memory."""
    settings = get_settings()
    resolved = resolve_reference(location, settings)
    dataset, checks = validate_sql_batch(
        resolved, job.suite, settings, sample_values=job.sample_values
    )
    dataset.name = job.data.name
    return dataset, checks

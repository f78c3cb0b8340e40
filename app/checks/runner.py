"""One validation run, executed inside a worker process: read the data, run the engines, report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, Field

from app.checks.deepchecks_engine import resolve_config, run_deepchecks
from app.checks.expectations import LoadedSuite, run_suite
from app.ingest.formats import DataFormat, describe_columns, read_dataframe
from app.reports.model import CheckResult, DatasetInfo, Report, SuiteInfo, summarise

DEEPCHECKS_HTML = "deepchecks.html"
PLOTLY_SRC = "/static/plotly.min.js"


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


def warm_up() -> None:
    """Build the engines' per-process state (GE context) before the first job needs it."""
    run_suite(pd.DataFrame({"x": [1]}), _WARM_UP_SUITE, sample_values=0)


def _read(data: DataInput, max_rows: int) -> tuple[pd.DataFrame, DatasetInfo]:
    frame = read_dataframe(data.path, data.format, max_rows=max_rows)
    info = DatasetInfo(
        name=data.name,
        format=data.format.value,
        rows=len(frame),
        columns=describe_columns(frame),
        sha256=data.sha256,
        bytes=data.bytes,
        source=data.source,
    )
    return frame, info


def run_validation(job: ValidationJob) -> Report:
    """The whole engine side of a validation. Raises domain errors for unreadable data."""
    started = time.monotonic()
    frame, dataset = _read(job.data, job.max_rows)
    reference_frame, reference = (
        _read(job.reference, job.max_rows) if job.reference else (None, None)
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

    # deepchecks runs with a reference, when the request names roles or thresholds, or when
    # the suite asks for it on every run; otherwise a plain suite stays fast.
    suite_meta = job.suite.definition.get("meta", {}) if job.suite else {}
    roles, settings = resolve_config(suite_meta, job.roles, job.thresholds)
    used_roles: dict[str, Any] = {}
    artifacts: dict[str, str] = {}
    if reference_frame is not None or job.roles or job.thresholds or settings.run == "always":
        html_path = None
        if job.artifacts_dir is not None:
            html_path = job.artifacts_dir / job.id / DEEPCHECKS_HTML
            html_path.parent.mkdir(parents=True, exist_ok=True)
        outcome = run_deepchecks(
            frame, reference_frame, roles, settings, html_path=html_path, plotly_src=PLOTLY_SRC
        )
        checks.extend(outcome.checks)
        used_roles = outcome.roles
        if outcome.html_error:
            used_roles["html_error"] = outcome.html_error
        if outcome.data_sample_rows is not None:
            dataset = dataset.model_copy(
                update={"sampled": True, "sample_rows": outcome.data_sample_rows}
            )
        if reference is not None and outcome.reference_sample_rows is not None:
            reference = reference.model_copy(
                update={"sampled": True, "sample_rows": outcome.reference_sample_rows}
            )
        if outcome.html_path is not None:
            artifacts["deepchecks_html"] = f"/v1/reports/{job.id}/artifacts/{DEEPCHECKS_HTML}"

    status, summary = summarise(checks)
    return Report(
        id=job.id,
        status=status,
        success=status == "passed",
        duration_ms=int((time.monotonic() - started) * 1000),
        dataset=dataset,
        reference=reference,
        suite=suite_info,
        roles=used_roles,
        summary=summary,
        checks=checks,
        artifacts=artifacts,
    )


_WARM_UP_SUITE = LoadedSuite(
    name="warm_up",
    definition={
        "name": "warm_up",
        "expectations": [
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "x"}}
        ],
        "meta": {},
    },
    sha256="0" * 64,
    origin="inline",
    expectation_count=1,
)

"""One validation run, executed inside a worker process: read the data, run the engines, report."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, Field

from app.checks.check_config import apply_check_config, check_columns, check_expectation_types
from app.checks.deepchecks_engine import (
    CHECK_NAMES,
    CHECK_THRESHOLDS,
    DeepchecksSettings,
    resolve_config,
    run_deepchecks,
)
from app.checks.exact_sql import SqlBatch, SqlExactChecks
from app.checks.expectations import LoadedSuite, check_expectations, run_suite
from app.checks.failing_rows import check_id_columns, keep_frame_rows
from app.checks.sql_engine import validate_sql_batch
from app.checks.sql_profile import profile_in_database, profile_sample
from app.core.config import get_settings
from app.ingest.formats import DataFormat, DecodeLimits, describe_columns, read_dataframe
from app.ingest.references import (
    BatchReference,
    SqlFormat,
    connection_url,
    read_reference,
    read_sample,
    resolve_reference,
)
from app.reports.model import (
    CheckResult,
    DatasetInfo,
    DatasetProfile,
    Report,
    SuiteInfo,
    summarise,
)
from app.reports.profiles import profile_frames

logger = logging.getLogger(__name__)

DEEPCHECKS_HTML = "deepchecks.html"
PLOTLY_SRC = "/static/plotly.min.js"


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

    @property
    def is_sql(self) -> bool:
        return self.location is not None and self.location.kind == "sql"


class ValidationJob(BaseModel):
    id: str
    data: DataInput
    suite: LoadedSuite | None = None
    reference: DataInput | None = None
    roles: dict[str, Any] = Field(default_factory=dict)
    thresholds: dict[str, Any] = Field(default_factory=dict)
    # Severity and thresholds per check and column (app/checks/check_config.py), as sent.
    per_check: dict[str, Any] = Field(default_factory=dict)
    max_rows: int
    # None: the worker's own settings (a job queued before the limits travelled with it).
    limits: DecodeLimits | None = None
    sample_values: int = 20
    # Unexpected rows kept per failed row-level expectation (Settings.max_failing_rows).
    max_failing_rows: int = 10_000
    artifacts_dir: Path | None = None
    # Seconds one expectation may run (Settings.check_timeout_s); None: no budget.
    check_timeout_s: float | None = None

    model_config = {"arbitrary_types_allowed": True}


def warm_up() -> None:
    """Build the engines' per-process state (GE context) before the first job needs it."""
    run_suite(pd.DataFrame({"x": [1]}), _WARM_UP_SUITE, sample_values=0)


def run_validation(job: ValidationJob) -> Report:
    """The whole engine side of a validation. Raises domain errors for unreadable data."""
    started = time.monotonic()
    if job.suite is not None:
        _check_once(job.suite)
    frame: pd.DataFrame | None = None
    if job.data.is_sql:
        # A SQL batch is validated inside its database, never read whole into memory.
        dataset, checks = _validate_sql(job)
    else:
        frame, dataset = _read(job.data, job.max_rows, job.limits)
        checks = []
        if job.suite is not None:
            check_id_columns(job.suite, frame.columns)
            checks = run_suite(
                frame,
                job.suite,
                sample_values=job.sample_values,
                check_timeout_s=job.check_timeout_s,
            )
            rows_folder = _failing_rows_folder(job)
            if rows_folder is not None:
                keep_frame_rows(
                    frame,
                    job.suite,
                    checks,
                    rows_folder,
                    limit=job.max_failing_rows,
                    check_timeout_s=job.check_timeout_s,
                )
    suite_info = None
    if job.suite is not None:
        suite_info = SuiteInfo(
            name=job.suite.name,
            sha256=job.suite.sha256,
            origin=job.suite.origin,
            expectations=job.suite.expectation_count,
        )

    # deepchecks runs with a reference, when the request names roles, thresholds or one of its
    # checks in per_check, or when the suite asks for it on every run; otherwise a plain suite
    # stays fast.
    suite_meta = job.suite.definition.get("meta", {}) if job.suite else {}
    roles, settings = resolve_config(suite_meta, job.roles, job.thresholds, job.per_check)
    expectation_types = (
        [e["type"] for e in job.suite.definition["expectations"]] if job.suite else []
    )
    check_expectation_types(settings.per_check, expectation_types)
    reference: DatasetInfo | None = None
    used_roles: dict[str, Any] = {}
    artifacts: dict[str, str] = {}
    columns = {c.name for c in dataset.columns}
    reference_frame: pd.DataFrame | None = None
    if (
        job.reference is not None
        or job.roles
        or job.thresholds
        or settings.per_check.names_any(CHECK_NAMES)
        or settings.run == "always"
    ):
        if frame is None:
            frame, dataset = _sql_sample(job.data, dataset, settings)
        if job.reference is not None:
            if job.reference.is_sql:
                reference_frame, reference = _sql_sample(job.reference, None, settings)
            else:
                reference_frame, reference = _read(job.reference, job.max_rows, job.limits)
        columns |= {str(c) for c in frame.columns}
        if reference_frame is not None:
            columns |= {str(c) for c in reference_frame.columns}
        # Before the checks run: a column in neither dataset is a 422, not a wasted run.
        check_columns(settings.per_check, columns)
        html_path = None
        if job.artifacts_dir is not None:
            html_path = job.artifacts_dir / job.id / DEEPCHECKS_HTML
            html_path.parent.mkdir(parents=True, exist_ok=True)
        # A SQL batch reaches deepchecks as a sample read in the database, so its set checks
        # must not claim every row: the data's count is known; the reference's is not, so a
        # SQL reference always counts as a sample.
        cut = {
            "data": job.data.is_sql and dataset.rows > len(frame),
            "reference": job.reference is not None and job.reference.is_sql,
        }
        # ...but the set checks over a SQL batch still see every row: in its database, or
        # streamed in chunks past the other dataset (app/checks/exact_sql.py).
        exact_source = _sql_exact_checks(job)
        try:
            outcome = run_deepchecks(
                frame,
                reference_frame,
                roles,
                settings,
                html_path=html_path,
                plotly_src=PLOTLY_SRC,
                already_sampled=tuple(side for side, sampled in cut.items() if sampled),
                exact_source=exact_source,
            )
        finally:
            if exact_source is not None:
                exact_source.close()
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
    else:
        check_columns(settings.per_check, columns)
    checks = apply_check_config(checks, settings.per_check, CHECK_THRESHOLDS)
    profiles = _profiles(job, frame, reference_frame, dataset, reference, settings.random_state)
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
        profiles=profiles,
    )


def _profiles(
    job: ValidationJob,
    frame: pd.DataFrame | None,
    reference_frame: pd.DataFrame | None,
    dataset: DatasetInfo,
    reference: DatasetInfo | None,
    seed: int,
) -> dict[str, DatasetProfile]:
    """Column profiles of both sides, on shared histogram edges; none if they cannot be made
    (the profile informs, it never fails a validation: the error is logged)."""
    try:
        return _profile_sides(job, frame, reference_frame, dataset, reference, seed)
    except Exception:
        logger.exception("report %s: the column profiles could not be computed", job.id)
        return {}


def _profile_sides(
    job: ValidationJob,
    frame: pd.DataFrame | None,
    reference_frame: pd.DataFrame | None,
    dataset: DatasetInfo,
    reference: DatasetInfo | None,
    seed: int,
) -> dict[str, DatasetProfile]:
    """A side read from SQL is profiled on the bounded sample the run took (or a smaller one
    read for the profile alone), then made the batch's with one aggregate query in its
    database (app/checks/sql_profile.py)."""
    settings = get_settings()
    if frame is None:
        assert job.data.location is not None
        frame = profile_sample(job.data.location, settings, seed)
    data_profile, reference_profile = profile_frames(frame, reference_frame)
    if job.data.location is not None and job.data.is_sql:
        data_profile = profile_in_database(
            job.data.location, settings, data_profile, frame, dataset
        )
    profiles = {"data": data_profile}
    if reference_profile is not None and reference_frame is not None:
        side = job.reference
        if side is not None and side.location is not None and side.is_sql:
            reference_profile = profile_in_database(
                side.location,
                settings,
                reference_profile,
                reference_frame,
                None,
                field="reference",
            )
        profiles["reference"] = reference_profile
    return profiles


_CHECKED_SUITES: set[str] = set()


def _check_once(suite: LoadedSuite) -> None:
    # The API process has a worker check each suite version before it runs or queues it
    # (ValidationService.check_suite). A queued job may still reach a worker whose engine
    # differs from the one that checked it (a rolling upgrade): it is refused here, naming the
    # expectation GE cannot build, before any data is read. Once per version per worker.
    if suite.sha256 not in _CHECKED_SUITES:
        check_expectations(suite)
        _CHECKED_SUITES.add(suite.sha256)


def _read(
    data: DataInput, max_rows: int, limits: DecodeLimits | None
) -> tuple[pd.DataFrame, DatasetInfo]:
    """An upload, or a file / object-store reference, read whole (within the limits)."""
    if data.location is not None:
        frame = read_reference(
            data.location, get_settings(), max_rows=max_rows, limits=limits
        ).frame
    else:
        assert data.path is not None and isinstance(data.format, DataFormat)
        frame = read_dataframe(
            data.path, data.format, max_rows=max_rows, limits=limits, name=data.name
        )
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


def _validate_sql(job: ValidationJob) -> tuple[DatasetInfo, list[CheckResult]]:
    # The worker reads connection URLs and S3 credentials from its own environment (it inherits
    # the server's), so that no credential is ever written into a queued job.
    assert job.data.location is not None
    settings = get_settings()
    resolved = resolve_reference(job.data.location, settings)
    dataset, checks = validate_sql_batch(
        resolved,
        job.suite,
        settings,
        sample_values=job.sample_values,
        rows_folder=_failing_rows_folder(job),
        max_failing_rows=job.max_failing_rows,
    )
    dataset.name = job.data.name
    return dataset, checks


def _failing_rows_folder(job: ValidationJob) -> Path | None:
    """Where the job's failing rows go (its artifacts folder), or None to keep none."""
    if job.artifacts_dir is None or job.max_failing_rows <= 0:
        return None
    return job.artifacts_dir / job.id


def _sql_exact_checks(job: ValidationJob) -> SqlExactChecks | None:
    """The exact checks over the job's SQL batches, or None when neither side is one."""
    settings = get_settings()
    sides: dict[str, SqlBatch] = {}
    for field, data in (("data", job.data), ("reference", job.reference)):
        if data is None or not data.is_sql:
            continue
        assert data.location is not None
        resolved = resolve_reference(data.location, settings, field=field)
        url = connection_url(data.location, settings, field)
        sides[field] = SqlBatch(data.location, resolved.columns, url, field)
    if not sides:
        return None
    return SqlExactChecks(
        sides.get("data"), sides.get("reference"), settings.sql_statement_timeout_s
    )


def _sql_sample(
    data: DataInput, known: DatasetInfo | None, settings: DeepchecksSettings
) -> tuple[pd.DataFrame, DatasetInfo]:
    """deepchecks gets a bounded, seeded sample of a SQL batch, taken in the database."""
    assert data.location is not None
    frame = read_sample(data.location, settings.max_rows_before_sampling, settings.random_state)
    info = known or DatasetInfo(
        name=data.name,
        format=data.format.value,
        rows=len(frame),
        columns=describe_columns(frame),
        source=data.source,
    )
    return frame, info.model_copy(update={"sampled": True, "sample_rows": len(frame)})


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

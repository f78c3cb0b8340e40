"""The validation report: one versioned pydantic model serves the JSON API and the HTML pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

SCHEMA_VERSION = "1.0"

Status = Literal["passed", "failed", "error"]
Outcome = Literal["passed", "failed", "warned", "skipped", "error"]
Severity = Literal["critical", "warning", "info"]
Source = Literal["great_expectations", "deepchecks"]

CATEGORIES = (
    "schema",
    "missing",
    "range",
    "set",
    "uniqueness",
    "volume",
    "distribution",
    "format",
    "leakage",
    "drift",
    "integrity",
    "other",
)


class ColumnInfo(BaseModel):
    name: str
    dtype: str
    null_count: int = 0


class DatasetInfo(BaseModel):
    """What was validated: enough to recognise the same bytes again."""

    name: str
    format: str
    rows: int
    columns: list[ColumnInfo] = Field(default_factory=list)
    sha256: str | None = Field(default=None, description="sha256 of the bytes read, when known")
    bytes: int | None = None
    source: dict[str, Any] | None = Field(
        default=None,
        description="Where a referenced dataset was read from (URI, or connection + table or "
        "query + params); never credentials. Null for uploads.",
    )
    sampled: bool = False
    sample_rows: int | None = None


class SuiteInfo(BaseModel):
    name: str
    sha256: str = Field(description="Hash of the suite's canonical JSON, as it ran")
    origin: Literal["file", "api", "inline"] = "file"
    expectations: int = 0


class Summary(BaseModel):
    evaluated: int = 0
    passed: int = 0
    failed: int = 0
    warned: int = 0
    skipped: int = 0
    errored: int = 0


class CheckResult(BaseModel):
    """One row of a report: one expectation, or one deepchecks check (per column where so)."""

    source: Source
    category: str
    name: str
    column: str | None = None
    success: bool
    outcome: Outcome
    severity: Severity = "critical"
    observed: dict[str, Any] = Field(default_factory=dict)
    expected: dict[str, Any] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)


class HistogramBin(BaseModel):
    low: float
    high: float
    count: int


class ValueCount(BaseModel):
    value: str
    count: int


class ColumnProfile(BaseModel):
    """What one column of a dataset looks like (issue 16): the same fields for data and
    reference, so that a page can show them side by side and a run can be compared with the
    last. Numbers and dates fill `min` .. `histogram` (dates as ISO strings in min/max and as
    epoch seconds in the histogram and quantiles); strings and categories fill `top`."""

    name: str
    kind: Literal["number", "datetime", "string", "boolean", "other"]
    count: int = Field(description="Rows, nulls included")
    nulls: int = 0
    infinite: int = Field(
        default=0, description="+inf / -inf values: counted, left out of mean, std and quantiles"
    )
    distinct: int | None = None
    distinct_exact: bool = True
    min: float | str | None = None
    max: float | str | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: dict[str, float] = Field(
        default_factory=dict, description="p01, p05, p25, p50, p75, p95, p99"
    )
    top: list[ValueCount] = Field(default_factory=list)
    top_exact: bool = Field(
        default=True, description="False: `top` counts scaled from a sample of the column"
    )
    histogram: list[HistogramBin] = Field(default_factory=list)


class DatasetProfile(BaseModel):
    rows: int
    columns: list[ColumnProfile] = Field(default_factory=list)
    sampled_rows: int | None = Field(
        default=None, description="Rows the profile was computed on, when fewer than `rows`"
    )


class Report(BaseModel):
    schema_version: str = SCHEMA_VERSION
    id: str
    status: Status
    success: bool
    created_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    duration_ms: int = 0
    dataset: DatasetInfo
    reference: DatasetInfo | None = None
    suite: SuiteInfo | None = None
    roles: dict[str, Any] = Field(
        default_factory=dict, description="Column roles used: label, datetime, index, ..."
    )
    summary: Summary = Field(default_factory=Summary)
    checks: list[CheckResult] = Field(default_factory=list)
    error: str | None = Field(default=None, description="Why the run ended in `error`")
    report_url: str | None = None
    profiles: dict[str, DatasetProfile] = Field(
        default_factory=dict,
        description="Column profiles by side: `data`, and `reference` when there is one",
    )
    artifacts: dict[str, str] = Field(
        default_factory=dict, description="Name to URL of files stored with the report"
    )


def link(report: Report, base_url: str) -> Report:
    """Give a report its absolute URLs: its page, and every stored artifact."""
    base = base_url.rstrip("/")
    report.report_url = f"{base}/reports/{report.id}"
    report.artifacts = {
        name: f"{base}{url}" if url.startswith("/") else url
        for name, url in report.artifacts.items()
    }
    return report


def outcome_for(success: bool, severity: Severity) -> Outcome:
    """A failed expectation of severity `warning` or `info` warns; it does not fail the run."""
    if success:
        return "passed"
    return "failed" if severity == "critical" else "warned"


def summarise(checks: list[CheckResult]) -> tuple[Status, Summary]:
    """The verdict: failed if a critical check failed, error if one could not run, else passed."""
    summary = Summary()
    for check in checks:
        if check.outcome == "skipped":
            summary.skipped += 1
            continue
        summary.evaluated += 1
        match check.outcome:
            case "passed":
                summary.passed += 1
            case "failed":
                summary.failed += 1
            case "warned":
                summary.warned += 1
            case "error":
                summary.errored += 1
    critical_errors = any(c.outcome == "error" and c.severity == "critical" for c in checks)
    if summary.failed:
        status: Status = "failed"
    elif critical_errors:
        status = "error"
    else:
        status = "passed"
    return status, summary

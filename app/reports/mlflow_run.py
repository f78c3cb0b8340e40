"""Log a report to an MLflow run: summary and drift metrics, the verdict as a tag, the report JSON
and its page as artifacts. mlflow is an optional extra (`datagate[mlflow]`), imported on use."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.reports.model import Report

if TYPE_CHECKING:
    from types import ModuleType

# MLflow's rule for metric and tag keys: letters, digits, `_ - .`, spaces, and `/` and `:` with
# conditions (no `:` on Windows; `/` only where the key stays one normalised path), at most 250
# characters (mlflow/utils/validation.py). `/` and `:` become `_` too, so any key is portable.
_NOT_ALLOWED = re.compile(r"[^\w\-. ]")
MAX_KEY_CHARS = 250
# Tag values MLflow keeps whole (its limit is 8000 since 2.x; older servers cut at 5000).
MAX_TAG_CHARS = 5000
ARTIFACT_DIR = "datagate"


class MlflowUnavailable(RuntimeError):
    """mlflow is not installed; the message says how to install it."""


def import_mlflow() -> ModuleType:
    """The mlflow module, or a clear error naming the extra that brings it."""
    try:
        import mlflow
    except ImportError as exc:
        raise MlflowUnavailable(
            "logging to MLflow needs the mlflow package: pip install 'datagate[mlflow]' "
            f"(import failed: {exc})"
        ) from exc
    return mlflow


def metric_key(name: str) -> str:
    """`name` as an MLflow key: characters MLflow refuses become `_`, cut to its length limit."""
    return _NOT_ALLOWED.sub("_", name)[:MAX_KEY_CHARS]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def report_metrics(report: Report) -> dict[str, float]:
    """The numbers a run compares across runs: counts, rows, and each drift effect size.

    `datagate.drift.<column>` is FeatureDrift's effect size (datagate's, in the units its
    method states); label and multivariate drift have their own keys, so a column named
    `label` cannot shadow them. A skipped drift row has no number and logs none."""
    s = report.summary
    metrics: dict[str, float] = {
        "datagate.evaluated": s.evaluated,
        "datagate.passed": s.passed,
        "datagate.failed": s.failed,
        "datagate.warned": s.warned,
        "datagate.skipped": s.skipped,
        "datagate.errored": s.errored,
        "datagate.rows": report.dataset.rows,
        "datagate.success": 1.0 if report.success else 0.0,
    }
    for check in report.checks:
        if check.source != "deepchecks" or check.outcome == "skipped":
            continue
        if check.name == "FeatureDrift" and check.column:
            key = f"datagate.drift.{check.column}"
            value = _number(check.observed.get("effect"))
        elif check.name == "LabelDrift":
            key, value = "datagate.label_drift", _number(check.observed.get("effect"))
        elif check.name == "MultivariateDrift":
            key, value = "datagate.multivariate_drift", _number(check.observed.get("drift_score"))
        else:
            continue
        if value is not None:
            metrics[_unique(metric_key(key), metrics)] = value
    return {metric_key(k): float(v) for k, v in metrics.items()}


def _unique(key: str, taken: dict[str, float]) -> str:
    # Two columns may sanitise to one key (`a b?` and `a b!`): number the later ones.
    candidate, n = key, 2
    while candidate in taken:
        candidate = f"{key[: MAX_KEY_CHARS - 4]}_{n}"
        n += 1
    return candidate


def report_tags(report: Report) -> dict[str, str]:
    tags = {
        "datagate.verdict": report.status,
        "datagate.report_id": report.id,
        "datagate.dataset": report.dataset.name,
    }
    if report.suite:
        tags["datagate.suite"] = report.suite.name
    if report.report_url:
        tags["datagate.report_url"] = report.report_url
    if report.error:
        tags["datagate.error"] = report.error
    return {k: v[:MAX_TAG_CHARS] for k, v in tags.items()}


@dataclass(frozen=True)
class LoggedRun:
    """Where a report went: the run, and whether datagate started (and ended) it."""

    run_id: str
    started: bool
    artifacts: tuple[str, ...]


def current_run_id() -> str | None:
    """The run a report goes to: this thread's active MLflow run, else MLFLOW_RUN_ID's."""
    active = import_mlflow().active_run()
    return active.info.run_id if active else os.environ.get("MLFLOW_RUN_ID") or None


def log_report(report: Report, *, run_id: str | None = None) -> LoggedRun:
    """Log `report` to `run_id`, default `current_run_id()` (a run given by MLFLOW_RUN_ID keeps
    its status), else to a new run that datagate starts and ends (MLFLOW_EXPERIMENT_NAME/ID
    apply). MLflow's active run is per thread: a caller logging from another thread passes the
    run id it read in its own.

    The tracking server is MLflow's own setting: MLFLOW_TRACKING_URI, or mlflow.set_tracking_uri
    in the calling process."""
    from app.reports.pages import render_report

    mlflow = import_mlflow()
    from mlflow.entities import Metric, RunTag

    run_id = run_id or current_run_id()
    started = run_id is None
    if started:
        run_id = mlflow.start_run(run_name=f"datagate {report.dataset.name}").info.run_id
    assert run_id is not None
    client = mlflow.MlflowClient()
    status = "FAILED"
    try:
        step_ms = int(report.created_at.timestamp() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(k, v, step_ms, 0) for k, v in report_metrics(report).items()],
            tags=[RunTag(k, v) for k, v in report_tags(report).items()],
        )
        stem = f"{ARTIFACT_DIR}/report-{report.id}"
        client.log_text(run_id, report.model_dump_json(indent=2), f"{stem}.json")
        client.log_text(run_id, render_report(report, standalone=True), f"{stem}.html")
        status = "FINISHED"
        return LoggedRun(run_id=run_id, started=started, artifacts=(f"{stem}.json", f"{stem}.html"))
    finally:
        if started:
            mlflow.end_run(status)

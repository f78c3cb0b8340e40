"""The figures of one report that trends and comparisons follow from run to run (issue 16).

One function reads them (`report_metrics`): the store writes its output to `report_metrics`
beside each report, and the comparison of two runs calls it on both reports, so that a trend
point and a compared figure are always the same number.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from app.reports.model import CheckResult, Report

MetricName = Literal[
    "verdict", "rows", "null_share", "mean", "unexpected_share", "drift_score", "outcome"
]
# The order charts and tables list them in: the run first, then columns, then checks.
METRIC_ORDER: tuple[MetricName, ...] = (
    "verdict",
    "rows",
    "null_share",
    "mean",
    "unexpected_share",
    "drift_score",
    "outcome",
)
# Drift-category rows whose first observed number is a drift score; other drift rows (new
# categories, string mismatches) measure shares.
DRIFT_SCORE_CHECKS = frozenset({"FeatureDrift", "LabelDrift", "MultivariateDrift"})
BAD_OUTCOMES = frozenset({"failed", "error"})


@dataclass(frozen=True)
class Metric:
    """One figure of one run: `subject` is a column name or a check's key ("" for the run)."""

    metric: MetricName
    subject: str
    value: float | None
    threshold: float | None = None
    outcome: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.metric, self.subject)


def finite(value: Any) -> float | None:
    """A JSON value as a float, if it is a finite number (not a bool, NaN or infinity)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def first_number(values: dict[str, Any]) -> float | None:
    """The first numeric value of a dict: engines name their drift score keys differently."""
    for value in values.values():
        if (number := finite(value)) is not None:
            return number
    return None


def drift_score(check: CheckResult) -> tuple[float, float | None] | None:
    """A drift check's score and threshold, or None for a row that holds no drift score."""
    if check.category != "drift" or check.outcome == "skipped":
        return None
    if check.source == "deepchecks" and check.name not in DRIFT_SCORE_CHECKS:
        return None
    score = first_number(check.observed)
    if score is None:
        return None
    return score, first_number(check.expected)


def unexpected_share(check: CheckResult) -> tuple[float, float] | None:
    """A row-level expectation's unexpected share in [0, 1] and the share it may reach: GE's
    `mostly` lets 1 - mostly of the values be unexpected; without it, none may."""
    percent = finite(check.observed.get("unexpected_percent"))
    if percent is None:
        return None
    mostly = finite(check.expected.get("mostly"))
    allowed = 1.0 - mostly if mostly is not None and 0 <= mostly <= 1 else 0.0
    return min(max(percent / 100, 0.0), 1.0), allowed


def check_keys(checks: Iterable[CheckResult]) -> list[str]:
    """A key per check that names it across runs: `name[column]`, and `#2`, `#3` for a second
    and third row of the same name and column (a suite may run one expectation twice)."""
    seen: dict[str, int] = {}
    keys = []
    for check in checks:
        base = check.name + (f"[{check.column}]" if check.column is not None else "")
        seen[base] = seen.get(base, 0) + 1
        keys.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return keys


def report_metrics(report: Report) -> list[Metric]:
    """Every figure of the report that a trend follows: the verdict (value: failed checks),
    rows, per column null share and mean (from the data's profile when the report has one,
    else null counts from `dataset.columns`), and per check its unexpected share, drift score,
    or else whether it failed (1) or not (0)."""
    bad = report.summary.failed + report.summary.errored
    metrics = [
        Metric("verdict", "", float(bad), outcome=report.status),
        Metric("rows", "", float(report.dataset.rows)),
    ]
    profile = report.profiles.get("data")
    if profile is not None and profile.columns:
        for column in profile.columns:
            if column.count > 0:
                metrics.append(Metric("null_share", column.name, column.nulls / column.count))
            if (mean := finite(column.mean)) is not None:
                metrics.append(Metric("mean", column.name, mean))
    elif report.dataset.rows > 0:
        for info in report.dataset.columns:
            metrics.append(Metric("null_share", info.name, info.null_count / report.dataset.rows))
    for key, check in zip(check_keys(report.checks), report.checks, strict=True):
        if check.outcome == "skipped":
            continue
        if (share := unexpected_share(check)) is not None:
            metrics.append(Metric("unexpected_share", key, share[0], share[1], check.outcome))
        elif (drift := drift_score(check)) is not None:
            metrics.append(Metric("drift_score", key, drift[0], drift[1], check.outcome))
        else:
            failed = 1.0 if check.outcome in BAD_OUTCOMES else 0.0
            metrics.append(Metric("outcome", key, failed, outcome=check.outcome))
    return metrics

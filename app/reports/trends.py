"""A dataset's figures over its runs, read from the `report_metrics` table (issue 16).

Two indexed range reads on (dataset_name, created_at) answer a trend, whatever the number of
stored runs: the newest `limit` verdicts, then every figure of those runs. No stored report
document is parsed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.db import MetricRow, ReportRow
from app.reports.run_metrics import METRIC_ORDER

DEFAULT_RUNS = 500
MAX_RUNS = 5000
# A chart of more points than this is drawn from a min/max-preserving subset (see `downsample`).
MAX_DRAWN_POINTS = 500


class TrendPoint(BaseModel):
    report_id: str
    created_at: datetime
    value: float | None
    outcome: str | None = None


class TrendSeries(BaseModel):
    """One figure over the runs, oldest first: a column's null share or mean, a check's
    unexpected share or drift score, whether a check failed (`outcome`: 1 failed, 0 not), or
    the run's rows. `threshold` is the newest run's, where the figure has one."""

    metric: str
    subject: str = Field(description="Column name or check key (`name[column]`); empty for rows")
    threshold: float | None = None
    points: list[TrendPoint] = Field(default_factory=list)


class VerdictCell(BaseModel):
    report_id: str
    created_at: datetime
    status: str
    failed: int = Field(description="Checks that failed or could not run")


class Trends(BaseModel):
    dataset: str
    stored_runs: int = Field(description="Every stored run of the dataset, in the window or not")
    runs: int = Field(description="Runs in this answer: the newest `limit` in since..until")
    limit: int
    since: datetime | None = None
    until: datetime | None = None
    verdicts: list[VerdictCell] = Field(default_factory=list, description="Oldest first")
    series: list[TrendSeries] = Field(default_factory=list)


def stored_runs(session: Session, dataset: str) -> int:
    """Stored reports of the dataset (an index-only count on reports.dataset_name)."""
    count = select(func.count()).select_from(ReportRow).where(ReportRow.dataset_name == dataset)
    return session.scalar(count) or 0


def load_trends(
    session: Session,
    dataset: str,
    *,
    limit: int = DEFAULT_RUNS,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Trends | None:
    """The newest `limit` runs of the dataset between `since` and `until` (inclusive), each
    figure as a series; None when the dataset has no stored run at all."""
    total = stored_runs(session, dataset)
    if total == 0:
        return None
    window = [MetricRow.dataset_name == dataset]
    if since is not None:
        window.append(MetricRow.created_at >= since)
    if until is not None:
        window.append(MetricRow.created_at <= until)
    newest = session.execute(
        select(MetricRow.report_id, MetricRow.created_at, MetricRow.value, MetricRow.outcome)
        .where(*window, MetricRow.metric == "verdict")
        .order_by(MetricRow.created_at.desc(), MetricRow.report_id.desc())
        .limit(limit)
    ).all()
    verdicts = [
        VerdictCell(
            report_id=r.report_id,
            created_at=r.created_at,
            status=r.outcome or "error",
            failed=int(r.value or 0),
        )
        for r in reversed(newest)
    ]
    trends = Trends(
        dataset=dataset,
        stored_runs=total,
        runs=len(verdicts),
        limit=limit,
        since=since,
        until=until,
        verdicts=verdicts,
    )
    if not verdicts:
        return trends
    chosen = {v.report_id for v in verdicts}
    rows = session.execute(
        select(
            MetricRow.report_id,
            MetricRow.created_at,
            MetricRow.metric,
            MetricRow.subject,
            MetricRow.value,
            MetricRow.threshold,
            MetricRow.outcome,
        )
        .where(
            *window,
            MetricRow.created_at >= verdicts[0].created_at,
            MetricRow.metric != "verdict",
        )
        .order_by(MetricRow.created_at, MetricRow.report_id)
    ).all()
    series: dict[tuple[str, str], TrendSeries] = {}
    for r in rows:
        if r.report_id not in chosen:  # a run at the window's first instant, past `limit`
            continue
        one = series.get((r.metric, r.subject))
        if one is None:
            one = series[(r.metric, r.subject)] = TrendSeries(metric=r.metric, subject=r.subject)
        one.threshold = r.threshold
        one.points.append(
            TrendPoint(
                report_id=r.report_id, created_at=r.created_at, value=r.value, outcome=r.outcome
            )
        )
    rank: dict[str, int] = {name: i for i, name in enumerate(METRIC_ORDER)}
    trends.series = sorted(
        series.values(), key=lambda s: (rank.get(s.metric, len(rank)), s.subject)
    )
    return trends


def downsample(values: Sequence[float | None], max_points: int = MAX_DRAWN_POINTS) -> list[int]:
    """The indices of the points to draw: all of them up to `max_points`; beyond, the first,
    the last, and in each of `max_points // 2 - 1` equal buckets of runs its lowest and its
    highest value (in run order), so that no spike or dip disappears from the chart."""
    present = [i for i, v in enumerate(values) if v is not None]
    if len(present) <= max_points:
        return present
    buckets = max(max_points // 2 - 1, 1)
    kept = {present[0], present[-1]}
    size = len(present) / buckets
    for b in range(buckets):
        members = present[int(b * size) : int((b + 1) * size)]
        if not members:
            continue
        kept.add(min(members, key=lambda i: values[i] or 0.0))
        kept.add(max(members, key=lambda i: values[i] or 0.0))
    return sorted(kept)

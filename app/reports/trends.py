"""A dataset's figures over its runs, read from the `report_metrics` table (issue 16).

Two indexed range reads on (dataset_name, created_at) answer a trend, whatever the number of
stored runs: the newest `limit` verdicts, then every figure of those runs. No stored report
document is parsed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.core.db import MetricRow, ReportRow
from app.core.errors import InvalidRequest
from app.reports.run_metrics import BAD_OUTCOMES, METRIC_ORDER

DEFAULT_RUNS = 500
MAX_RUNS = 2000
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
    """The trends JSON (its schema; `DatasetTrends.to_json` writes it)."""

    dataset: str
    stored_runs: int = Field(description="Every stored run of the dataset, in the window or not")
    runs: int = Field(description="Runs in this answer: the newest `limit` in since..until")
    limit: int
    since: datetime | None = None
    until: datetime | None = None
    verdicts: list[VerdictCell] = Field(default_factory=list, description="Oldest first")
    series: list[TrendSeries] = Field(default_factory=list)


@dataclass
class Series:
    """One figure over the runs, column-wise: `runs[i]` is the run's position in the window
    (oldest 0), `values[i]` and `outcomes[i]` its figure. Parallel lists rather than one
    object per point: a window of 500 runs holds tens of thousands of points."""

    metric: str
    subject: str
    threshold: float | None = None
    runs: list[int] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)
    outcomes: list[str | None] = field(default_factory=list)

    @property
    def bad(self) -> bool:
        return any(o in BAD_OUTCOMES for o in self.outcomes)


@dataclass
class DatasetTrends:
    """What `load_trends` reads; `to_json` gives the `Trends` document the API describes."""

    dataset: str
    stored_runs: int
    limit: int
    since: datetime | None
    until: datetime | None
    verdicts: list[VerdictCell]
    series: list[Series]

    @property
    def runs(self) -> int:
        return len(self.verdicts)

    def to_json(self) -> str:
        """The `Trends` JSON, written directly: validating one model per point would cost more
        than the query (bench/trends.py)."""
        # Each run's id and time are encoded once, not once per figure of the run.
        ids = [json.dumps(v.report_id, ensure_ascii=False) for v in self.verdicts]
        times = [json.dumps(iso(v.created_at)) for v in self.verdicts]
        head = {
            "dataset": self.dataset,
            "stored_runs": self.stored_runs,
            "runs": self.runs,
            "limit": self.limit,
            "since": iso(self.since) if self.since else None,
            "until": iso(self.until) if self.until else None,
            "verdicts": [v.model_dump(mode="json") for v in self.verdicts],
        }
        parts = [json.dumps(head, ensure_ascii=False)[:-1], ',"series":[']
        for n, s in enumerate(self.series):
            described = {"metric": s.metric, "subject": s.subject, "threshold": s.threshold}
            parts.append(("," if n else "") + json.dumps(described, ensure_ascii=False)[:-1])
            parts.append(',"points":[')
            parts.append(
                ",".join(
                    f'{{"report_id":{ids[r]},"created_at":{times[r]},'
                    f'"value":{_number(v)},"outcome":{_text(o)}}}'
                    for r, v, o in zip(s.runs, s.values, s.outcomes, strict=True)
                )
            )
            parts.append("]}")
        parts.append("]}")
        return "".join(parts)


def _number(value: float | None) -> str:
    # Stored figures are finite (run_metrics keeps no NaN or infinity); repr is valid JSON.
    return "null" if value is None else repr(float(value))


def _text(value: str | None) -> str:
    return "null" if value is None else json.dumps(value)


def utc(moment: datetime) -> datetime:
    """A time as UTC; one without a zone is taken to be UTC (as everything stored is; reports
    built by hand may carry naive times)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _bound(field: str, moment: datetime | None) -> datetime | None:
    """A window's end as UTC; a 422 naming it when UTC cannot hold it (year 1 at +01:00)."""
    if moment is None:
        return None
    try:
        return utc(moment)
    except OverflowError as exc:
        raise InvalidRequest(
            f"{field} {moment.isoformat()} is outside the times UTC can hold"
        ) from exc


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, as pydantic writes the report's times."""
    return utc(moment).isoformat().replace("+00:00", "Z")


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
) -> DatasetTrends | None:
    """The newest `limit` runs of the dataset between `since` and `until` (inclusive), each
    figure as a series; None when the dataset has no stored run at all."""
    total = stored_runs(session, dataset)
    if total == 0:
        return None
    since = _bound("since", since)
    until = _bound("until", until)
    table = MetricRow.__table__
    window = [table.c.dataset_name == dataset]
    if since is not None:
        window.append(table.c.created_at >= since)
    if until is not None:
        window.append(table.c.created_at <= until)
    # Core, not ORM, reads: the ORM's per-row work is most of the time at this size.
    connection = session.connection()
    newest = connection.execute(
        select(table.c.report_id, table.c.created_at, table.c.value, table.c.outcome)
        .where(*window, table.c.metric == "verdict")
        .order_by(table.c.created_at.desc(), table.c.report_id.desc())
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
    trends = DatasetTrends(dataset, total, limit, since, until, verdicts, [])
    if not verdicts:
        return trends
    position = {v.report_id: i for i, v in enumerate(verdicts)}
    figures = connection.execute(
        select(
            table.c.report_id,
            table.c.metric,
            table.c.subject,
            table.c.value,
            table.c.threshold,
            table.c.outcome,
        ).where(*window, table.c.created_at >= verdicts[0].created_at, table.c.metric != "verdict")
    )
    # Strings and floats need no result processing on any driver: the DBAPI cursor's tuples
    # are read as they are, which halves the time of this read (bench/trends.py).
    rows = figures.cursor.fetchall() if figures.cursor is not None else figures.all()
    figures.close()
    series: dict[tuple[str, str], Series] = {}
    newest_threshold: dict[tuple[str, str], int] = {}
    for report_id, metric, subject, value, threshold, outcome in rows:
        run = position.get(report_id)
        if run is None:  # a run at the window's first instant, past `limit`
            continue
        key = (metric, subject)
        one = series.get(key)
        if one is None:
            one = series[key] = Series(metric, subject)
        if run >= newest_threshold.get(key, -1):
            newest_threshold[key], one.threshold = run, threshold
        one.runs.append(run)
        one.values.append(value)
        one.outcomes.append(outcome)
    for one in series.values():
        if any(b < a for a, b in zip(one.runs, one.runs[1:], strict=False)):
            order = sorted(range(len(one.runs)), key=one.runs.__getitem__)
            one.runs = [one.runs[i] for i in order]
            one.values = [one.values[i] for i in order]
            one.outcomes = [one.outcomes[i] for i in order]
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

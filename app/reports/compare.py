"""Two runs side by side (issue 16): which checks started or stopped failing, which figures
moved most, how the schema and the columns' profiles changed."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.reports.model import ColumnProfile, Report
from app.reports.run_metrics import BAD_OUTCOMES, check_keys, finite, report_metrics

MAX_MOVED = 50
MAX_PROFILE_CHANGES = 100


class RunSummary(BaseModel):
    id: str
    created_at: datetime
    dataset: str
    status: str
    failed: int
    rows: int


class CheckChange(BaseModel):
    key: str = Field(description="`name[column]`, as in the trends")
    name: str
    column: str | None
    category: str
    before: str | None = Field(description="Outcome in the first run; null if it did not run")
    after: str | None = Field(description="Outcome in the second run; null if it did not run")


class Change(BaseModel):
    """A figure in both runs. `relative` is (after - before) / |before|, null when before is 0
    or the values are not numbers; such changes from zero sort first."""

    metric: str
    subject: str
    before: float | str | None
    after: float | str | None
    change: float | None = None
    relative: float | None = None


class SchemaChange(BaseModel):
    column: str
    change: Literal["added", "removed", "dtype"]
    before: str | None = None
    after: str | None = None


class Comparison(BaseModel):
    before: RunSummary
    after: RunSummary
    same_dataset: bool
    started_failing: list[CheckChange] = Field(default_factory=list)
    stopped_failing: list[CheckChange] = Field(default_factory=list)
    moved: list[Change] = Field(
        default_factory=list, description=f"Figures that changed, most first (at most {MAX_MOVED})"
    )
    metrics_compared: int = 0
    schema_changes: list[SchemaChange] = Field(default_factory=list)
    profile_changes: list[Change] = Field(
        default_factory=list,
        description="Per column of the data's profiles, when both runs have one; most first",
    )
    profiles_compared: bool = False


def _summary(report: Report) -> RunSummary:
    return RunSummary(
        id=report.id,
        created_at=report.created_at,
        dataset=report.dataset.name,
        status=report.status,
        failed=report.summary.failed + report.summary.errored,
        rows=report.dataset.rows,
    )


def change(metric: str, subject: str, before: object, after: object) -> Change | None:
    """The change of one figure, or None if it did not change (or is absent on a side)."""
    if before is None or after is None or before == after:
        return None
    a, b = finite(before), finite(after)
    shown_before = a if a is not None else str(before)
    shown_after = b if b is not None else str(after)
    if a is None or b is None:
        return Change(metric=metric, subject=subject, before=shown_before, after=shown_after)
    return Change(
        metric=metric,
        subject=subject,
        before=a,
        after=b,
        change=b - a,
        relative=(b - a) / abs(a) if a != 0 else None,
    )


def _magnitude(item: Change) -> tuple[int, float]:
    """Sort key, largest first: changes from zero, then by |relative|, then non-numbers."""
    if item.change is None:
        return (2, 0.0)
    if item.relative is None:
        return (0, -abs(item.change))
    return (1, -abs(item.relative))


def _profile_values(column: ColumnProfile) -> dict[str, object]:
    values: dict[str, object] = {
        "null_share": column.nulls / column.count if column.count else None,
        "distinct": column.distinct,
        "min": column.min,
        "max": column.max,
        "mean": column.mean,
        "std": column.std,
    }
    for name in ("p05", "p50", "p95"):
        values[name] = column.quantiles.get(name)
    return values


def _check_changes(before: Report, after: Report) -> tuple[list[CheckChange], list[CheckChange]]:
    first = dict(zip(check_keys(before.checks), before.checks, strict=True))
    second = dict(zip(check_keys(after.checks), after.checks, strict=True))
    started: list[CheckChange] = []
    stopped: list[CheckChange] = []
    for key in [*second, *(k for k in first if k not in second)]:
        old, new = first.get(key), second.get(key)
        was_bad = old is not None and old.outcome in BAD_OUTCOMES
        is_bad = new is not None and new.outcome in BAD_OUTCOMES
        if was_bad == is_bad:
            continue
        check = new or old
        assert check is not None  # a key comes from one side at least
        item = CheckChange(
            key=key,
            name=check.name,
            column=check.column,
            category=check.category,
            before=old.outcome if old else None,
            after=new.outcome if new else None,
        )
        (started if is_bad else stopped).append(item)
    return started, stopped


def _schema_changes(before: Report, after: Report) -> list[SchemaChange]:
    old = {c.name: c.dtype for c in before.dataset.columns}
    new = {c.name: c.dtype for c in after.dataset.columns}
    changes = [
        SchemaChange(column=n, change="added", after=t) for n, t in new.items() if n not in old
    ]
    changes += [
        SchemaChange(column=n, change="removed", before=t) for n, t in old.items() if n not in new
    ]
    changes += [
        SchemaChange(column=n, change="dtype", before=old[n], after=t)
        for n, t in new.items()
        if n in old and old[n] != t
    ]
    return changes


def compare(before: Report, after: Report) -> Comparison:
    """What changed from `before` to `after` (any two reports; usually two runs of a dataset)."""
    started, stopped = _check_changes(before, after)
    old = {m.key: m.value for m in report_metrics(before) if m.metric != "verdict"}
    new = {m.key: m.value for m in report_metrics(after) if m.metric != "verdict"}
    moved = [
        c
        for key in new
        if key in old and (c := change(key[0], key[1], old[key], new[key])) is not None
    ]
    moved.sort(key=_magnitude)
    comparison = Comparison(
        before=_summary(before),
        after=_summary(after),
        same_dataset=before.dataset.name == after.dataset.name,
        started_failing=started,
        stopped_failing=stopped,
        moved=moved[:MAX_MOVED],
        metrics_compared=sum(1 for key in new if key in old),
        schema_changes=_schema_changes(before, after),
    )
    first, second = before.profiles.get("data"), after.profiles.get("data")
    if first is not None and second is not None and first.columns and second.columns:
        comparison.profiles_compared = True
        old_columns = {c.name: _profile_values(c) for c in first.columns}
        changes = []
        for column in second.columns:
            if column.name not in old_columns:
                continue
            was = old_columns[column.name]
            for field, value in _profile_values(column).items():
                if (c := change(field, column.name, was[field], value)) is not None:
                    changes.append(c)
        changes.sort(key=_magnitude)
        comparison.profile_changes = changes[:MAX_PROFILE_CHANGES]
    return comparison


def relative_text(item: Change) -> str:
    """The change as a person reads it: "+12.5%", "new from 0", or "changed"."""
    if item.change is None:
        return "changed"
    if item.relative is None:
        return "from 0"
    if not math.isfinite(item.relative):
        return "changed"
    return f"{item.relative * 100:+.1f}%"

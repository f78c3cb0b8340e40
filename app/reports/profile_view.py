"""The "Columns" section of a report page: data and reference profiles side by side, each numeric
column with an inline SVG histogram of both sides overlaid (drawn here, no JavaScript)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from markupsafe import Markup

from app.reports.model import ColumnProfile, DatasetProfile, HistogramBin, Report
from app.reports.pages import format_number, format_percent
from app.reports.profiles import QUANTILES

# A page with thousands of columns must stay a page: the rest are in the JSON report.
MAX_PROFILE_COLUMNS = 200
MISSING = "\u2013"
QUANTILE_KEYS = tuple(name for name, _ in QUANTILES)


@dataclass
class StatRow:
    label: str
    data: str
    reference: str


@dataclass
class TopRow:
    value: str
    data: str
    reference: str


@dataclass
class ColumnView:
    name: str
    kind: str
    stats: list[StatRow] = field(default_factory=list)
    top: list[TopRow] = field(default_factory=list)
    chart: Markup | None = None
    note: str | None = None


@dataclass
class ProfilesView:
    columns: list[ColumnView]
    with_reference: bool
    hidden: int
    data_sampled: str | None
    reference_sampled: str | None


def profiles_view(report: Report) -> ProfilesView | None:
    """The section's view model, or None when the report holds no profile (an older report)."""
    data = report.profiles.get("data")
    if data is None:
        return None
    reference = report.profiles.get("reference")
    by_name = {c.name: c for c in reference.columns} if reference else {}
    names = [c.name for c in data.columns]
    names += [name for name in by_name if name not in {c.name for c in data.columns}]
    data_by_name = {c.name: c for c in data.columns}
    views = [
        _column_view(name, data_by_name.get(name), by_name.get(name), reference is not None)
        for name in names[:MAX_PROFILE_COLUMNS]
    ]
    return ProfilesView(
        columns=views,
        with_reference=reference is not None,
        hidden=max(0, len(names) - MAX_PROFILE_COLUMNS),
        data_sampled=_sampled(data),
        reference_sampled=_sampled(reference) if reference else None,
    )


def _sampled(profile: DatasetProfile) -> str | None:
    if profile.sampled_rows is None:
        return None
    return f"profiled on a sample of {format_number(profile.sampled_rows)} rows"


def _column_view(
    name: str, data: ColumnProfile | None, reference: ColumnProfile | None, with_reference: bool
) -> ColumnView:
    known = data or reference
    assert known is not None
    kind = known.kind
    note = None
    if data is None:
        note = "Only in the reference."
    elif with_reference and reference is None:
        note = "Not in the reference."
    elif reference is not None and reference.kind != data.kind:
        note = f"A {data.kind} column here, {reference.kind} in the reference."
    view = ColumnView(name=name, kind=kind, note=note)
    view.stats = _stats(data, reference)
    view.top = _top_rows(data, reference)
    # Sides of different kinds (dates here, epoch numbers there) share no axis: the data's own.
    mixed = data is not None and reference is not None and reference.kind != data.kind
    view.chart = histogram_svg(
        data.histogram if data else [],
        reference.histogram if reference and not mixed else [],
        kind=kind,
        name=name,
    )
    return view


def _stats(data: ColumnProfile | None, reference: ColumnProfile | None) -> list[StatRow]:
    rows = [
        _row("rows", data, reference, lambda c: format_number(c.count)),
        _row("nulls", data, reference, _nulls),
        _row("distinct", data, reference, _distinct),
    ]
    if any(c is not None and c.infinite for c in (data, reference)):
        rows.append(_row("±inf", data, reference, lambda c: format_number(c.infinite)))
    if any(c is not None and c.kind in ("number", "datetime") for c in (data, reference)):
        rows += [
            _row("min", data, reference, lambda c: _bound(c.min)),
            _row("max", data, reference, lambda c: _bound(c.max)),
            _row("mean", data, reference, lambda c: _moment(c.mean, c.kind)),
            _row("std", data, reference, lambda c: _spread(c.std, c.kind)),
        ]
        rows += [_row(key, data, reference, _quantile(key)) for key in QUANTILE_KEYS]
    return rows


def _quantile(key: str) -> Callable[[ColumnProfile], str]:
    return lambda column: _moment(column.quantiles.get(key), column.kind)


def _row(
    label: str,
    data: ColumnProfile | None,
    reference: ColumnProfile | None,
    shown: Callable[[ColumnProfile], str],
) -> StatRow:
    return StatRow(
        label=label,
        data=shown(data) if data is not None else MISSING,
        reference=shown(reference) if reference is not None else MISSING,
    )


def _number(value: float) -> str:
    """Statistics to four significant digits, but a large value whole (13,110, not 1.311e+04)."""
    if abs(value) >= 1000 and abs(value) < 1e15:
        return f"{round(value):,}"
    return format_number(value)


def _nulls(column: ColumnProfile) -> str:
    if column.count == 0:
        return "0"
    return f"{format_number(column.nulls)} ({format_percent(column.nulls / column.count)})"


def _distinct(column: ColumnProfile) -> str:
    if column.distinct is None:
        return MISSING
    shown = format_number(column.distinct)
    return shown if column.distinct_exact else f"~{shown} (estimate)"


def _bound(value: float | str | None) -> str:
    if value is None:
        return MISSING
    if isinstance(value, str):
        return value.replace("T00:00:00", "")
    return _number(value)


def _moment(value: float | None, kind: str) -> str:
    if value is None:
        return MISSING
    if kind == "datetime":
        return _date_text(value)
    return _number(value)


def _spread(value: float | None, kind: str) -> str:
    if value is None:
        return MISSING
    if kind == "datetime":
        return f"{_number(value / 86400)} days"
    return _number(value)


def _date_text(seconds: float) -> str:
    try:
        moment = datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):  # beyond the years a datetime holds
        return _number(seconds)
    if moment.hour == moment.minute == moment.second == 0:
        return moment.strftime("%Y-%m-%d")
    return moment.strftime("%Y-%m-%d %H:%M")


def _top_rows(data: ColumnProfile | None, reference: ColumnProfile | None) -> list[TopRow]:
    """The union of both sides' top values, most frequent in the data first. A value outside one
    side's top list shows a dash there: it may still occur, less often."""
    data_top = {v.value: v.count for v in data.top} if data else {}
    reference_top = {v.value: v.count for v in reference.top} if reference else {}
    values = list(data_top) + [v for v in reference_top if v not in data_top]

    def shown(counts: dict[str, int], column: ColumnProfile | None, value: str) -> str:
        if column is None or value not in counts:
            return MISSING
        share = counts[value] / column.count if column.count else 0.0
        shown = f"{format_number(counts[value])} ({format_percent(share)})"
        return shown if column.top_exact else f"~{shown}"

    return [TopRow(v, shown(data_top, data, v), shown(reference_top, reference, v)) for v in values]


# --- the histogram ------------------------------------------------------------------------------


def histogram_svg(
    data: list[HistogramBin],
    reference: list[HistogramBin],
    *,
    kind: str,
    name: str,
    width: int = 320,
    height: int = 120,
) -> Markup | None:
    """Bars of each side's share of its values per bin, reference over data, on the same bins
    when they share edges (app/reports/profiles.py); both sides on one scale, so that a shift or
    a new mode shows at a glance. Every text is escaped by Markup.format."""
    # Data filled, then the reference as outlines on top: both shapes stay visible.
    sides = [bins for bins in (data, reference) if bins]
    if not sides:
        return None
    low = min(b[0].low for b in sides)
    high = max(b[-1].high for b in sides)
    pad, top, axis = 4, 6, 18
    plot_w, plot_h = width - 2 * pad, height - top - axis
    span = high - low

    def x(value: float) -> float:
        if span <= 0:
            return pad + plot_w / 2
        return pad + plot_w * (value - low) / span

    shares = [[b.count / max(sum(x.count for x in bins), 1) for b in bins] for bins in sides]
    scale = max(max(s) for s in shares) or 1.0
    parts = [
        Markup(
            '<svg class="histogram" role="img" aria-label="{label}" viewBox="0 0 {w} {h}" '
            'width="100%" preserveAspectRatio="xMinYMin meet"><title>{label}</title>'
            '<line class="axis" x1="{pad}" y1="{base}" x2="{right}" y2="{base}"/>'
        ).format(
            label=f"Histogram of {name}",
            w=width,
            h=height,
            pad=pad,
            base=top + plot_h,
            right=pad + plot_w,
        )
    ]
    for side, (bins, side_shares) in zip(
        ("data", "reference") if len(sides) == 2 else (("data",) if data else ("reference",)),
        zip(sides, shares, strict=True),
        strict=True,
    ):
        for b, share in zip(bins, side_shares, strict=True):
            if b.count == 0:
                continue
            left = x(b.low)
            bar_w = max(x(b.high) - left, 2.0) if span > 0 else 12.0
            if span <= 0:
                left -= bar_w / 2
            bar_h = max(plot_h * share / scale, 1.0)
            parts.append(
                Markup(
                    '<rect class="hist-{side}" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" '
                    'height="{h:.1f}"><title>{tip}</title></rect>'
                ).format(
                    side=side,
                    x=left,
                    y=top + plot_h - bar_h,
                    w=bar_w,
                    h=bar_h,
                    tip=f"{side} {_range(b, kind)}: {format_number(b.count)} "
                    f"({format_percent(share)})",
                )
            )
    parts.append(
        Markup(
            '<text class="tick" x="{pad}" y="{ty}">{low}</text>'
            '<text class="tick" x="{right}" y="{ty}" text-anchor="end">{high}</text></svg>'
        ).format(
            pad=pad,
            right=pad + plot_w,
            ty=height - 4,
            low=_edge(low, kind),
            high=_edge(high, kind),
        )
    )
    return Markup("").join(parts)


def _edge(value: float, kind: str) -> str:
    return _date_text(value) if kind == "datetime" else _number(value)


def _range(b: HistogramBin, kind: str) -> str:
    return f"{_edge(b.low, kind)} to {_edge(b.high, kind)}"

"""The dataset page (its figures over its runs) and the page comparing two runs (issue 16).

Charts are inline SVG drawn here, styled by classes of the pages' stylesheet: no JavaScript,
no inline style (the CSP forbids it), every text from the data escaped by Markup.format.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from markupsafe import Markup

from app.reports.compare import Comparison, relative_text
from app.reports.pages import _env, format_number, format_percent, format_value
from app.reports.run_metrics import BAD_OUTCOMES
from app.reports.trends import MAX_RUNS, DatasetTrends, Series, downsample, utc

# A dataset with thousands of columns and checks must stay a page: charts beyond this are
# counted, not drawn (the JSON has every series).
MAX_CHARTS = 120
MAX_MARKED_POINTS = 200
SHARE_METRICS = frozenset({"null_share", "unexpected_share"})
# Figures that cannot go below zero are drawn from a zero baseline.
ZERO_BASED = SHARE_METRICS | {"drift_score"}
METRIC_TITLES = {
    "rows": "Rows",
    "null_share": "Null share",
    "mean": "Mean",
    "unexpected_share": "Unexpected share",
    "drift_score": "Drift score",
    "outcome": "Outcome",
}


def dataset_url(name: str) -> str:
    """The dataset page's path; a name's `/`, `?`, `#` and quotes are percent-encoded."""
    return f"/datasets/{quote(name, safe='')}"


def report_url(report_id: str) -> str:
    return f"/reports/{quote(report_id, safe='')}"


def compare_url(before: str, after: str) -> str:
    return f"{report_url(before)}/compare/{quote(after, safe='')}"


def _shown(value: float, share: bool) -> str:
    return format_percent(value) if share else format_number(value)


def line_chart_svg(series: Series, runs: int, *, width: int = 360) -> Markup:
    """The figure over the runs (oldest left, evenly spaced), the threshold as a dashed line,
    and the runs where the check failed as red dots. At most MAX_DRAWN_POINTS points are drawn
    (`downsample` keeps each stretch's lowest and highest)."""
    height, left, right, top, bottom = 110, 52, 8, 8, 18
    plot_w, plot_h = width - left - right, height - top - bottom
    share = series.metric in SHARE_METRICS
    drawn = [
        (series.runs[i], value, series.outcomes[i])
        for i in downsample(series.values)
        if (value := series.values[i]) is not None
    ]
    numbers = [value for _, value, _ in drawn]
    if series.threshold is not None:
        numbers.append(series.threshold)
    low, high = (min(numbers), max(numbers)) if numbers else (0.0, 1.0)
    zero_based = series.metric in ZERO_BASED
    if zero_based:
        low = 0.0
    if high - low < 1e-12:  # a flat line: drawn across the middle, not along an edge
        pad = 0.1 if zero_based else (abs(low) or 1.0) * 0.05
        low, high = (0.0, high + pad) if zero_based else (low - pad, high + pad)
    span = runs - 1 or 1

    def x(run: int) -> float:
        return left + plot_w * run / span

    def y(value: float) -> float:
        return top + plot_h * (1 - (value - low) / (high - low))

    title = f"{METRIC_TITLES.get(series.metric, series.metric)}: {series.subject or 'run'}"
    parts = [
        Markup(
            '<svg class="trend-chart" role="img" aria-label="{title}" viewBox="0 0 {w} {h}" '
            'width="100%" preserveAspectRatio="xMinYMin meet"><title>{title}</title>'
            '<rect class="plot" x="{l}" y="{t}" width="{pw}" height="{ph}"/>'
            '<text class="axis" x="{lx}" y="{ty}" text-anchor="end">{hi}</text>'
            '<text class="axis" x="{lx}" y="{by}" text-anchor="end">{lo}</text>'
        ).format(
            title=title,
            w=width,
            h=height,
            l=left,
            t=top,
            pw=plot_w,
            ph=plot_h,
            lx=left - 4,
            ty=top + 9,
            by=top + plot_h,
            hi=_shown(high, share),
            lo=_shown(low, share),
        )
    ]
    line = " ".join(f"{x(run):.1f},{y(value):.1f}" for run, value, _ in drawn)
    if line:
        parts.append(Markup('<polyline class="line" points="{}"/>').format(line))
    if series.threshold is not None:
        parts.append(
            Markup(
                '<line class="threshold" x1="{l}" x2="{r}" y1="{y:.1f}" y2="{y:.1f}">'
                "<title>threshold {value}</title></line>"
            ).format(
                l=left,
                r=left + plot_w,
                y=y(series.threshold),
                value=_shown(series.threshold, share),
            )
        )
    bad = [(run, value) for run, value, outcome in drawn if outcome in BAD_OUTCOMES]
    for run, value in bad[-MAX_MARKED_POINTS:]:
        parts.append(
            Markup('<circle class="dot bad" cx="{x:.1f}" cy="{y:.1f}" r="2.5"/>').format(
                x=x(run), y=y(value)
            )
        )
    if drawn:
        run, value, _ = drawn[-1]
        parts.append(
            Markup('<circle class="dot last" cx="{x:.1f}" cy="{y:.1f}" r="3"/>').format(
                x=x(run), y=y(value)
            )
        )
    parts.append(
        Markup('<text class="axis" x="{l}" y="{y}">oldest</text>').format(l=left, y=height - 4)
    )
    parts.append(
        Markup('<text class="axis" x="{r}" y="{y}" text-anchor="end">newest</text>').format(
            r=left + plot_w, y=height - 4
        )
    )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


@dataclass(frozen=True)
class Cell:
    outcome: str
    tip: str
    href: str | None = None


def strip_svg(cells: Sequence[Cell], *, label: str, width: int = 720, height: int = 18) -> Markup:
    """One coloured cell per run, oldest left; a cell with a link leads to its report."""
    step = width / max(len(cells), 1)
    parts = [
        Markup(
            '<svg class="strip" role="img" aria-label="{label}" viewBox="0 0 {w} {h}" '
            'width="100%" preserveAspectRatio="none"><title>{label}</title>'
        ).format(label=label, w=width, h=height)
    ]
    for i, cell in enumerate(cells):
        rect = Markup(
            '<rect class="cell s-{outcome}" x="{x:.2f}" y="0" width="{w:.2f}" height="{h}">'
            "<title>{tip}</title></rect>"
        ).format(outcome=cell.outcome, x=i * step, w=step, h=height, tip=cell.tip)
        if cell.href:
            rect = Markup('<a href="{href}">{rect}</a>').format(href=cell.href, rect=rect)
        parts.append(rect)
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


@dataclass
class Chart:
    title: str
    subject: str
    latest: str
    threshold: str | None
    svg: Markup
    bad: bool


def _latest(series: Series) -> str:
    for value in reversed(series.values):
        if value is not None:
            return _shown(value, series.metric in SHARE_METRICS)
    return "\u2013"


def _chart(series: Series, runs: int) -> Chart:
    share = series.metric in SHARE_METRICS
    if series.metric == "outcome":
        outcomes: list[str] = ["none"] * runs
        for run, outcome in zip(series.runs, series.outcomes, strict=True):
            outcomes[run] = outcome or "skipped"
        cells = [Cell(o, "did not run" if o == "none" else o) for o in outcomes]
        svg = strip_svg(cells, label=f"Outcome of {series.subject} per run", height=14)
        latest = series.outcomes[-1] or "\u2013"
    else:
        svg, latest = line_chart_svg(series, runs), _latest(series)
    return Chart(
        title=METRIC_TITLES.get(series.metric, series.metric),
        subject=series.subject,
        latest=latest,
        threshold=_shown(series.threshold, share) if series.threshold is not None else None,
        svg=svg,
        bad=series.bad,
    )


SECTIONS = (
    ("run", "The run", ("rows",)),
    ("columns", "Columns", ("null_share", "mean")),
    ("checks", "Checks", ("unexpected_share", "drift_score", "outcome")),
)


def render_dataset(trends: DatasetTrends, *, problem: str | None = None) -> str:
    """The dataset page: the verdict strip, then a small chart per figure, problems first."""
    verdict_cells = [
        Cell(
            outcome=v.status,
            tip=f"{utc(v.created_at):%Y-%m-%d %H:%M:%S} UTC: {v.status}, {v.failed} failed",
            href=report_url(v.report_id),
        )
        for v in trends.verdicts
    ]
    budget = MAX_CHARTS
    sections = []
    hidden = 0
    for key, title, metrics in SECTIONS:
        chosen = [s for s in trends.series if s.metric in metrics]
        # Series where a check failed come first, so that a cap never hides a problem first.
        chosen.sort(key=lambda s: not s.bad)
        shown, hidden = chosen[:budget], hidden + max(len(chosen) - budget, 0)
        budget -= len(shown)
        if shown:
            sections.append((key, title, [_chart(s, trends.runs) for s in shown]))
    name = trends.dataset
    latest = trends.verdicts[-1] if trends.verdicts else None
    previous = trends.verdicts[-2] if len(trends.verdicts) > 1 else None
    return _env.get_template("dataset.html").render(
        trends=trends,
        name=name,
        strip=strip_svg(verdict_cells, label="Verdict per run, oldest left")
        if trends.verdicts
        else None,
        sections=sections,
        hidden=hidden,
        problem=problem,
        json_url=f"/v1/datasets/{quote(name, safe='')}/trends"
        + (f"?{urlencode({'limit': trends.limit})}" if trends.limit else ""),
        history_url="/reports?" + urlencode({"dataset": name}),
        latest_url=report_url(latest.report_id) if latest else None,
        compare_latest_url=compare_url(previous.report_id, latest.report_id)
        if latest and previous
        else None,
        first=utc(trends.verdicts[0].created_at).strftime("%Y-%m-%d %H:%M UTC")
        if trends.verdicts
        else None,
        last=utc(latest.created_at).strftime("%Y-%m-%d %H:%M UTC") if latest else None,
        since=utc(trends.since).isoformat() if trends.since else "",
        until=utc(trends.until).isoformat() if trends.until else "",
        max_runs=MAX_RUNS,
        format_number=format_number,
    )


def render_compare(comparison: Comparison, *, now: datetime | None = None) -> str:
    """The comparison page: checks that started or stopped failing, figures that moved most,
    schema changes and profile differences."""
    now = now or datetime.now(UTC)

    def shown(metric: str, value: float | str | None) -> str:
        if value is None:
            return "\u2013"
        if isinstance(value, float) and metric in SHARE_METRICS | {"null_share"}:
            return format_percent(value)
        return format_value(value)

    return _env.get_template("compare.html").render(
        c=comparison,
        before_url=report_url(comparison.before.id),
        after_url=report_url(comparison.after.id),
        swap_url=compare_url(comparison.after.id, comparison.before.id),
        dataset_url=dataset_url(comparison.after.dataset) if comparison.after.dataset else None,
        created={
            side: utc(run.created_at).strftime("%Y-%m-%d %H:%M:%S UTC")
            for side, run in (("before", comparison.before), ("after", comparison.after))
        },
        titles=METRIC_TITLES,
        shown=shown,
        relative_text=relative_text,
        format_number=format_number,
    )

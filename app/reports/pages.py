"""HTML pages for people: a report, the report history and the 404 page, rendered with Jinja2.

Charts are inline SVG built here on the server, so the pages need no JavaScript and no network.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from app.reports.failing_rows import rows_info, rows_url
from app.reports.model import CATEGORIES, CheckResult, ColumnInfo, Report, Status
from app.reports.run_metrics import drift_score
from app.reports.store import ReportListItem
from app.reports.trends import utc

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

# The categories the issue names come first, in this order; any other category follows.
CATEGORY_ORDER: tuple[str, ...] = (
    "schema",
    "missing",
    "range",
    "set",
    "volume",
    "leakage",
    "drift",
    "integrity",
    *(c for c in CATEGORIES if c not in {"schema", "missing", "range", "set", "volume"}),
)
OUTCOME_ORDER = {"failed": 0, "error": 1, "warned": 2, "passed": 3, "skipped": 4}

# Keys of `observed` shown in their own column (share bar, samples) rather than as plain values.
SAMPLE_KEYS = ("partial_unexpected_counts", "partial_unexpected_list")
SHARE_KEYS = ("unexpected_percent", "missing_percent")
# Keys of `expected` that repeat what the row already shows or only configure the engine.
HIDDEN_EXPECTED = frozenset({"column", "batch_id", "result_format", "catch_exceptions", "meta"})

# A page with thousands of checks must stay a page: beyond these, rows are counted, not drawn.
MAX_ROWS_PER_CATEGORY = 300
MAX_SAMPLES = 20
MAX_VALUE_CHARS = 240
MAX_CHART_BARS = 60
HISTORY_PAGE_SIZE = 50

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

_env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


# --- value formatting -------------------------------------------------------------------------


def format_number(value: float | int) -> str:
    """Integers with thousands separators; floats to four significant digits."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if math.isnan(value) or math.isinf(value):
        return str(value)
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.4g}"


def format_value(value: Any) -> str:
    """A short, plain-text rendering of a JSON value from a report (escaped by the template)."""
    if value is None:
        text = "null"
    elif isinstance(value, bool | int | float):
        text = format_number(value)
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    if len(text) > MAX_VALUE_CHARS:
        return text[: MAX_VALUE_CHARS - 1] + "…"
    return text


def format_percent(share: float) -> str:
    """A share in [0, 1] as a percentage a person reads at a glance (0.04% shows, not 0%)."""
    percent = share * 100
    if percent == 0:
        return "0%"
    if percent < 0.1:
        return "<0.1%"
    if percent >= 99.95 and share < 1:
        return ">99.9%"
    return f"{percent:.1f}%"


def age(moment: datetime, now: datetime) -> str:
    """How long ago, in the largest whole unit ("3 min ago", "2 days ago")."""
    seconds = int((now - utc(moment)).total_seconds())
    if seconds < 60:
        return "just now"
    for size, unit in ((86400 * 365, "year"), (86400, "day"), (3600, "h"), (60, "min")):
        if seconds >= size:
            count = seconds // size
            if unit in {"year", "day"}:
                return f"{count} {unit}{'s' if count != 1 else ''} ago"
            return f"{count} {unit} ago"
    return "just now"


def safe_link(url: str | None) -> str | None:
    """Keep a link only if it is a path on this service or an http(s) URL (no `javascript:`)."""
    if not url:
        return None
    stripped = url.strip()
    if stripped.startswith("/") and not stripped.startswith("//"):
        return stripped
    if stripped.lower().startswith(("http://", "https://")):
        return stripped
    return None


# --- SVG charts -------------------------------------------------------------------------------


def share_bar_svg(share: float, *, failed: bool = True, width: int = 120) -> Markup:
    """A small horizontal bar: the unexpected share of a column's values."""
    share = min(max(share, 0.0), 1.0)
    filled = 0.0 if share == 0 else max(share * width, 1.5)
    # Markup.format escapes every argument: no value reaches the SVG unescaped.
    return Markup(
        '<svg class="share" role="img" aria-label="{label}" width="{w}" height="10" '
        'viewBox="0 0 {w} 10"><title>{label}</title>'
        '<rect class="track" width="{w}" height="10" rx="2"/>'
        '<rect class="fill {tone}" width="{filled:.1f}" height="10" rx="2"/></svg>'
    ).format(
        label=f"{format_percent(share)} unexpected",
        w=width,
        tone="bad" if failed else "warn",
        filled=filled,
    )


@dataclass(frozen=True)
class Bar:
    """One bar of a horizontal bar chart: a label, its value and an optional threshold."""

    label: str
    value: float
    threshold: float | None = None
    note: str = ""
    # The row's verdict where one was made: an effect past its threshold that is within the
    # noise (app/checks/decisions.py) is not a drift, and is not drawn as one.
    failed: bool | None = None

    @property
    def over(self) -> bool:
        if self.failed is not None:
            return self.failed
        return self.threshold is not None and self.value > self.threshold


def bar_chart_svg(
    bars: Sequence[Bar], *, title: str, value_format: str = "number", width: int = 520
) -> Markup:
    """Horizontal bars with labels; a dashed vertical line marks each bar's threshold.

    When every bar shares one threshold it is drawn as a single line across the chart.
    Labels are column names from the data: Markup.format escapes them and every other value.
    """
    row, label_w, value_w, pad, top = 22, 160, 56, 8, 8
    plot_w = width - label_w - value_w - 2 * pad
    bottom = top + row * len(bars)
    thresholds = [b.threshold for b in bars if b.threshold is not None]
    scale = max([b.value for b in bars] + thresholds + [1e-12])
    # Shares are drawn on a 0-100% axis; scores get a little room past the largest one.
    scale = 1.0 if value_format == "share" else scale * 1.05

    def x(value: float) -> float:
        return label_w + pad + plot_w * min(max(value, 0.0), scale) / scale

    def shown(value: float) -> str:
        return format_percent(value) if value_format == "share" else format_number(value)

    parts = [
        Markup(
            '<svg class="chart" role="img" aria-label="{title}" viewBox="0 0 {w} {h}" '
            'width="100%" preserveAspectRatio="xMinYMin meet"><title>{title}</title>'
        ).format(title=title, w=width, h=bottom + 24)
    ]
    for i, bar in enumerate(bars):
        y = top + i * row
        tip = f"{bar.label}: {shown(bar.value)}"
        if bar.threshold is not None:
            tip += f" (threshold {shown(bar.threshold)})"
        if bar.note:
            tip += f", {bar.note}"
        parts.append(
            Markup(
                '<g class="bar {tone}"><title>{tip}</title>'
                '<text class="label" x="{lx}" y="{ty}" text-anchor="end">{label}</text>'
                '<rect class="track" x="{x0:.1f}" y="{ry}" width="{pw}" height="14" rx="2"/>'
                '<rect class="fill {tone}" x="{x0:.1f}" y="{ry}" width="{bw:.1f}" height="14" '
                'rx="2"/><text class="value" x="{vx:.1f}" y="{ty}">{value}</text></g>'
            ).format(
                tone="bad" if bar.over else "ok",
                tip=tip,
                lx=label_w,
                ty=y + 15,
                label=bar.label if len(bar.label) <= 20 else bar.label[:19] + "\u2026",
                x0=x(0),
                ry=y + 4,
                pw=plot_w,
                bw=0.0 if bar.value <= 0 else max(x(bar.value) - x(0), 1.5),
                vx=x(0) + plot_w + 6,
                value=shown(bar.value),
            )
        )
    if len(set(thresholds)) == 1:
        parts.append(
            Markup(
                '<line class="threshold" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{y2}"/>'
                '<text class="threshold-label" x="{x:.1f}" y="{ty}" text-anchor="middle">'
                "threshold {value}</text>"
            ).format(
                x=x(thresholds[0]),
                top=top,
                y2=bottom + 4,
                ty=bottom + 18,
                value=shown(thresholds[0]),
            )
        )
    elif thresholds:
        for i, bar in enumerate(bars):
            if bar.threshold is not None:
                parts.append(
                    Markup(
                        '<line class="threshold" x1="{x:.1f}" y1="{y1}" x2="{x:.1f}" y2="{y2}"/>'
                    ).format(x=x(bar.threshold), y1=top + i * row + 1, y2=top + i * row + 21)
                )
        parts.append(
            Markup(
                '<text class="threshold-label" x="{x}" y="{y}">dashed lines: each check\'s '
                "threshold</text>"
            ).format(x=label_w + pad, y=bottom + 18)
        )
    parts.append(Markup("</svg>"))
    return Markup("").join(parts)


def drift_bars(checks: Iterable[CheckResult]) -> list[Bar]:
    """Drift scores against their thresholds: one bar per feature (FeatureDrift), and one each
    for label and multivariate drift. Other drift-category rows (new categories, string
    mismatches) measure shares, not drift scores, and stay out of the chart."""
    bars = []
    for check in checks:
        if (drift := drift_score(check)) is None:
            continue
        label = check.column if check.name == "FeatureDrift" and check.column else check.name
        method = check.observed.get("method")
        bars.append(
            Bar(
                label=label,
                value=drift[0],
                threshold=drift[1],
                note=str(method) if isinstance(method, str) else "",
                failed=check.outcome == "failed",
            )
        )
    bars.sort(key=lambda b: (-b.value, b.label))
    return bars[:MAX_CHART_BARS]


def null_bars(columns: Sequence[ColumnInfo], rows: int) -> list[Bar]:
    """Nulls per column as a share of rows, most first; columns without nulls are left out."""
    if rows <= 0:
        return []
    bars = [Bar(label=c.name, value=c.null_count / rows) for c in columns if c.null_count > 0]
    bars.sort(key=lambda b: (-b.value, b.label))
    return bars[:MAX_CHART_BARS]


# --- view models --------------------------------------------------------------------------------


@dataclass
class CheckRow:
    check: CheckResult
    expected: list[tuple[str, str]]
    observed: list[tuple[str, str]]
    share: float | None
    share_text: str | None
    share_bar: Markup | None
    counts: str | None
    samples: list[tuple[str, str]]
    message: str | None
    # How the row was measured: over every row or on a sample, and how many rows each side.
    method: str | None = None
    # Which severity and thresholds a suite or a request set for this row (per_check).
    set_by: str | None = None
    # Downloads of the check's failing rows (title, URL), and how many rows they hold.
    rows_links: list[tuple[str, str]] = field(default_factory=list)
    rows_note: str | None = None


@dataclass
class CategoryGroup:
    name: str
    rows: list[CheckRow] = field(default_factory=list)
    quiet_rows: list[CheckRow] = field(default_factory=list)
    hidden: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    chart: Markup | None = None

    @property
    def has_problems(self) -> bool:
        return any(self.counts.get(o, 0) for o in ("failed", "error", "warned"))


def _share_of(check: CheckResult) -> float | None:
    for key in SHARE_KEYS:
        value = check.observed.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            return min(max(float(value) / 100, 0.0), 1.0)
    return None


def _samples(observed: dict[str, Any]) -> list[tuple[str, str]]:
    """Offending values with their counts; values that read the same are shown once, summed."""
    counted: dict[str, int] = {}
    counts = observed.get("partial_unexpected_counts")
    values = observed.get("partial_unexpected_list")
    if isinstance(counts, list) and counts:
        for entry in counts:
            if isinstance(entry, dict) and "value" in entry:
                shown = format_value(entry["value"])
                count = entry.get("count")
                counted[shown] = counted.get(shown, 0) + (count if isinstance(count, int) else 1)
    elif isinstance(values, list):
        for value in values:
            shown = format_value(value)
            counted[shown] = counted.get(shown, 0) + 1
    pairs = sorted(counted.items(), key=lambda item: -item[1])[:MAX_SAMPLES]
    return [(shown, f"\u00d7{count}" if count > 1 else "") for shown, count in pairs]


def _method(details: dict[str, Any]) -> str | None:
    """ "exact over all rows" or "sampled", with the rows each dataset gave, from the details."""
    method = details.get("method")
    if method not in ("exact", "sampled"):
        return None
    used = details.get("rows_used")
    sides = ""
    if isinstance(used, dict) and used:
        sides = ": " + ", ".join(
            f"{side} {format_number(n)}" for side, n in used.items() if isinstance(n, int)
        )
    label = "exact, all rows" if method == "exact" else "sampled"
    # A SQL batch's exact rows say where they were counted: its database, or streamed chunks.
    where = _COMPUTED_IN.get(str(details.get("computed_in"))) if method == "exact" else None
    return f"{label}{f' {where}' if where else ''}{sides}"


_COMPUTED_IN = {"database": "in the database", "stream": "streamed from the database"}


def _set_by(details: dict[str, Any]) -> str | None:
    """ "severity from request, max_feature_drift from suite": what was not left at its default."""
    origins = details.get("set_by")
    if not isinstance(origins, dict):
        return None
    chosen = [f"{key} from {origin}" for key, origin in origins.items() if origin != "default"]
    return ", ".join(chosen) or None


def _rows_links(check: CheckResult, report_id: str | None) -> tuple[list[tuple[str, str]], str]:
    """Parquet and CSV links to the check's failing rows, and "5 of 12 rows" when cut."""
    info = rows_info(check) if report_id is not None else None
    if info is None or report_id is None:
        return [], ""
    links = [
        ("Parquet", rows_url(report_id, info["check"], "parquet")),
        ("CSV", rows_url(report_id, info["check"], "csv")),
    ]
    rows, total = info.get("rows"), info.get("total")
    note = ""
    if isinstance(rows, int) and isinstance(total, int):
        note = (
            f"first {format_number(rows)} of {format_number(total)} rows"
            if info.get("truncated")
            else f"{format_number(rows)} row{'' if rows == 1 else 's'}"
        )
    return links, note


def _check_row(check: CheckResult, report_id: str | None = None) -> CheckRow:
    share = _share_of(check)
    shown_observed = {
        k: v for k, v in check.observed.items() if k not in SAMPLE_KEYS and k not in SHARE_KEYS
    }
    counts = None
    unexpected, total = shown_observed.get("unexpected_count"), shown_observed.get("element_count")
    if isinstance(unexpected, int) and isinstance(total, int):
        counts = f"{format_number(unexpected)} of {format_number(total)}"
        shown_observed.pop("unexpected_count")
        shown_observed.pop("element_count")
    message_parts = [
        str(check.details[k]) for k in ("error", "message") if check.details.get(k) is not None
    ]
    rows_links, rows_note = _rows_links(check, report_id)
    return CheckRow(
        check=check,
        expected=[
            (k, format_value(v)) for k, v in check.expected.items() if k not in HIDDEN_EXPECTED
        ],
        observed=[(k, format_value(v)) for k, v in shown_observed.items()],
        share=share,
        share_text=format_percent(share) if share is not None else None,
        share_bar=(
            share_bar_svg(share, failed=check.outcome != "warned")
            if share is not None and not check.success
            else None
        ),
        counts=counts,
        samples=_samples(check.observed),
        message=format_value("; ".join(message_parts)) if message_parts else None,
        method=_method(check.details),
        set_by=_set_by(check.details),
        rows_links=rows_links,
        rows_note=rows_note or None,
    )


def group_checks(
    checks: Sequence[CheckResult], report_id: str | None = None
) -> list[CategoryGroup]:
    """Checks by category: categories with problems first, and within one, failed first.
    With `report_id`, failed rows link their failing rows' downloads."""
    by_category: dict[str, list[CheckResult]] = {}
    for check in checks:
        by_category.setdefault(check.category or "other", []).append(check)
    rank = {name: i for i, name in enumerate(CATEGORY_ORDER)}
    groups = []
    for name, members in by_category.items():
        members = sorted(members, key=lambda c: OUTCOME_ORDER.get(c.outcome, 9))
        group = CategoryGroup(name=name)
        for check in members:
            group.counts[check.outcome] = group.counts.get(check.outcome, 0) + 1
        for index, check in enumerate(members):
            if index >= MAX_ROWS_PER_CATEGORY:
                group.hidden[check.outcome] = group.hidden.get(check.outcome, 0) + 1
            elif check.outcome in {"passed", "skipped"}:
                group.quiet_rows.append(_check_row(check))
            else:
                group.rows.append(_check_row(check, report_id))
        if name == "drift":
            bars = drift_bars(members)
            if bars:
                group.chart = bar_chart_svg(bars, title="Drift score per feature")
        groups.append(group)
    groups.sort(key=lambda g: (not g.has_problems, rank.get(g.name, len(rank)), g.name))
    return groups


VERDICT_WORDS = {"passed": "Passed", "failed": "Failed", "error": "Error"}


def _verdict_line(report: Report) -> str:
    s = report.summary
    if report.status == "error" and report.error and not report.checks:
        return "The validation could not run."
    parts = [f"{s.failed} of {s.evaluated} checks failed"]
    if s.warned:
        parts.append(f"{s.warned} warned")
    if s.errored:
        parts.append(f"{s.errored} could not run")
    if s.skipped:
        parts.append(f"{s.skipped} skipped")
    return ", ".join(parts) + "."


def _artifact_links(report: Report) -> list[tuple[str, str]]:
    links = []
    for name, url in sorted(report.artifacts.items()):
        target = safe_link(url)
        if target is None:
            continue
        title = "Full deepchecks view" if name == "deepchecks_html" else f"Artifact: {name}"
        links.append((title, target))
    links.sort(key=lambda item: item[0] != "Full deepchecks view")
    return links


def render_report(
    report: Report,
    *,
    now: datetime | None = None,
    standalone: bool = False,
    previous_id: str | None = None,
) -> str:
    """The page of one report: verdict, what was validated, checks by category, charts.

    `standalone`: the stylesheet inlined, for a copy read away from the service (an MLflow
    artifact); the service's own pages link it, so that the CSP needs no inline styles.
    `previous_id`: the dataset's run before this one, for a "compare" link."""
    now = now or datetime.now(UTC)
    nulls = null_bars(report.dataset.columns, report.dataset.rows)
    # Our own stylesheet, not data: Markup, since escaping `>` would break its selectors.
    extra = {}
    if standalone:
        extra["inline_css"] = Markup((STATIC_DIR / "datagate.css").read_text())  # noqa: S704
    return _env.get_template("report.html").render(
        **extra,
        report=report,
        verdict=VERDICT_WORDS.get(report.status, report.status),
        verdict_line=_verdict_line(report),
        groups=group_checks(report.checks, report.id),
        age=age(report.created_at, now),
        created=utc(report.created_at).strftime("%Y-%m-%d %H:%M UTC"),
        json_url=f"/v1/reports/{quote(report.id, safe='')}",
        artifact_links=_artifact_links(report),
        dataset_link=_history_link(dataset=report.dataset.name) if report.dataset.name else None,
        trend_links=_trend_links(report, previous_id) if not standalone else [],
        suite_link=_history_link(suite=report.suite.name) if report.suite else None,
        nulls_chart=bar_chart_svg(nulls, title="Missing values per column", value_format="share")
        if nulls
        else None,
        columns_without_nulls=sum(1 for c in report.dataset.columns if c.null_count == 0),
        profiles=_profiles_view(report),
        format_number=format_number,
        format_value=format_value,
    )


def _trend_links(report: Report, previous_id: str | None) -> list[tuple[str, str]]:
    """The dataset's trends page, and the comparison with its previous run (issue 16)."""
    links = []
    if report.dataset.name:
        links.append(("Trends of this dataset", f"/datasets/{quote(report.dataset.name, safe='')}"))
    if previous_id:
        this, before = quote(report.id, safe=""), quote(previous_id, safe="")
        links.append(("Compare with previous run", f"/reports/{before}/compare/{this}"))
    return links


def _profiles_view(report: Report) -> Any:
    # Imported here: the profile section formats its numbers with this module's helpers.
    from app.reports.profile_view import profiles_view

    return profiles_view(report)


# --- the history ------------------------------------------------------------------------------


HistoryRow = ReportListItem


@dataclass(frozen=True)
class HistoryQuery:
    """The filters of the history page, as a person typed them into the form."""

    status: Status | None = None
    suite: str | None = None
    dataset: str | None = None
    q: str | None = None
    page: int = 1


def _history_link(**params: Any) -> str:
    clean = {k: str(v) for k, v in params.items() if v not in (None, "")}
    return "/reports" + (f"?{urlencode(clean)}" if clean else "")


def render_history(
    rows: Sequence[HistoryRow],
    *,
    total: int,
    query: HistoryQuery,
    page_size: int = HISTORY_PAGE_SIZE,
    problem: str | None = None,
    now: datetime | None = None,
) -> str:
    """The history page: the filter form, one row per report, and links to other pages."""
    now = now or datetime.now(UTC)
    pages = max(1, math.ceil(total / page_size))
    first = (query.page - 1) * page_size + 1 if rows else 0
    filtered = any((query.status, query.suite, query.dataset, query.q))

    def page_link(number: int) -> str:
        return _history_link(
            status=query.status,
            suite=query.suite,
            dataset=query.dataset,
            q=query.q,
            page=number if number > 1 else None,
        )

    return _env.get_template("history.html").render(
        rows=[
            {
                "row": row,
                "url": f"/reports/{quote(row.id, safe='')}",
                "dataset_url": _history_link(dataset=row.dataset_name)
                if row.dataset_name
                else None,
                "suite_url": _history_link(suite=row.suite) if row.suite else None,
                "age": age(row.created_at, now),
                "created": utc(row.created_at).strftime("%Y-%m-%d %H:%M:%S UTC"),
            }
            for row in rows
        ],
        query=query,
        total=total,
        first=first,
        last=first + len(rows) - 1 if rows else 0,
        page=query.page,
        pages=pages,
        prev_url=page_link(query.page - 1) if query.page > 1 else None,
        next_url=page_link(query.page + 1) if query.page < pages else None,
        filtered=filtered,
        problem=problem,
        statuses=("passed", "failed", "error"),
        format_number=format_number,
    )


def render_not_found(message: str) -> str:
    """The 404 page: says what was not found and leads back to the history."""
    return _env.get_template("not_found.html").render(message=message, title="Not found")


def render_login(message: str, *, next_path: str, problem: bool = False) -> str:
    """The sign-in form; `next_path` (already checked to be local) is where it leads after."""
    return _env.get_template("login.html").render(
        message=message, next_path=next_path, problem=problem
    )


def render_api_docs(openapi_url: str) -> str:
    """The /docs page: Swagger UI from this service's own static files, under the pages' CSP."""
    return _env.get_template("api_docs.html").render(openapi_url=openapi_url)


def render_problem(message: str, *, title: str = "Bad request") -> str:
    """A page for a request the pages cannot answer (a bad filter value), naming the field."""
    return _env.get_template("not_found.html").render(message=message, title=title)

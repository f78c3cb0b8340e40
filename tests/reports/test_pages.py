"""The HTML pages: verdict at a glance, checks by category, charts, escaping, the 404 page."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from httpx import ASGITransport, AsyncClient

from app.api.routes import pages as page_routes
from app.core.config import Settings
from app.core.db import make_engine, make_sessionmaker, migrate
from app.core.errors import DatagateError
from app.core.security import SESSION_COOKIE, Authenticator
from app.reports.model import (
    CheckResult,
    ColumnInfo,
    DatasetInfo,
    Report,
    SuiteInfo,
    summarise,
)
from app.reports.pages import (
    HistoryQuery,
    HistoryRow,
    render_history,
    render_not_found,
    render_report,
)
from app.reports.store import ReportStore

HOSTILE = "<script>alert(1)</script>"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class Page(HTMLParser):
    """The parts of a page the tests look at: tags with attributes, and the visible text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text_parts: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.text_parts.append(data)

    @property
    def text(self) -> str:
        return re.sub(r"\s+", " ", " ".join(self.text_parts))

    def find(self, tag: str, cls: str | None = None) -> list[dict[str, str]]:
        return [
            attrs
            for name, attrs in self.tags
            if name == tag and (cls is None or cls in attrs.get("class", "").split())
        ]


def check(
    category: str,
    *,
    column: str | None = "bill_length_mm",
    outcome: str = "passed",
    name: str = "expect_column_values_to_be_between",
    source: str = "great_expectations",
    **fields: object,
) -> CheckResult:
    return CheckResult.model_validate(
        {
            "source": source,
            "category": category,
            "name": name,
            "column": column,
            "success": outcome in {"passed", "skipped"},
            "outcome": outcome,
            "severity": "warning" if outcome == "warned" else "critical",
            **fields,
        }
    )


def report(
    checks: list[CheckResult],
    *,
    dataset: str = "penguins_bad.csv",
    columns: list[ColumnInfo] | None = None,
    rows: int = 344,
    **fields: object,
) -> Report:
    status, summary = summarise(checks)
    values: dict[str, object] = {
        "id": "0123456789abcdef",
        "status": status,
        "success": status == "passed",
        "created_at": NOW - timedelta(minutes=5),
        "duration_ms": 1234,
        "dataset": DatasetInfo(
            name=dataset,
            format="csv",
            rows=rows,
            columns=columns or [],
            sha256="ab" * 32,
        ),
        "suite": SuiteInfo(name="penguins", sha256="cd" * 32, expectations=len(checks)),
        "summary": summary,
        "checks": checks,
    }
    values.update(fields)
    return Report.model_validate(values)


def species_failure(**observed: object) -> CheckResult:
    return check(
        "set",
        column="species",
        outcome="failed",
        name="expect_column_values_to_be_in_set",
        expected={"column": "species", "value_set": ["Adelie", "Chinstrap", "Gentoo"]},
        observed={
            "element_count": 344,
            "unexpected_count": 3,
            "unexpected_percent": 0.87,
            "partial_unexpected_list": ["Emperor", "Emperor", "Emperor"],
            **observed,
        },
    )


def drift(column: str, score: float, threshold: float = 0.2) -> CheckResult:
    return check(
        "drift",
        column=column,
        source="deepchecks",
        name="FeatureDrift",
        outcome="failed" if score > threshold else "passed",
        observed={"drift_score": score, "method": "Kolmogorov-Smirnov"},
        expected={"max_drift_score": threshold},
    )


def verdict_word(page: Page, html: str) -> str:
    match = re.search(r'<p class="verdict-word">([^<]*)</p>', html)
    assert match, "the page has no verdict banner"
    return match.group(1)


# --- one report -------------------------------------------------------------------------------


def test_passed_report_says_passed_in_a_green_banner() -> None:
    html = render_report(report([check("range"), check("schema")]), now=NOW)
    page = Page(html)

    assert verdict_word(page, html) == "Passed"
    assert page.find("section", "verdict-passed")
    assert "0 of 2 checks failed" in page.text


def test_failed_report_names_the_failed_column_with_expected_observed_and_samples() -> None:
    html = render_report(report([check("range"), species_failure()]), now=NOW)
    page = Page(html)

    assert verdict_word(page, html) == "Failed"
    assert page.find("section", "verdict-failed")
    failed_rows = re.findall(r'<tr class="outcome-failed">(.*?)</tr>', html, re.S)
    assert len(failed_rows) == 1
    row = Page(failed_rows[0]).text
    assert "species" in row
    assert '["Adelie", "Chinstrap", "Gentoo"]' in row
    assert "3 of 344" in row and "0.9%" in row
    # The same offending value three times is shown once, with its count.
    assert "Emperor \u00d73" in row
    # The unexpected share is drawn as a bar.
    assert page.find("svg", "share")


def test_each_deepchecks_row_says_whether_it_was_exact_or_sampled_and_on_how_many_rows() -> None:
    exact = check(
        "leakage",
        column=None,
        source="deepchecks",
        name="TrainTestSamplesMix",
        outcome="failed",
        observed={"ratio": 0.1},
        details={"method": "exact", "rows_used": {"data": 1_000_000, "reference": 900_000}},
    )
    sampled = check(
        "drift",
        source="deepchecks",
        name="FeatureDrift",
        outcome="failed",
        observed={"drift_score": 0.4},
        details={"method": "sampled", "rows_used": {"data": 100_000, "reference": 100_000}},
    )
    html = render_report(report([exact, sampled]), now=NOW)

    rows = [Page(r).text for r in re.findall(r'<tr class="outcome-failed">(.*?)</tr>', html, re.S)]
    mix = next(r for r in rows if "TrainTestSamplesMix" in r)
    drifted = next(r for r in rows if "FeatureDrift" in r)
    assert "exact, all rows: data 1,000,000, reference 900,000" in mix
    assert "sampled: data 100,000, reference 100,000" in drifted
    assert len(Page(html).find("span", "method")) == 2


def test_an_exact_row_over_a_sql_batch_says_it_was_counted_in_the_database() -> None:
    in_database = check(
        "leakage",
        column=None,
        source="deepchecks",
        name="IndexTrainTestLeakage",
        outcome="failed",
        observed={"leakage_ratio": 0.05},
        details={
            "method": "exact",
            "computed_in": "database",
            "rows_used": {"data": 2_000_000, "reference": 1_000_000},
        },
    )
    html = render_report(report([in_database]), now=NOW)
    assert "exact, all rows in the database: data 2,000,000, reference 1,000,000" in Page(html).text


def test_every_category_gets_a_section_and_failing_categories_come_first() -> None:
    categories = ["schema", "missing", "range", "set", "volume", "leakage", "integrity"]
    checks = [check(c, outcome="passed") for c in categories]
    checks += [check("volume", outcome="failed", name="expect_table_row_count_to_be_between")]
    checks += [drift("bill_length_mm", 0.05), check("freshness", outcome="warned")]
    html = render_report(report(checks), now=NOW)
    page = Page(html)

    sections = [a["id"] for a in page.find("section", "category")]
    assert sections[:2] == ["category-volume", "category-freshness"]
    assert set(sections) == {f"category-{c}" for c in [*categories, "drift", "freshness"]}
    # The rest keep the issue's order: schema, missing, range, set, leakage, drift, integrity.
    assert sections[2:] == [
        "category-schema",
        "category-missing",
        "category-range",
        "category-set",
        "category-leakage",
        "category-drift",
        "category-integrity",
    ]


def test_failed_checks_come_before_passed_ones_within_a_category() -> None:
    checks = [
        check("range", column="flipper_length_mm"),
        check("range", column="body_mass_g", outcome="failed"),
        check("range", column="bill_depth_mm", outcome="warned"),
    ]
    html = render_report(report(checks), now=NOW)

    outcomes = re.findall(r'<tr class="outcome-(\w+)">', html)
    assert outcomes == ["failed", "warned", "passed"]
    # Passed checks sit in a closed <details>, usable without JavaScript.
    assert re.search(r"<details[^>]*>\s*<summary>1 check passed or skipped</summary>", html)


def test_error_report_shows_the_error_message_under_the_error_verdict() -> None:
    broken = report(
        [],
        status="error",
        success=False,
        error="could not read the file: line 3 has 7 fields, expected 5",
    )
    html = render_report(broken, now=NOW)
    page = Page(html)

    assert verdict_word(page, html) == "Error"
    assert page.find("section", "verdict-error")
    assert "line 3 has 7 fields, expected 5" in page.text
    assert "No checks ran." in page.text


def test_what_was_validated_lists_dataset_suite_reference_and_duration() -> None:
    reference = DatasetInfo(name="train.parquet", format="parquet", rows=10_000, sha256="ef" * 32)
    html = render_report(report([check("range")], reference=reference), now=NOW)
    text = Page(html).text

    for expected in (
        "penguins_bad.csv",
        "csv",
        "344",
        "ab" * 32,
        "penguins",
        "train.parquet",
        "10,000 rows",
        "1,234 ms",
        "5 min ago",
    ):
        assert expected in text


def test_dataset_name_links_to_that_datasets_history() -> None:
    html = render_report(report([check("range")], dataset="pages & more"), now=NOW)
    links = [a["href"] for a in Page(html).find("a") if a.get("href", "").startswith("/reports?")]

    assert "/reports?dataset=pages+%26+more" in links


def test_empty_dataset_name_renders_as_unnamed_without_a_history_link() -> None:
    html = render_report(report([check("range")], dataset=""), now=NOW)
    page = Page(html)

    assert "(unnamed dataset)" in page.text
    assert not [a for a in page.find("a") if "dataset=" in a.get("href", "")]


def test_links_to_the_json_and_to_the_deepchecks_view() -> None:
    artifacts = {
        "deepchecks_html": "/v1/reports/0123456789abcdef/artifacts/deepchecks.html",
        "evil": "javascript:alert(1)",
    }
    html = render_report(report([check("drift")], artifacts=artifacts), now=NOW)
    hrefs = {a["href"] for a in Page(html).find("a")}

    assert "/v1/reports/0123456789abcdef" in hrefs
    assert artifacts["deepchecks_html"] in hrefs
    # A link that would run script is dropped, not rendered.
    assert not any(h.lower().startswith("javascript:") for h in hrefs)


def test_drift_chart_draws_one_bar_per_feature_and_the_threshold_line() -> None:
    checks = [drift("bill_length_mm", 0.31), drift("flipper_length_mm", 0.12), drift("sex", 0.02)]
    html = render_report(report(checks), now=NOW)
    chart_svg = re.search(r'<svg class="chart".*?</svg>', html, re.S)
    assert chart_svg
    chart = Page(chart_svg.group(0))

    bars = chart.find("g", "bar")
    assert len(bars) == 3
    assert [b["class"] for b in bars] == ["bar bad", "bar ok", "bar ok"]
    labels = [t for t in chart.text.split(" ") if t.endswith(("_mm", "sex"))]
    assert labels == ["bill_length_mm", "flipper_length_mm", "sex"]
    (line,) = chart.find("line", "threshold")
    fills = chart.find("rect", "fill")
    # The bar over the threshold ends right of the line; the ones under it end left of it.
    ends = [float(r["x"]) + float(r["width"]) for r in fills]
    assert ends[0] > float(line["x1"]) > ends[1] > ends[2]
    assert "threshold 0.2" in chart.text


def test_drift_chart_takes_the_first_number_whatever_the_keys_are_called() -> None:
    odd = check(
        "drift",
        column="island",
        source="deepchecks",
        name="FeatureDrift",
        outcome="failed",
        observed={"method": "Cramer's V", "score": 0.4},
        expected={"condition": "drift score < 0.25", "threshold": 0.25},
    )
    no_number = check("drift", column="note", source="deepchecks", observed={"method": "n/a"})
    html = render_report(report([odd, no_number]), now=NOW)
    chart = Page(re.search(r'<svg class="chart".*?</svg>', html, re.S).group(0))  # type: ignore[union-attr]

    assert len(chart.find("g", "bar")) == 1
    assert "island: 0.4 (threshold 0.25), Cramer's V" in chart.text


def test_drift_bar_past_its_threshold_but_within_the_noise_is_not_drawn_as_drifted() -> None:
    # A 54-row clean split: the effect passes 0.1, the adjusted p-value says noise; passed.
    noisy = check(
        "drift",
        column="ash",
        source="deepchecks",
        name="FeatureDrift",
        outcome="passed",
        observed={"effect": 0.3, "p_value": 0.2, "p_value_adjusted": 1.0},
        expected={"max_feature_drift": 0.1, "drift_alpha": 0.01},
    )
    html = render_report(report([noisy, drift("depth", 0.26, threshold=0.1)]), now=NOW)
    chart = Page(re.search(r'<svg class="chart".*?</svg>', html, re.S).group(0))  # type: ignore[union-attr]

    assert [b["class"] for b in chart.find("g", "bar")] == ["bar ok", "bar bad"]


def test_nulls_per_column_chart_lists_columns_with_nulls_most_first() -> None:
    columns = [
        ColumnInfo(name="species", dtype="object", null_count=0),
        ColumnInfo(name="bill_length_mm", dtype="float64", null_count=2),
        ColumnInfo(name="sex", dtype="object", null_count=11),
    ]
    html = render_report(report([check("missing")], columns=columns), now=NOW)
    svg = re.search(r'<svg class="chart" role="img" aria-label="Missing values.*?</svg>', html)
    assert svg
    chart = Page(svg.group(0))

    assert [t for t in chart.text.split(" ") if t in {"sex", "bill_length_mm", "species"}] == [
        "sex",
        "bill_length_mm",
    ]
    assert "3.2%" in chart.text  # 11 of 344 rows
    assert "1 column without nulls not shown" in Page(html).text


def test_hostile_strings_from_data_and_requests_are_shown_as_text_never_as_tags() -> None:
    columns = [ColumnInfo(name=HOSTILE, dtype="object", null_count=3)]
    checks = [
        check(
            "set",
            column=HOSTILE,
            outcome="failed",
            expected={"value_set": [HOSTILE, '"><img src=x onerror=alert(1)>']},
            observed={"unexpected_percent": 50.0, "partial_unexpected_list": [HOSTILE]},
            details={"message": f"column {HOSTILE} is bad"},
        ),
        drift(HOSTILE, 0.5),
    ]
    hostile = report(
        checks,
        dataset=f"{HOSTILE}.csv",
        columns=columns,
        error=f"<img src=x onerror=alert(1)> {HOSTILE}",
        roles={"label": HOSTILE},
        suite=SuiteInfo(name=HOSTILE, sha256="cd" * 32),
    )
    html = render_report(hostile, now=NOW)
    page = Page(html)

    assert not page.find("script")
    assert not page.find("img")
    assert not [attrs for _, attrs in page.tags if any(k.startswith("on") for k in attrs)]
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # Shown as text: in the title, the tables, the SVG chart labels and the error message.
    assert page.text.count(HOSTILE) >= 6


def test_five_thousand_checks_render_to_a_page_of_bounded_size() -> None:
    checks = [
        check(
            ["range", "set", "missing", "schema"][i % 4],
            column=f"feature_{i}",
            outcome="failed" if i % 10 == 0 else "passed",
            expected={"min_value": 0, "max_value": 1},
            observed={
                "element_count": 1000,
                "unexpected_count": 10,
                "unexpected_percent": 1.0,
                "partial_unexpected_list": list(range(50)),
            },
        )
        for i in range(5000)
    ]
    html = render_report(report(checks), now=NOW)
    page = Page(html)

    assert len(html) < 3_000_000
    assert "500 of 5000 checks failed" in page.text
    # Every failure is still counted; rows beyond the per-category cap point to the JSON.
    assert "more passed not shown here" in page.text
    assert len(page.find("tr", "outcome-failed")) == 500


def test_not_found_page_escapes_the_missing_id() -> None:
    html = render_not_found(f"There is no report with id {HOSTILE!r}.")
    page = Page(html)

    assert "Not found" in page.text
    assert HOSTILE in page.text
    assert not page.find("script")


# --- the history ------------------------------------------------------------------------------


def history_row(i: int, *, status: str = "passed", dataset: str = "pages") -> HistoryRow:
    return HistoryRow(
        id=f"{i:032x}",
        created_at=NOW - timedelta(hours=i),
        status=status,
        suite="penguins",
        dataset_name=dataset,
        rows=12_345,
        failed=2 if status == "failed" else 0,
        warned=1,
    )


def test_history_rows_show_badge_dataset_link_counts_and_age() -> None:
    rows = [history_row(0, status="failed"), history_row(3)]
    html = render_history(rows, total=2, query=HistoryQuery(), now=NOW)
    page = Page(html)

    badges = [a["class"] for a in page.find("a", "badge")]
    assert badges == ["badge badge-failed", "badge badge-passed"]
    assert "/reports?dataset=pages" in {a["href"] for a in page.find("a")}
    assert "12,345" in page.text and "3 h ago" in page.text and "just now" in page.text


def test_history_pagination_links_keep_the_filters() -> None:
    rows = [history_row(i, status="failed") for i in range(50)]
    query = HistoryQuery(status="failed", q="pen", page=2)
    html = render_history(rows, total=120, query=query, now=NOW)
    page = Page(html)

    prev = next(a["href"] for a in page.find("a") if a.get("rel") == "prev")
    nxt = next(a["href"] for a in page.find("a") if a.get("rel") == "next")
    assert parse_qs(urlsplit(prev).query) == {"status": ["failed"], "q": ["pen"]}
    assert parse_qs(urlsplit(nxt).query) == {"status": ["failed"], "q": ["pen"], "page": ["3"]}
    assert "51\u2013100 of 120" in page.text
    # The form shows the filters it was given.
    assert any(a.get("value") == "pen" for a in page.find("input"))
    assert any(a.get("value") == "failed" and "selected" in a for a in page.find("option"))


def test_history_escapes_a_hostile_dataset_name_and_search_text() -> None:
    html = render_history(
        [history_row(0, dataset=HOSTILE)], total=1, query=HistoryQuery(q=HOSTILE), now=NOW
    )

    assert HOSTILE not in html
    assert not Page(html).find("script")


# --- the routes -------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> ReportStore:
    engine = make_engine(f"sqlite:///{tmp_path / 'reports.db'}")
    migrate(engine)
    return ReportStore(make_sessionmaker(engine))


READ_KEY = "r" * 24


def pages_app(store: ReportStore, **settings: object) -> FastAPI:
    app = FastAPI()
    app.state.store = store
    app.state.auth = Authenticator(Settings(**settings))  # type: ignore[arg-type]

    @app.exception_handler(DatagateError)
    async def _domain(_: Request, exc: DatagateError) -> Response:
        return JSONResponse({"error": exc.code}, status_code=exc.status_code)

    app.include_router(page_routes.router)
    return app


@pytest.fixture
async def pages_client(store: ReportStore) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=pages_app(store))
    async with AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def stored(store: ReportStore, report_id: str, checks: list[CheckResult], **fields: object) -> None:
    store.save(report(checks, id=report_id, created_at=datetime.now(UTC), **fields))


@pytest.mark.anyio
async def test_report_page_is_html_with_a_strict_content_security_policy(
    store: ReportStore, pages_client: AsyncClient
) -> None:
    stored(store, "r1", [species_failure()])

    response = await pages_client.get("/reports/r1")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "Failed" in Page(response.text).text


@pytest.mark.anyio
async def test_unknown_report_is_an_html_404_page(pages_client: AsyncClient) -> None:
    response = await pages_client.get("/reports/does-not-exist")

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "does-not-exist" in Page(response.text).text
    assert "content-security-policy" in response.headers


@pytest.mark.anyio
async def test_history_filters_by_status_and_dataset(
    store: ReportStore, pages_client: AsyncClient
) -> None:
    stored(store, "good", [check("range")], dataset="pages")
    stored(store, "bad", [species_failure()], dataset="pages")
    stored(store, "other", [species_failure()], dataset="other.csv")

    failed = Page((await pages_client.get("/reports", params={"status": "failed"})).text)
    by_dataset = Page((await pages_client.get("/reports", params={"dataset": "pages"})).text)

    assert {a["class"] for a in failed.find("a", "badge")} == {"badge badge-failed"}
    assert len(failed.find("a", "badge")) == 2
    assert len(by_dataset.find("a", "badge")) == 2
    assert "other.csv" not in by_dataset.text
    assert "Runs of pages" in by_dataset.text


@pytest.mark.anyio
async def test_history_with_an_unknown_status_is_a_422_page_naming_the_field(
    pages_client: AsyncClient,
) -> None:
    response = await pages_client.get("/reports", params={"status": "<b>maybe</b>"})

    assert response.status_code == 422
    assert "status '<b>maybe</b>' is not one of passed, failed, error" in Page(response.text).text
    assert "<b>maybe" not in response.text


@pytest.mark.anyio
async def test_empty_history_invites_a_first_upload(pages_client: AsyncClient) -> None:
    response = await pages_client.get("/reports", params={"page": "1", "status": ""})

    assert response.status_code == 200
    assert "No reports yet" in Page(response.text).text


@pytest.mark.anyio
async def test_stylesheet_is_served_locally_and_nothing_else_is(pages_client: AsyncClient) -> None:
    css = await pages_client.get("/static/datagate.css")
    missing = await pages_client.get("/static/..%2Fpages.py")

    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert ".verdict" in css.text
    assert "http" not in css.text  # no font or image from elsewhere
    assert missing.status_code == 404


@pytest.mark.anyio
async def test_pages_need_a_read_key_or_session_when_keys_are_set_but_the_stylesheet_does_not(
    store: ReportStore,
) -> None:
    stored(store, "r1", [check("range")])
    app = pages_app(store, api_keys=f"{READ_KEY}:read")
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://testserver") as c:
        anonymous = await c.get("/reports/r1")
        css = await c.get("/static/datagate.css")
        c.cookies.set(SESSION_COOKIE, app.state.auth.issue_session(READ_KEY))
        with_cookie = await c.get("/reports/r1")

    assert anonymous.status_code == 401
    assert css.status_code == 200
    assert with_cookie.status_code == 200


def test_row_shows_its_severity_and_which_level_set_it() -> None:
    duplicates = check(
        "integrity",
        column=None,
        source="deepchecks",
        name="DataDuplicates",
        outcome="failed",
        severity="critical",
        observed={"duplicates_ratio": 0.2},
        expected={"max_duplicates_ratio": 0.0},
        details={"set_by": {"severity": "request", "max_duplicates_ratio": "suite"}},
    )
    untouched = check("range", details={"set_by": {"severity": "default"}})
    html = render_report(report([duplicates, untouched]), now=NOW)
    page = Page(html)

    shown = [t for t in page.text_parts if "from" in t and "severity" in t]
    assert shown == ["severity from request, max_duplicates_ratio from suite"]
    assert html.count('class="muted small set-by"') == 1

"""Browsable HTML: the report history at /reports, one report at /reports/{id}, and /static files.

The JSON API stays under /v1; these pages are for people and are left out of the OpenAPI schema.
Pages need read access like the JSON reports (a key as bearer token, or the session cookie that
`/login` sets).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import cast, get_args

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from swagger_ui_bundle import swagger_ui_path

from app.api.deps import ReadAccess, StoreDep
from app.checks.deepchecks_engine import plotly_js_path
from app.core.errors import NotFound
from app.core.text import StoredText, text_problem
from app.reports.compare import compare
from app.reports.model import Status
from app.reports.pages import (
    HISTORY_PAGE_SIZE,
    SECURITY_HEADERS,
    STATIC_DIR,
    HistoryQuery,
    render_api_docs,
    render_history,
    render_not_found,
    render_problem,
    render_report,
)
from app.reports.store import ReportFilter
from app.reports.trend_pages import render_compare, render_dataset
from app.reports.trends import DEFAULT_RUNS, MAX_RUNS, utc

router = APIRouter(tags=["pages"], include_in_schema=False)

STATUSES: tuple[str, ...] = get_args(Status)
# The store's column widths: longer filter values can match nothing, so they are refused.
MAX_LENGTHS = {"suite": 128, "dataset": 512, "q": 200}
MAX_PAGE = 1_000_000
STATIC_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".js": "text/javascript; charset=utf-8",
}
# The Swagger UI files /docs loads, from the swagger-ui-bundle package: the API docs work offline.
SWAGGER_UI_FILES = ("swagger-ui-bundle.js", "swagger-ui.css")
# Only files shipped in the static folder, the one plotly.js the deepchecks views load and
# Swagger UI's two files are served, read once: no path from a request reaches the file system.
STATIC_FILES: dict[str, tuple[bytes, str]] = {
    path.name: (path.read_bytes(), STATIC_TYPES[path.suffix])
    for path in (
        *STATIC_DIR.iterdir(),
        plotly_js_path(),
        *(Path(swagger_ui_path) / name for name in SWAGGER_UI_FILES),
    )
    if path.is_file() and path.suffix in STATIC_TYPES
}


def html(body: str, status_code: int = 200) -> HTMLResponse:
    """An HTML response with the pages' security headers (CSP: no inline script, nothing remote)."""
    return HTMLResponse(
        body, status_code=status_code, headers={**SECURITY_HEADERS, "Cache-Control": "no-store"}
    )


def _history_query(
    status: str | None, suite: str | None, dataset: str | None, q: str | None, page: str | None
) -> tuple[HistoryQuery, str | None]:
    """The filters as given, and a message naming the first field that cannot be used."""
    values = {"suite": suite, "dataset": dataset, "q": q}
    cleaned = {k: (v.strip() or None) if v else None for k, v in values.items()}
    problem = None
    for key, value in cleaned.items():
        if value and len(value) > MAX_LENGTHS[key]:
            problem = f"{key} is {len(value)} characters long; at most {MAX_LENGTHS[key]} allowed"
            cleaned[key] = None
        elif value and (unusable := text_problem(value)):
            # PostgreSQL refuses a NUL even in a WHERE clause (a 500 before this).
            problem = f"{key} {unusable}"
            cleaned[key] = None
    chosen_status: Status | None = None
    if status and status not in STATUSES:
        problem = f"status {status!r} is not one of {', '.join(STATUSES)}"
    elif status:
        chosen_status = cast(Status, status)
    number = 1
    if page:
        if page.isascii() and page.isdigit() and 1 <= int(page) <= MAX_PAGE:
            number = int(page)
        else:
            problem = f"page {page[:20]!r} is not a page number between 1 and {MAX_PAGE:,}"
    query = HistoryQuery(status=chosen_status, page=number, **cleaned)
    return query, problem


@router.get(
    "/reports", response_class=HTMLResponse, name="report_history", dependencies=[ReadAccess]
)
def report_history(
    store: StoreDep,
    status: str | None = None,
    suite: str | None = None,
    dataset: str | None = None,
    q: str | None = None,
    page: str | None = None,
) -> HTMLResponse:
    """The history, newest first: the GET form filters it, pagination is plain links."""
    query, problem = _history_query(status, suite, dataset, q, page)
    if problem:
        return html(render_problem(problem, title="Bad filter"), status_code=422)
    items, total = store.list(
        ReportFilter(
            status=query.status,
            suite=query.suite,
            dataset=query.dataset,
            q=query.q,
        ),
        limit=HISTORY_PAGE_SIZE,
        offset=(query.page - 1) * HISTORY_PAGE_SIZE,
    )
    return html(render_history(items, total=total, query=query))


@router.get(
    "/reports/{report_id}",
    response_class=HTMLResponse,
    name="report_page",
    dependencies=[ReadAccess],
)
def report_page(report_id: StoredText, store: StoreDep) -> HTMLResponse:
    """One report as a page; an unknown id is an HTML 404 page, not the JSON error."""
    try:
        report = store.get(report_id)
    except NotFound:
        return html(
            render_not_found(f"There is no report with id {report_id[:200]!r}."), status_code=404
        )
    return html(render_report(report, previous_id=store.previous_run(report)))


def _window(
    limit: str | None, since: str | None, until: str | None
) -> tuple[int, datetime | None, datetime | None, str | None]:
    """The dataset page's window as typed, and a message naming the first unusable field."""
    runs, problem = DEFAULT_RUNS, None
    moments: dict[str, datetime | None] = {"since": None, "until": None}
    if limit:
        if limit.isascii() and limit.isdigit() and 1 <= int(limit) <= MAX_RUNS:
            runs = int(limit)
        else:
            problem = f"limit {limit[:20]!r} is not a number of runs between 1 and {MAX_RUNS:,}"
    for key, value in (("since", since), ("until", until)):
        if value and value.strip():
            try:
                moments[key] = utc(datetime.fromisoformat(value.strip()))
            except (ValueError, OverflowError):
                problem = f"{key} {value[:40]!r} is not an ISO 8601 time (2026-01-31T00:00:00Z)"
    return runs, moments["since"], moments["until"], problem


# `:path`: dataset names may hold `/`; links encode it as %2F, which routing decodes.
@router.get(
    "/datasets/{name:path}",
    response_class=HTMLResponse,
    name="dataset_page",
    dependencies=[ReadAccess],
)
def dataset_page(
    name: str,
    store: StoreDep,
    limit: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> HTMLResponse:
    """A dataset's figures over its runs: the verdict strip and a small chart per figure."""
    if unusable := text_problem(name):
        return html(render_problem(f"dataset name {unusable}", title="Bad dataset name"), 422)
    runs, start, end, problem = _window(limit, since, until)
    if problem:
        return html(render_problem(problem, title="Bad window"), status_code=422)
    try:
        trends = store.trends(name, limit=runs, since=start, until=end)
    except NotFound:
        return html(
            render_not_found(f"There is no stored report of dataset {name[:200]!r}."),
            status_code=404,
        )
    return html(render_dataset(trends))


@router.get(
    "/reports/{before}/compare/{after}",
    response_class=HTMLResponse,
    name="compare_page",
    dependencies=[ReadAccess],
)
def compare_page(before: StoredText, after: StoredText, store: StoreDep) -> HTMLResponse:
    """Two runs side by side: checks that started or stopped failing, what moved most."""
    try:
        first, second = store.get(before), store.get(after)
    except NotFound as exc:
        return html(render_not_found(f"{exc}."), status_code=404)
    return html(render_compare(compare(first, second)))


# Public, as the OpenAPI schema it shows: it holds no data.
@router.get("/docs", response_class=HTMLResponse, name="api_docs")
def api_docs(request: Request) -> HTMLResponse:
    """The API's operations in Swagger UI, every asset served here (no CDN, works offline)."""
    return html(render_api_docs(request.app.openapi_url or "/openapi.json"))


# The stylesheet is public: it holds no data, and the 401 page needs it as much as any other.
@router.get("/static/{name}", name="static")
def static_file(name: str) -> Response:
    """The pages' stylesheet; anything not shipped in app/reports/static is a 404 page."""
    found = STATIC_FILES.get(name)
    if found is None:
        return html(render_not_found(f"There is no static file {name[:200]!r}."), status_code=404)
    content, media_type = found
    return Response(
        content,
        media_type=media_type,
        headers={
            "Cache-Control": "public, max-age=3600",
            "X-Content-Type-Options": "nosniff",
        },
    )

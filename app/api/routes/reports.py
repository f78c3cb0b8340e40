"""Stored reports as JSON: fetch one by id, or page through the history."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel

from app.api.deps import SettingsDep, StoreDep
from app.core.errors import NotFound
from app.core.text import StoredText
from app.reports import junit
from app.reports.failing_rows import MEDIA_TYPES, RowsFormat, csv_bytes, rows_file
from app.reports.model import Report, Status
from app.reports.store import ReportFilter, ReportListItem

router = APIRouter(prefix="/v1/reports", tags=["reports"])


class ReportPage(BaseModel):
    items: list[ReportListItem]
    total: int
    limit: int
    offset: int


@router.get("", response_model=ReportPage, summary="Stored reports, newest first")
def list_reports(
    store: StoreDep,
    status: Status | None = None,
    # StoredText: PostgreSQL refuses a NUL even in a WHERE clause (a 500 before this).
    suite: Annotated[StoredText | None, Query(max_length=128)] = None,
    dataset: Annotated[StoredText | None, Query(max_length=512)] = None,
    q: Annotated[StoredText | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> ReportPage:
    items, total = store.list(
        ReportFilter(status=status, suite=suite, dataset=dataset, q=q), limit=limit, offset=offset
    )
    return ReportPage(
        items=items,
        total=total,
        limit=limit,
        offset=offset,
    )


def wants_junit(format: str | None, accept: str | None) -> bool:
    """`?format=` decides; without it, an Accept header naming XML (and not JSON) asks for JUnit."""
    if format is not None:
        return format == "junit"
    accept = (accept or "").lower()
    return "xml" in accept and "json" not in accept


@router.get(
    "/{report_id}",
    response_model=Report,
    summary="One stored report (JSON, or JUnit XML with ?format=junit or Accept: application/xml)",
    responses={200: {"content": {junit.CONTENT_TYPE.split(";")[0]: {}}}},
)
def get_report(
    report_id: StoredText,
    store: StoreDep,
    format: Annotated[Literal["json", "junit"] | None, Query()] = None,
    fail_on: Annotated[
        Literal["failure", "warning"],
        Query(description="JUnit only: `warning` reports warned checks as failures"),
    ] = "failure",
    accept: Annotated[str | None, Header()] = None,
) -> Report | Response:
    report = store.get(report_id)
    if wants_junit(format, accept):
        body = junit.render(report, warnings_fail=fail_on == "warning")
        return Response(body, media_type=junit.CONTENT_TYPE)
    return report


# The deepchecks view carries deepchecks' own inline scripts; it runs sandboxed (an opaque
# origin: no cookies, no same-origin requests) and may load only the service's plotly.js.
ARTIFACT_POLICY = (
    "sandbox allow-scripts; default-src 'none'; script-src 'self' 'unsafe-inline' "
    "'unsafe-eval'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:"
)
ARTIFACT_TYPES = {".html": "text/html; charset=utf-8", ".json": "application/json"}


@router.get(
    "/{report_id}/artifacts/{name}",
    summary="A file stored with a report (the full deepchecks view)",
    response_class=FileResponse,
)
def get_artifact(
    report_id: StoredText, name: str, store: StoreDep, settings: SettingsDep
) -> FileResponse:
    report = store.get(report_id)
    # Only names the report lists are served: nothing from the request reaches a path.
    listed = {url.rsplit("/", 1)[-1] for url in report.artifacts.values()}
    path = settings.artifacts_dir / report.id / name
    if name not in listed or not path.is_file():
        raise NotFound(f"report {report_id!r} has no artifact {name[:100]!r}")
    return FileResponse(
        path,
        media_type=ARTIFACT_TYPES.get(path.suffix, "application/octet-stream"),
        headers={"Content-Security-Policy": ARTIFACT_POLICY, "X-Content-Type-Options": "nosniff"},
    )


@router.get(
    "/{report_id}/failing-rows",
    summary="The unexpected rows of one failed row-level expectation (Parquet or CSV)",
    responses={200: {"content": {"application/vnd.apache.parquet": {}, "text/csv": {}}}},
)
def get_failing_rows(
    report_id: StoredText,
    store: StoreDep,
    settings: SettingsDep,
    check: Annotated[
        str,
        Query(
            max_length=50,
            description="The check's key: the expectation's 0-based position in its suite, as "
            "in the check row's `details.failing_rows.check`",
        ),
    ],
    format: Annotated[RowsFormat, Query(description="`parquet` (as stored) or `csv`")] = "parquet",
) -> Response:
    report = store.get(report_id)
    path = rows_file(report, check, settings.artifacts_dir)
    filename = f"{report.id}-{path.stem}.{format}"
    headers = {
        "Content-Disposition": f'attachment; filename="{filename}"',
        "X-Content-Type-Options": "nosniff",
    }
    if format == "csv":
        return Response(csv_bytes(path), media_type=MEDIA_TYPES["csv"], headers=headers)
    return FileResponse(path, media_type=MEDIA_TYPES["parquet"], headers=headers)

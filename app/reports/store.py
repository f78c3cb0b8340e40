"""Report storage: reports persist as JSON documents with a few searchable columns."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError
from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from app.core.db import MetricRow, ReportRow
from app.core.errors import NotFound
from app.core.text import make_storable, safe_text
from app.reports.model import DatasetInfo, Report, Status, SuiteInfo
from app.reports.run_metrics import report_metrics
from app.reports.trends import DEFAULT_RUNS, DatasetTrends, load_trends

log = logging.getLogger(__name__)

# The searchable columns' widths (app/core/db.py): a longer value is refused by PostgreSQL.
DATASET_NAME_CHARS = 512
SUITE_NAME_CHARS = 128


@dataclass(frozen=True)
class ReportFilter:
    status: Status | None = None
    suite: str | None = None
    dataset: str | None = None
    q: str | None = None


class ReportListItem(BaseModel):
    """One stored report as the history lists it (JSON listing and the history page)."""

    id: str
    created_at: datetime
    status: str
    suite: str | None
    dataset_name: str
    rows: int
    failed: int
    warned: int


class ReportStore:
    """Reads and writes reports; one short transaction per call."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def save(self, report: Report) -> Report:
        """Store the report; returns it as stored. One that cannot be stored (any database
        error) is replaced by a minimal error report saying why, never lost without a trace."""
        report = storable_report(report)
        try:
            with self._sessions.begin() as session:
                write_report(session, report)
            return report
        except Exception as exc:
            log.exception("report %s could not be stored; storing a minimal one", report.id)
            minimal = storable_report(fallback_report(report, exc))
            with self._sessions.begin() as session:
                write_report(session, minimal)
            return minimal

    def get(self, report_id: str) -> Report:
        with self._sessions() as session:
            row = session.get(ReportRow, report_id)
            if row is None:
                raise NotFound(f"report {report_id!r} does not exist")
            return Report.model_validate_json(row.document)

    def exists(self, report_id: str) -> bool:
        with self._sessions() as session:
            return session.get(ReportRow, report_id) is not None

    def list(
        self, filters: ReportFilter, *, limit: int = 50, offset: int = 0
    ) -> tuple[list[ReportListItem], int]:
        """Newest first; returns one page and the total count matching the filters."""
        query = select(ReportRow)
        if filters.status:
            query = query.where(ReportRow.status == filters.status)
        if filters.suite:
            query = query.where(ReportRow.suite == filters.suite)
        if filters.dataset:
            query = query.where(ReportRow.dataset_name == filters.dataset)
        if filters.q:
            pattern = f"%{_escape_like(filters.q)}%"
            query = query.where(
                or_(
                    ReportRow.dataset_name.ilike(pattern, escape="\\"),
                    ReportRow.suite.ilike(pattern, escape="\\"),
                    ReportRow.id.ilike(pattern, escape="\\"),
                )
            )
        with self._sessions() as session:
            total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = session.scalars(
                query.order_by(ReportRow.created_at.desc(), ReportRow.id.desc())
                .limit(limit)
                .offset(offset)
            ).all()
            items = [ReportListItem.model_validate(r, from_attributes=True) for r in rows]
        return items, total

    def trends(
        self,
        dataset: str,
        *,
        limit: int = DEFAULT_RUNS,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> DatasetTrends:
        """The dataset's figures over its newest runs (app/reports/trends.py)."""
        with self._sessions() as session:
            found = load_trends(session, dataset, limit=limit, since=since, until=until)
        if found is None:
            raise NotFound(f"dataset {dataset[:200]!r} has no stored report")
        return found

    def previous_run(self, report: Report) -> str | None:
        """The id of the run of the same dataset stored just before this one, if any."""
        with self._sessions() as session:
            return session.scalar(
                select(ReportRow.id)
                .where(
                    ReportRow.dataset_name == report.dataset.name,
                    or_(
                        ReportRow.created_at < report.created_at,
                        (ReportRow.created_at == report.created_at) & (ReportRow.id < report.id),
                    ),
                )
                .order_by(ReportRow.created_at.desc(), ReportRow.id.desc())
                .limit(1)
            )

    def ping(self) -> None:
        with self._sessions() as session:
            session.execute(select(1))


def storable_report(report: Report) -> Report:
    """The report with NUL and lone surrogates in any text (column names, sample values, error
    messages: they come from the data) replaced by U+FFFD, so that every database can hold it."""
    try:
        document = report.model_dump_json()
    except PydanticSerializationError:  # a lone surrogate cannot be encoded
        document = None
    if document is not None and "\\u0000" not in document:
        return report
    return Report.model_validate(make_storable(report.model_dump(mode="json")))


def fallback_report(report: Report, exc: BaseException) -> Report:
    """A minimal error report for one that could not be stored: escaped and clipped texts."""
    suite = None
    if report.suite is not None:
        suite = SuiteInfo(
            name=safe_text(report.suite.name)[:SUITE_NAME_CHARS],
            sha256=safe_text(report.suite.sha256)[:64],
            origin=report.suite.origin,
            expectations=report.suite.expectations,
        )
    return Report(
        id=report.id,
        status="error",
        success=False,
        created_at=report.created_at,
        duration_ms=report.duration_ms,
        dataset=DatasetInfo(
            name=safe_text(report.dataset.name)[:DATASET_NAME_CHARS],
            format=safe_text(report.dataset.format)[:32],
            rows=report.dataset.rows,
        ),
        suite=suite,
        error=f"the report could not be stored ({type(exc).__name__}); "
        f"its verdict was {report.status}",
        report_url=report.report_url,
    )


def write_report(session: Session, report: Report) -> None:
    """Store a report that `storable_report` has made safe, and its figures for trends
    (app/reports/run_metrics.py), in the caller's transaction: a report is never stored
    without them, nor they without it. A report stored again replaces its figures."""
    session.merge(report_row(report))
    session.execute(delete(MetricRow).where(MetricRow.report_id == report.id))
    session.add_all(
        MetricRow(
            report_id=report.id,
            dataset_name=report.dataset.name,
            created_at=report.created_at,
            metric=m.metric,
            subject=m.subject,
            value=m.value,
            threshold=m.threshold,
            outcome=m.outcome,
        )
        for m in report_metrics(report)
    )


def delete_reports(session: Session, ids: list[str]) -> None:
    """Delete reports and their figures (retention), in the caller's transaction."""
    session.execute(delete(MetricRow).where(MetricRow.report_id.in_(ids)))
    session.execute(delete(ReportRow).where(ReportRow.id.in_(ids)))


def report_row(report: Report) -> ReportRow:
    """The database row of a report that `storable_report` has made safe (each writer escapes
    once, and keeps the escaped report to return as stored)."""
    return ReportRow(
        id=report.id,
        created_at=report.created_at,
        status=report.status,
        suite=report.suite.name if report.suite else None,
        dataset_name=report.dataset.name,
        rows=report.dataset.rows,
        failed=report.summary.failed + report.summary.errored,
        warned=report.summary.warned,
        document=report.model_dump_json(),
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

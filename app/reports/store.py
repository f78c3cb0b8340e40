"""Report storage: reports persist as JSON documents with a few searchable columns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from app.core.db import ReportRow
from app.core.errors import NotFound
from app.reports.model import Report, Status


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

    def save(self, report: Report) -> None:
        with self._sessions.begin() as session:
            session.merge(report_row(report))

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

    def ping(self) -> None:
        with self._sessions() as session:
            session.execute(select(1))


def report_row(report: Report) -> ReportRow:
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

"""Stored reports as JSON: fetch one by id, or page through the history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from app.api.deps import StoreDep
from app.reports.model import Report, Status
from app.reports.store import ReportFilter

router = APIRouter(prefix="/v1/reports", tags=["reports"])


class ReportListEntry(BaseModel):
    id: str
    created_at: datetime
    status: str
    suite: str | None
    dataset_name: str
    rows: int
    failed: int
    warned: int


class ReportPage(BaseModel):
    items: list[ReportListEntry]
    total: int
    limit: int
    offset: int


@router.get("", response_model=ReportPage, summary="Stored reports, newest first")
def list_reports(
    store: StoreDep,
    status: Status | None = None,
    suite: Annotated[str | None, Query(max_length=128)] = None,
    dataset: Annotated[str | None, Query(max_length=512)] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> ReportPage:
    items, total = store.list(
        ReportFilter(status=status, suite=suite, dataset=dataset, q=q), limit=limit, offset=offset
    )
    return ReportPage(
        items=[
            ReportListEntry(
                id=i.id,
                created_at=i.created_at
                if i.created_at.tzinfo
                else i.created_at.replace(tzinfo=UTC),
                status=i.status,
                suite=i.suite,
                dataset_name=i.dataset_name,
                rows=i.rows,
                failed=i.failed,
                warned=i.warned,
            )
            for i in items
        ],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{report_id}", response_model=Report, summary="One stored report")
def get_report(report_id: str, store: StoreDep) -> Report:
    return store.get(report_id)

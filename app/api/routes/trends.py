"""A dataset's figures over its runs, and two runs compared, as JSON (issue 16)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.api.deps import StoreDep
from app.core.text import StoredText
from app.reports.compare import Comparison, compare
from app.reports.trends import DEFAULT_RUNS, MAX_RUNS, Trends

router = APIRouter(prefix="/v1", tags=["trends"])


# `:path`: dataset names may hold `/` (send it as %2F or as is).
@router.get(
    "/datasets/{name:path}/trends",
    response_model=Trends,
    summary="A dataset's figures over its newest runs (from the report_metrics table)",
)
def dataset_trends(
    name: StoredText,
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=MAX_RUNS, description="Newest runs")] = DEFAULT_RUNS,
    since: Annotated[datetime | None, Query(description="ISO 8601; inclusive")] = None,
    until: Annotated[datetime | None, Query(description="ISO 8601; inclusive")] = None,
) -> Response:
    trends = store.trends(name, limit=limit, since=since, until=until)
    # Written directly as the `Trends` schema: one model per point would cost more than the
    # query (bench/trends.py); a Response is sent as is, not validated again.
    return Response(trends.to_json(), media_type="application/json")


@router.get(
    "/reports/{before}/compare/{after}",
    response_model=Comparison,
    summary="What changed from one run to another: checks, figures, schema, profiles",
)
def compare_reports(before: StoredText, after: StoredText, store: StoreDep) -> Comparison:
    return compare(store.get(before), store.get(after))

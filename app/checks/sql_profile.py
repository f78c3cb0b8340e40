"""Column profiles of a SQL batch: the figures a database answers in one aggregate scan (rows,
nulls, distinct counts, and min / max / mean of numeric columns) are counted there, exactly; the
rest (spread, quantiles, histogram, top values) comes from the bounded sample the run read."""

from __future__ import annotations

import logging
import math
from typing import Any

import sqlalchemy as sa

from app.core.config import Settings
from app.ingest.references import BatchReference, connection_url, resolve_reference, sql_source
from app.ingest.sql_safety import read_only_engine
from app.reports.model import ColumnProfile, DatasetInfo, DatasetProfile
from app.reports.profiles import with_exact_counts

logger = logging.getLogger(__name__)


def profile_in_database(
    reference: BatchReference,
    settings: Settings,
    sample: DatasetProfile,
    known: DatasetInfo | None,
    *,
    field: str = "data",
) -> DatasetProfile:
    """`sample` (a profile of a sample of the batch) with its rows, nulls and distinct counts,
    and the min, max and mean of its numeric columns, replaced by the batch's own from one
    aggregate query; `sampled_rows` says how many rows the other figures come from.

    The profile informs, it does not judge: if the database cannot answer (a timeout, a type
    without COUNT DISTINCT) the sample's figures stay, marked as the sample's, with the counts
    `known` from the run's own COUNT query where there is one."""
    resolved = resolve_reference(reference, settings, field=field)
    in_batch = set(resolved.columns)
    columns = [c for c in sample.columns if c.name in in_batch]
    source = sql_source(reference, resolved.columns, field)
    selected: list[Any] = [sa.func.count()]
    for column in columns:
        value = source.c[column.name]
        selected += [sa.func.count(value), sa.func.count(sa.distinct(value))]
        if column.kind == "number":
            selected += [sa.func.min(value), sa.func.max(value), sa.func.avg(value)]
    engine = read_only_engine(
        connection_url(reference, settings, field), settings.sql_statement_timeout_s
    )
    try:
        with engine.connect() as conn:
            row = list(conn.execute(sa.select(*selected).select_from(source)).one())
    except sa.exc.SQLAlchemyError as exc:
        logger.warning("profile of %s: the database's aggregates failed: %s", field, exc)
        return with_exact_counts(sample, known)
    finally:
        engine.dispose()
    rows = int(row.pop(0))
    exact: dict[str, ColumnProfile] = {}
    for column in columns:
        present, distinct = int(row.pop(0)), int(row.pop(0))
        update: dict[str, Any] = {
            "count": rows,
            "nulls": rows - present,
            "distinct": distinct,
            "distinct_exact": True,
        }
        if column.kind == "number":
            low, high, mean = (_number(row.pop(0)) for _ in range(3))
            update |= {"min": low, "max": high, "mean": mean}
        exact[column.name] = column.model_copy(update=update)
    return sample.model_copy(
        update={
            "rows": rows,
            "sampled_rows": sample.rows if sample.rows < rows else None,
            "columns": [exact.get(c.name, c) for c in sample.columns],
        }
    )


def _number(value: Any) -> float | None:
    """A database number as a JSON-safe float (Decimal from AVG; NaN / inf as unknown)."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None

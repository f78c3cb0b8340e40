"""Column profiles of a SQL batch, never pulled whole: a bounded sample is profiled, then one
aggregate scan in the database gives the batch's own rows, nulls, and min / max / mean of its
numeric columns; distinct values are estimated from the sample and top value counts scaled."""

from __future__ import annotations

import logging
import math
from typing import Any

import pandas as pd
import sqlalchemy as sa

from app.core.config import Settings
from app.ingest.references import (
    BatchReference,
    connection_url,
    read_sample,
    resolve_reference,
    sql_source,
)
from app.ingest.sql_safety import read_only_engine
from app.reports.model import DatasetInfo, DatasetProfile
from app.reports.profiles import scaled_to_batch

logger = logging.getLogger(__name__)

# Rows read for the profile when no engine read a sample of the batch already: enough for
# quantiles, histograms and frequent values on a page, cheap to pull (bench/profiles.py --sql).
PROFILE_SAMPLE_ROWS = 20_000


def profile_sample(reference: BatchReference, settings: Settings, seed: int) -> pd.DataFrame:
    """A seeded sample of the batch for its profile, taken in the database (`read_sample`)."""
    return read_sample(reference, PROFILE_SAMPLE_ROWS, seed, settings=settings)


def profile_in_database(
    reference: BatchReference,
    settings: Settings,
    sample: DatasetProfile,
    frame: pd.DataFrame,
    known: DatasetInfo | None,
    *,
    field: str = "data",
) -> DatasetProfile:
    """`sample`, the profile of `frame` (a sample of the batch), made the batch's profile with
    one aggregate query: COUNT(*), COUNT(column) and, for numeric columns, MIN, MAX and AVG.
    COUNT(DISTINCT) is not asked: one sort per column made the profile cost more than the
    suite's own queries at 1M rows (bench/RESULTS.md), so distinct values are estimated.

    The profile informs, it does not judge: if the database cannot answer (a timeout, say) the
    counts `known` from the run's own COUNT query are used where there are some."""
    resolved = resolve_reference(reference, settings, field=field)
    in_batch = set(resolved.columns)
    columns = [c for c in sample.columns if c.name in in_batch]
    source = sql_source(reference, resolved.columns, field)
    selected: list[Any] = [sa.func.count()]
    for column in columns:
        value = source.c[column.name]
        selected.append(sa.func.count(value))
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
        if known is None or known.rows <= sample.rows:
            # The batch's size is unknown: the sample's own profile, said to be one.
            marked = [c.model_copy(update={"distinct_exact": False}) for c in sample.columns]
            return sample.model_copy(update={"sampled_rows": sample.rows, "columns": marked})
        counted = {c.name: c.null_count for c in known.columns}
        return scaled_to_batch(sample, frame, known.rows, counted)
    finally:
        engine.dispose()
    rows = int(row.pop(0))
    nulls: dict[str, int] = {}
    ranges: dict[str, dict[str, float | None]] = {}
    for column in columns:
        nulls[column.name] = rows - int(row.pop(0))
        if column.kind == "number":
            low, high, mean = (_number(row.pop(0)) for _ in range(3))
            ranges[column.name] = {"min": low, "max": high, "mean": mean}
    profile = scaled_to_batch(sample, frame, rows, nulls)
    return profile.model_copy(
        update={
            "columns": [
                c.model_copy(update=ranges[c.name]) if c.name in ranges else c
                for c in profile.columns
            ]
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

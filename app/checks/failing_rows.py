"""Failing rows (issue 16): the rows a failed row-level expectation counted as unexpected, kept
as a Parquet file next to the report and named by the suite's id columns or the row number.

The rows are the ones Great Expectations itself lists: for each failed expectation, GE computes
its `unexpected_index_list` metric alone, cut at the limit (`partial_unexpected_count`), the
list a validation reports as `partial_unexpected_index_list`. On a DataFrame those are row
positions; on a SQL batch GE reads them with one query bounded by LIMIT, never a full pull.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from app.checks.expectations import (
    LoadedSuite,
    columns_read,
    narrow_columns,
    pandas_batch,
    unexpected_index_list,
    without_arrow_dtypes,
)
from app.checks.suite_safety import CheckTimeout, time_budget
from app.core.errors import InvalidRequest
from app.reports.failing_rows import DETAILS_KEY, ROW_COLUMN, artifact_name
from app.reports.model import CheckResult

log = logging.getLogger(__name__)


def check_id_columns(suite: LoadedSuite, columns: Iterable[str]) -> list[str]:
    """The suite's id columns, each of them a column of the data; InvalidRequest (422) naming
    the ones the data lacks. Called before any expectation runs."""
    ids = suite.id_columns
    present = {str(column) for column in columns}
    missing = [column for column in ids if column not in present]
    if missing:
        raise InvalidRequest(
            f'suite "{suite.name}": meta.datagate.id_columns names '
            + ", ".join(f'"{column}"' for column in missing)
            + " not in the dataset"
        )
    return ids


@cache
def is_row_level(kind: str) -> bool:
    """Whether an expectation type judges rows one by one (column map, column pair or
    multicolumn map), so that its unexpected rows can be listed."""
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )
    from great_expectations.expectations.registry import get_expectation_impl

    try:
        impl = get_expectation_impl(kind)
    except Exception:  # an unknown type never got this far; no rows rather than a failed run
        return False
    return issubclass(
        impl, ColumnMapExpectation | ColumnPairMapExpectation | MulticolumnMapExpectation
    )


def wants_rows(expectation: dict[str, Any], check: CheckResult) -> bool:
    """A failed (not errored) row-level expectation that counted unexpected rows."""
    unexpected = check.observed.get("unexpected_count")
    return (
        not check.success
        and check.outcome != "error"
        and "missing_columns" not in check.details
        and isinstance(unexpected, int)
        and unexpected > 0
        and is_row_level(expectation["type"])
    )


def _result_format(limit: int, id_columns: Sequence[str] | None) -> dict[str, Any]:
    result_format: dict[str, Any] = {
        "result_format": "SUMMARY",
        "partial_unexpected_count": limit,
        "return_unexpected_index_query": False,
    }
    if id_columns is not None:
        # SQL only: GE lists a SQL row by these columns (and the expectation's own); with an
        # empty list, by the expectation's columns alone.
        result_format["unexpected_index_column_names"] = list(id_columns)
    return result_format


def _file_columns(expectation: dict[str, Any], ids: Sequence[str]) -> list[str]:
    named = columns_read(expectation["kwargs"])
    return list(dict.fromkeys([*ids, *named]))


def keep_frame_rows(
    frame: pd.DataFrame,
    suite: LoadedSuite,
    checks: Sequence[CheckResult],
    folder: Path,
    *,
    limit: int,
    check_timeout_s: float | None = None,
) -> None:
    """For each failed row-level expectation in `checks` (suite order), store at most `limit`
    of its unexpected rows in `folder` and describe them in the check's `details.failing_rows`.
    """
    expectations: list[dict[str, Any]] = suite.definition["expectations"]
    wanted = [i for i, check in enumerate(checks) if wants_rows(expectations[i], check)]
    if not wanted or limit <= 0:
        return
    data = without_arrow_dtypes(frame)
    if not data.index.equals(pd.RangeIndex(len(data))):
        # GE lists index labels: with the default index they are the rows' positions.
        data = data.reset_index(drop=True)
    labels = {str(column): column for column in data.columns}
    ids = suite.id_columns
    for index in wanted:
        check = checks[index]
        try:
            with time_budget(check_timeout_s):
                rows = _frame_rows(data, labels, suite, index, ids, limit)
        except CheckTimeout:
            check.details[DETAILS_KEY] = {
                "unavailable": f"listing the rows took longer than {check_timeout_s:g} s"
            }
            continue
        except Exception as exc:  # the checks ran: a failure here must not undo the report
            log.warning("suite %s: failing rows of expectation %d: %s", suite.name, index, exc)
            check.details[DETAILS_KEY] = {"unavailable": "listing the rows failed"}
            continue
        if rows is None:
            check.details[DETAILS_KEY] = {
                "unavailable": "Great Expectations gave no row positions for this expectation"
            }
            continue
        _store(rows, folder, index, check)


def _frame_rows(
    data: pd.DataFrame,
    labels: dict[str, Any],
    suite: LoadedSuite,
    index: int,
    ids: Sequence[str],
    limit: int,
) -> pd.DataFrame | None:
    """The first `limit` rows GE lists for expectation `index`: id columns (or the row number)
    and the expectation's columns; None when GE lists no positions."""
    expectation = suite.definition["expectations"][index]
    group = narrow_columns(expectation, set(labels))
    part = data if group is None else data[[labels[column] for column in group]]
    listed = unexpected_index_list(pandas_batch(part), expectation, _result_format(limit, None))
    if listed is None or not all(isinstance(position, int) for position in listed):
        return None
    columns = _file_columns(expectation, ids)
    rows = data.iloc[listed][[labels[column] for column in columns]]
    rows.columns = columns
    if not ids:
        rows.insert(0, row_column(columns), listed)
    return rows


def row_column(columns: Sequence[str]) -> str:
    """`row`, or `_row` (`__row`, ...) when the data has a column of that name."""
    name = ROW_COLUMN
    while name in columns:
        name = f"_{name}"
    return name


def keep_sql_rows(
    batch: Any,
    suite: LoadedSuite,
    checks: dict[int, CheckResult],
    folder: Path,
    *,
    limit: int,
) -> None:
    """As keep_frame_rows, for a GE SQL batch: GE reads each check's rows with one query bounded
    by LIMIT `limit`. A SQL table has no row order, so without id columns a row is named by the
    expectation's columns alone."""
    expectations: list[dict[str, Any]] = suite.definition["expectations"]
    wanted = [i for i, check in checks.items() if wants_rows(expectations[i], check)]
    if not wanted or limit <= 0:
        return
    ids = suite.id_columns
    for index in wanted:
        expectation, check = expectations[index], checks[index]
        try:
            listed = unexpected_index_list(batch, expectation, _result_format(limit, ids))
        except Exception as exc:  # a database error here must not undo the checks that ran
            log.warning("suite %s: failing rows of expectation %d: %s", suite.name, index, exc)
            check.details[DETAILS_KEY] = {"unavailable": "the query for the rows failed"}
            continue
        if listed is None or not all(isinstance(row, dict) for row in listed):
            # GE lists no SQL rows for some types (compound columns, for one).
            check.details[DETAILS_KEY] = {
                "unavailable": f"Great Expectations cannot list the rows of {expectation['type']} "
                "on a SQL batch"
            }
            continue
        columns = _file_columns(expectation, ids)
        rows = pd.DataFrame.from_records(listed, columns=columns)
        _store(rows, folder, index, check)


def _store(rows: pd.DataFrame, folder: Path, index: int, check: CheckResult) -> None:
    key = str(index)
    name = artifact_name(key)
    folder.mkdir(parents=True, exist_ok=True)
    rows = rows.reset_index(drop=True)
    try:
        rows.to_parquet(folder / name, index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        # A column of mixed Python types (a CSV column of numbers and text, say) has no Arrow
        # type: such columns are kept as text, nulls as nulls.
        rows = rows.apply(_as_text_if_mixed)
        rows.to_parquet(folder / name, index=False)
    total = check.observed["unexpected_count"]
    check.details[DETAILS_KEY] = {
        "check": key,
        "rows": len(rows),
        "total": total,
        "truncated": len(rows) < total,
        "artifact": name,
    }


def _as_text_if_mixed(column: pd.Series[Any]) -> pd.Series[Any]:
    if column.dtype != object:
        return column
    return column.map(lambda value: None if _is_null(value) else str(value))


def _is_null(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)

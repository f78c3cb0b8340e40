"""A report's failing-row files: how a check row names its file, finding it for a download, and
the CSV copy, made safe to open in a spreadsheet."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from app.core.errors import NotFound
from app.reports.model import CheckResult, Report

if TYPE_CHECKING:
    import pandas as pd

# The key in a check row's details: {"check", "rows", "total", "truncated", "artifact"} when rows
# were kept, {"unavailable": why} when they could not be listed.
DETAILS_KEY = "failing_rows"
# The row-number column when a suite names no id columns: 0-based position in the batch.
ROW_COLUMN = "row"
# The only file names served: nothing from a request reaches a path.
CHECK_KEY = re.compile(r"[0-9]{1,6}")
ARTIFACT_NAME = re.compile(r"^failing-rows-[0-9]{1,6}\.parquet$")
RowsFormat = Literal["parquet", "csv"]
MEDIA_TYPES: dict[str, str] = {
    "parquet": "application/vnd.apache.parquet",
    "csv": "text/csv; charset=utf-8",
}
# A cell a spreadsheet would read as a formula (OWASP "CSV injection"): these first characters,
# tab and carriage return included, get a leading apostrophe.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def artifact_name(check_key: str) -> str:
    """The file name of one check's rows, under the report's artifacts folder."""
    return f"failing-rows-{check_key}.parquet"


def rows_info(check: CheckResult) -> dict[str, Any] | None:
    """The check's kept rows (check key, counts, file), or None when it kept none."""
    info = check.details.get(DETAILS_KEY)
    if not isinstance(info, dict) or not isinstance(info.get("artifact"), str):
        return None
    if not ARTIFACT_NAME.match(info["artifact"]) or not isinstance(info.get("check"), str):
        return None
    # The key names files a client writes (failing-rows-<check>.parquet): an expectation's
    # position in its suite, nothing a path could be made of.
    if not CHECK_KEY.fullmatch(info["check"]):
        return None
    return info


def checks_with_rows(report: Report) -> list[tuple[CheckResult, dict[str, Any]]]:
    """The report's checks that kept failing rows, each with its `details.failing_rows`."""
    return [(check, info) for check in report.checks if (info := rows_info(check)) is not None]


def rows_url(report_id: str, check_key: str, fmt: RowsFormat) -> str:
    """The API path of a check's rows in `fmt`."""
    return (
        f"/v1/reports/{quote(report_id, safe='')}/failing-rows"
        f"?check={quote(check_key, safe='')}&format={fmt}"
    )


def rows_file(report: Report, check_key: str, artifacts_dir: Path) -> Path:
    """The Parquet file of check `check_key` of `report`; NotFound naming what is missing."""
    keyed = [info for _, info in checks_with_rows(report)]
    for info in keyed:
        if info["check"] == check_key:
            path: Path = artifacts_dir / report.id / str(info["artifact"])
            if not path.is_file():
                raise NotFound(
                    f"report {report.id!r}: the failing rows of check {check_key!r} are no "
                    "longer stored"
                )
            return path
    known = ", ".join(repr(info["check"]) for info in keyed) or "none"
    raise NotFound(
        f"report {report.id!r} has no failing rows for check {check_key[:50]!r}; checks with "
        f"rows: {known} (the key is the expectation's 0-based position in the suite, as in "
        f"details.{DETAILS_KEY}.check)"
    )


def csv_bytes(path: Path) -> bytes:
    """The Parquet file at `path` as CSV (UTF-8, header row), with every text cell that a
    spreadsheet would run as a formula prefixed with an apostrophe."""
    # Imported here: the CLI and the client name these files without loading pandas.
    import pandas as pd

    frame = pd.read_parquet(path)
    safe = frame.apply(_defused)
    # Column names come from the data too.
    safe.columns = [defuse_cell(str(column)) for column in safe.columns]
    buffer = io.StringIO()
    safe.to_csv(buffer, index=False)
    return buffer.getvalue().encode()


def defuse_cell(value: Any) -> Any:
    """`value`, or its text with a leading apostrophe when it starts like a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def _defused(column: pd.Series[Any]) -> pd.Series[Any]:
    # Numbers stay numbers: "-3" is only a formula when it was text in the data.
    if column.dtype.kind in "biufcmM":
        return column
    return column.map(defuse_cell)

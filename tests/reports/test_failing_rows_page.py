"""The report page links each failed check's failing rows (Parquet and CSV), says when they
were cut, and links nothing for a check that kept none; the CSV cells are defused."""

from __future__ import annotations

from typing import Any

import pytest

from app.reports.failing_rows import defuse_cell
from app.reports.model import CheckResult
from app.reports.pages import render_report
from tests.reports.test_pages import NOW, Page, check, report


def failed_with_rows(key: str, rows: int, total: int) -> CheckResult:
    details: dict[str, Any] = {
        "failing_rows": {
            "check": key,
            "rows": rows,
            "total": total,
            "truncated": rows < total,
            "artifact": f"failing-rows-{key}.parquet",
        }
    }
    return check(
        "range",
        outcome="failed",
        observed={"unexpected_count": total, "element_count": 400},
        details=details,
    )


def links(html: str) -> list[str]:
    return [a["href"] for a in Page(html).find("a") if "/failing-rows?" in a.get("href", "")]


def test_failed_check_links_its_rows_as_parquet_and_csv() -> None:
    html = render_report(report([failed_with_rows("3", 7, 7)]), now=NOW)
    assert links(html) == [
        "/v1/reports/0123456789abcdef/failing-rows?check=3&format=parquet",
        "/v1/reports/0123456789abcdef/failing-rows?check=3&format=csv",
    ]
    anchors = [a for a in Page(html).find("a") if "/failing-rows?" in a.get("href", "")]
    assert all("download" in a for a in anchors)
    assert "Failing rows: Parquet · CSV (7 rows)" in Page(html).text


def test_cut_rows_say_how_many_of_how_many() -> None:
    html = render_report(report([failed_with_rows("0", 10_000, 25_000)]), now=NOW)
    assert "(first 10,000 of 25,000 rows)" in Page(html).text


def test_checks_without_kept_rows_link_nothing() -> None:
    unavailable = check(
        "set",
        outcome="failed",
        observed={"unexpected_count": 3, "element_count": 10},
        details={"failing_rows": {"unavailable": "cannot list them on SQL"}},
    )
    forged = failed_with_rows("1", 2, 2)
    forged.details["failing_rows"]["artifact"] = "../../etc/passwd"
    html = render_report(report([unavailable, forged, check("range")]), now=NOW)
    assert links(html) == []


def test_report_id_in_the_link_is_quoted() -> None:
    html = render_report(report([failed_with_rows("2", 1, 1)], id='a"b<c'), now=NOW)
    assert links(html)[0] == "/v1/reports/a%22b%3Cc/failing-rows?check=2&format=parquet"
    assert 'a"b<c/failing-rows' not in html


@pytest.mark.parametrize(
    ("cell", "shown"),
    [
        ("=1+1", "'=1+1"),
        ("+cmd", "'+cmd"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("plain", "plain"),
        ("a=b", "a=b"),
        (-2, -2),
        (None, None),
    ],
)
def test_csv_cells_that_start_like_a_formula_get_an_apostrophe(cell: Any, shown: Any) -> None:
    assert defuse_cell(cell) == shown

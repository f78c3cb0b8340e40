"""Failing rows: the stored rows of a failed row-level expectation are exactly the rows Great
Expectations counts as unexpected (its COMPLETE `unexpected_index_list`), named by the suite's id
columns or the row number, cut at the limit; on SQL they come from a bounded query."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from app.checks.expectations import LoadedSuite, gx_results, pandas_batch, parse_suite, run_suite
from app.checks.failing_rows import check_id_columns, keep_frame_rows, keep_sql_rows
from app.checks.sql_engine import validate_sql_batch
from app.core.errors import InvalidRequest, SuiteInvalid
from app.ingest.references import BatchReference, resolve_reference
from app.reports.failing_rows import ROW_COLUMN
from tests.conftest import make_settings

EXPECTATIONS: list[dict[str, Any]] = [
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "amount"}},
    {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "amount", "min_value": 0, "max_value": 100},
    },
    {
        "type": "expect_column_values_to_match_regex",
        "kwargs": {"column": "code", "regex": "^[A-Z]{3}$"},
    },
    {
        "type": "expect_column_values_to_be_in_set",
        "kwargs": {"column": "country", "value_set": ["FR", "DE", "IT"]},
    },
    {
        "type": "expect_column_pair_values_a_to_be_greater_than_b",
        "kwargs": {"column_A": "amount", "column_B": "floor", "or_equal": True},
    },
    {
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "floor", "min_value": 0, "max_value": 1000},
    },
    {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "amount", "max_value": 1}},
]


@pytest.fixture
def orders() -> pd.DataFrame:
    """200 orders with planted defects: nulls, out-of-range amounts, bad codes and countries."""
    rng = np.random.default_rng(7)
    n = 200
    amount = rng.uniform(-20, 120, n)
    amount[rng.choice(n, 15, replace=False)] = np.nan
    code = rng.choice(["ABC", "XYZ", "ab1", "TOOLONG", None], n, p=[0.4, 0.4, 0.08, 0.07, 0.05])
    country = rng.choice(["FR", "DE", "IT", "US", None], n, p=[0.3, 0.3, 0.3, 0.05, 0.05])
    return pd.DataFrame(
        {
            "order_id": [f"o{i:04d}" for i in range(n)],
            "amount": amount,
            "code": code,
            "country": country,
            "floor": rng.uniform(0, 60, n),
        }
    )


def suite(expectations: list[dict[str, Any]], **meta: Any) -> LoadedSuite:
    text = json.dumps(
        {"name": "orders", "expectations": expectations, "meta": {"datagate": meta} if meta else {}}
    )
    return parse_suite("orders", text, "inline")


def ge_unexpected_index_list(frame: pd.DataFrame, loaded: LoadedSuite, index: int) -> list[int]:
    """What Great Expectations itself lists with result_format COMPLETE."""
    result = gx_results(pandas_batch(frame), loaded, [index], {"result_format": "COMPLETE"})
    listed: list[int] = result[index]["result"]["unexpected_index_list"]
    return listed


def test_rows_are_exactly_great_expectations_unexpected_index_list(
    orders: pd.DataFrame, tmp_path: Path
) -> None:
    loaded = suite(EXPECTATIONS)
    checks = run_suite(orders, loaded, sample_values=5)
    keep_frame_rows(orders, loaded, checks, tmp_path, limit=10_000)

    failed_row_level = [0, 1, 2, 3, 4]
    for index in failed_row_level:
        check = checks[index]
        assert not check.success, check.name
        info = check.details["failing_rows"]
        stored = pd.read_parquet(tmp_path / info["artifact"])
        expected = ge_unexpected_index_list(orders, loaded, index)
        assert list(stored[ROW_COLUMN]) == expected, check.name
        assert info == {
            "check": str(index),
            "rows": len(expected),
            "total": check.observed["unexpected_count"],
            "truncated": False,
            "artifact": f"failing-rows-{index}.parquet",
        }
        # The values in the file are the frame's values at those rows.
        for column in [c for c in stored.columns if c != ROW_COLUMN]:
            pd.testing.assert_series_equal(
                stored[column],
                orders[column].iloc[expected].reset_index(drop=True),
                check_names=False,
            )
    # A passing row-level expectation and a column aggregate keep no rows.
    assert checks[5].success and "failing_rows" not in checks[5].details
    assert not checks[6].success and "failing_rows" not in checks[6].details
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        f"failing-rows-{i}.parquet" for i in failed_row_level
    ]


def test_null_rows_are_listed_by_the_not_null_check_and_not_by_the_range_check(
    orders: pd.DataFrame, tmp_path: Path
) -> None:
    loaded = suite(EXPECTATIONS[:2])
    checks = run_suite(orders, loaded, sample_values=5)
    keep_frame_rows(orders, loaded, checks, tmp_path, limit=10_000)
    nulls = pd.read_parquet(tmp_path / "failing-rows-0.parquet")
    ranged = pd.read_parquet(tmp_path / "failing-rows-1.parquet")
    assert list(nulls[ROW_COLUMN]) == list(np.flatnonzero(orders["amount"].isna()))
    assert ranged["amount"].notna().all()
    assert not ((ranged["amount"] >= 0) & (ranged["amount"] <= 100)).any()


def test_id_columns_name_the_rows_instead_of_the_row_number(
    orders: pd.DataFrame, tmp_path: Path
) -> None:
    loaded = suite(EXPECTATIONS[3:5], id_columns=["order_id"])
    checks = run_suite(orders, loaded, sample_values=5)
    keep_frame_rows(orders, loaded, checks, tmp_path, limit=10_000)
    pair = pd.read_parquet(tmp_path / "failing-rows-1.parquet")
    assert list(pair.columns) == ["order_id", "amount", "floor"]
    expected = ge_unexpected_index_list(orders, loaded, 1)
    assert list(pair["order_id"]) == list(orders["order_id"].iloc[expected])


def test_rows_over_the_limit_are_cut_and_the_check_says_so(
    orders: pd.DataFrame, tmp_path: Path
) -> None:
    loaded = suite(EXPECTATIONS[1:2])
    checks = run_suite(orders, loaded, sample_values=5)
    keep_frame_rows(orders, loaded, checks, tmp_path, limit=7)
    info = checks[0].details["failing_rows"]
    total = checks[0].observed["unexpected_count"]
    assert total > 7
    assert info["rows"] == 7 and info["total"] == total and info["truncated"] is True
    stored = pd.read_parquet(tmp_path / info["artifact"])
    assert list(stored[ROW_COLUMN]) == ge_unexpected_index_list(orders, loaded, 0)[:7]


def test_a_frame_with_its_own_index_is_numbered_by_position(
    orders: pd.DataFrame, tmp_path: Path
) -> None:
    shuffled = orders.sample(frac=1.0, random_state=3)
    loaded = suite(EXPECTATIONS[3:4])
    checks = run_suite(shuffled, loaded, sample_values=5)
    keep_frame_rows(shuffled, loaded, checks, tmp_path, limit=10_000)
    stored = pd.read_parquet(tmp_path / "failing-rows-0.parquet")
    bad = ~shuffled["country"].isin(["FR", "DE", "IT"]) & shuffled["country"].notna()
    assert list(stored[ROW_COLUMN]) == list(np.flatnonzero(bad))


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("order_id", "must be a non-empty list"),
        ([], "must be a non-empty list"),
        ([3], "is not a column name"),
        (["a", "a"], "names a column twice"),
    ],
)
def test_malformed_id_columns_make_the_suite_invalid(value: Any, problem: str) -> None:
    with pytest.raises(SuiteInvalid, match=r"meta\.datagate\.id_columns") as raised:
        suite(EXPECTATIONS[:1], id_columns=value)
    assert problem in raised.value.message


def test_id_column_missing_from_the_data_is_a_422_naming_it(orders: pd.DataFrame) -> None:
    loaded = suite(EXPECTATIONS[:1], id_columns=["order_id", "ticket"])
    with pytest.raises(InvalidRequest, match='"ticket" not in the dataset') as raised:
        check_id_columns(loaded, orders.columns)
    assert raised.value.status_code == 422


# --- SQL batches ------------------------------------------------------------------------------


def sql_settings(tmp_path: Path, url: str) -> Any:
    return make_settings(tmp_path, connections={"warehouse": url})


@pytest.fixture
def warehouse(request: pytest.FixtureRequest, database_url: str, orders: pd.DataFrame) -> str:
    """The orders as table `orders`; the URL datagate reads it with (on PostgreSQL, a
    read-only role, as documented)."""
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        orders.to_sql("orders", conn, index=False)
    engine.dispose()
    if database_url.startswith("sqlite"):
        return database_url
    url: str = request.getfixturevalue("postgres_reader_url")
    return url


SQL_EXPECTATIONS = [EXPECTATIONS[i] for i in (0, 1, 3, 4)]


def test_sql_rows_are_the_unexpected_rows_with_their_ids(
    warehouse: str, orders: pd.DataFrame, tmp_path: Path
) -> None:
    settings = sql_settings(tmp_path, warehouse)
    loaded = suite(SQL_EXPECTATIONS, id_columns=["order_id"])
    resolved = resolve_reference(
        BatchReference.model_validate({"connection": "warehouse", "table": "orders"}), settings
    )
    folder = tmp_path / "rows"
    _, checks = validate_sql_batch(
        resolved, loaded, settings, sample_values=5, rows_folder=folder, max_failing_rows=10_000
    )
    for index, check in enumerate(checks):
        assert not check.success, check.name
        info = check.details["failing_rows"]
        stored = pd.read_parquet(folder / info["artifact"])
        assert info["rows"] == info["total"] == check.observed["unexpected_count"] == len(stored)
        expected = orders.iloc[ge_unexpected_index_list(orders, loaded, index)]
        if check.name.startswith("expect_column_pair"):
            # GE's SQL engine compares a null A with B as SQL does (unknown, so not unexpected);
            # its pandas engine counts such a row. The rows follow each engine's own count.
            expected = expected[expected["amount"].notna()]
        # No row order in SQL: the same set of rows, by id.
        assert sorted(stored["order_id"]) == sorted(expected["order_id"]), check.name
        assert stored.columns[0] == "order_id"


def test_sql_rows_come_from_a_bounded_query(warehouse: str, tmp_path: Path) -> None:
    settings = sql_settings(tmp_path, warehouse)
    loaded = suite(SQL_EXPECTATIONS[1:2])
    resolved = resolve_reference(
        BatchReference.model_validate({"connection": "warehouse", "table": "orders"}), settings
    )
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        _, checks = validate_sql_batch(
            resolved, loaded, settings, sample_values=5, rows_folder=tmp_path, max_failing_rows=4
        )
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)
    info = checks[0].details["failing_rows"]
    assert info["rows"] == 4 and info["truncated"] is True
    assert list(pd.read_parquet(tmp_path / info["artifact"]).columns) == ["amount"]
    # Every statement that reads rows of the table (not a count) is bounded.
    row_reads = [
        s
        for s in statements
        if "FROM ORDERS" in s.upper() and not re.search(r"\b(count|sum)\(", s, re.IGNORECASE)
    ]
    assert row_reads, statements
    assert all("LIMIT" in s.upper() for s in row_reads), row_reads


def test_sql_rows_unavailable_for_a_type_great_expectations_cannot_list(
    warehouse: str, tmp_path: Path
) -> None:
    settings = sql_settings(tmp_path, warehouse)
    loaded = suite(
        [
            {
                "type": "expect_compound_columns_to_be_unique",
                "kwargs": {"column_list": ["country", "code"]},
            }
        ]
    )
    resolved = resolve_reference(
        BatchReference.model_validate({"connection": "warehouse", "table": "orders"}), settings
    )
    _, checks = validate_sql_batch(
        resolved, loaded, settings, sample_values=5, rows_folder=tmp_path, max_failing_rows=100
    )
    assert not checks[0].success
    assert "unavailable" in checks[0].details["failing_rows"]
    assert not list(tmp_path.glob("failing-rows-*"))


def test_keep_sql_rows_skips_checks_that_passed(tmp_path: Path) -> None:
    loaded = suite(EXPECTATIONS[:1])
    check = run_suite(pd.DataFrame({"amount": [1.0, 2.0]}), loaded, sample_values=5)[0]
    keep_sql_rows(None, loaded, {0: check}, tmp_path, limit=10)
    assert "failing_rows" not in check.details


def test_a_data_column_named_row_keeps_the_row_number_apart(tmp_path: Path) -> None:
    frame = pd.DataFrame({"row": ["a", "b", "c"]})
    loaded = suite(
        [
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": "row", "value_set": ["a"]},
            }
        ]
    )
    checks = run_suite(frame, loaded, sample_values=5)
    keep_frame_rows(frame, loaded, checks, tmp_path, limit=10)
    stored = pd.read_parquet(tmp_path / "failing-rows-0.parquet")
    assert list(stored.columns) == ["_row", "row"]
    assert stored.to_dict("list") == {"_row": [1, 2], "row": ["b", "c"]}


def test_a_failure_while_listing_rows_leaves_the_check_as_it_was(
    orders: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = suite(EXPECTATIONS[1:2])
    checks = run_suite(orders, loaded, sample_values=5)
    before = checks[0].model_copy(deep=True)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("metric exploded")

    monkeypatch.setattr("app.checks.failing_rows.unexpected_index_list", broken)
    keep_frame_rows(orders, loaded, checks, tmp_path, limit=10)
    assert checks[0].details.pop("failing_rows") == {"unavailable": "listing the rows failed"}
    assert checks[0] == before
    assert not list(tmp_path.iterdir())

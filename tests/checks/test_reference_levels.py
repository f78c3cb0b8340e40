"""Integrity judged against the reference, on synthetic data where the truth is known: each
rule's false-alarm rate on clean batches and its power on planted defects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.checks.exact_checks import (
    ExactInputs,
    data_duplicates,
    group_sizes,
    new_category,
    new_label,
    samples_mix,
    single_value,
)
from app.checks.reference_levels import (
    INTEGRITY_ALPHA,
    allowed_count,
    beyond_reference,
    constant_chance,
    expected_duplicate_share,
    expected_mix_share,
    judge_against_reference,
    unseen_share,
)

RUNS = 300
# A rule at level alpha = 1% is allowed this share of false alarms over RUNS runs (noise).
FALSE_ALARM_BOUND = 0.03


def _ids(rng: np.random.Generator, rows: int, distinct: int) -> np.ndarray:
    """Row ids of a discrete table: `distinct` rows with Zipf-like frequencies."""
    weights = 1.0 / np.arange(1, distinct + 1)
    return rng.choice(distinct, size=rows, p=weights / weights.sum())


def _sizes(ids: np.ndarray) -> np.ndarray:
    return np.unique(ids, return_counts=True)[1]


def _inputs(data: pd.DataFrame, reference: pd.DataFrame | None) -> ExactInputs:
    return ExactInputs(data, reference, ["x"], [], None, None, None)


# --- the count rule -------------------------------------------------------------------------


@pytest.mark.parametrize(("reference_rows", "data_rows"), [(100, 30), (1000, 250), (500, 5000)])
@pytest.mark.parametrize("share", [0.0, 0.02, 0.3])
def test_clean_counts_pass_the_allowance_in_about_alpha_of_runs(
    reference_rows: int, data_rows: int, share: float
) -> None:
    rng = np.random.default_rng(reference_rows + data_rows)
    alarms = 0
    for _ in range(RUNS):
        reference_share = rng.binomial(reference_rows, share) / reference_rows
        count = int(rng.binomial(data_rows, share))
        verdict = beyond_reference(
            count, data_rows, reference_share, reference_rows, 0.0, INTEGRITY_ALPHA
        )
        alarms += verdict.failed
    assert alarms / RUNS <= FALSE_ALARM_BOUND


def test_a_share_twenty_points_above_the_reference_fails() -> None:
    rng = np.random.default_rng(3)
    fails = sum(
        beyond_reference(
            int(rng.binomial(200, 0.22)), 200, 0.02, 1000, 0.05, INTEGRITY_ALPHA
        ).failed
        for _ in range(RUNS)
    )
    assert fails == RUNS


def test_the_effect_threshold_lets_a_significant_but_small_excess_pass() -> None:
    # 3% against 1% on 100,000 rows is far beyond noise, but under a 5-point threshold.
    assert not beyond_reference(3000, 100_000, 0.01, 100_000, 0.05, INTEGRITY_ALPHA).failed
    assert beyond_reference(3000, 100_000, 0.01, 100_000, 0.0, INTEGRITY_ALPHA).failed


def test_a_reference_without_any_such_row_still_allows_a_few() -> None:
    assert allowed_count(1000, 0.0, 100, INTEGRITY_ALPHA) >= 1
    assert allowed_count(1000, 0.0, 100_000, INTEGRITY_ALPHA) <= 1


# --- duplicates -----------------------------------------------------------------------------


def test_expected_duplicate_share_matches_subsamples_of_the_reference() -> None:
    rng = np.random.default_rng(4)
    reference = _ids(rng, 2000, 300)
    n = 250
    simulated = np.mean(
        [1 - len(np.unique(rng.choice(reference, n, replace=False))) / n for _ in range(400)]
    )
    assert expected_duplicate_share(_sizes(reference), n) == pytest.approx(simulated, abs=0.005)
    # As large as the reference: the reference's own ratio.
    own = 1 - len(_sizes(reference)) / 2000
    assert expected_duplicate_share(_sizes(reference), 2000) == pytest.approx(own)


def test_expected_duplicate_share_extrapolates_to_batches_larger_than_the_reference() -> None:
    rng = np.random.default_rng(9)
    population = _ids(rng, 10**6, 3000)
    reference = rng.choice(population, 1000, replace=False)
    simulated = np.mean(
        [1 - len(np.unique(rng.choice(population, 3000, replace=False))) / 3000 for _ in range(50)]
    )
    assert expected_duplicate_share(_sizes(reference), 3000) == pytest.approx(simulated, abs=0.05)
    # Continuous measurements stay distinct however many more there are.
    assert expected_duplicate_share(np.ones(1000), 5000) == pytest.approx(0.0, abs=0.01)


@pytest.mark.parametrize(
    ("reference_rows", "data_rows"), [(800, 200), (300, 300), (150, 60), (200, 800)]
)
def test_clean_splits_of_a_discrete_table_do_not_fail_data_duplicates(
    reference_rows: int, data_rows: int
) -> None:
    rng = np.random.default_rng(reference_rows)
    alarms = 0
    for _ in range(100):
        ids = _ids(rng, reference_rows + data_rows, 400)
        reference = pd.DataFrame({"x": ids[:reference_rows]})
        data = pd.DataFrame({"x": ids[reference_rows:]})
        inputs = _inputs(data, reference)
        judged = judge_against_reference("DataDuplicates", inputs, data_duplicates(inputs, 0), 0)
        alarms += not judged.passed
    assert alarms <= 5


def test_a_join_fan_out_of_twenty_percent_fails_against_a_reference_without_duplicates() -> None:
    rng = np.random.default_rng(5)
    reference = pd.DataFrame({"x": rng.normal(size=1000)})
    clean = pd.DataFrame({"x": rng.normal(size=400)})
    fanned = pd.concat([clean, clean.iloc[:100]], ignore_index=True)  # 100 of 500 rows repeat

    for limit in (0.0, 0.05):
        inputs = _inputs(fanned, reference)
        judged = judge_against_reference(
            "DataDuplicates", inputs, data_duplicates(inputs, limit), limit
        )
        assert not judged.passed
        inputs = _inputs(clean, reference)
        judged = judge_against_reference(
            "DataDuplicates", inputs, data_duplicates(inputs, limit), limit
        )
        assert judged.passed


def test_without_a_reference_data_duplicates_fails_on_its_absolute_threshold() -> None:
    frame = pd.DataFrame({"x": [1.0, 1.0, 2.0, 3.0]})
    inputs = _inputs(frame, None)
    raw = data_duplicates(inputs, 0.0)
    assert raw.breach == "WARN"  # deepchecks' own verdict, kept by the exact check

    judged = judge_against_reference("DataDuplicates", inputs, raw, 0.0)

    assert not judged.passed and judged.breach == "FAIL"


# --- the samples mix ------------------------------------------------------------------------


def test_expected_mix_share_is_the_share_of_reference_rows_that_recur() -> None:
    assert expected_mix_share(np.array([3, 1, 1, 5])) == pytest.approx(8 / 10)
    assert expected_mix_share(np.ones(50, dtype=int)) == 0.0


@pytest.mark.parametrize("distinct", [20, 400, 5000])
def test_clean_splits_do_not_fail_the_samples_mix_whatever_the_table(distinct: int) -> None:
    rng = np.random.default_rng(distinct)
    alarms = 0
    for _ in range(100):
        ids = _ids(rng, 1300, distinct)
        reference, data = pd.DataFrame({"x": ids[:1000]}), pd.DataFrame({"x": ids[1000:]})
        inputs = _inputs(data, reference)
        judged = judge_against_reference(
            "TrainTestSamplesMix", inputs, samples_mix(inputs, 0.05), 0.05
        )
        alarms += not judged.passed
    assert alarms <= 5


def test_reference_rows_copied_into_a_continuous_table_fail_the_samples_mix() -> None:
    rng = np.random.default_rng(6)
    reference = pd.DataFrame({"x": rng.normal(size=1000)})
    data = pd.concat([pd.DataFrame({"x": rng.normal(size=270)}), reference.iloc[:30]])
    inputs = _inputs(data.reset_index(drop=True), reference)

    judged = judge_against_reference("TrainTestSamplesMix", inputs, samples_mix(inputs, 0.0), 0.0)

    assert not judged.passed
    (row,) = judged.value["datagate"]
    assert row.observed["ratio"] == pytest.approx(0.1)
    assert row.observed["expected_ratio"] == 0.0


def test_group_sizes_count_equal_rows_with_nulls_equal() -> None:
    frame = pd.DataFrame({"x": [1.0, 1.0, np.nan, np.nan, 2.0], "y": ["a", "a", None, None, "b"]})
    sizes = group_sizes(ExactInputs(frame, None, ["x", "y"], [], None, None, None), ["x", "y"])
    assert sorted(sizes.tolist()) == [1, 2, 2]


# --- a constant column ----------------------------------------------------------------------


def test_a_column_constant_in_the_reference_too_is_expected_to_be_constant() -> None:
    assert constant_chance(500, 500, 200) > 0.5
    assert constant_chance(0, 500, 5) < INTEGRITY_ALPHA  # a value the reference never had


@pytest.mark.parametrize(("majority", "data_rows"), [(0.99, 50), (0.9, 40), (0.5, 5)])
def test_clean_batches_stuck_by_chance_fail_in_at_most_alpha_of_runs(
    majority: float, data_rows: int
) -> None:
    rng = np.random.default_rng(int(majority * 100) + data_rows)
    alarms = 0
    for _ in range(RUNS):
        reference = rng.random(1000) < majority
        data = rng.random(data_rows) < majority
        if len(np.unique(data)) != 1:
            continue
        value_rows = int((reference == data[0]).sum())
        alarms += constant_chance(value_rows, 1000, data_rows) < INTEGRITY_ALPHA
    assert alarms / RUNS <= FALSE_ALARM_BOUND


def test_a_stuck_column_of_a_varied_reference_fails() -> None:
    rng = np.random.default_rng(8)
    reference = pd.DataFrame({"x": rng.integers(0, 10, 500), "k": np.zeros(500)})
    data = pd.DataFrame({"x": np.full(100, 3), "k": np.zeros(100)})
    inputs = ExactInputs(data, reference, ["x", "k"], [], None, None, None)
    judged = judge_against_reference("IsSingleValue", inputs, single_value(inputs, 0), 0)

    rows = {row.column: row for row in judged.value["datagate"]}
    assert rows["x"].failed
    assert not rows["k"].failed and rows["k"].note is not None
    assert "constant" in rows["k"].note


def test_a_constant_column_whose_reference_is_all_null_is_judged_without_error() -> None:
    reference = pd.DataFrame({"x": [np.nan] * 50})
    data = pd.DataFrame({"x": [2.0] * 20})
    inputs = ExactInputs(data, reference, ["x"], [], None, None, None)

    judged = judge_against_reference("IsSingleValue", inputs, single_value(inputs, 0), 0)

    (row,) = judged.value["datagate"]
    assert row.observed["reference_share_of_value"] == 0.0
    assert row.observed["reference_distinct_values"] == 0


# --- values the reference never had (Good-Turing) -------------------------------------------


def test_unseen_share_is_the_share_of_reference_values_seen_once() -> None:
    values = pd.Series(["a", "a", "b", "c", None, "d", "d", "d"])
    assert unseen_share(values) == (pytest.approx(3 / 8), 7)
    assert unseen_share(pd.Series(["x"] * 50)) == (pytest.approx(1 / 51), 50)


def _categories(data: np.ndarray, reference: np.ndarray) -> ExactInputs:
    as_text = np.vectorize(lambda i: f"v{i}")
    return ExactInputs(
        pd.DataFrame({"c": as_text(data)}),
        pd.DataFrame({"c": as_text(reference)}),
        ["c"],
        ["c"],
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("distinct", "reference_rows", "data_rows"), [(40, 187, 47), (300, 800, 200)]
)
def test_clean_splits_of_a_long_tailed_category_do_not_fail_new_category(
    distinct: int, reference_rows: int, data_rows: int
) -> None:
    """38 car models in 234 rows: a clean test split holds models its training part lacks."""
    rng = np.random.default_rng(distinct)
    alarms = raw_alarms = 0
    for _ in range(RUNS):
        ids = _ids(rng, reference_rows + data_rows, distinct)
        inputs = _categories(ids[reference_rows:], ids[:reference_rows])
        raw = new_category(inputs, 0.0)
        raw_alarms += not raw.passed
        alarms += not judge_against_reference("NewCategoryTrainTest", inputs, raw, 0.0).passed
    assert raw_alarms > RUNS / 2, "the setting must be one where deepchecks' rule cries wolf"
    assert alarms / RUNS <= FALSE_ALARM_BOUND


@pytest.mark.parametrize(("rows", "planted"), [(200, 20), (100_000, 20)])
def test_a_planted_new_category_fails_against_a_reference_without_rare_values(
    rows: int, planted: int
) -> None:
    rng = np.random.default_rng(rows)
    reference = rng.integers(0, 4, size=rows)
    data = rng.integers(0, 4, size=rows)
    data[:planted] = 99
    inputs = _categories(data, reference)
    judged = judge_against_reference("NewCategoryTrainTest", inputs, new_category(inputs, 0.0), 0.0)
    assert not judged.passed
    (row,) = judged.value["datagate"]
    assert row.column == "c" and row.failed
    assert row.observed["expected_ratio"] == pytest.approx(1 / (rows + 1))


def test_a_new_label_of_an_integer_target_with_many_values_is_judged_like_a_category() -> None:
    """mpg's `hwy` (27 integer values in 234 rows) taken for classes: clean splits hold values
    the training part lacks; a batch of mostly unseen labels still fails."""
    rng = np.random.default_rng(27)
    alarms = 0
    for _ in range(RUNS):
        labels = np.round(rng.normal(24, 6, size=234)).astype(int)
        reference = pd.DataFrame({"x": 0, "y": labels[:187]})
        data = pd.DataFrame({"x": 0, "y": labels[187:]})
        inputs = ExactInputs(data, reference, ["x"], [], "y", None, None)
        alarms += not judge_against_reference(
            "NewLabelTrainTest", inputs, new_label(inputs, 0), 0
        ).passed
    assert alarms / RUNS <= FALSE_ALARM_BOUND
    shifted = pd.DataFrame({"x": 0, "y": np.arange(100, 147)})
    inputs = ExactInputs(shifted, reference, ["x"], [], "y", None, None)
    assert not judge_against_reference("NewLabelTrainTest", inputs, new_label(inputs, 0), 0).passed

"""datagate's drift decisions on synthetic data where the truth is known: false alarms and power."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app.checks.decisions import (
    CATEGORICAL_METHOD,
    NUMERIC_METHOD,
    PPS_CHANGE_MIN_ROWS,
    DriftDecision,
    TooSmall,
    auc_null_se,
    auc_p_value,
    decide_drift,
    decide_multivariate_drift,
    held_out_sizes,
    holm_adjust,
    is_strong_predictor,
    judge_drift,
    multivariate_rows_needed,
    numeric_drift,
    pps_change_is_decidable,
    rows_needed_to_tell,
)

ALPHA = 0.01
MAX_EFFECT = 0.1
RUNS = 200
NUMERIC = [f"x{i}" for i in range(4)]
COLUMNS = [*NUMERIC, "count", "colour", "rare"]
CATEGORICAL = {"colour", "rare"}


def _table(rng: np.random.Generator, rows: int, shift: float = 0.0) -> pd.DataFrame:
    """Four normal columns (x0 shifted by `shift` SD), a small count, two category columns."""
    frame = pd.DataFrame({name: rng.normal(size=rows) for name in NUMERIC})
    frame["x0"] += shift
    frame["count"] = rng.poisson(2.0, size=rows)
    frame["colour"] = rng.choice(["red", "green", "blue"], p=[0.5, 0.3, 0.2], size=rows)
    # A long tail of rare categories: chi-square is only valid once they are pooled.
    frame["rare"] = rng.choice([f"c{i}" for i in range(40)], p=_zipf(40), size=rows)
    return frame


def _zipf(k: int) -> np.ndarray:
    weights = 1.0 / np.arange(1, k + 1)
    return weights / weights.sum()


def _flagged(reference: pd.DataFrame, data: pd.DataFrame) -> set[str]:
    judged = judge_drift(reference, data, COLUMNS, CATEGORICAL, MAX_EFFECT, ALPHA)
    return {c for c, j in judged.items() if isinstance(j, DriftDecision) and j.drifted}


@pytest.mark.parametrize(
    ("reference_rows", "data_rows"), [(50, 50), (54, 124), (500, 500), (5000, 5000)]
)
def test_clean_pairs_flag_any_column_in_at_most_five_percent_of_runs(
    reference_rows: int, data_rows: int
) -> None:
    rng = np.random.default_rng(reference_rows + data_rows)

    alarms = sum(
        bool(_flagged(_table(rng, reference_rows), _table(rng, data_rows))) for _ in range(RUNS)
    )

    assert alarms / RUNS <= 0.05


def test_quarter_sd_shift_at_1000_rows_is_flagged_on_that_column_in_90_percent_of_runs() -> None:
    rng = np.random.default_rng(1)
    hits, elsewhere = 0, 0
    for _ in range(RUNS):
        flagged = _flagged(_table(rng, 1000), _table(rng, 1000, shift=0.25))
        hits += "x0" in flagged
        elsewhere += bool(flagged - {"x0"})

    assert hits / RUNS >= 0.9
    assert elsewhere / RUNS <= 0.05


def test_a_significant_but_tiny_shift_on_big_data_is_not_drift() -> None:
    rng = np.random.default_rng(2)
    reference, data = rng.normal(size=100_000), rng.normal(0.03, 1, size=100_000)

    test = numeric_drift(reference, data)
    [decision] = decide_drift({"x": test}, MAX_EFFECT, ALPHA).values()

    assert test.p_value < 1e-6
    assert test.effect == pytest.approx(0.03, abs=0.01)
    assert not decision.drifted


def test_effect_is_in_reference_standard_deviations_at_any_scale() -> None:
    rng = np.random.default_rng(3)
    reference = rng.normal(100.0, 20.0, size=20_000)

    test = numeric_drift(reference, reference + 10.0)

    assert test.effect == pytest.approx(0.5, abs=0.02)
    assert test.method == NUMERIC_METHOD


def test_category_share_change_is_flagged_and_clean_categories_are_not() -> None:
    rng = np.random.default_rng(4)
    reference = pd.DataFrame({"colour": rng.choice(["a", "b", "c"], p=[0.5, 0.3, 0.2], size=2000)})
    moved = pd.DataFrame({"colour": rng.choice(["a", "b", "c"], p=[0.3, 0.3, 0.4], size=2000)})
    same = pd.DataFrame({"colour": rng.choice(["a", "b", "c"], p=[0.5, 0.3, 0.2], size=2000)})

    drifted = judge_drift(reference, moved, ["colour"], {"colour"}, MAX_EFFECT, ALPHA)["colour"]
    clean = judge_drift(reference, same, ["colour"], {"colour"}, MAX_EFFECT, ALPHA)["colour"]

    assert isinstance(drifted, DriftDecision) and drifted.drifted
    assert drifted.method == CATEGORICAL_METHOD
    assert isinstance(clean, DriftDecision) and not clean.drifted


def test_a_column_too_small_to_judge_is_too_small_with_the_rows_it_needs() -> None:
    rng = np.random.default_rng(5)
    reference = pd.DataFrame({"x": rng.normal(size=200)})
    data = pd.DataFrame({"x": [np.nan] * 95 + list(rng.normal(5, 1, size=5))})

    judged = judge_drift(reference, data, ["x"], set(), MAX_EFFECT, ALPHA)["x"]

    assert isinstance(judged, TooSmall)
    assert judged.rows_needed == rows_needed_to_tell(5, 5, ALPHA)
    assert judged.rows_needed is not None and judged.rows_needed >= 10
    assert f"needs at least {judged.rows_needed} on each side" in judged.reason


def test_holm_multiplies_the_ranked_p_values_and_keeps_their_order() -> None:
    assert holm_adjust([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm_adjust([]) == []


def test_pps_rules_skip_small_sets_and_note_strong_predictors() -> None:
    assert not pps_change_is_decidable(PPS_CHANGE_MIN_ROWS - 1, 10_000)
    assert pps_change_is_decidable(PPS_CHANGE_MIN_ROWS, PPS_CHANGE_MIN_ROWS)
    assert is_strong_predictor(0.8, 0.8)
    assert not is_strong_predictor(0.79, 0.8)


def test_odd_columns_are_judged_without_errors_and_without_false_drift() -> None:
    rng = np.random.default_rng(6)

    def side(rows: int) -> pd.DataFrame:
        values = rng.normal(size=rows)
        values[:3] = np.inf
        return pd.DataFrame(
            {
                "with_inf": values,
                "constant": np.ones(rows),
                "empty": [np.nan] * rows,
                "flag": rng.integers(0, 2, rows).astype(bool),
                "nullable": pd.array(rng.integers(0, 1000, rows), dtype="Int64"),
            }
        )

    columns = ["with_inf", "constant", "empty", "flag", "nullable"]
    judged = judge_drift(side(800), side(600), columns, set(), MAX_EFFECT, ALPHA)

    assert isinstance(judged["empty"], TooSmall)
    measured = {c: j for c, j in judged.items() if isinstance(j, DriftDecision)}
    assert set(measured) == {"with_inf", "constant", "flag", "nullable"}
    assert not any(j.drifted for j in measured.values())
    assert all(np.isfinite(j.effect) and 0 <= j.p_value_adjusted <= 1 for j in measured.values())
    assert measured["constant"].effect == 0 and measured["constant"].p_value == 1
    assert measured["flag"].method == CATEGORICAL_METHOD
    assert measured["nullable"].method == NUMERIC_METHOD


def test_numeric_p_value_stays_calibrated_on_heavily_tied_values() -> None:
    # Diamonds' `table` has 51 distinct values in 3,000 rows; the asymptotic Cramer-von Mises
    # p-value fell under 0.001 on every clean permutation of it. Rounded normals tie the same way.
    rng = np.random.default_rng(7)
    values = np.round(rng.normal(57, 2.2, size=3000))
    p_values = []
    for _ in range(200):
        rng.shuffle(values)
        p_values.append(numeric_drift(values[:2000], values[2000:]).p_value)
    assert np.mean(np.array(p_values) < 0.01) <= 0.03


# --- MultivariateDrift: the domain classifier's AUC against its null -------------------------


def _auc(scores_reference: np.ndarray, scores_data: np.ndarray) -> float:
    """The AUC of scores telling data (positive) from reference rows, ties counted half."""
    greater = (scores_data[:, None] > scores_reference[None, :]).mean()
    ties = (scores_data[:, None] == scores_reference[None, :]).mean()
    return float(greater + ties / 2)


@pytest.mark.parametrize(
    ("n1", "n2", "levels"), [(15, 15, 0), (60, 60, 0), (300, 300, 0), (60, 200, 4)]
)
def test_auc_on_clean_held_out_rows_is_significant_in_at_most_alpha_of_runs(
    n1: int, n2: int, levels: int
) -> None:
    rng = np.random.default_rng(n1 + n2 + levels)

    def scores(n: int) -> np.ndarray:
        # A shallow tree scores in few levels: many ties, which only make the test stricter.
        values = rng.normal(size=n)
        return np.round(values * levels) if levels else values

    p_values = [auc_p_value(_auc(scores(n1), scores(n2)), n1, n2) for _ in range(1000)]
    assert np.mean(np.array(p_values) < ALPHA) <= 0.02
    assert np.mean(np.array(p_values) < 0.1) <= 0.13


def test_auc_null_standard_error_is_the_mann_whitney_one() -> None:
    assert auc_null_se(300, 300) == pytest.approx(np.sqrt(601 / (12 * 300 * 300)))


def test_a_real_shift_passes_both_the_effect_and_the_significance() -> None:
    rng = np.random.default_rng(2)
    shifted = _auc(rng.normal(size=300), rng.normal(1.0, size=300))  # AUC about 0.76
    judged = decide_multivariate_drift(shifted, 300, 300, 0.25, ALPHA)
    assert judged.drifted and judged.p_value < 1e-6
    assert judged.effect == pytest.approx(2 * shifted - 1)


def test_a_large_auc_on_few_held_out_rows_is_not_drift() -> None:
    # 2*AUC-1 = 0.3 passes deepchecks' 0.25, but on 8 rows a side it is noise.
    assert not decide_multivariate_drift(0.65, 8, 8, 0.25, ALPHA).drifted
    # A tiny effect on a million rows is significant, and still under the threshold.
    assert not decide_multivariate_drift(0.51, 300_000, 300_000, 0.25, ALPHA).drifted


def test_multivariate_drift_is_skipped_below_the_size_at_which_the_threshold_is_noise() -> None:
    needed = multivariate_rows_needed(124, 54, 10_000, 0.25, ALPHA)
    assert needed is not None and needed > 124
    # At the size it names, a drift just past the threshold is significant.
    n1, n2 = held_out_sizes(needed, needed, 10_000)
    assert auc_p_value(0.5 + 0.25 / 2, n1, n2) < ALPHA
    assert multivariate_rows_needed(needed, needed, 10_000, 0.25, ALPHA) is None
    assert multivariate_rows_needed(needed - 1, needed, 10_000, 0.25, ALPHA) == needed
    assert held_out_sizes(1000, 200, 10_000) == (60, 60)

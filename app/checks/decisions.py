"""datagate's drift decisions: effect size AND family-wise significance, and when data is too small.

deepchecks scores drift with fixed effect-size thresholds that ignore sample size (KS >= 0.2 is
noise at 54 vs 124 rows, yet misses a 0.25 SD shift at 1,252 rows). Each rule here is one
function that states it; numpy and scipy only, so the rules are tested on thousands of synthetic
pairs in seconds (tests/checks/test_decisions.py). scipy is imported inside the functions that
use it: the API process imports this module through the engine's settings and must not load it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

# deepchecks' own minimum (FeatureDrift's min_samples): fewer non-null values on a side is no
# distribution to compare.
MIN_VALUES_PER_SIDE = 10
# A numeric column with this few distinct values is a list of counts: compared as categories,
# since rank tests lose their calibration on heavy ties.
MAX_DISTINCT_AS_NUMERIC = 20
# Chi-square's p-value is trusted where every cell expects at least this many rows; rarer
# categories are pooled into one bucket until it does.
MIN_EXPECTED_PER_CELL = 5.0

NUMERIC_METHOD = "Kolmogorov-Smirnov test; effect: Wasserstein distance / reference SD"
CATEGORICAL_METHOD = "chi-square test; effect: Jensen-Shannon distance (base 2)"

# FeatureLabelCorrelationChange: below this many rows on the smaller side, a PPS change of 0.2 is
# within the noise of two clean splits (measured on wine, diamonds: see docs/drift.md).
PPS_CHANGE_MIN_ROWS = 1_000


@dataclass(frozen=True)
class DriftTest:
    """One column compared: its effect size, its raw p-value, how both were measured."""

    effect: float
    p_value: float
    method: str
    n_reference: int
    n_data: int


@dataclass(frozen=True)
class DriftDecision:
    """The verdict on one column of a family, with the numbers it rests on."""

    drifted: bool
    effect: float
    p_value: float
    p_value_adjusted: float
    method: str
    n_reference: int
    n_data: int


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the order given.

    Rule: sort the m p-values ascending; the i-th smallest (0-based) is multiplied by (m - i),
    made non-decreasing along the order, and capped at 1. A column is significant at
    family-wise level alpha when its adjusted p-value is below alpha: the chance that any
    column of a clean pair is called significant is then at most alpha, whatever their
    dependence.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def treat_as_categorical(
    reference: pd.Series[Any], data: pd.Series[Any], categorical: bool
) -> bool:
    """A column is compared as categories when it is one, or is numeric with <= 20 values.

    Rule: non-numeric columns and numeric columns with at most MAX_DISTINCT_AS_NUMERIC distinct
    values over both sides go to the chi-square test; other numeric columns to the rank test.
    """
    if categorical or not (
        pd.api.types.is_numeric_dtype(reference) and pd.api.types.is_numeric_dtype(data)
    ):
        return True
    if pd.api.types.is_bool_dtype(reference) or pd.api.types.is_bool_dtype(data):
        return True
    values = np.concatenate([reference.to_numpy(dtype=float), data.to_numpy(dtype=float)])
    return len(np.unique(values[~np.isnan(values)])) <= MAX_DISTINCT_AS_NUMERIC


def numeric_drift(reference: NDArray[Any], data: NDArray[Any]) -> DriftTest:
    """Effect: Wasserstein distance in reference standard deviations. Test: Kolmogorov-Smirnov.

    Rule: the effect is W1(reference, data) / SD(reference) (the pooled SD where the reference
    is constant), so a pure mean shift of d SD scores d at any size. The p-value is the
    two-sample Kolmogorov-Smirnov test's, which stays valid (conservative) on tied values: the
    asymptotic Cramer-von Mises p-value does not, and on a clean random split of diamonds'
    `table` (51 distinct values in 3,000 rows) it fell under 0.001 in every permutation. At
    1,000 rows a side KS flags a 0.25 SD shift at the Holm level of ten columns in about 94%
    of runs.
    """
    from scipy import stats

    ref = np.asarray(reference, dtype=float)
    dat = np.asarray(data, dtype=float)
    # An infinity has no distance to anything: it would make the effect NaN and hide a shift.
    ref, dat = ref[np.isfinite(ref)], dat[np.isfinite(dat)]
    scale = float(np.std(ref, ddof=1)) if len(ref) > 1 else 0.0
    if scale == 0.0:
        both = np.concatenate([ref, dat])
        scale = float(np.std(both, ddof=1)) if len(both) > 1 else 0.0
    distance = float(stats.wasserstein_distance(ref, dat))
    effect = 0.0 if scale == 0.0 else distance / scale
    if np.ptp(np.concatenate([ref, dat])) == 0:
        p_value = 1.0
    else:
        p_value = float(stats.ks_2samp(ref, dat).pvalue)
    return DriftTest(effect, _clip(p_value), NUMERIC_METHOD, len(ref), len(dat))


def categorical_drift(reference: pd.Series[Any], data: pd.Series[Any]) -> DriftTest:
    """Effect: Jensen-Shannon distance of the category shares. Test: chi-square on the counts.

    Rule: the effect is the JS distance (base 2, 0 = same shares, 1 = disjoint) between the two
    sides' category shares: unlike Cramer's V it does not depend on how the rows split between
    the sides. The p-value is Pearson's chi-square test of the 2 x k table of counts, after
    pooling the rarest categories into one bucket until every cell expects at least
    MIN_EXPECTED_PER_CELL rows (the test's own validity condition); with one bucket left the
    p-value is 1.
    """
    ref_values = reference.astype(str).to_numpy()
    values = np.concatenate([ref_values, data.astype(str).to_numpy()])
    categories, codes = np.unique(values, return_inverse=True)
    counts = np.vstack(
        [
            np.bincount(codes[: len(ref_values)], minlength=len(categories)),
            np.bincount(codes[len(ref_values) :], minlength=len(categories)),
        ]
    ).astype(float)
    n_ref, n_data = counts.sum(axis=1)
    effect = _js_distance(counts[0] / n_ref, counts[1] / n_data)
    p_value = _chi_square_p(_pool_rare(counts))
    return DriftTest(effect, _clip(p_value), CATEGORICAL_METHOD, int(n_ref), int(n_data))


def rows_needed_to_tell(reference_rows: int, data_rows: int, level: float) -> int | None:
    """None when a column of these sizes can be judged; else the rows a side it needs.

    Rule: a column cannot be judged when either side has fewer than MIN_VALUES_PER_SIDE
    non-null values, or when even two completely separated samples of these sizes would not
    reach `level` (the strictest Holm level, alpha / columns): no difference, however large,
    could then be told from noise. The answer is the smallest equal size a side that could.
    """
    small = min(reference_rows, data_rows)
    if small >= MIN_VALUES_PER_SIDE and _separated_p(reference_rows, data_rows) < level:
        return None
    return _rows_for_level(level)


def decide_drift(
    tests: Mapping[str, DriftTest],
    max_effect: float,
    alpha: float,
    column_max_effect: Mapping[str, float] | None = None,
) -> dict[str, DriftDecision]:
    """A column drifts when its effect passes `max_effect` AND it is significant family-wise.

    Rule: Holm-adjust the p-values of all columns measured together (one family per check and
    run); a column drifts when effect > max_effect and adjusted p < alpha. Significance alone
    would flag trivia on big data; the effect size alone flags noise on small data. A column in
    `column_max_effect` is held to its own effect size; alpha stays one level for the family.
    """
    names = list(tests)
    adjusted = holm_adjust([tests[n].p_value for n in names])
    limits = column_max_effect or {}
    return {
        name: DriftDecision(
            drifted=tests[name].effect > limits.get(name, max_effect) and p_adj < alpha,
            effect=tests[name].effect,
            p_value=tests[name].p_value,
            p_value_adjusted=p_adj,
            method=tests[name].method,
            n_reference=tests[name].n_reference,
            n_data=tests[name].n_data,
        )
        for name, p_adj in zip(names, adjusted, strict=True)
    }


def pps_change_is_decidable(reference_rows: int, data_rows: int) -> bool:
    """FeatureLabelCorrelationChange is judged only with PPS_CHANGE_MIN_ROWS rows on each side.

    Rule: a predictive power score is a cross-validated tree's score; on a few hundred rows two
    clean splits of one table differ by 0.2 and more on some feature, so a PPS change can only
    be told from noise with at least PPS_CHANGE_MIN_ROWS rows on the smaller side. Below that
    the row is `skipped` with that size.
    """
    return min(reference_rows, data_rows) >= PPS_CHANGE_MIN_ROWS


def is_strong_predictor(pps: float, max_pps: float) -> bool:
    """FeatureLabelCorrelation on the data alone is informative: PPS >= max_pps is noted, never
    failed nor warned.

    Rule: a feature that predicts the label well is what a model is trained on; on one dataset
    it cannot be told from leakage. The row is `passed` with severity `info` and says so; the
    failing leakage check is FeatureLabelCorrelationChange, the PPS rising against the
    reference.
    """
    return pps >= max_pps


def _clip(p_value: float) -> float:
    return 1.0 if not math.isfinite(p_value) else min(1.0, max(0.0, p_value))


def _chi_square_p(counts: NDArray[Any]) -> float:
    """Pearson's chi-square test of homogeneity of a 2 x k table; 1 where k < 2."""
    from scipy import stats

    if counts.shape[1] < 2:
        return 1.0
    expected = np.outer(counts.sum(axis=1), counts.sum(axis=0)) / counts.sum()
    statistic = float(((counts - expected) ** 2 / expected).sum())
    return float(stats.chi2.sf(statistic, counts.shape[1] - 1))


def _js_distance(p: NDArray[Any], q: NDArray[Any]) -> float:
    mid = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log2(p / mid), 0.0)
        right = np.where(q > 0, q * np.log2(q / mid), 0.0)
    return float(math.sqrt(max(0.0, (left.sum() + right.sum()) / 2)))


def _pool_rare(counts: NDArray[Any]) -> NDArray[Any]:
    """Pool categories expecting under MIN_EXPECTED rows a side into one bucket (2 x k table)."""
    smaller_side = float((counts.sum(axis=1) / counts.sum()).min())
    expected = counts.sum(axis=0) * smaller_side
    rare = expected < MIN_EXPECTED_PER_CELL
    kept = counts[:, ~rare]
    bucket = counts[:, rare].sum(axis=1)
    if bucket.sum() == 0:
        return kept
    if bucket.sum() * smaller_side >= MIN_EXPECTED_PER_CELL or kept.shape[1] == 0:
        return np.column_stack([kept, bucket])
    # A bucket still too small joins the rarest category kept.
    kept = kept.copy()
    kept[:, int(np.argmin(kept.sum(axis=0)))] += bucket
    return kept


@lru_cache(maxsize=256)
def _separated_p(reference_rows: int, data_rows: int) -> float:
    """The smallest p-value the rank test can give at these sizes: all data above the reference."""
    from scipy import stats

    if min(reference_rows, data_rows) < 2:
        return 1.0
    ref = np.arange(reference_rows, dtype=float)
    dat = np.arange(reference_rows, reference_rows + data_rows, dtype=float)
    return float(stats.ks_2samp(ref, dat).pvalue)


@lru_cache(maxsize=64)
def _rows_for_level(level: float) -> int:
    rows = MIN_VALUES_PER_SIDE
    while _separated_p(rows, rows) >= level:
        rows += 1
    return rows


@dataclass(frozen=True)
class TooSmall:
    """A column the data is too small to judge, and the rows a side it would need."""

    reason: str
    rows_needed: int


def judge_drift(
    reference: pd.DataFrame,
    data: pd.DataFrame,
    columns: Sequence[str],
    categorical: set[str],
    max_effect: float,
    alpha: float,
    column_max_effect: Mapping[str, float] | None = None,
) -> dict[str, DriftDecision | TooSmall]:
    """Every column of `columns` judged: measured and decided as one family, or too small.

    Rule: nulls are left out on each side; a column passes `rows_needed_to_tell` at the
    strictest Holm level (alpha / number of columns) or is TooSmall; the others are tested
    (`treat_as_categorical` picks the test) and decided together by `decide_drift`.
    """
    level = alpha / max(1, len(columns))
    judged: dict[str, DriftDecision | TooSmall] = {}
    tests: dict[str, DriftTest] = {}
    for column in columns:
        ref, dat = reference[column].dropna(), data[column].dropna()
        needed = rows_needed_to_tell(len(ref), len(dat), level)
        if needed is not None:
            judged[column] = TooSmall(
                f"too few non-null values to tell drift from noise ({len(ref)} in the reference, "
                f"{len(dat)} in the data); needs at least {needed} on each side",
                needed,
            )
            continue
        if treat_as_categorical(ref, dat, column in categorical):
            tests[column] = categorical_drift(ref, dat)
        else:
            tests[column] = numeric_drift(ref.to_numpy(), dat.to_numpy())
    judged.update(decide_drift(tests, max_effect, alpha, column_max_effect))
    return {column: judged[column] for column in columns}


# MultivariateDrift: deepchecks' domain classifier is evaluated on this share of the rows it
# samples (its `test_size`), split evenly between the two datasets.
DOMAIN_CLASSIFIER_TEST_SIZE = 0.3
MULTIVARIATE_METHOD = (
    "domain classifier AUC on its held-out rows; test: normal approximation of the AUC under "
    "no drift; effect: 2*AUC-1"
)


@dataclass(frozen=True)
class MultivariateDecision:
    """The verdict on the domain classifier, with the numbers it rests on."""

    drifted: bool
    effect: float
    auc: float
    p_value: float
    held_out_reference: int
    held_out_data: int


def auc_null_se(n_reference: int, n_data: int) -> float:
    """The standard error of an AUC on n_reference vs n_data held-out rows when nothing drifted.

    Under no drift the held-out rows' scores are exchangeable between the two sides, so the
    AUC is the Mann-Whitney statistic / (n1 n2), of mean 1/2 and variance
    (n1 + n2 + 1) / (12 n1 n2). Tied scores (a shallow boosted tree gives many) only lower the
    variance, so this errs on the side of calling less drift.
    """
    return math.sqrt((n_reference + n_data + 1) / (12 * n_reference * n_data))


def auc_p_value(auc: float, n_reference: int, n_data: int) -> float:
    """One-sided p-value of a domain classifier's held-out AUC against 1/2 (no drift).

    Rule: z = (AUC - 1/2) / auc_null_se, p = 1 - Phi(z). One-sided: a classifier that does
    worse than chance on held-out rows is noise, not drift.
    """
    from scipy import stats

    z = (auc - 0.5) / auc_null_se(n_reference, n_data)
    return _clip(float(stats.norm.sf(z)))


def held_out_sizes(reference_rows: int, data_rows: int, n_samples: int) -> tuple[int, int]:
    """The held-out rows per side of deepchecks' domain classifier at these sizes.

    deepchecks samples min(reference, data, n_samples) rows from each side, and holds out
    ceil(DOMAIN_CLASSIFIER_TEST_SIZE * both) of them, stratified: about half from each side.
    """
    per_side = min(reference_rows, data_rows, n_samples)
    held_out = math.ceil(DOMAIN_CLASSIFIER_TEST_SIZE * 2 * per_side)
    return held_out // 2, held_out - held_out // 2


def multivariate_rows_needed(
    reference_rows: int, data_rows: int, n_samples: int, max_effect: float, alpha: float
) -> int | None:
    """None when MultivariateDrift can be judged at these sizes; else the rows a side it needs.

    Rule: the check is judged when a drift just past the effect threshold (AUC = 1/2 +
    max_effect / 2; a perfect classifier where the threshold is 0) would be significant at
    `alpha` on the held-out rows, and each side holds out at least MIN_VALUES_PER_SIDE rows.
    Below that no drift that matters could be told from noise; the answer is the smallest
    number of rows a side that could.
    """
    target = 0.5 + max_effect / 2 if 0 < max_effect < 1 else 1.0

    def decidable(rows: int) -> bool:
        n1, n2 = held_out_sizes(rows, rows, n_samples)
        return min(n1, n2) >= MIN_VALUES_PER_SIDE and auc_p_value(target, n1, n2) < alpha

    n1, n2 = held_out_sizes(reference_rows, data_rows, n_samples)
    if min(n1, n2) >= MIN_VALUES_PER_SIDE and auc_p_value(target, n1, n2) < alpha:
        return None
    rows = MIN_VALUES_PER_SIDE
    while not decidable(rows) and rows < n_samples:
        rows += 1
    return rows


def decide_multivariate_drift(
    auc: float, n_reference: int, n_data: int, max_effect: float, alpha: float
) -> MultivariateDecision:
    """The data drifts as a whole when 2*AUC-1 passes `max_effect` AND the AUC is significant.

    Rule: effect = max(0, 2*AUC-1) (deepchecks' drift score) on the domain classifier's
    held-out rows; drifted when effect > max_effect and auc_p_value < alpha. The effect
    threshold alone (deepchecks' 0.25) is noise on a few dozen held-out rows.
    """
    effect = max(0.0, 2 * auc - 1)
    p_value = auc_p_value(auc, n_reference, n_data)
    return MultivariateDecision(
        drifted=effect > max_effect and p_value < alpha,
        effect=effect,
        auc=auc,
        p_value=p_value,
        held_out_reference=n_reference,
        held_out_data=n_data,
    )

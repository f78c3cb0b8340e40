"""Integrity relative to the reference: a batch fails where it is worse than the reference's
own level beyond sampling noise, not on facts both share.

deepchecks judges IsSingleValue, ConflictingLabels, DataDuplicates, MixedNulls and
TrainTestSamplesMix on absolute thresholds, so a table of 24 distinct rows (titanic) fails the
samples mix on every clean split, and a column constant in the reference fails IsSingleValue in
every batch. The exact values still come from app/checks/exact_checks.py (deepchecks'
definitions, over every row); the rules that judge them against the reference are the named
functions below, tested on synthetic data in tests/checks/test_reference_levels.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from app.checks.allowance import outside_allowance
from app.checks.exact_checks import (
    ExactInputs,
    ExactResult,
    column_codes,
    conflicting_labels,
    group_sizes,
    mixed_nulls,
)

# The false-alarm rate each rule allows a clean batch, per check (per column for the
# per-column checks): fixed, so that only the effect thresholds are configuration.
INTEGRITY_ALPHA = 0.01

# The key under which a judged value carries its verdicts, beside deepchecks' value.
DATAGATE_KEY = "datagate"
VALUE_KEY = "deepchecks"

# The checks judged here when a reference is given.
RELATIVE_CHECKS = (
    "TrainTestSamplesMix",
    "DataDuplicates",
    "ConflictingLabels",
    "IsSingleValue",
    "MixedNulls",
    "NewCategoryTrainTest",
    "NewLabelTrainTest",
)


@dataclass(frozen=True)
class RateVerdict:
    """A count of data rows judged against the share the reference leads one to expect."""

    failed: bool
    ratio: float
    expected_ratio: float
    allowed: int
    count: int


@dataclass(frozen=True)
class Judged:
    """One row's verdict: what was observed, whether it fails, and why a flagged fact does not."""

    column: str | None
    observed: dict[str, Any]
    failed: bool
    # Set when deepchecks' absolute rule would flag the row but the reference explains it.
    note: str | None = None


def allowed_count(n: int, expected_share: float, reference_rows: int, alpha: float) -> int:
    """Rule: the count of `n` data rows a clean batch may show, given the reference's share.

    The share was measured on `reference_rows` rows, so it is uncertain: it is taken as
    Beta(k + 1, N - k + 1), k = share * N (the Laplace rule: a reference with no such row still
    admits a small share), and the count in a clean batch as beta-binomial
    (app/checks/allowance.py, outside_allowance). The allowance is the count a clean batch
    exceeds with probability at most `alpha`.
    """
    weight = reference_rows + 2
    share = (expected_share * reference_rows + 1) / weight
    return outside_allowance(n, share, weight, alpha)


def beyond_reference(
    count: int,
    n: int,
    expected_share: float,
    reference_rows: int,
    max_excess: float,
    alpha: float,
) -> RateVerdict:
    """Rule: `count` of `n` rows fails when it passes the allowance AND the excess share over
    the reference's (count / n - expected_share) is above `max_excess`.

    The allowance is the significance (`allowed_count`): a clean batch fails with probability
    at most `alpha`. `max_excess` is the effect size that matters (0 flags any significant
    excess): on a million rows a 0.1% rise is significant and nobody wants that gate to fail.
    """
    allowed = allowed_count(n, expected_share, reference_rows, alpha)
    ratio = count / n if n else 0.0
    failed = count > allowed and ratio - expected_share > max_excess
    return RateVerdict(failed, ratio, expected_share, allowed, count)


def expected_duplicate_share(sizes: NDArray[Any], n: int) -> float:
    """Rule: the duplicate ratio (1 - distinct / rows) a clean batch of `n` rows would show,
    estimated from the reference's groups of equal rows (`sizes`, one count per distinct row).

    Up to the reference's size N, a clean batch is taken as a random subsample of the
    reference: a group of c rows is missing from n of N rows with chance
    C(N - c, n) / C(N, n) (hypergeometric), so E[distinct] = sum over groups of
    1 - C(N - c, n) / C(N, n). A discrete table shows fewer duplicates in a small batch than in
    its reference, and this is the fair level. Past N the distinct rows are extrapolated with
    Chao et al. (2014)'s estimator, `extrapolated_distinct`, which counts the rows a larger
    batch would see that the reference has not.
    """
    from scipy.special import gammaln

    sizes = np.asarray(sizes, dtype=float)
    total = float(sizes.sum())
    if n <= 0 or total == 0:
        return 0.0
    if n >= total:
        return max(0.0, 1.0 - extrapolated_distinct(sizes, n) / n)
    rest = total - sizes
    fits = rest >= n
    log_missing = (
        gammaln(rest[fits] + 1)
        - gammaln(rest[fits] - n + 1)
        - gammaln(total + 1)
        + gammaln(total - n + 1)
    )
    missing = np.zeros_like(sizes)
    missing[fits] = np.exp(log_missing)
    distinct = float((1.0 - missing).sum())
    return max(0.0, 1.0 - distinct / n)


def extrapolated_distinct(sizes: NDArray[Any], n: int) -> float:
    """The distinct rows expected in a clean batch of n >= N rows, N the reference's rows.

    Rule (Chao et al. 2014, "Rarefaction and extrapolation with Hill numbers"): with f1 and f2
    the reference's rows seen once and twice, the rows not yet seen number
    f0 = (N - 1) / N * f1^2 / (2 f2) (f1 (f1 - 1) / 2 where f2 = 0), and a batch m = n - N
    rows larger sees S + f0 * (1 - (1 - f1 / (N f0 + f1))^m) distinct rows. A reference of
    distinct rows (continuous measurements) extrapolates to distinct rows; one whose rows all
    recur (a few categories) to no new rows.
    """
    sizes = np.asarray(sizes, dtype=float)
    total = float(sizes.sum())
    seen = float(len(sizes))
    f1, f2 = float((sizes == 1).sum()), float((sizes == 2).sum())
    if f1 == 0 or n <= total:
        return seen
    shrink = (total - 1) / total
    unseen = shrink * (f1 * f1 / (2 * f2) if f2 > 0 else f1 * (f1 - 1) / 2)
    if unseen <= 0:
        return seen
    step = f1 / (total * unseen + f1)
    return seen + unseen * (1 - float((1 - step) ** (n - total)))


def expected_mix_share(sizes: NDArray[Any]) -> float:
    """Rule: the share of a clean batch's rows expected to be found in the reference.

    Estimated leave-one-out from the reference's groups of equal rows (`sizes`): the share of
    reference rows whose row occurs again among the other reference rows, i.e. in groups of
    two or more. A table of a few distinct rows (titanic: 24) has every row in the reference
    naturally; a table of continuous measurements almost none.
    """
    sizes = np.asarray(sizes)
    total = int(sizes.sum())
    return float(sizes[sizes > 1].sum()) / total if total else 0.0


def constant_chance(value_rows: int, reference_rows: int, n: int) -> float:
    """Rule: the chance that `n` clean values are all the value the reference holds
    `value_rows` of `reference_rows` times.

    The value's share is taken as Beta(value_rows + 1, reference_rows - value_rows + 1) and
    the answer is the beta-binomial chance of n out of n. A column constant in the reference
    too gives about (N + 1) / (N + n + 1): no failure. A value rare in the reference, or new,
    gives a chance below any alpha: a batch stuck on it fails.
    """
    from scipy import stats

    if n <= 0:
        return 1.0
    a = value_rows + 1
    b = reference_rows - value_rows + 1
    return float(stats.betabinom.pmf(n, n, a, b))


def unseen_share(values: pd.Series[Any], *, smoothed: bool = True) -> tuple[float, int]:
    """Rule (Good-Turing): the share of a clean batch's values that the reference never holds.

    A reference of N values in which f1 values occur exactly once leaves about f1 / N of the
    population's mass unseen: a clean batch drawn like it holds that share of values new to
    the reference. Four categories seen thousands of times leave none; a column of 38 car
    models in 234 rows, or a rare pixel intensity, leaves a few percent. The estimate is
    taken as (f1 + 1) / (N + 1): f1 is itself a noisy count, and plain f1 / N let clean splits
    of a 234-row table fail 3.3% of the time at alpha 1% (tests/checks/test_reference_levels.py).
    Returns (share, N), N the reference's non-null values; `smoothed=False` gives plain
    f1 / N (the inferred value sets: one unknown value fails a set whose every value recurs).
    """
    present = values.dropna()
    if isinstance(present.dtype, pd.CategoricalDtype):
        present = present.astype(object)
    counts = present.value_counts(sort=False)
    total = int(counts.sum())
    if total == 0:
        return 0.0, 0
    once = float((counts == 1).sum())
    return ((once + 1) / (total + 1) if smoothed else once / total), total


def _unseen_note(count: int, n: int, expected: float, verdict: RateVerdict) -> str:
    return (
        f"{count} of {n} rows hold values the reference lacks, but {expected:.2%} of the "
        "reference's own values occur only once in it (Good-Turing): a clean batch of this "
        f"size may hold up to {verdict.allowed} such rows: not a new failure"
    )


# --- the checks judged against the reference ------------------------------------------------


def judge_against_reference(
    name: str, inputs: ExactInputs, raw: ExactResult, limit: float
) -> ExactResult:
    """The exact check's result judged by datagate's rules.

    With a reference, the value becomes {"deepchecks": raw value, "datagate": [Judged, ...]}
    and the verdict is datagate's. Without one, the absolute rule stands; only DataDuplicates
    changes, from deepchecks' hard-coded warning to a failure.
    """
    if inputs.reference is None:
        return replace(raw, breach="FAIL") if name == "DataDuplicates" else raw
    judge = _JUDGES[name]
    judged = judge(inputs, raw, limit)
    failing = [j for j in judged if j.failed]
    if failing:
        where = ", ".join(str(j.column) for j in failing if j.column is not None)
        condition = "worse than the reference's own level beyond sampling noise" + (
            f": {where}" if where else ""
        )
    else:
        condition = "no worse than the reference's own level beyond sampling noise"
    value = {VALUE_KEY: raw.value, DATAGATE_KEY: judged}
    return ExactResult(value, not failing, condition, breach="FAIL")


def _reference_side(inputs: ExactInputs, columns: list[str]) -> ExactInputs:
    """The reference as a dataset of its own, over the `columns` it shares with the data."""
    assert inputs.reference is not None
    return ExactInputs(
        data=inputs.reference[columns],
        reference=None,
        features=[c for c in inputs.features if c in columns],
        categorical=[c for c in inputs.categorical if c in columns],
        label=inputs.label if inputs.label in columns else None,
        index=None,
        datetime=inputs.datetime if inputs.datetime in columns else None,
    )


def _rate_observed(verdict: RateVerdict, reference_ratio: float, key: str) -> dict[str, Any]:
    return {
        key: verdict.ratio,
        "rows": verdict.count,
        "reference_ratio": reference_ratio,
        "expected_ratio": verdict.expected_ratio,
        "allowed_rows": verdict.allowed,
        "alpha": INTEGRITY_ALPHA,
    }


def _judge_duplicates(inputs: ExactInputs, raw: ExactResult, limit: float) -> list[Judged]:
    assert inputs.reference is not None
    shared = [str(c) for c in inputs.data.columns if c in inputs.reference.columns]
    sizes = group_sizes(inputs, shared, side=1)
    n, reference_rows = len(inputs.data), int(sizes.sum())
    ratio = float(raw.value)
    duplicates = round(ratio * n)
    expected = expected_duplicate_share(sizes, n)
    verdict = beyond_reference(duplicates, n, expected, reference_rows, limit, INTEGRITY_ALPHA)
    reference_ratio = 1.0 - len(sizes) / reference_rows if reference_rows else 0.0
    observed = _rate_observed(verdict, reference_ratio, "duplicates_ratio")
    note = None
    if not verdict.failed and ratio > limit:
        note = (
            f"{ratio:.2%} duplicated rows is above {limit:.2%}, but a clean batch of {n} rows "
            f"of the reference would show {expected:.2%}: not a new failure"
        )
    return [Judged(None, observed, verdict.failed, note)]


def _judge_samples_mix(inputs: ExactInputs, raw: ExactResult, limit: float) -> list[Judged]:
    columns = inputs.features + ([inputs.label] if inputs.label is not None else [])
    sizes = group_sizes(inputs, columns, side=1)
    n, reference_rows = len(inputs.data), int(sizes.sum())
    found = round(float(raw.value["ratio"]) * n)
    expected = expected_mix_share(sizes)
    verdict = beyond_reference(found, n, expected, reference_rows, limit, INTEGRITY_ALPHA)
    observed = {
        **_rate_observed(verdict, expected, "ratio"),
        "duplicated_rows_shown": len(raw.value["data"]),
    }
    note = None
    if not verdict.failed and verdict.ratio > limit:
        note = (
            f"{verdict.ratio:.2%} of the data's rows are in the reference, but "
            f"{expected:.2%} of the reference's own rows recur within it ({len(sizes)} distinct "
            "rows): a clean split of the same table shares as many"
        )
    return [Judged(None, observed, verdict.failed, note)]


def _judge_conflicting_labels(inputs: ExactInputs, raw: ExactResult, limit: float) -> list[Judged]:
    assert inputs.reference is not None
    columns = [*inputs.features, *([inputs.label] if inputs.label is not None else [])]
    reference_side = _reference_side(inputs, columns)
    reference_ratio = float(
        conflicting_labels(reference_side, limit).value["percent_of_conflicting_samples"]
    )
    n, reference_rows = len(inputs.data), len(inputs.reference)
    ratio = float(raw.value["percent_of_conflicting_samples"])
    count = round(ratio * n)
    verdict = beyond_reference(count, n, reference_ratio, reference_rows, limit, INTEGRITY_ALPHA)
    observed = {
        **_rate_observed(verdict, reference_ratio, "conflicting_ratio"),
        "conflicting_groups": int(raw.value["conflicting_groups"]),
    }
    note = None
    if not verdict.failed and ratio > limit:
        note = (
            f"{ratio:.2%} of rows have conflicting labels, the reference {reference_ratio:.2%}: "
            "the same features with different labels are a fact of this table, not a new failure"
        )
    return [Judged(None, observed, verdict.failed, note)]


def _judge_single_value(inputs: ExactInputs, raw: ExactResult, limit: float) -> list[Judged]:
    assert inputs.reference is not None
    judged = []
    for col, distinct in raw.value.items():
        observed: dict[str, Any] = {"distinct_values": int(distinct)}
        if int(distinct) != 1 or col not in inputs.reference.columns:
            judged.append(Judged(col, observed, int(distinct) == 1))
            continue
        data_codes, ref_codes = column_codes(inputs, col)
        assert ref_codes is not None
        present = inputs.data[col].notna().to_numpy()
        value_code = data_codes[present][0]
        ref_present = ref_codes[inputs.reference[col].notna().to_numpy()]
        value_rows = int((ref_present == value_code).sum())
        n = int(present.sum())
        share = value_rows / len(ref_present) if len(ref_present) else 0.0
        chance = constant_chance(value_rows, len(ref_present), n)
        failed = chance < INTEGRITY_ALPHA
        observed.update(
            {
                "reference_distinct_values": len(pd.unique(ref_present)),
                "reference_share_of_value": share,
                "chance_if_clean": chance,
                "alpha": INTEGRITY_ALPHA,
            }
        )
        note = None
        if not failed:
            note = (
                f"constant in the data, and its value is {share:.2%} of "
                f"the reference: {n} clean values are all that value with chance {chance:.2g}"
            )
        judged.append(Judged(col, observed, failed, note))
    return judged


def _judge_mixed_nulls(inputs: ExactInputs, raw: ExactResult, limit: float) -> list[Judged]:
    assert inputs.reference is not None
    shared = [str(c) for c in inputs.data.columns if c in inputs.reference.columns]
    reference_kinds = mixed_nulls(_reference_side(inputs, shared), limit).value["columns"]
    n, reference_rows = len(inputs.data), len(inputs.reference)
    judged = []
    for col, kinds in raw.value["columns"].items():
        observed: dict[str, Any] = {"null_types": {k: int(v["count"]) for k, v in kinds.items()}}
        too_many = len(kinds) > limit
        if col not in reference_kinds:
            judged.append(Judged(col, observed, too_many))
            continue
        known = reference_kinds[col]
        new_rows = sum(int(v["count"]) for k, v in kinds.items() if k not in known)
        # A kind the reference never had: its share there is 0 of N rows.
        allowed = allowed_count(n, 0.0, reference_rows, INTEGRITY_ALPHA)
        failed = too_many and new_rows > allowed
        observed.update(
            {
                "reference_null_types": {k: int(v["count"]) for k, v in known.items()},
                "rows_with_new_null_types": new_rows,
                "allowed_rows": allowed,
                "alpha": INTEGRITY_ALPHA,
            }
        )
        note = None
        if too_many and not failed:
            note = (
                f"{len(kinds)} kinds of null, above {limit:g}, but the reference holds "
                + ("the same kinds" if new_rows == 0 else f"all but {new_rows} rows' kinds")
                + ": not a new failure"
            )
        judged.append(Judged(col, observed, failed, note))
    return judged


def _judge_new_category(inputs: ExactInputs, raw: ExactResult, limit: float) -> list[Judged]:
    assert inputs.reference is not None
    n = len(inputs.data)
    judged = []
    for col, row in raw.value.iterrows():
        ratio = float(row["Ratio of New Categories"])
        # From the ratio: over a SQL batch the count is the database's, the frames a sample.
        count = round(ratio * n)
        expected, reference_rows = unseen_share(inputs.reference[col])
        verdict = beyond_reference(count, n, expected, reference_rows, limit, INTEGRITY_ALPHA)
        observed = {
            "new_category_ratio": ratio,
            "expected_ratio": expected,
            "allowed_rows": verdict.allowed,
            "alpha": INTEGRITY_ALPHA,
        }
        note = None
        if not verdict.failed and ratio > limit:
            note = _unseen_note(count, n, expected, verdict)
        judged.append(Judged(str(col), observed, verdict.failed, note))
    return judged


def _judge_new_label(inputs: ExactInputs, raw: ExactResult, limit: float) -> list[Judged]:
    assert inputs.reference is not None and inputs.label is not None
    n = len(inputs.data)
    new_labels = len(raw.value["new_labels"])
    count = int(raw.value["n_new_labels_samples"])
    if raw.value["n_samples"] and raw.value["n_samples"] != n:
        count = round(count / raw.value["n_samples"] * n)
    expected, reference_rows = unseen_share(inputs.reference[inputs.label])
    # The effect is deepchecks' own: more new labels than `limit`; the count of rows holding
    # them must also pass what a clean batch shows.
    verdict = beyond_reference(count, n, expected, reference_rows, 0.0, INTEGRITY_ALPHA)
    failed = verdict.failed and new_labels > limit
    observed = {
        "expected_ratio": expected,
        "allowed_rows": verdict.allowed,
        "alpha": INTEGRITY_ALPHA,
    }
    note = None
    if not failed and new_labels > limit:
        note = _unseen_note(count, n, expected, verdict)
    return [Judged(None, observed, failed, note)]


_JUDGES: Mapping[str, Any] = {
    "TrainTestSamplesMix": _judge_samples_mix,
    "DataDuplicates": _judge_duplicates,
    "ConflictingLabels": _judge_conflicting_labels,
    "IsSingleValue": _judge_single_value,
    "MixedNulls": _judge_mixed_nulls,
    "NewCategoryTrainTest": _judge_new_category,
    "NewLabelTrainTest": _judge_new_label,
}


def rows_of(value: Any) -> list[Judged] | None:
    """The verdicts a judged value carries, or None for a plain deepchecks value."""
    if isinstance(value, dict) and VALUE_KEY in value and DATAGATE_KEY in value:
        judged: list[Judged] = value[DATAGATE_KEY]
        return judged
    return None

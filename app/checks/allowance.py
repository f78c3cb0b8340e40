"""Calibrated tolerances: how many values of a clean batch may fall outside an inferred bound.

An inferred expectation that tolerates a few misses (a range, a null rate) states, in its
`meta.datagate.allowance`, the share of values a clean batch is expected to miss by
(`p_outside`), how much reference data that share was estimated from (`weight`, in rows) and
the false-alarm rate it may cost (`alpha`). The number of misses it allows is decided when a
batch arrives, from that batch's size: a fixed `mostly` lets one value past the maximum fail a
batch of 50 rows, yet lets thousands through in a batch of a million.

The decision rules are the named functions below; tests/checks/test_allowance.py measures
their false-alarm rate on synthetic data where the truth is known, and their power.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

# Above this many values the beta-binomial quantile is taken from its beta limit (plus a
# binomial slack): scipy sums the mass function, which took 4 s at 10 million.
EXACT_LIMIT = 100_000

# The upper confidence level of a tail's scale estimated from the top order statistics.
SCALE_CONFIDENCE = 0.95


def outside_allowance(n: int, p_outside: float, weight: float, alpha: float) -> int:
    """Rule: a clean batch of `n` values may have at most this many outside the bound.

    The share outside is uncertain: it was estimated from `weight` reference rows, so it is
    taken as Beta(p * weight, (1 - p) * weight) and the count outside in a batch of `n` as
    beta-binomial. The allowance is the smallest count `c` with P(count > c) <= `alpha`: a
    clean batch of any size fails with probability at most `alpha`. With p = 2 / (m + 1) and
    weight m + 1 this is exact, without any assumption on the distribution, for the band
    between the minimum and maximum of m reference values (the coverage of that band is
    Beta(m - 1, 2)).
    """
    if n <= 0 or p_outside <= 0:
        return 0
    p = min(p_outside, 1.0)
    if p >= 1:
        return n
    # Imported here: the API process imports this module (through inference) but never decides.
    from scipy import stats

    a, b = p * weight, (1 - p) * weight
    if n <= EXACT_LIMIT:
        return int(stats.betabinom.isf(alpha, n, a, b))
    # For large n the share outside is the beta's; the binomial noise around it is a few
    # standard deviations, added so the limit errs on the side of allowing more.
    share = float(stats.beta.isf(alpha, a, b))
    slack = 4 * math.sqrt(n * share * (1 - share)) + 1
    return min(n, math.ceil(n * share + slack))


def mostly_for(n: int, allowance: int) -> float:
    """GE's `mostly` that lets exactly `allowance` of `n` values miss.

    Written as GE computes its own ratio ((n - misses) / n >= mostly), so the float rounding
    is the same on both sides.
    """
    if n <= 0:
        return 1.0
    return float(n - allowance) / float(n)


def tail_bound(values: np.ndarray[Any, Any], tail_share: float) -> tuple[float, float]:
    """Rule: the upper bound of a numeric band, and the share of clean values beyond it.

    The top j = ceil(m^(1/3)) of the m sorted values are taken as the tail (few, so that a
    heavy tail's widening spacings are seen, not averaged away): their excesses
    over the (j + 1)-th largest value u are fitted with an exponential of scale s, taken at
    its 95% upper confidence limit (2 j s_hat / s is chi-square with 2 j degrees of freedom).
    The bound is where that tail leaves `tail_share` / (m + 1) of the values beyond:
    u + s ln(j / tail_share), never below the maximum. The share beyond a bound at or past
    the maximum is at most 1 / (m + 1) whatever the distribution (one new value is the
    largest of m + 1 with that probability), and the tail model's smaller estimate is used
    when it has one. A tail whose top values are all equal (a bounded or discrete column)
    has no scale: the bound is the maximum, at 1 / (m + 1).

    The lower bound is the same rule applied to the negated values.
    """
    from scipy import stats

    ordered = np.sort(values.astype("float64"))
    m = ordered.size
    maximum = float(ordered[-1])
    if m < 3:
        return maximum, 1.0 / (m + 1)
    j = max(2, min(m - 1, math.ceil(m ** (1 / 3))))
    u = float(ordered[m - 1 - j])
    scale_hat = float(np.mean(ordered[m - j :] - u))
    if not scale_hat > 0 or not math.isfinite(scale_hat):
        return maximum, 1.0 / (m + 1)
    scale = 2 * j * scale_hat / float(stats.chi2.ppf(1 - SCALE_CONFIDENCE, 2 * j))
    bound = max(maximum, u + scale * math.log(j / tail_share))
    if not math.isfinite(bound):
        return maximum, 1.0 / (m + 1)
    return bound, share_beyond(bound, u, scale, j, m)


def far_bounds(
    values: np.ndarray[Any, Any], low: float, high: float, tail_share: float
) -> tuple[float, float]:
    """Rule: the band no clean value leaves, beyond the calibrated one (`low`, `high`).

    The calibrated band lets a batch have a few values outside it, as many as its size allows:
    right for a value a little past the reference's range, wrong for -999 or a value a thousand
    times too large on a handful of rows of a small batch. The far upper bound is the farthest
    of: the band pushed out by its own width (or by its magnitude where that is larger: a band
    far from zero); the tail rule (`tail_bound`) taken to FAR_TAIL_FACTOR of its share, so that
    a heavy tail's widening spacings push it out; and, for a column of positive values, the same
    two rules on the logarithms (a lognormal or power-law tail is light there). The far lower
    bound is the same on the negated values; a column with no negative value in the reference
    keeps 0 as its far lower bound: a negative value there is a defect whatever the scale.
    tests/checks/test_allowance.py measures how often a clean batch passes them.
    """
    far_high = _far_above(values, high - low, high, low, tail_share)
    far_low = -_far_above(-values, high - low, -low, -high, tail_share)
    if values.size and float(values.min()) > 0:
        logs = np.log(values)
        _, far_log_high = _far_transformed(logs, tail_share)
        far_high = max(far_high, math.exp(min(far_log_high, LOG_CAP)))
    if values.size and float(values.min()) >= 0:
        far_low = max(far_low, 0.0)
    return far_low, far_high


# The far bounds leave this share of the calibrated band's tail share beyond them.
FAR_TAIL_FACTOR = 1e-4
# exp() of more overflows a float.
LOG_CAP = 700.0


def _far_transformed(values: np.ndarray[Any, Any], tail_share: float) -> tuple[float, float]:
    """The far bounds of the calibrated band of `values` (already transformed)."""
    high, _ = tail_bound(values, tail_share)
    low = -tail_bound(-values, tail_share)[0]
    return -_far_above(-values, high - low, -low, -high, tail_share), _far_above(
        values, high - low, high, low, tail_share
    )


def _far_above(
    values: np.ndarray[Any, Any], width: float, high: float, low: float, tail_share: float
) -> float:
    spread = max(width, 0.5 * (abs(low) + abs(high)))
    return max(high + spread, tail_bound(values, tail_share * FAR_TAIL_FACTOR)[0])


def share_beyond(bound: float, u: float, scale: float, j: int, m: int) -> float:
    """The tail model's share of clean values beyond `bound`, capped at 1 / (m + 1)."""
    model = (j / (m + 1)) * math.exp(-(bound - u) / scale)
    return min(model, 1.0 / (m + 1))


def apply_allowances(
    expectations: Sequence[dict[str, Any]], df: pd.DataFrame
) -> list[dict[str, Any]]:
    """The expectations with `mostly` set for this batch where their meta holds an allowance.

    The count a rule applies to is GE's own denominator: the non-null values of the column for
    a range, all rows for a null rate. An expectation on a column the batch lacks is left as it
    is (it reports the missing column).
    """
    columns = {str(column): column for column in df.columns}
    resolved: list[dict[str, Any]] = []
    for expectation in expectations:
        rule = _allowance_of(expectation)
        column = expectation["kwargs"].get("column")
        if rule is None or not isinstance(column, str) or column not in columns:
            resolved.append(expectation)
            continue
        if expectation["type"] == "expect_column_values_to_not_be_null":
            n = len(df)
        else:
            n = int(df[columns[column]].notna().sum())
        allowed = outside_allowance(n, rule["p_outside"], rule["weight"], rule["alpha"])
        kwargs = {**expectation["kwargs"], "mostly": mostly_for(n, allowed)}
        resolved.append({**expectation, "kwargs": kwargs})
    return resolved


ALLOWANCE_KEYS = ("p_outside", "weight", "alpha")


def allowance_problem(expectation: Mapping[str, Any]) -> str | None:
    """What is wrong with an expectation's `meta.datagate.allowance`, or None (also when it
    has none). Checked wherever a suite is read, so a bad rule is refused, not ignored."""
    meta = expectation.get("meta")
    datagate = meta.get("datagate") if isinstance(meta, Mapping) else None
    if not isinstance(datagate, Mapping) or "allowance" not in datagate:
        return None
    rule = datagate["allowance"]
    if not isinstance(rule, Mapping) or set(rule) != set(ALLOWANCE_KEYS):
        return f"meta.datagate.allowance must be an object of {', '.join(ALLOWANCE_KEYS)}"
    values = [rule[key] for key in ALLOWANCE_KEYS]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "meta.datagate.allowance: p_outside, weight and alpha must be numbers"
    p_outside, weight, alpha = (float(v) for v in values)
    if not (0 <= p_outside <= 1 and 0 < weight < math.inf and 0 < alpha < 1):
        return (
            "meta.datagate.allowance needs 0 <= p_outside <= 1, a finite weight > 0 and "
            "0 < alpha < 1"
        )
    if expectation.get("type") not in ALLOWANCE_TYPES:
        return f"meta.datagate.allowance applies only to {', '.join(ALLOWANCE_TYPES)}"
    return None


# The expectations whose `mostly` an allowance sets (GE's denominator is known for them).
ALLOWANCE_TYPES = (
    "expect_column_values_to_be_between",
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_in_set",
)


def _allowance_of(expectation: Mapping[str, Any]) -> dict[str, float] | None:
    if allowance_problem(expectation) is not None:
        return None
    meta = expectation.get("meta")
    datagate = meta.get("datagate") if isinstance(meta, Mapping) else None
    if not isinstance(datagate, Mapping) or "allowance" not in datagate:
        return None
    return {key: float(datagate["allowance"][key]) for key in ALLOWANCE_KEYS}

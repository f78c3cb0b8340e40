"""The calibrated decision rules: false alarms at most alpha on clean synthetic batches of any
size, and planted defects caught."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from app.checks.allowance import (
    apply_allowances,
    far_bounds,
    mostly_for,
    outside_allowance,
    tail_bound,
)
from app.checks.expectations import parse_suite
from app.core.errors import SuiteInvalid

ALPHA = 0.01
BATCHES = 500
Draw = Callable[[np.random.Generator, int], np.ndarray]

DISTRIBUTIONS: dict[str, Draw] = {
    "normal": lambda rng, k: rng.normal(10, 2, size=k),
    "exponential": lambda rng, k: rng.exponential(3, size=k),
    "lognormal": lambda rng, k: rng.lognormal(0, 1, size=k),
    "uniform": lambda rng, k: rng.uniform(0, 1, size=k),
    "poisson": lambda rng, k: rng.poisson(3, size=k).astype("float64"),
}


def band(reference: np.ndarray) -> tuple[float, float, float]:
    """The numeric rule as inference applies it: both tails, shares added."""
    high, p_high = tail_bound(reference, 1.0)
    low, p_low = tail_bound(-reference, 1.0)
    return -low, high, p_low + p_high


def fails(reference: np.ndarray, batch: np.ndarray) -> bool:
    low, high, p_outside = band(reference)
    outside = int(((batch < low) | (batch > high)).sum())
    return outside > outside_allowance(batch.size, p_outside, reference.size + 1, ALPHA)


@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
@pytest.mark.parametrize("n", [20, 200, 5000])
def test_range_rule_false_alarm_rate_is_at_most_alpha(name: str, n: int):
    """500 (reference, clean batch) pairs from the same distribution: at most ~alpha fail.

    Each pair draws a new reference, so the rate covers the reference's own sampling noise.
    The bound allows two binomial standard errors over alpha (about 0.019 at 500 runs).
    """
    rng = np.random.default_rng(zlib.crc32(f"{name}/{n}".encode()))
    draw = DISTRIBUTIONS[name]
    failed = sum(fails(draw(rng, 400), draw(rng, n)) for _ in range(BATCHES))
    assert failed / BATCHES <= ALPHA + 2 * np.sqrt(ALPHA * (1 - ALPHA) / BATCHES)


@pytest.mark.parametrize("n", [20, 200, 5000])
def test_range_rule_catches_a_unit_change_on_a_tenth_of_the_rows(n: int):
    """Grams sent as kilograms in 10% of the rows: failed in at least 95% of batches."""
    rng = np.random.default_rng(n)
    caught = 0
    for _ in range(200):
        reference, batch = rng.normal(4000, 600, size=400), rng.normal(4000, 600, size=n)
        batch[: max(2, n // 10)] /= 1000
        caught += fails(reference, batch)
    assert caught / 200 >= 0.95


FAR_DISTRIBUTIONS: dict[str, Draw] = {
    **DISTRIBUTIONS,
    "lognormal_1.5": lambda rng, k: rng.lognormal(0, 1.5, size=k),
    "pareto_1.5": lambda rng, k: rng.pareto(1.5, size=k) + 1,
}


def passes_far(reference: np.ndarray, batch: np.ndarray) -> bool:
    low, high, _ = band(reference)
    if reference.min() >= 0 and low < 0:
        low = 0.0
    far_low, far_high = far_bounds(reference, low, high, 1.0)
    return bool(batch.min() >= far_low and batch.max() <= far_high)


@pytest.mark.parametrize("name", sorted(FAR_DISTRIBUTIONS))
@pytest.mark.parametrize(("m", "n"), [(50, 50), (50, 5000), (500, 5000)])
def test_far_bounds_pass_clean_batches_of_light_and_one_sided_heavy_tails(
    name: str, m: int, n: int
):
    """No allowance past the far bounds, so they must hold every clean value: at most 5% of
    200 clean batches fail them, a batch up to 100 times the reference included. (Heavy tails
    on both sides, Student's t with 3 degrees of freedom, do fail a batch 10 times the
    reference's size: docs/pipelines.md says so.)"""
    rng = np.random.default_rng(zlib.crc32(f"{name}/{m}/{n}".encode()))
    draw = FAR_DISTRIBUTIONS[name]
    failed = sum(not passes_far(draw(rng, m), draw(rng, n)) for _ in range(200))
    assert failed / 200 <= 0.05


@pytest.mark.parametrize("defect", ["sentinel", "x1000"])
@pytest.mark.parametrize("m", [50, 500])
def test_far_bounds_catch_a_sentinel_or_a_unit_change_on_four_rows_of_forty(defect: str, m: int):
    """4 of 40 rows set to -999 or multiplied by 1000 in a column like a temperature in degrees
    F (or a mass in g): the calibrated band may allow 4 of 40; the far bounds catch them."""
    rng = np.random.default_rng(m)
    caught = 0
    for _ in range(200):
        reference, batch = rng.normal(78, 9, size=m), rng.normal(78, 9, size=40)
        if defect == "sentinel":
            batch[:4] = -999.0
        else:
            batch[:4] *= 1000
        caught += not passes_far(reference, batch)
    assert caught == 200


@pytest.mark.parametrize("n", [200, 5000])
def test_range_rule_catches_a_three_sd_shift(n: int):
    rng = np.random.default_rng(n)
    caught = sum(fails(rng.normal(0, 1, size=1000), rng.normal(3, 1, size=n)) for _ in range(200))
    assert caught / 200 >= 0.95


def test_band_is_distribution_free_without_a_tail_scale():
    """Top values all equal (a bounded score): the band is the max, at 1 / (m + 1)."""
    reference = np.array([1.0, 2.0, 3.0, 4.0, 5.0] * 20)
    high, p_high = tail_bound(reference, 1.0)
    assert (high, p_high) == (5.0, 1 / 101)


@pytest.mark.parametrize("n", [20, 200, 5000])
def test_null_rule_false_alarm_rate_is_at_most_alpha(n: int):
    """A column null 5% of the time: the null count of clean batches passes at ~1 - alpha."""
    rng = np.random.default_rng(n)
    failed = 0
    for _ in range(BATCHES):
        nulls_ref = int(rng.binomial(400, 0.05))
        allowed = outside_allowance(n, (nulls_ref + 1) / 402, 402, ALPHA)
        failed += int(rng.binomial(n, 0.05)) > allowed
    assert failed / BATCHES <= ALPHA + 2 * np.sqrt(ALPHA * (1 - ALPHA) / BATCHES)


def test_null_rule_catches_a_quarter_of_nulls():
    rng = np.random.default_rng(1)
    allowed = outside_allowance(200, (20 + 1) / 402, 402, ALPHA)
    assert all(int(rng.binomial(200, 0.25)) > allowed for _ in range(100))


def test_allowance_grows_with_the_batch_but_its_share_shrinks():
    small, large = (
        outside_allowance(50, 0.01, 1001, ALPHA),
        outside_allowance(5000, 0.01, 1001, ALPHA),
    )
    assert small < large
    assert large / 5000 < small / 50
    # Past the exact limit the beta limit takes over, still at least the exact answer.
    assert outside_allowance(200_000, 0.01, 1001, ALPHA) >= 40 * large


def test_mostly_lets_exactly_the_allowance_miss():
    for n, allowed in [(7, 1), (113, 3), (99_991, 17)]:
        mostly = mostly_for(n, allowed)
        assert (n - allowed) / n >= mostly
        assert (n - allowed - 1) / n < mostly


def test_apply_allowances_sets_mostly_from_the_batch_size():
    rule = {"allowance": {"p_outside": 0.02, "weight": 101, "alpha": ALPHA}}
    expectations = [
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "x", "min_value": 0},
            "meta": {"datagate": rule},
        },
        {
            "type": "expect_column_values_to_not_be_null",
            "kwargs": {"column": "x"},
            "meta": {"datagate": rule},
        },
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "gone"},
            "meta": {"datagate": rule},
        },
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "x", "mostly": 0.5}},
    ]
    df = pd.DataFrame({"x": [1.0, None, 3.0, 4.0] * 25})
    between, not_null, gone, plain = apply_allowances(expectations, df)
    # Ranges count non-null values (75), null rates all rows (100), as GE does.
    assert between["kwargs"]["mostly"] == mostly_for(75, outside_allowance(75, 0.02, 101, ALPHA))
    assert not_null["kwargs"]["mostly"] == mostly_for(100, outside_allowance(100, 0.02, 101, ALPHA))
    assert gone is expectations[2] and plain is expectations[3]
    assert "mostly" not in expectations[0]["kwargs"]


@pytest.mark.parametrize(
    ("allowance", "named"),
    [
        ("lots", "must be an object"),
        ({"p_outside": 0.1, "weight": 10}, "must be an object of p_outside, weight, alpha"),
        ({"p_outside": "0.1", "weight": 10, "alpha": 0.01}, "must be numbers"),
        ({"p_outside": 0.1, "weight": 10, "alpha": 1.5}, "0 < alpha < 1"),
        ({"p_outside": 0.1, "weight": 0, "alpha": 0.01}, "weight > 0"),
    ],
)
def test_a_malformed_allowance_is_refused_when_the_suite_is_read(
    allowance: object, named: str
) -> None:
    suite = {
        "expectations": [
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "x", "min_value": 0},
                "meta": {"datagate": {"allowance": allowance}},
            }
        ]
    }
    with pytest.raises(SuiteInvalid, match=r"expectations\[0\].*allowance") as caught:
        parse_suite("s", json.dumps(suite), "inline", check=False)
    assert named in caught.value.message


def test_an_allowance_on_an_expectation_without_a_known_denominator_is_refused() -> None:
    rule = {"allowance": {"p_outside": 0.1, "weight": 10, "alpha": 0.01}}
    suite = {
        "expectations": [
            {
                "type": "expect_column_values_to_be_unique",
                "kwargs": {"column": "x"},
                "meta": {"datagate": rule},
            }
        ]
    }
    with pytest.raises(SuiteInvalid, match="applies only to"):
        parse_suite("s", json.dumps(suite), "inline", check=False)

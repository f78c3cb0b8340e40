"""The issue 12 scenario at 100k + 100k rows: every leak measured exactly, a clean pair passes."""

from __future__ import annotations

import functools

import pytest

from app.checks.deepchecks_engine import DeepchecksOutcome, DeepchecksSettings, run_deepchecks
from app.checks.exact_checks import EXACT_CHECKS
from app.reports.model import CheckResult
from tests.checks.leakage_scenario import (
    NEW_CATEGORY,
    NEW_CATEGORY_ROWS,
    ROLES,
    clean_pair,
    contaminated_pair,
)

ROWS = 100_000
# Far below the frames' size: were the set checks sampled, every ratio would shrink ~10-fold.
SETTINGS = DeepchecksSettings(checks=sorted(EXACT_CHECKS), max_rows_before_sampling=10_000)


@functools.cache
def _contaminated() -> tuple[DeepchecksOutcome, object]:
    reference, data, truth = contaminated_pair(ROWS)
    return run_deepchecks(data, reference, ROLES, SETTINGS), truth


def _row(outcome: DeepchecksOutcome, name: str, column: str | None = None) -> CheckResult:
    rows = [r for r in outcome.checks if r.name == name and r.column == column]
    assert len(rows) == 1, [(r.name, r.column) for r in outcome.checks]
    return rows[0]


@pytest.mark.parametrize(
    ("name", "key", "truth_field"),
    [
        ("TrainTestSamplesMix", "ratio", "samples_mix"),
        ("IndexTrainTestLeakage", "leakage_ratio", "index_leakage"),
        ("DateTrainTestLeakageOverlap", "leakage_ratio", "date_leakage"),
        ("DateTrainTestLeakageDuplicates", "leakage_ratio", "date_leakage"),
    ],
)
def test_each_leak_is_measured_within_a_thousandth_over_every_row_and_fails(
    name: str, key: str, truth_field: str
) -> None:
    outcome, truth = _contaminated()

    row = _row(outcome, name)

    assert row.observed[key] == pytest.approx(getattr(truth, truth_field), abs=0.001)
    assert row.outcome == "failed"
    assert row.details["method"] == "exact"
    assert row.details["rows_used"] == {"data": ROWS, "reference": ROWS}


def test_twenty_rows_of_a_new_category_are_named_counted_and_fail() -> None:
    outcome, _ = _contaminated()

    row = _row(outcome, "NewCategoryTrainTest", "cat_0")

    assert row.outcome == "failed"
    assert row.observed["new_categories"] == [NEW_CATEGORY]
    assert row.observed["rows_per_new_category"] == {NEW_CATEGORY: NEW_CATEGORY_ROWS}
    assert row.observed["new_category_ratio"] == pytest.approx(NEW_CATEGORY_ROWS / ROWS)
    assert _row(outcome, "NewCategoryTrainTest", "cat_1").outcome == "passed"


def test_clean_pair_with_rare_reference_categories_raises_no_leak() -> None:
    reference, data = clean_pair(ROWS)

    outcome = run_deepchecks(data, reference, ROLES, SETTINGS)

    not_passed = [
        (r.name, r.column, r.observed)
        for r in outcome.checks
        if r.outcome != "passed" and not r.details.get("reason", "").startswith("not applicable")
    ]
    assert not_passed == []
    assert _row(outcome, "NewCategoryTrainTest", "cat_1").observed["new_categories"] == []
    assert _row(outcome, "TrainTestSamplesMix").observed["ratio"] == 0.0

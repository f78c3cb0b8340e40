"""The detection benchmark's planted defects are what their names say, and touch nothing else."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.detection_data import DEFECTS, Dataset, Split, clean_split, plant, resampled, targets


def _frame(rows: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    return pd.DataFrame(
        {
            "size": rng.normal(10, 2, rows),
            "weight": rng.normal(100, 5, rows),
            "count": rng.integers(0, 50, rows),
            "colour": rng.choice(["red", "green", "blue"], rows),
            "day": pd.date_range("2024-01-01", periods=rows, freq="D"),
            "label": rng.choice(["yes", "no"], rows),
        }
    )


DATASET = Dataset("toy", _frame, "held-out", label="label", datetime="day")


@pytest.fixture
def split() -> Split:
    return clean_split(DATASET, _frame(), seed=0)


def test_a_dated_split_is_chronological_and_keeps_90_percent_of_rows(split: Split) -> None:
    assert split.chronological
    assert len(split.train) + len(split.test) == 360
    assert len(split.train) == 288  # 80% on an even seed
    assert split.train["day"].max() < split.test["day"].min()


def test_an_undated_split_is_random_and_disjoint() -> None:
    undated = Dataset("toy", _frame, "held-out", label="label")
    split = clean_split(undated, _frame(), seed=1)
    assert not split.chronological
    assert (len(split.train), len(split.test)) == (280, 120)  # 70/30 on an odd seed
    assert not set(split.train["size"]) & set(split.test["size"])


def test_targets_pick_the_richest_numeric_column_and_a_category(split: Split) -> None:
    chosen = targets(DATASET, split.train)
    assert chosen.numeric in ("size", "weight")
    assert chosen.other_numeric not in (None, chosen.numeric)
    assert chosen.categorical == "colour"


@pytest.mark.parametrize(
    "kind", [k for k in DEFECTS if k not in ("copied_rows", "duplicated_rows")]
)
def test_a_column_defect_changes_only_the_columns_it_names(kind: str, split: Split) -> None:
    planted = plant(kind, DATASET, split, seed=0)
    if planted is None:
        pytest.skip(f"{kind} does not apply to the toy data")
    assert planted.columns
    before, after = split.test, planted.test
    untouched = [c for c in before.columns if c not in planted.columns and c in after.columns]
    if kind == "label_shift":
        assert len(after) < len(before)
        return
    assert len(after) == len(before)
    pd.testing.assert_frame_equal(after[untouched], before[untouched])
    changed = [c for c in planted.columns if c in after.columns and c in before.columns]
    for column in changed:
        assert not after[column].equals(before[column]), column


def test_copied_rows_put_ten_percent_of_training_rows_in_the_test_part(split: Split) -> None:
    planted = plant("copied_rows", DATASET, split, seed=0)
    assert planted is not None
    assert len(planted.test) == len(split.test)
    copied = planted.test["size"].isin(split.train["size"]).sum()
    assert copied == round(0.1 * len(split.test))


def test_duplicated_rows_repeat_a_fifth_of_the_test_rows(split: Split) -> None:
    planted = plant("duplicated_rows", DATASET, split, seed=0)
    assert planted is not None
    extra = len(planted.test) - len(split.test)
    assert extra == round(0.2 * len(split.test))
    assert planted.test.duplicated().sum() == extra


def test_a_shift_moves_the_column_by_its_share_of_the_training_sd(split: Split) -> None:
    planted = plant("shift_0.5sd", DATASET, split, seed=0)
    assert planted is not None
    (column,) = planted.columns
    moved = planted.test[column] - split.test[column]
    sd = split.train[column].std()
    if pd.api.types.is_integer_dtype(split.test[column]):
        assert moved.mean() == pytest.approx(0.5 * sd, abs=0.5)
    else:
        assert moved.to_numpy() == pytest.approx(0.5 * sd)


def test_sentinels_and_unit_changes_keep_an_integer_column_integer() -> None:
    dataset = Dataset("ints", _frame, "held-out", label="label", numeric="count")
    split = clean_split(dataset, _frame(), seed=0)
    for kind in ("sentinel_values", "unit_change_10pct", "unit_change_all"):
        planted = plant(kind, dataset, split, seed=0)
        assert planted is not None
        assert planted.test["count"].dtype == split.test["count"].dtype, kind
    sentinel = plant("sentinel_values", dataset, split, seed=0)
    assert sentinel is not None
    assert (sentinel.test["count"] == -999).sum() == round(0.1 * len(split.test))


def test_look_ahead_dates_fall_inside_the_training_period(split: Split) -> None:
    planted = plant("look_ahead_dates", DATASET, split, seed=0)
    assert planted is not None
    early = planted.test["day"] <= split.train["day"].max()
    assert early.sum() == round(0.1 * len(split.test))


def test_planting_is_deterministic(split: Split) -> None:
    first = plant("case_variants", DATASET, split, seed=3)
    second = plant("case_variants", DATASET, split, seed=3)
    assert first is not None and second is not None
    pd.testing.assert_frame_equal(first.test, second.test)


def test_a_resampled_table_keeps_its_categories_and_roughly_its_moments() -> None:
    seed_table = _frame(200)
    big = resampled(seed_table, 5_000, seed=0, noise_sd=0.02)
    assert len(big) == 5_000
    assert set(big["colour"]) <= set(seed_table["colour"])
    assert big["count"].dtype == seed_table["count"].dtype
    assert big["size"].mean() == pytest.approx(seed_table["size"].mean(), rel=0.05)

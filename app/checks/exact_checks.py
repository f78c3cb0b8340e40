"""Set-based leakage checks answered exactly over every row of both datasets.

Each check keeps the name, the definition and the value shape of the deepchecks 0.19.1 check it
replaces, so the engine reads both alike; only the sampling is gone. deepchecks samples each
frame independently, which shrinks every overlap ratio by the sampling fraction: "is this row in
the other dataset?" has an exact answer, and it costs a factorisation per column, not a sample.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from pandas.api.types import is_integer_dtype

# deepchecks fills nulls with this string before grouping rows, so every null equals every other.
NULL_FILLER = "__deepchecks_na_filler__"


@dataclass(frozen=True)
class ExactInputs:
    """The two full frames and the roles the checks read, as the engine resolved them."""

    data: pd.DataFrame
    # None for the checks of the data alone (integrity).
    reference: pd.DataFrame | None
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
    # The category deepchecks' condition gives a breach: FAIL, or WARN for DataDuplicates.
    breach: Literal["FAIL", "WARN"] = "FAIL"


ExactCheck = Callable[[ExactInputs, float], ExactResult]


def _reference(inputs: ExactInputs) -> pd.DataFrame:
    if inputs.reference is None:
        raise ValueError("a train-test check needs a reference dataset")
    return inputs.reference


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
        # Half the memory of factorize's int64 codes, and no fewer distinct values.
        codes = codes.astype(np.int32) if len(stacked) < 2**31 else codes
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
    reference = _reference(inputs)
    found = rows_in_reference(inputs.data, reference, columns)
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
    reference = _reference(inputs)
    data_ids = pd.Series(inputs.data[inputs.index].dropna().unique())
    shared = data_ids[data_ids.isin(reference[inputs.index].dropna())]
    ratio = len(shared) / len(inputs.data)
    detail = f"Found {ratio:.2%} of index leakage" if ratio else "No index leakage found"
    return ExactResult(ratio, ratio <= max_ratio, detail)


def _dates(frame: pd.DataFrame, column: str) -> pd.Series[Any]:
    # deepchecks' Dataset converts its datetime column with pd.to_datetime before any check.
    return pd.to_datetime(frame[column])


def date_overlap(inputs: ExactInputs, max_ratio: float) -> ExactResult:
    """DateTrainTestLeakageOverlap: the share of data rows dated before the last reference date."""
    assert inputs.datetime is not None
    reference_dates = _dates(_reference(inputs), inputs.datetime)
    data_dates = _dates(inputs.data, inputs.datetime)
    last = reference_dates.max()
    leaked = int((data_dates < last).sum()) if not pd.isna(last) else 0
    ratio = leaked / len(inputs.data)
    detail = f"Found {ratio:.2%} leaked dates" if ratio else "No leakage found"
    return ExactResult(ratio, ratio <= max_ratio, detail)


def date_duplicates(inputs: ExactInputs, max_ratio: float) -> ExactResult:
    """DateTrainTestLeakageDuplicates: the share of data rows whose date is a reference date."""
    assert inputs.datetime is not None
    reference_dates = _dates(_reference(inputs), inputs.datetime)
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
    reference = _reference(inputs)
    for col in inputs.categorical:
        unseen = _unseen(inputs.data[col], reference[col])
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
    unseen = _unseen(inputs.data[inputs.label], _reference(inputs)[inputs.label])
    per_label = dict(unseen)
    value = {
        "n_samples": len(inputs.data),
        "n_new_labels_samples": sum(per_label.values()),
        "new_labels": _sorted(list(per_label)),
        "n_samples_per_new_label": per_label,
    }
    detail = f"Found {len(per_label)} new labels" if per_label else "No new labels found"
    return ExactResult(value, len(per_label) <= max_new, detail)


def string_mismatch(inputs: ExactInputs, max_ratio: float) -> ExactResult:
    """StringMismatchComparison: per string column, values of the data that share a base form
    (lower case, letters and digits only) with a reference value but are not themselves in the
    reference, as a share of the data's rows. Base forms are taken once per distinct value."""
    from deepchecks.utils.strings import get_base_form_to_variants_dict, is_string_column

    data = _as_dataset(inputs.data, inputs.datetime)
    reference = _as_dataset(_reference(inputs), inputs.datetime)
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for col in [c for c in data.columns if c in reference.columns]:
        tested, baseline = data[col], reference[col]
        if not is_string_column(tested) or not is_string_column(baseline):
            continue
        result[col] = {}
        tested_counts, baseline_counts = tested.value_counts(), baseline.value_counts()
        tested_forms = get_base_form_to_variants_dict(tested.unique())
        baseline_forms = get_base_form_to_variants_dict(baseline.unique())
        for form in set(tested_forms).intersection(baseline_forms):
            only_tested = tested_forms[form] - baseline_forms[form]
            if not only_tested:
                continue
            only_baseline = baseline_forms[form] - tested_forms[form]
            result[col][form] = {
                "commons": list(tested_forms[form] & baseline_forms[form]),
                "variants_only_in_test": list(only_tested),
                "variants_only_in_train": list(only_baseline),
                "percent_variants_only_in_test": _share(tested_counts, only_tested, len(tested)),
                "percent_variants_in_train": _share(baseline_counts, only_baseline, len(baseline)),
            }
    failing = [
        col
        for col, forms in result.items()
        if sum(info["percent_variants_only_in_test"] for info in forms.values()) > max_ratio
    ]
    detail = (
        f"Found {len(failing)} out of {len(result)} relevant columns with ratio of variants "
        f"above threshold: {failing}"
        if failing
        else "Passed for all relevant columns"
    )
    return ExactResult(result, not failing, detail)


def _share(counts: pd.Series[Any], values: set[Any], rows: int) -> float:
    # value_counts drops nulls, and a null is never a variant: every value is counted.
    return float(sum(int(counts[v]) for v in values)) / rows


# --- the data alone -------------------------------------------------------------------------


def _as_dataset(frame: pd.DataFrame, datetime: str | None) -> pd.DataFrame:
    """The frame as deepchecks' `Dataset.data` holds it: every column, the datetime parsed."""
    if datetime is None:
        return frame
    return frame.assign(**{datetime: pd.to_datetime(frame[datetime])})


def _categories_as_objects(frame: pd.DataFrame) -> pd.DataFrame:
    # deepchecks groups categorical columns as plain objects: no unused categories, no dtype clash.
    categorical = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    return frame.astype(dict.fromkeys(categorical, object)) if categorical else frame


def data_duplicates(inputs: ExactInputs, max_ratio: float) -> ExactResult:
    """DataDuplicates: 1 - distinct rows / rows, over every column, nulls equal to nulls.
    A breach is a warning, as in deepchecks."""
    frame = _categories_as_objects(_as_dataset(inputs.data, inputs.datetime))
    distinct = frame.groupby(list(frame.columns), dropna=False, sort=False).ngroups
    ratio = 1.0 - distinct / len(frame)
    detail = f"{ratio:.2%} of data samples are duplicates"
    return ExactResult(ratio, ratio <= max_ratio, detail, breach="WARN")


def conflicting_labels(inputs: ExactInputs, max_ratio: float) -> ExactResult:
    """ConflictingLabels: the share of rows whose features (nulls equal to nulls) recur in a
    row with another label. The value counts conflicting groups instead of listing indices."""
    assert inputs.label is not None
    frame = _categories_as_objects(inputs.data[[*inputs.features, inputs.label]])
    groups = frame.groupby(inputs.features, dropna=False, sort=False).ngroup()
    labels = pd.DataFrame({"group": groups.to_numpy(), "label": frame[inputs.label].to_numpy()})
    per_group = labels.groupby("group")["label"].nunique(dropna=False)
    conflicting = per_group.index[per_group > 1]
    in_conflict = int(np.isin(groups.to_numpy(), conflicting.to_numpy()).sum())
    ratio = in_conflict / len(frame)
    value = {"percent_of_conflicting_samples": ratio, "conflicting_groups": len(conflicting)}
    detail = f"Ambiguous sample ratio: {ratio:.2%}"
    return ExactResult(value, ratio <= max_ratio, detail)


def single_value(inputs: ExactInputs, _limit: float) -> ExactResult:
    """IsSingleValue: distinct non-null values per column; one is a failure."""
    frame = _as_dataset(inputs.data, inputs.datetime)
    value = {str(col): int(n) for col, n in frame.nunique(dropna=True).items()}
    single = [col for col, n in value.items() if n == 1]
    detail = f"Found {len(single)} columns with a single value: {single}" if single else "Passed"
    return ExactResult(value, not single, detail)


def _is_number(value: Any) -> bool:
    # deepchecks' test of a value in a string column: whatever float() accepts is a number.
    try:
        float(value)
    except ValueError:
        return False
    return True


def mixed_types(inputs: ExactInputs, _limit: float) -> ExactResult:
    """MixedDataTypes: per string column, the shares of non-null values that read as numbers
    and as strings. Each distinct value is tested once and weighed by its row count."""
    from deepchecks.utils.strings import is_string_column

    low, high = MIXED_TYPES_RANGE
    frame = _as_dataset(inputs.data, inputs.datetime)
    result: dict[str, dict[str, Any]] = {}
    warned = []
    for col in frame.columns:
        column = frame[col].dropna()
        result[str(col)] = {}
        if not is_string_column(column):
            continue
        counts = column.value_counts()
        numeric = np.array([_is_number(v) for v in counts.index], dtype=bool)
        total, numbers = int(counts.sum()), int(counts[numeric].sum())
        if numbers in (0, total):
            continue
        strings_share, numbers_share = (total - numbers) / total, numbers / total
        mix: dict[str, Any] = {
            "strings": strings_share,
            "numbers": numbers_share,
            "strings_examples": set(counts.index[~numeric][:3]),
            "numbers_examples": set(counts.index[numeric][:3]),
        }
        result[str(col)] = mix
        if low < min(strings_share, numbers_share) < high:
            warned.append(col)
    detail = (
        f"Found {len(warned)} out of {len(result)} columns with non-negligible quantities of "
        f"samples with a different data type from the majority of samples: {warned}"
        if warned
        else f"{len(result)} columns passed"
    )
    return ExactResult(result, not warned, detail, breach="WARN")


# deepchecks' default "danger zone" for the rarer type in a column; not a datagate threshold.
MIXED_TYPES_RANGE = (0.01, 0.1)


# The checks answered here, by their deepchecks names; every other check stays deepchecks.
EXACT_CHECKS: dict[str, ExactCheck] = {
    "TrainTestSamplesMix": samples_mix,
    "DateTrainTestLeakageOverlap": date_overlap,
    "DateTrainTestLeakageDuplicates": date_duplicates,
    "IndexTrainTestLeakage": index_leakage,
    "NewCategoryTrainTest": new_category,
    "NewLabelTrainTest": new_label,
    "StringMismatchComparison": string_mismatch,
    "DataDuplicates": data_duplicates,
    "ConflictingLabels": conflicting_labels,
    "IsSingleValue": single_value,
    "MixedDataTypes": mixed_types,
}

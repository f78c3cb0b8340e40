"""Set-based leakage checks answered exactly over every row of both datasets.

Each check keeps the name, the definition and the value shape of the deepchecks 0.19.1 check it
replaces, so the engine reads both alike; only the sampling is gone. deepchecks samples each
frame independently, which shrinks every overlap ratio by the sampling fraction: "is this row in
the other dataset?" has an exact answer, and it costs a factorisation per column, not a sample.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import pandas as pd

Codes = np.ndarray[Any, np.dtype[np.signedinteger[Any]]]

# The code every null gets: nulls equal to nulls, as deepchecks' filler value makes them.
NULL_CODE = -1


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
    # Per-column codes, factorised once a run and shared by every check that compares rows.
    codes: dict[str, tuple[Codes, Codes | None]] = field(
        default_factory=dict, compare=False, repr=False
    )
    # The value of each code, for the columns factorised (not plain numbers).
    uniques: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class ExactResult:
    """A check's value, in the shape deepchecks gives it, and its condition's verdict."""

    value: Any
    passed: bool
    condition: str
    # The category deepchecks' condition gives a breach: FAIL, or WARN for DataDuplicates.
    breach: Literal["FAIL", "WARN"] = "FAIL"


ExactCheck = Callable[[ExactInputs, float], ExactResult]


@dataclass(frozen=True)
class ExactRun:
    """A check answered elsewhere than on the frames (a SQL batch): its result, the rows it
    read on each side, and where it ran ("database", or "stream" for chunks read in turn)."""

    result: ExactResult
    rows_used: dict[str, int]
    where: Literal["database", "stream"]


class ExactSource(Protocol):
    """Answers exact checks over every row of batches the engine holds only samples of."""

    def run(self, name: str, inputs: ExactInputs, limit: float) -> ExactRun | None:
        """The check `name` over every row, or None to answer it on the frames instead."""
        ...


def _reference(inputs: ExactInputs) -> pd.DataFrame:
    if inputs.reference is None:
        raise ValueError("a train-test check needs a reference dataset")
    return inputs.reference


# --- rows of the data found in the reference ------------------------------------------------


def row_hashes(codes: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.uint64]]:
    """One 64-bit hash per row of per-column codes: a filter only, every match is confirmed."""
    return pd.util.hash_pandas_object(codes, index=False).to_numpy()


def column_codes(inputs: ExactInputs, col: str) -> tuple[Codes, Codes | None]:
    """(data, reference) codes of one column: one integer per value over both frames.

    `pd.factorize` over the two columns stacked compares values as deepchecks' `groupby` does
    (it is the same factorisation), so two rows' codes are equal exactly when their values
    are; every null kind (None, NaN, NaT, NA) is NULL_CODE. The reference side is None when the
    reference lacks the column. The datetime column is parsed first, as deepchecks' Dataset does.
    """
    if col not in inputs.codes:
        data = _dataset_column(inputs.data, col, inputs.datetime)
        reference = inputs.reference
        has_ref = reference is not None and col in reference.columns
        if has_ref:
            assert reference is not None
            stacked = pd.concat(
                [data, _dataset_column(reference, col, inputs.datetime)], ignore_index=True
            )
        else:
            stacked = data
        if _plain_numbers(stacked):
            codes = _number_codes(stacked)
        else:
            codes, uniques = pd.factorize(stacked, use_na_sentinel=True)
            # Kept as factorize gave them: boxing 1M timestamps as objects would cost seconds.
            inputs.uniques[col] = uniques
            # Half the memory of factorize's int64 codes, and no fewer distinct values.
            codes = codes.astype(np.int32) if len(stacked) < 2**31 else codes
        inputs.codes[col] = (codes[: len(data)], codes[len(data) :] if has_ref else None)
    return inputs.codes[col]


def _plain_numbers(column: pd.Series[Any]) -> bool:
    return column.dtype.kind in "iuf" and isinstance(column.dtype, np.dtype)


def _number_codes(column: pd.Series[Any]) -> Codes:
    """A number column's values (integers) or bit patterns (floats) as its codes: equal
    numbers, equal codes, and no hash table to build.

    Integers are their own codes and hold no nulls. For floats -0.0 becomes 0.0 (they are
    equal) and every NaN becomes NULL_CODE, whose bits are a NaN's, so no number can take it.
    """
    if column.dtype.kind in "iu":
        raw = column.to_numpy()
        # uint64 keeps its bits (values past 2**63 stay distinct); the rest widen to int64.
        ints: Codes = raw.view(np.int64) if raw.dtype == np.uint64 else raw.astype(np.int64)
        return ints
    values = column.to_numpy(dtype=np.float64, copy=True)
    values[values == 0] = 0.0
    codes = values.view(np.int64)
    codes[np.isnan(values)] = NULL_CODE
    return codes


def _dataset_column(frame: pd.DataFrame, col: str, datetime: str | None) -> pd.Series[Any]:
    # deepchecks' Dataset parses its datetime column with pd.to_datetime before any check.
    return pd.to_datetime(frame[col]) if col == datetime else frame[col]


def _codes_frame(inputs: ExactInputs, columns: list[str], side: int) -> pd.DataFrame:
    picked = {col: column_codes(inputs, col)[side] for col in columns}
    return pd.DataFrame(picked)


def rows_in_reference(
    inputs: ExactInputs, columns: list[str]
) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """For each data row, whether a reference row holds the same values in `columns`.

    Row hashes pick the candidates; each candidate is then joined to the reference on every
    column's code, so a hash collision can only cost time, never produce a false match.
    """
    _reference(inputs)
    data_codes = _codes_frame(inputs, columns, 0)
    ref_codes = _codes_frame(inputs, columns, 1)
    data_hash = row_hashes(data_codes)
    ref_hash = row_hashes(ref_codes)
    candidate = pd.Series(data_hash).isin(ref_hash).to_numpy()
    if not candidate.any():
        return candidate
    ref_side = ref_codes[pd.Series(ref_hash).isin(data_hash[candidate]).to_numpy()]
    data_side = data_codes[candidate].assign(_row=np.flatnonzero(candidate))
    joined = data_side.merge(ref_side.drop_duplicates(), on=columns, how="inner")
    found = np.zeros(len(data_codes), dtype=bool)
    found[joined["_row"].to_numpy()] = True
    return found


def samples_mix(inputs: ExactInputs, max_ratio: float) -> ExactResult:
    """TrainTestSamplesMix: the share of data rows whose features and label (nulls equal to
    nulls) appear in a reference row. `data` holds one row per distinct shared row."""
    columns = samples_mix_columns(inputs)
    found = rows_in_reference(inputs, columns)
    shared = inputs.data.loc[found, columns].drop_duplicates()
    return samples_mix_result(int(found.sum()), len(inputs.data), shared, max_ratio)


def samples_mix_columns(inputs: ExactInputs) -> list[str]:
    """The columns TrainTestSamplesMix compares: the features, then the label."""
    return inputs.features + ([inputs.label] if inputs.label is not None else [])


def samples_mix_result(
    found: int, rows: int, shared: pd.DataFrame, max_ratio: float, *, distinct: int | None = None
) -> ExactResult:
    """TrainTestSamplesMix's value from `found` data rows (of `rows`) seen in the reference.

    `shared` holds the distinct shared rows, or some of them when `distinct` counts them all
    (the database path counts them instead of bringing every one back).
    """
    ratio = float(found) / rows
    detail = (
        f"Percent of test data samples that appear in train data: {ratio:.2%}"
        if ratio
        else "No samples mix found"
    )
    value: dict[str, Any] = {"ratio": ratio, "data": shared}
    if distinct is not None:
        value["distinct_shared_rows"] = distinct
    return ExactResult(value, ratio <= max_ratio, detail)


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
    return index_leakage_result(len(shared), len(inputs.data), max_ratio)


def index_leakage_result(shared_ids: int, rows: int, max_ratio: float) -> ExactResult:
    """IndexTrainTestLeakage's value: `shared_ids` distinct shared ids over `rows` data rows."""
    ratio = shared_ids / rows
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
    return date_leakage_result(leaked, len(inputs.data), max_ratio)


def date_leakage_result(leaked: int, rows: int, max_ratio: float) -> ExactResult:
    """Either date check's value: `leaked` data rows over `rows`."""
    ratio = leaked / rows
    detail = f"Found {ratio:.2%} leaked dates" if ratio else "No leakage found"
    return ExactResult(ratio, ratio <= max_ratio, detail)


def date_duplicates(inputs: ExactInputs, max_ratio: float) -> ExactResult:
    """DateTrainTestLeakageDuplicates: the share of data rows whose date is a reference date."""
    assert inputs.datetime is not None
    reference_dates = _dates(_reference(inputs), inputs.datetime)
    data_dates = _dates(inputs.data, inputs.datetime)
    leaked = int(data_dates.isin(reference_dates).sum())
    return date_leakage_result(leaked, len(inputs.data), max_ratio)


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


def by_count(counts: pd.Series[Any]) -> list[tuple[Any, int]]:
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
    return by_count(unseen.value_counts(sort=False))


def new_category(inputs: ExactInputs, max_ratio: float) -> ExactResult:
    """NewCategoryTrainTest: per categorical feature, the share of data rows holding a value
    no reference row holds. The value also names each new category and its row count."""
    reference = _reference(inputs)
    unseen = {col: _unseen(inputs.data[col], reference[col]) for col in inputs.categorical}
    return new_category_result(unseen, len(inputs.data), max_ratio)


def new_category_result(
    unseen_by_column: dict[str, list[tuple[Any, int]]], rows: int, max_ratio: float
) -> ExactResult:
    """NewCategoryTrainTest's value from each categorical feature's unseen (value, rows) pairs,
    most rows first (`by_count`), over `rows` data rows."""
    records = []
    for col, unseen in unseen_by_column.items():
        count = sum(n for _, n in unseen)
        records.append(
            {
                "Feature Name": col,
                "# New Categories": len(unseen),
                "Ratio of New Categories": count / rows,
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
    return new_label_result(unseen, len(inputs.data), max_new)


def new_label_result(unseen: list[tuple[Any, int]], rows: int, max_new: float) -> ExactResult:
    """NewLabelTrainTest's value from the unseen (label, rows) pairs over `rows` data rows."""
    per_label = dict(unseen)
    value = {
        "n_samples": rows,
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

    data, reference = inputs.data, _reference(inputs)
    result: dict[str, dict[str, dict[str, Any]]] = {}
    for col in [c for c in data.columns if c in reference.columns]:
        tested = _dataset_column(data, col, inputs.datetime)
        baseline = _dataset_column(reference, col, inputs.datetime)
        if not is_string_column(tested) or not is_string_column(baseline):
            continue
        result[col] = {}
        tested_counts, baseline_counts = _value_counts(inputs, col)
        tested_forms = get_base_form_to_variants_dict(tested_counts.index)
        baseline_forms = get_base_form_to_variants_dict(baseline_counts.index)
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


def _value_counts(inputs: ExactInputs, col: str) -> tuple[pd.Series[Any], pd.Series[Any]]:
    """Rows per distinct non-null value of a factorised column, data side and reference side,
    counted on the codes (one bincount) rather than by hashing the values again."""
    data_codes, ref_codes = column_codes(inputs, col)
    # Only string columns come here: their values are Python objects already.
    uniques = np.asarray(inputs.uniques[col], dtype=object)

    def counts(codes: Codes | None) -> pd.Series[Any]:
        assert codes is not None
        rows = np.bincount(codes[codes >= 0], minlength=len(uniques))
        present = rows > 0
        return pd.Series(rows[present], index=pd.Index(uniques[present], dtype=object))

    return counts(data_codes), counts(ref_codes)


def _share(counts: pd.Series[Any], values: set[Any], rows: int) -> float:
    # value_counts drops nulls, and a null is never a variant: every value is counted.
    return float(sum(int(counts[v]) for v in values)) / rows


# --- the data alone -------------------------------------------------------------------------


def _group_ids(codes: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.int64]]:
    """One id per distinct row of codes, the same id for equal rows.

    Rows whose hash no other row shares are distinct outright; only rows sharing a hash are
    grouped on their codes, so a collision costs time, never a false equality.
    """
    hashes = pd.Series(row_hashes(codes))
    shared = hashes.duplicated(keep=False).to_numpy()
    ids = np.arange(len(codes), dtype=np.int64)
    if shared.any():
        groups = codes[shared].groupby(list(codes.columns), sort=False).ngroup().to_numpy()
        # Offset past every row number, so a group id never equals a lone row's id.
        ids[shared] = groups + len(codes)
    return ids


def row_group_ids(
    frame: pd.DataFrame, columns: list[str], datetime: str | None
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """One id per distinct row of `frame` over `columns`, the same id for rows the checks call
    equal (nulls equal to nulls, the datetime column parsed): for grouping rows read in chunks."""
    inputs = ExactInputs(frame, None, columns, [], None, None, datetime)
    return _group_ids(_codes_frame(inputs, columns, 0))


def group_sizes(
    inputs: ExactInputs, columns: list[str], side: int = 0
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Rows per distinct row over `columns`, nulls equal to nulls (one count a group), of the
    data (side 0) or the reference (side 1, which must hold every column): what the
    reference-relative rules (app/checks/reference_levels.py) read. The codes are the run's."""
    frame = inputs.data if side == 0 else _reference(inputs)
    if not columns or frame.empty:
        return np.ones(len(frame), dtype=np.int64)
    ids = _group_ids(_codes_frame(inputs, columns, side))
    counts: np.ndarray[Any, np.dtype[np.int64]] = np.unique(ids, return_counts=True)[1]
    return counts.astype(np.int64)


def data_duplicates(inputs: ExactInputs, max_ratio: float) -> ExactResult:
    """DataDuplicates: 1 - distinct rows / rows, over every column, nulls equal to nulls.
    A breach is a warning, as in deepchecks."""
    codes = _codes_frame(inputs, [str(c) for c in inputs.data.columns], 0)
    distinct = len(np.unique(_group_ids(codes)))
    return data_duplicates_result(distinct, len(codes), max_ratio)


def data_duplicates_result(distinct: int, rows: int, max_ratio: float) -> ExactResult:
    """DataDuplicates' value from the `distinct` rows among `rows`; a breach warns."""
    ratio = 1.0 - distinct / rows
    detail = f"{ratio:.2%} of data samples are duplicates"
    return ExactResult(ratio, ratio <= max_ratio, detail, breach="WARN")


def conflicting_labels(inputs: ExactInputs, max_ratio: float) -> ExactResult:
    """ConflictingLabels: the share of rows whose features (nulls equal to nulls) recur in a
    row with another label. The value counts conflicting groups instead of listing indices."""
    assert inputs.label is not None
    groups = _group_ids(_codes_frame(inputs, inputs.features, 0))
    labels = column_codes(inputs, inputs.label)[0]
    # A null label is one more label (its code): deepchecks counts it in the group's set.
    per_group = pd.DataFrame({"group": groups, "label": labels}).groupby("group")["label"]
    conflicting = per_group.nunique().pipe(lambda n: n.index[n > 1]).to_numpy()
    in_conflict = int(np.isin(groups, conflicting).sum())
    return conflicting_labels_result(in_conflict, len(conflicting), len(groups), max_ratio)


def conflicting_labels_result(
    in_conflict: int, groups: int, rows: int, max_ratio: float
) -> ExactResult:
    """ConflictingLabels' value: `in_conflict` rows of `rows`, in `groups` conflicting groups."""
    ratio = in_conflict / rows
    value = {"percent_of_conflicting_samples": ratio, "conflicting_groups": groups}
    detail = f"Ambiguous sample ratio: {ratio:.2%}"
    return ExactResult(value, ratio <= max_ratio, detail)


def single_value(inputs: ExactInputs, _limit: float) -> ExactResult:
    """IsSingleValue: distinct non-null values per column; one is a failure."""
    value = {}
    for col in inputs.data.columns:
        codes = column_codes(inputs, str(col))[0]
        present = inputs.data[col].notna().to_numpy()
        value[str(col)] = len(pd.unique(codes[present]))
    return single_value_result(value)


def single_value_result(distinct: dict[str, int]) -> ExactResult:
    """IsSingleValue's value: distinct non-null values per column; a column with one fails."""
    value = distinct
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
    result: dict[str, dict[str, Any]] = {}
    warned = []
    for col in inputs.data.columns:
        column = _dataset_column(inputs.data, col, inputs.datetime).dropna()
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


def _null_kinds(nulls: pd.Series[Any]) -> pd.Series[Any]:
    """Rows per kind of null, named as deepchecks' `nan_type` names them.

    deepchecks tells the kinds apart by identity (`x is np.nan`); so does this, through
    numpy's element loop over C builtins rather than a Python function per null.
    """
    from deepchecks.tabular.checks.data_integrity.mixed_nulls import nan_type

    if nulls.empty:
        return pd.Series(dtype=np.int64)
    if isinstance(nulls.dtype, pd.CategoricalDtype):
        # deepchecks counts a categorical column's nulls as value_counts' NaN key: np.nan.
        return pd.Series({nan_type(np.nan): len(nulls)})
    if isinstance(nulls.dtype, np.dtype) and nulls.dtype.kind != "O":
        # One kind per numpy dtype: every null in the column is the same value.
        return pd.Series({nan_type(nulls.iloc[0]): len(nulls)})
    cells = nulls.to_numpy(dtype=object)
    kinds = np.frompyfunc(type, 1, 1)(cells).astype(object)
    # np.nan itself in every cell: passed as a scalar, numpy would box a new float instead.
    numpy_nan = np.empty(len(cells), dtype=object)
    numpy_nan.fill(np.nan)
    is_numpy_nan = np.frompyfunc(operator.is_, 2, 1)(cells, numpy_nan).astype(bool)
    names = pd.Series(kinds).map(
        {type(None): "None", type(pd.NA): "pandas.NA", type(pd.NaT): "pandas.NaT"}
    )
    floats = np.frompyfunc(issubclass, 2, 1)(kinds, float).astype(bool)
    names[floats & is_numpy_nan] = "numpy.nan"
    names[floats & ~is_numpy_nan] = "math.nan"
    # Rarer nulls (np.datetime64("NaT"), Decimal("NaN"), ...) are named one by one, as
    # nan_type names them: the only per-cell Python here, and only for such cells.
    other = names.isna().to_numpy()
    if other.any():
        names[other] = [nan_type(v) for v in cells[other]]
    counted: pd.Series[Any] = names.value_counts(sort=False)
    return counted


def mixed_nulls(inputs: ExactInputs, max_types: float) -> ExactResult:
    """MixedNulls: per column, the kinds of null it holds (NaN, None, NaT, "null", "N/A"...)
    with their rows; more kinds than allowed fails. Strings are tested once per distinct value."""
    from deepchecks.tabular.checks.data_integrity.mixed_nulls import DEFAULT_NULL_VALUES
    from deepchecks.utils.strings import string_baseform

    rows = len(inputs.data)
    columns: dict[str, dict[str, dict[str, Any]]] = {}
    for col in inputs.data.columns:
        column = _dataset_column(inputs.data, col, inputs.datetime)
        present = column.notna()
        counts: dict[str, int] = {}
        if column.dtype == object or isinstance(column.dtype, pd.CategoricalDtype):
            values = column[present].value_counts()
            for value, n in values.items():
                if n > 0 and string_baseform(value) in DEFAULT_NULL_VALUES:
                    counts[repr(value).replace("'", '"')] = int(n)
        for kind, n in _null_kinds(column[~present]).items():
            counts[str(kind)] = int(n)
        columns[str(col)] = {k: {"count": n, "percent": n / rows} for k, n in counts.items()}
    failing = [col for col, kinds in columns.items() if len(kinds) > max_types]
    detail = (
        f"Found {len(failing)} out of {len(columns)} columns with amount of null types above "
        f"threshold: {failing}"
        if failing
        else "Passed for all columns"
    )
    return ExactResult({"n_samples": rows, "columns": columns}, not failing, detail)


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
    "MixedNulls": mixed_nulls,
}

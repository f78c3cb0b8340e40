"""Propose a Great Expectations 1.x suite from a reference dataset.

Every proposed expectation records in its `meta` what it was inferred from.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.checks.allowance import far_bounds, mostly_for, outside_allowance, tail_bound
from app.checks.reference_levels import unseen_share
from app.core.config import get_settings
from app.core.errors import InvalidData, InvalidRequest
from app.reports.model import Severity

ColumnKind = Literal["integer", "float", "boolean", "string", "datetime", "category", "other"]

# Type lists are families, not the one dtype seen: the same values read back from CSV or
# Parquet, or built with pandas' nullable dtypes, must still pass.
_INT_TYPES = [
    *(f"int{bits}" for bits in (8, 16, 32, 64)),
    *(f"uint{bits}" for bits in (8, 16, 32, 64)),
    *(f"Int{bits}Dtype" for bits in (8, 16, 32, 64)),
    *(f"UInt{bits}Dtype" for bits in (8, 16, 32, 64)),
]
_FLOAT_TYPES = ["float16", "float32", "float64", "Float32Dtype", "Float64Dtype"]
_BOOL_TYPES = ["bool", "BooleanDtype"]
_STRING_TYPES = ["str", "StringDtype"]
# Not "str": GE parses the ISO bounds into datetimes and then refuses to compare them with
# strings, so dates read from CSV must be parsed before validation (read_csv(parse_dates=)).
_DATETIME_TYPES = [f"datetime64[{unit}]" for unit in ("ns", "us", "ms", "s")]

_ID_SUFFIXES = ("id", "key", "uuid", "guid")


class InferenceOptions(BaseModel):
    """Knobs of `infer_suite`; settable per request (`POST /v1/suites/infer` form fields) and
    from the CLI (`datagate suites infer --false-alarm-rate ...`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    false_alarm_rate: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="Chance that a clean batch, drawn like the reference, fails the suite's "
        "calibrated checks (ranges, null rates), whatever its size; shared out over them.",
    )
    max_set_size: int = Field(
        default=20,
        ge=1,
        description="Propose set membership for string, categorical and bool columns with at "
        "most this many distinct values.",
    )
    max_set_ratio: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="...and at most this many distinct values per non-null value, so that a "
        "column of free text in a small dataset is not taken for a category.",
    )
    tail_share: float = Field(
        default=1.0,
        gt=0,
        le=10,
        description="Numeric bounds sit where the reference's fitted tails leave "
        "tail_share / (rows + 1) of clean values beyond each of them: smaller is wider.",
    )
    datetime_upper: bool = Field(
        default=False,
        description="Also bound datetime columns from above. Off by default: dates grow, and "
        "every later batch would fail an upper bound.",
    )
    row_count: bool = Field(
        default=True, description="Propose a row count sanity range (row_count_min..max)."
    )
    row_count_min: int = Field(default=1, ge=0, description="Fewest rows a batch may have.")
    row_count_max: int | None = Field(
        default=None, ge=1, description="Most rows a batch may have; none by default."
    )
    unique_min_rows: int = Field(
        default=100,
        ge=2,
        description="Propose uniqueness for an all-unique non-float column with at least this "
        "many non-null values, or any number of them when its name looks like an id.",
    )
    row_count_severity: Severity = Field(
        default="warning",
        description="A batch of another size is not wrong data; other expectations are critical.",
    )

    @model_validator(mode="after")
    def _row_count_ordered(self) -> InferenceOptions:
        if self.row_count_max is not None and self.row_count_max < self.row_count_min:
            raise ValueError("row_count_max must be at least row_count_min")
        return self


def inference_options(fields: Mapping[str, str]) -> InferenceOptions:
    """Options from text fields (a form, the command line), named as InferenceOptions' fields;
    an empty `row_count_max` means none. Raise InvalidRequest naming each bad field."""
    given: dict[str, Any] = {
        key: (None if key == "row_count_max" and value.strip() in ("", "none") else value)
        for key, value in fields.items()
    }
    try:
        return InferenceOptions.model_validate(given)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(part) for part in error['loc']) or 'options'}: {error['msg']}"
            for error in exc.errors()
        ]
        raise InvalidRequest("; ".join(problems)) from exc


def infer_suite(
    df: pd.DataFrame,
    name: str,
    *,
    options: InferenceOptions | None = None,
    max_columns: int | None = None,
) -> dict[str, Any]:
    """Propose a suite that `df` passes; the dict is JSON-safe and `gx.ExpectationSuite(**it)`.

    Refuses a frame of more than `max_columns` columns (default DATAGATE_MAX_COLUMNS): the
    work and the suite grow with the columns, and a suite of 100,000 columns helps nobody.
    """
    opts = options or InferenceOptions()
    if not name.strip():
        raise InvalidRequest("name: a suite name must not be empty")
    _check_frame(df, get_settings().max_columns if max_columns is None else max_columns)
    rows = len(df)

    expectations: list[dict[str, Any]] = [
        _expectation(
            "expect_table_columns_to_match_set",
            {"column_set": list(df.columns), "exact_match": True},
            "schema",
            f"the {df.shape[1]} columns of the reference",
        ),
    ]
    if opts.row_count:
        expectations.append(_row_count(rows, opts))
    for column in df.columns:
        expectations.extend(_column_expectations(df[column], opts))
    _share_false_alarm_rate(expectations, opts.false_alarm_rate)

    return {
        "name": name,
        "expectations": expectations,
        # Kept beside, not inside, meta.datagate: that block is for deepchecks settings only.
        "meta": {
            "inferred": {
                "from": {
                    "rows": rows,
                    "columns": int(df.shape[1]),
                    "columns_sha256": _columns_sha256(df),
                    "dtypes": {str(c): str(t) for c, t in df.dtypes.items()},
                },
                "options": opts.model_dump(mode="json"),
            }
        },
    }


def column_kind(series: pd.Series[Any]) -> ColumnKind:
    """The family a column's values belong to, whatever dtype carries them."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.StringDtype):
        return "string"
    if pd.api.types.is_object_dtype(dtype):
        inferred = pd.api.types.infer_dtype(series, skipna=True)
        if inferred == "string":
            return "string"
        if inferred == "boolean":
            return "boolean"
    return "other"


def _check_frame(df: pd.DataFrame, max_columns: int) -> None:
    if df.shape[1] == 0:
        raise InvalidData("dataset has no columns: nothing to infer a suite from")
    if df.shape[1] > max_columns:
        raise InvalidData(
            f"dataset has {df.shape[1]} columns; suites are inferred from at most "
            f"{max_columns} columns (DATAGATE_MAX_COLUMNS)"
        )
    if len(df) == 0:
        raise InvalidData("dataset has no rows: nothing to infer a suite from")
    not_text = [repr(c) for c in df.columns if not isinstance(c, str)]
    if not_text:
        raise InvalidData(f"column names must be text; these are not: {', '.join(not_text)}")
    # Counted once, not per column: list.count per column was quadratic in the columns.
    duplicated = sorted(c for c, n in Counter(df.columns).items() if n > 1)
    if duplicated:
        raise InvalidData(f"column names must be unique; repeated: {', '.join(duplicated)}")


def _columns_sha256(df: pd.DataFrame) -> str:
    return hashlib.sha256(json.dumps(list(df.columns)).encode()).hexdigest()


def _expectation(
    type_: str,
    kwargs: dict[str, Any],
    category: str,
    note: str,
    severity: Severity = "critical",
) -> dict[str, Any]:
    return {
        "type": type_,
        "kwargs": kwargs,
        "meta": {"inferred": note, "category": category},
        "severity": severity,
    }


def _row_count(rows: int, opts: InferenceOptions) -> dict[str, Any]:
    # A sanity range, not the reference's size: a test split, a daily batch or a backfill are
    # all clean data of other sizes. An empty batch is the defect worth catching.
    high = opts.row_count_max
    return _expectation(
        "expect_table_row_count_to_be_between",
        {"min_value": opts.row_count_min, "max_value": high},
        "volume",
        f"at least {opts.row_count_min} row(s)"
        + (f", at most {high}" if high is not None else ", no upper limit")
        + f" (the reference has {rows})",
        opts.row_count_severity,
    )


def _share_false_alarm_rate(expectations: list[dict[str, Any]], rate: float) -> None:
    """Give each calibrated expectation rate / K of the false-alarm rate (Bonferroni: the
    suite's chance of a false alarm is at most the sum), and a `mostly` for a batch of the
    reference's size, which engines that cannot size the batch (SQL, plain GE) use as is."""
    calibrated = [e for e in expectations if "allowance" in e["meta"].get("datagate", {})]
    if not calibrated:
        return
    alpha = rate / len(calibrated)
    for expectation in calibrated:
        rule = expectation["meta"]["datagate"]["allowance"]
        rule["alpha"] = alpha
        n = rule.pop("reference_n")
        allowed = outside_allowance(n, rule["p_outside"], rule["weight"], alpha)
        expectation["kwargs"]["mostly"] = math.floor(mostly_for(n, allowed) * 1e6) / 1e6


def _calibrated(
    expectation: dict[str, Any], p_outside: float, weight: float, reference_n: int
) -> dict[str, Any]:
    expectation["meta"]["datagate"] = {
        "allowance": {"p_outside": p_outside, "weight": weight, "reference_n": reference_n}
    }
    return expectation


def _column_expectations(series: pd.Series[Any], opts: InferenceOptions) -> list[dict[str, Any]]:
    column = str(series.name)
    values = series.dropna()
    if values.empty:
        # An all-null column says nothing about its type or values; the column set covers it.
        return []
    kind = column_kind(series)
    found: list[dict[str, Any]] = []
    type_list = _type_list(kind, series, values)
    if type_list:
        found.append(
            _expectation(
                "expect_column_values_to_be_in_type_list",
                {"column": column, "type_list": type_list},
                "schema",
                f"dtype {series.dtype} ({kind}); the list also admits the dtypes the same "
                "values get when read back from CSV or Parquet",
            )
        )
    found.append(_not_null(column, len(series), len(values), opts))
    if kind in ("integer", "float"):
        numbers = values.astype("float64")
        if np.isfinite(numbers).any():
            found.extend(_numeric_range(column, numbers, kind, opts))
    elif kind == "datetime":
        found.append(_datetime_range(column, values, opts))
    if kind in ("string", "category", "boolean"):
        value_set = _value_set(values, opts)
        if value_set is not None:
            unseen = unseen_share(values, smoothed=False)[0]
            expectation = _expectation(
                "expect_column_values_to_be_in_set",
                {"column": column, "value_set": value_set},
                "set",
                f"{len(value_set)} distinct values over {len(values)} non-null values; a clean "
                f"batch may hold about {unseen:.2g} of values the reference lacks (its values "
                "seen once, Good-Turing), and may have as many outside as its size allows",
            )
            found.append(_calibrated(expectation, unseen, len(values) + 1, len(values)))
    if _looks_like_key(column, kind, values, opts):
        found.append(
            _expectation(
                "expect_column_values_to_be_unique",
                {"column": column},
                "uniqueness",
                f"all {len(values)} non-null values distinct in a {kind} column",
            )
        )
    return found


def _type_list(
    kind: ColumnKind, series: pd.Series[Any], values: pd.Series[Any]
) -> list[str] | None:
    match kind:
        case "integer":
            # Int64 with missing values comes back from CSV as float64.
            return _INT_TYPES + _FLOAT_TYPES if series.hasnans else list(_INT_TYPES)
        case "float":
            # Whole numbers without NaN in a batch come back from CSV as int64.
            numbers = values.to_numpy(dtype="float64")
            finite = numbers[np.isfinite(numbers)]
            whole = finite.size > 0 and bool(np.all(np.mod(finite, 1) == 0))
            return _FLOAT_TYPES + _INT_TYPES if whole else list(_FLOAT_TYPES)
        case "boolean":
            return list(_BOOL_TYPES)
        case "string":
            return list(_STRING_TYPES)
        case "datetime":
            return list(_DATETIME_TYPES)
        case _:
            # GE cannot match a categorical dtype by name (CategoricalDtype compares equal
            # only to itself), and mixed object columns have no one type: leave them to the
            # set and column-set expectations.
            return None


def _not_null(column: str, rows: int, non_null: int, opts: InferenceOptions) -> dict[str, Any]:
    nulls = rows - non_null
    # The null share seen, with a uniform prior: Beta(nulls + 1, non-null + 1). A column never
    # null in the reference is no exception: no null in 275 rows does not make one null in 69
    # a defect (penguins: 2 of 344 rows have no measurements), while a fifth of a batch null
    # still fails.
    return _calibrated(
        _expectation(
            "expect_column_values_to_not_be_null",
            {"column": column},
            "missing",
            f"{nulls} nulls in {rows} rows; the nulls a batch may have follow from its size",
        ),
        p_outside=(nulls + 1) / (rows + 2),
        weight=rows + 2,
        reference_n=rows,
    )


# A numeric column with at most this many distinct values gets no far bounds (the threshold at
# which drift compares a numeric column as categories, app/checks/decisions.py).
FAR_MIN_DISTINCT = 20


def _numeric_range(
    column: str, values: pd.Series[Any], kind: ColumnKind, opts: InferenceOptions
) -> list[dict[str, Any]]:
    """The calibrated range (a batch may have a few values outside it, as its size allows),
    then the far bounds no value may pass (allowance.far_bounds)."""
    # Infinities would make every statistic infinite and the JSON invalid; they still count
    # as outside the range below.
    finite = values[np.isfinite(values)].to_numpy(dtype="float64")
    m = finite.size
    minimum, maximum = float(finite.min()), float(finite.max())
    high, p_high = tail_bound(finite, opts.tail_share)
    low_negated, p_low = tail_bound(-finite, opts.tail_share)
    low = -low_negated
    if minimum >= 0 and low < 0:
        # No negative values: a negative one is a defect. Raising the bound to 0 raises the
        # share expected below it, but never past 1 / (m + 1) (below the minimum).
        low, p_low = 0.0, max(p_low, _share_below_zero(finite, opts.tail_share))
    bound_low: float | int
    bound_high: float | int
    if kind == "integer":
        bound_low, bound_high = math.floor(low), math.ceil(high)
    else:
        bound_low, bound_high = _round_outward(low, down=True), _round_outward(high, down=False)
    expectation = _expectation(
        "expect_column_values_to_be_between",
        {"column": column, "min_value": bound_low, "max_value": bound_high},
        "range",
        f"min {minimum:.6g} / max {maximum:.6g} over {len(values)} non-null values, widened to "
        f"where the fitted tails leave {p_low:.2g} / {p_high:.2g} of clean values beyond"
        + (" (clipped at 0: no negative values)" if minimum >= 0 else "")
        + "; the values a batch may have outside follow from its size",
    )
    calibrated = _calibrated(expectation, p_low + p_high, m + 1, len(values))
    if np.unique(finite).size <= FAR_MIN_DISTINCT:
        # Counts, codes, mostly-zero pixels: a spread of few values says nothing about how far
        # a clean value may go; the calibrated band alone judges them.
        return [calibrated]
    far_low, far_high = far_bounds(finite, low, high, opts.tail_share)
    if not (math.isfinite(far_low) and math.isfinite(far_high)):
        return [calibrated]  # values near the float limits: no bound beyond them to state
    if kind == "integer":
        far_low, far_high = math.floor(far_low), math.ceil(far_high)
    else:
        far_low = _round_outward(far_low, down=True)
        far_high = _round_outward(far_high, down=False)
    return [
        calibrated,
        _expectation(
            "expect_column_values_to_be_between",
            {"column": column, "min_value": far_low, "max_value": far_high},
            "range",
            "the range's far bounds, which no value may pass whatever the batch's size: a value "
            "this far from the reference's range is another unit or a sentinel"
            + (" (0 below: no negative values)" if minimum >= 0 else ""),
        ),
    ]


def _share_below_zero(finite: np.ndarray[Any, Any], tail_share: float) -> float:
    low, p_low = tail_bound(-finite, tail_share)
    if -low >= 0:
        return p_low
    return 1.0 / (finite.size + 1)


def _datetime_range(column: str, values: pd.Series[Any], opts: InferenceOptions) -> dict[str, Any]:
    minimum: datetime = pd.Timestamp(values.min()).to_pydatetime()
    maximum: datetime = pd.Timestamp(values.max()).to_pydatetime()
    # Seconds since the minimum: float64 keeps microseconds over centuries.
    seconds = ((values - values.min()) / pd.Timedelta(seconds=1)).to_numpy(dtype="float64")
    m = seconds.size
    below, p_low = tail_bound(-seconds, opts.tail_share)
    above, p_high = tail_bound(seconds, opts.tail_share)
    # A second at least: bounds are ISO strings to the microsecond, nanoseconds are cut off.
    low = minimum - max(timedelta(seconds=below), timedelta(seconds=1))
    kwargs: dict[str, Any] = {"column": column, "min_value": low.isoformat()}
    note = f"min {minimum.isoformat()} over {len(values)} non-null values"
    p_outside = p_low
    if opts.datetime_upper:
        high = minimum + max(timedelta(seconds=above), timedelta(seconds=1) + (maximum - minimum))
        kwargs["max_value"] = high.isoformat()
        note += f", max {maximum.isoformat()}"
        p_outside += p_high
    else:
        note += "; no upper bound: dates grow, later batches are later (datetime_upper)"
    return _calibrated(
        _expectation("expect_column_values_to_be_between", kwargs, "range", note),
        p_outside,
        m + 1,
        len(values),
    )


def _value_set(values: pd.Series[Any], opts: InferenceOptions) -> list[Any] | None:
    distinct = pd.unique(values.to_numpy(dtype=object))
    if len(distinct) > opts.max_set_size or len(distinct) > opts.max_set_ratio * len(values):
        return None
    native = [v.item() if isinstance(v, np.generic) else v for v in distinct]
    return sorted(native, key=lambda v: (type(v).__name__, str(v)))


def _looks_like_key(
    column: str, kind: ColumnKind, values: pd.Series[Any], opts: InferenceOptions
) -> bool:
    if kind not in ("integer", "string", "datetime") or len(values) < 2:
        return False
    if not values.is_unique:
        return False
    lowered = column.lower()
    named_like_id = any(lowered == s or lowered.endswith(("_" + s, " " + s)) for s in _ID_SUFFIXES)
    return named_like_id or len(values) >= opts.unique_min_rows


def _round_outward(value: float, *, down: bool) -> float:
    """Round to 6 significant digits, away from the data, so bounds stay readable."""
    if value == 0 or not math.isfinite(value):
        return float(value)
    exponent = math.floor(math.log10(abs(value))) - 5
    step = 10.0**exponent
    scaled = math.floor(value / step) if down else math.ceil(value / step)
    return round(scaled * step, max(0, -exponent))

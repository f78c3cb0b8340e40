"""Propose a Great Expectations 1.x suite from a reference dataset.

Every proposed expectation records in its `meta` what it was inferred from.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

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
    """Knobs of `infer_suite`. Defaults let a 50%..150% random sample of the reference pass."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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
    range_quantiles: tuple[float, float] = Field(
        default=(0.001, 0.999),
        description="Lower and upper quantiles a numeric range starts from.",
    )
    range_margin: float = Field(
        default=0.1,
        ge=0,
        description="Numeric ranges are widened on each side by this fraction of the "
        "interquartile range (of max - min when the IQR is 0); datetime ranges by this "
        "fraction of max - min.",
    )
    range_mostly: float = Field(
        default=0.99,
        gt=0,
        le=1,
        description="Share of non-null values that must fall in a numeric range, so a few "
        "outliers do not fail it. Lowered where the reference itself has more outliers.",
    )
    null_margin: float = Field(
        default=0.02,
        ge=0,
        le=1,
        description="For columns with nulls: `mostly` is the observed non-null rate minus the "
        "larger of this and `null_sigmas` binomial standard deviations.",
    )
    null_sigmas: float = Field(default=3.0, ge=0)
    row_count_tolerance: float = Field(
        default=0.5,
        ge=0,
        description="Row count must lie within rows * (1 - t) .. rows * (1 + t).",
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
    def _quantiles_ordered(self) -> InferenceOptions:
        low, high = self.range_quantiles
        if not 0 <= low < high <= 1:
            raise ValueError("range_quantiles must be (low, high) with 0 <= low < high <= 1")
        return self


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
        _row_count(rows, opts),
    ]
    for column in df.columns:
        expectations.extend(_column_expectations(df[column], opts))

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
    tolerance = opts.row_count_tolerance
    # Rounded first so that float noise (100 * 1.1 = 110.00000000000001) does not add a row.
    low = max(0, math.floor(round(rows * (1 - tolerance), 6)))
    high = math.ceil(round(rows * (1 + tolerance), 6))
    return _expectation(
        "expect_table_row_count_to_be_between",
        {"min_value": low, "max_value": high},
        "volume",
        f"{rows} rows, tolerance {tolerance:.0%}",
        opts.row_count_severity,
    )


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
            found.append(_numeric_range(column, numbers, kind, opts))
    elif kind == "datetime":
        found.append(_datetime_range(column, values, opts))
    if kind in ("string", "category", "boolean"):
        value_set = _value_set(values, opts)
        if value_set is not None:
            found.append(
                _expectation(
                    "expect_column_values_to_be_in_set",
                    {"column": column, "value_set": value_set},
                    "set",
                    f"{len(value_set)} distinct values over {len(values)} non-null values",
                )
            )
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
    if non_null == rows:
        return _expectation(
            "expect_column_values_to_not_be_null",
            {"column": column},
            "missing",
            f"no nulls in {rows} rows",
        )
    rate = non_null / rows
    margin = max(opts.null_margin, opts.null_sigmas * math.sqrt(rate * (1 - rate) / rows))
    mostly = max(0.0, math.floor((rate - margin) * 1000) / 1000)
    return _expectation(
        "expect_column_values_to_not_be_null",
        {"column": column, "mostly": mostly},
        "missing",
        f"{rows - non_null} nulls in {rows} rows (non-null rate {rate:.3f}), margin {margin:.3f}",
    )


def _numeric_range(
    column: str, values: pd.Series[Any], kind: ColumnKind, opts: InferenceOptions
) -> dict[str, Any]:
    # Infinities would make every statistic infinite and the JSON invalid; they still count
    # as outside the range below.
    finite = values[np.isfinite(values)]
    q_low, q_high = opts.range_quantiles
    low_q, high_q = (float(v) for v in finite.quantile([q_low, q_high]))
    q1, q3 = (float(v) for v in finite.quantile([0.25, 0.75]))
    minimum, maximum = float(finite.min()), float(finite.max())
    spread, spread_name = q3 - q1, "IQR"
    if spread == 0:
        spread, spread_name = maximum - minimum, "max - min"
    if spread == 0:
        # A constant column: widen by range_margin of its value (of 1 around zero).
        spread, spread_name = max(abs(minimum), 1.0), "the constant value"
    low = low_q - opts.range_margin * spread
    high = high_q + opts.range_margin * spread
    if minimum >= 0:
        low = max(low, 0.0)
    bound_low: float | int
    bound_high: float | int
    if kind == "integer":
        bound_low, bound_high = math.floor(low), math.ceil(high)
    else:
        bound_low, bound_high = _round_outward(low, down=True), _round_outward(high, down=False)
    outside = float(((values < bound_low) | (values > bound_high)).mean())
    # Twice the reference's own outlier share: any sample of at least half its rows passes.
    mostly = min(opts.range_mostly, math.floor((1 - 2 * outside) * 1000) / 1000)
    kwargs: dict[str, Any] = {"column": column, "min_value": bound_low, "max_value": bound_high}
    if mostly < 1:
        kwargs["mostly"] = max(mostly, 0.0)
    return _expectation(
        "expect_column_values_to_be_between",
        kwargs,
        "range",
        f"{q_low:.1%}/{q_high:.1%} quantiles {low_q:.6g} / {high_q:.6g} over {len(values)} "
        f"non-null values, margin {opts.range_margin:.0%} of {spread_name} ({spread:.6g})"
        + (", clipped at 0 (no negative values)" if minimum >= 0 else "")
        + f"; {outside:.2%} of the reference outside",
    )


def _datetime_range(column: str, values: pd.Series[Any], opts: InferenceOptions) -> dict[str, Any]:
    minimum: datetime = pd.Timestamp(values.min()).to_pydatetime()
    maximum: datetime = pd.Timestamp(values.max()).to_pydatetime()
    span = maximum - minimum
    # A second at least: bounds are ISO strings to the microsecond, nanoseconds are cut off.
    margin = max(span * opts.range_margin, timedelta(seconds=1)) if span else timedelta(days=1)
    return _expectation(
        "expect_column_values_to_be_between",
        {
            "column": column,
            "min_value": (minimum - margin).isoformat(),
            "max_value": (maximum + margin).isoformat(),
        },
        "range",
        f"min {minimum.isoformat()} / max {maximum.isoformat()} over {len(values)} non-null "
        f"values, margin {margin}",
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

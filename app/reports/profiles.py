"""Column profiles of a dataset (issue 16): counts, distinct values, ranges, quantiles, top values
and histograms, computed with vectorised numpy / pandas so that profiling stays a small part of a
report's time. Data and reference share histogram edges, so their bars overlay on the page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from app.reports.model import (
    ColumnProfile,
    DatasetProfile,
    HistogramBin,
    ValueCount,
)

QUANTILES: tuple[tuple[str, float], ...] = (
    ("p01", 0.01),
    ("p05", 0.05),
    ("p25", 0.25),
    ("p50", 0.50),
    ("p75", 0.75),
    ("p95", 0.95),
    ("p99", 0.99),
)
HISTOGRAM_BINS = 20
TOP_VALUES = 10
# Distinct values of strings and other values are counted exactly (one hash table of every value)
# when a sample suggests at most this many; beyond, the hash table of every value is what would
# cost most (bench/profiles.py), so the count is estimated from the sample (`chao1_distinct`).
DISTINCT_EXACT_LIMIT = 100_000
# Rows drawn (with a fixed seed) to size a value column up before counting it.
ESTIMATE_SAMPLE_ROWS = 100_000
# Text columns longer than this are profiled on a sample (issue 16's bound: profiles within 10%
# of the report time at 1M rows).
SAMPLED_VALUES_ABOVE = 500_000
_SAMPLE_SEED = 16
# A top value is a label on a page, not a document.
MAX_TOP_VALUE_CHARS = 200

_NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class _Numbers:
    """A numeric or datetime column reduced to its sorted finite values (one sort serves min,
    max, quantiles, distinct count and histogram) plus what the sort does not give."""

    kind: str
    sorted_values: NDArray[Any]
    nulls: int
    infinite: int
    mean: float | None
    std: float | None
    # Which of +inf / -inf occur (they count as distinct values, not in the statistics).
    infinities: int = 0
    # Datetimes: the exact nanoseconds behind `sorted_values` (seconds), for ISO min / max.
    nanoseconds: NDArray[Any] | None = None
    utc: bool = False


def profile_frame(
    frame: pd.DataFrame, *, edges: dict[str, NDArray[Any]] | None = None
) -> DatasetProfile:
    """The profile of every column of `frame`. `edges`: histogram bin edges per column name
    (from another run), so that two histograms line up; other columns get their own."""
    return profile_frames(frame, None, edges=edges)[0]


def profile_frames(
    data: pd.DataFrame,
    reference: pd.DataFrame | None,
    *,
    edges: dict[str, NDArray[Any]] | None = None,
) -> tuple[DatasetProfile, DatasetProfile | None]:
    """Both sides in one go: each column is reduced once per side, then binned on shared edges."""
    data_numbers = _reduce_numbers(data)
    reference_numbers = _reduce_numbers(reference)
    shared = dict(edges or {})
    firsts = (_first_by_name(data_numbers), _first_by_name(reference_numbers))
    for name in set(firsts[0]) | set(firsts[1]):
        if name in shared:
            continue
        sides = [side[name] for side in firsts if name in side]
        # A column that is a number on one side and a date on the other gets no shared edges.
        if len({s.kind for s in sides}) == 1:
            found = bin_edges([s.sorted_values for s in sides])
            if found is not None:
                shared[name] = found
    data_profile = _profile(data, data_numbers, shared)
    reference_profile = (
        _profile(reference, reference_numbers, shared) if reference is not None else None
    )
    return data_profile, reference_profile


def scaled_to_batch(
    sample: DatasetProfile, frame: pd.DataFrame, rows: int, nulls: Mapping[str, int]
) -> DatasetProfile:
    """The profile of `frame`, a uniform sample of a batch of `rows` rows whose null counts per
    column (`nulls`) were counted over the whole batch (a database's COUNT), made the batch's:
    those counts put in, distinct values estimated from the sample (`chao1_distinct`), top value
    counts scaled to the batch (both marked as such), and `sampled_rows` set. Spread, quantiles
    and histograms stay the sample's. A sample that is the whole batch is returned as it is."""
    if sample.rows >= rows:
        return sample
    columns = []
    for position, column in enumerate(sample.columns):
        update: dict[str, Any] = {"count": rows}
        if column.name in nulls:
            update["nulls"] = nulls[column.name]
        population = rows - update.get("nulls", column.nulls)
        counts = _sample_counts(frame.iloc[:, position])
        update["distinct"] = max(chao1_distinct(counts, population), int(column.distinct or 0))
        update["distinct_exact"] = False
        if column.top:
            scale = population / max(int(counts.sum()), 1)
            update["top"] = [
                ValueCount(value=v.value, count=round(v.count * scale)) for v in column.top
            ]
            update["top_exact"] = False
        columns.append(column.model_copy(update=update))
    return sample.model_copy(update={"rows": rows, "sampled_rows": sample.rows, "columns": columns})


def _sample_counts(column: pd.Series[Any]) -> NDArray[Any]:
    """How often each distinct non-null value occurs in a (small) sample column."""
    codes, _ = _factorize(column.to_numpy(dtype=object))
    return np.bincount(codes[codes >= 0]) if len(codes) else np.zeros(0, dtype=np.int64)


def bin_edges(sorted_sides: list[NDArray[Any]], bins: int = HISTOGRAM_BINS) -> NDArray[Any] | None:
    """Equal-width edges from the smallest to the largest finite value of all sides; one bin
    when every value is the same; None when no side has a finite value, or the span overflows."""
    lows = [float(s[0]) for s in sorted_sides if len(s)]
    highs = [float(s[-1]) for s in sorted_sides if len(s)]
    if not lows:
        return None
    low, high = min(lows), max(highs)
    if low == high:
        return np.array([low, high])
    if not math.isfinite(high - low):
        # Values near the float limits: the span overflows, and equal-width bins with it.
        return None
    return np.linspace(low, high, bins + 1)


def histogram(sorted_values: NDArray[Any], edges: NDArray[Any]) -> list[HistogramBin]:
    """Counts per bin from sorted values: two binary searches per edge, no pass over the data.
    Bins are closed on the left, the last one on both sides (as numpy.histogram); values outside
    the edges (edges given by another run) are not counted."""
    if len(edges) < 2:
        return []
    positions = np.searchsorted(sorted_values, edges, side="left")
    positions[-1] = np.searchsorted(sorted_values, edges[-1], side="right")
    counts = np.diff(positions).tolist()
    bounds = np.asarray(edges, dtype="float64").tolist()
    return [
        HistogramBin(low=bounds[i], high=bounds[i + 1], count=counts[i]) for i in range(len(counts))
    ]


def quantiles(sorted_values: NDArray[Any]) -> dict[str, float]:
    """p01 .. p99 with linear interpolation (numpy's default method), from sorted values."""
    n = len(sorted_values)
    if n == 0:
        return {}
    out = {}
    for name, q in QUANTILES:
        position = q * (n - 1)
        below = math.floor(position)
        above = min(below + 1, n - 1)
        low, high = float(sorted_values[below]), float(sorted_values[above])
        fraction = position - below
        # Weighted, not low + (high - low) * f: the difference may overflow near the limits.
        out[name] = low * (1 - fraction) + high * fraction if fraction else low
    return out


# --- per column ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Reduced:
    """One column by position (names may repeat): its numbers, or None for other kinds, and
    for an object column what pandas infers its values to be (inferred once: it is a pass)."""

    name: str
    numbers: _Numbers | None
    inferred: str | None


def _reduce_numbers(frame: pd.DataFrame | None) -> list[_Reduced]:
    if frame is None:
        return []
    reduced = []
    for position, name in enumerate(frame.columns):
        column = frame.iloc[:, position]
        inferred = _infer_values(column) if pd.api.types.is_object_dtype(column.dtype) else None
        reduced.append(_Reduced(str(name), _as_numbers(column, inferred), inferred))
    return reduced


def _infer_values(column: pd.Series[Any]) -> str:
    """pandas' name for what an object column holds. A long column is read off a seeded sample
    first (a pass over a million strings costs as much as their profile); only a sample that
    looks like numbers or dates is confirmed on every value, since those are converted whole."""
    if len(column) > SAMPLED_VALUES_ABOVE:
        picks = np.unique(
            np.random.default_rng(_SAMPLE_SEED).integers(0, len(column), ESTIMATE_SAMPLE_ROWS)
        )
        seen = pd.api.types.infer_dtype(column.iloc[picks], skipna=True)
        if seen not in _CONVERTED:
            return str(seen)
    return str(pd.api.types.infer_dtype(column, skipna=True))


_CONVERTED = frozenset(
    {"integer", "floating", "mixed-integer-float", "decimal", "datetime64", "datetime", "date"}
)


def _first_by_name(reduced: list[_Reduced]) -> dict[str, _Numbers]:
    # Shared edges come from the first column of a name; a repeated name bins on its own edges.
    first: dict[str, _Numbers] = {}
    for column in reduced:
        if column.numbers is not None:
            first.setdefault(column.name, column.numbers)
    return first


def _as_numbers(column: pd.Series[Any], inferred: str | None) -> _Numbers | None:
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return None
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        return _datetime_numbers(column)
    if pd.api.types.is_numeric_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
        if pd.api.types.is_complex_dtype(dtype):
            return None
        values = column.to_numpy(dtype="float64", na_value=np.nan)
        return _float_numbers(values, "number")
    if inferred is not None:
        if inferred in {"integer", "floating", "mixed-integer-float", "decimal"}:
            values = pd.to_numeric(column, errors="coerce").to_numpy(
                dtype="float64", na_value=np.nan
            )
            return _float_numbers(values, "number")
        if inferred in {"datetime64", "datetime", "date"}:
            converted = pd.to_datetime(column, errors="coerce", utc=True)
            return _datetime_numbers(converted)
    return None


def _float_numbers(values: NDArray[Any], kind: str) -> _Numbers:
    finite_mask = np.isfinite(values)
    finite_count = int(np.count_nonzero(finite_mask))
    nulls = int(np.count_nonzero(np.isnan(values))) if finite_count < len(values) else 0
    infinite = len(values) - nulls - finite_count
    infinities = 0
    if infinite:
        infinities = int(np.any(values == np.inf)) + int(np.any(values == -np.inf))
    if finite_count < len(values):
        finite = values[finite_mask]
        finite.sort()  # a copy of our own: sorted in place
    else:
        finite = np.sort(values)
    mean, std = _moments(finite)
    return _Numbers(kind, finite, nulls, infinite, mean, std, infinities)


def _moments(values: NDArray[Any]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (as pandas' Series.std; none for one value) of sorted
    finite values, in two vectorised passes: the squares are taken about the median, so that
    values far from zero (epoch seconds) keep their precision."""
    n = len(values)
    if n == 0:
        return None, None
    total = float(values.sum())
    mean = total / n
    if not math.isfinite(mean):
        return None, None  # the sum of very large finite values overflowed
    if n == 1:
        return mean, None
    with np.errstate(over="ignore", invalid="ignore"):
        centred = values - values[n // 2]
        offset = float(centred.sum())
        variance = (float(np.dot(centred, centred)) - offset * offset / n) / (n - 1)
    std = math.sqrt(max(variance, 0.0))
    return mean, std if math.isfinite(std) else None


def _distinct_sorted(values: NDArray[Any]) -> int:
    return int(np.count_nonzero(values[1:] != values[:-1])) + 1 if len(values) else 0


def _datetime_numbers(column: pd.Series[Any]) -> _Numbers:
    utc = isinstance(column.dtype, pd.DatetimeTZDtype)
    if utc:
        column = column.dt.tz_convert("UTC").dt.tz_localize(None)
    nat = column.isna().to_numpy()
    ns = column.to_numpy(dtype="datetime64[ns]").view("int64")
    valid = np.sort(ns[~nat]) if nat.any() else np.sort(ns)
    seconds = valid.astype("float64") / _NS_PER_S
    mean, std = _moments(seconds)
    # The seconds lose sub-microsecond detail; the ISO min/max come from the exact nanoseconds.
    return _Numbers("datetime", seconds, int(nat.sum()), 0, mean, std, nanoseconds=valid, utc=utc)


def _profile(
    frame: pd.DataFrame, reduced: list[_Reduced], edges: dict[str, NDArray[Any]]
) -> DatasetProfile:
    columns = []
    seen: set[str] = set()
    for position, column in enumerate(reduced):
        name, numbers = column.name, column.numbers
        if numbers is None:
            columns.append(_value_profile(name, frame.iloc[:, position], column.inferred))
            continue
        own = edges.get(name) if name not in seen else None
        if own is None:
            own = bin_edges([numbers.sorted_values])
        columns.append(_number_profile(name, len(frame), numbers, own))
        seen.add(name)
    return DatasetProfile(rows=len(frame), columns=columns)


def _number_profile(
    name: str, count: int, numbers: _Numbers, edges: NDArray[Any] | None
) -> ColumnProfile:
    values = numbers.sorted_values
    ns = numbers.nanoseconds
    distinct = _distinct_sorted(ns if ns is not None else values)
    low: float | str | None = None
    high: float | str | None = None
    if len(values):
        if ns is not None:
            low, high = _iso(int(ns[0]), numbers.utc), _iso(int(ns[-1]), numbers.utc)
        else:
            low, high = float(values[0]), float(values[-1])
    return ColumnProfile(
        name=name,
        kind="datetime" if numbers.kind == "datetime" else "number",
        count=count,
        nulls=numbers.nulls,
        infinite=numbers.infinite,
        distinct=distinct + numbers.infinities,
        min=low,
        max=high,
        mean=numbers.mean,
        std=numbers.std,
        quantiles=quantiles(values),
        histogram=histogram(values, edges) if edges is not None else [],
    )


def _iso(ns: int, utc: bool) -> str:
    """ISO 8601; a zone-aware column's times in UTC and marked so, naive ones as they were."""
    return pd.Timestamp(ns, unit="ns", tz="UTC" if utc else None).isoformat()


def _value_profile(name: str, column: pd.Series[Any], inferred: str | None) -> ColumnProfile:
    """Strings, categories, booleans and anything else: distinct values and the most frequent."""
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        uniques: NDArray[Any] | pd.Index[Any] = dtype.categories
        kind = "string"
    elif pd.api.types.is_bool_dtype(dtype):
        values = column.to_numpy(dtype=object) if column.hasnans else column.to_numpy()
        codes, uniques = pd.factorize(values)
        kind = "boolean"
    else:
        kind = _value_kind(dtype, inferred)
        if len(column) > SAMPLED_VALUES_ABOVE:
            # A hash pass over every row of a text column costs more than its checks: past this
            # size its distinct count and top values come from a seeded sample, marked so.
            return _sampled_profile(name, kind, column)
        if len(column) > 2 * ESTIMATE_SAMPLE_ROWS:
            estimated = _estimated_profile(name, kind, column)
            if estimated is not None:
                return estimated
        codes, uniques = _factorize(column.to_numpy(dtype=object))
    present = codes >= 0
    nulls = int(len(codes) - np.count_nonzero(present))
    counts = np.bincount(codes[present] if nulls else codes, minlength=len(uniques))
    return ColumnProfile(
        name=name,
        kind=kind,
        count=len(column),
        nulls=nulls,
        distinct=int(np.count_nonzero(counts)),
        top=_top(counts, uniques),
    )


def _value_kind(dtype: Any, inferred: str | None) -> str:
    if inferred is None:
        return "string" if pd.api.types.is_string_dtype(dtype) else "other"
    return {"string": "string", "empty": "string", "boolean": "boolean"}.get(inferred, "other")


def chao1_distinct(sample_counts: NDArray[Any], population: int) -> int:
    """Distinct values of a column estimated from the counts of each value in a uniform sample
    of its rows drawn without replacement: Chao1 for sampling without replacement (Chao & Lin,
    2012), d + f1^2 / (2 f2 n / (n - 1) + f1 q / (1 - q)), where d values were seen, f1 once and
    f2 twice, in n sampled rows, a share q of the column's `population` of values; at most the
    population. It reads unseen values off the rare ones: a sample of all-different values
    gives about the population (an identifier), one where every value recurs gives d."""
    seen = int(np.count_nonzero(sample_counts))
    sampled = int(sample_counts.sum())
    if sampled == 0 or population <= 0:
        return 0
    once = int(np.count_nonzero(sample_counts == 1))
    twice = int(np.count_nonzero(sample_counts == 2))
    share = min(sampled / population, 1.0)
    if share >= 1.0:
        return seen  # the sample is the whole column
    denominator = 2 * twice * sampled / max(sampled - 1, 1) + once * share / (1 - share)
    unseen = once * once / denominator if denominator > 0 else 0.0
    return int(min(round(seen + unseen), population))


def _estimated_profile(name: str, kind: str, column: pd.Series[Any]) -> ColumnProfile | None:
    """The profile of a column with more distinct values than DISTINCT_EXACT_LIMIT, from a
    seeded sample of its rows; None when the sample says the column is within the limit."""
    counts, uniques, sampled, drawn = _sample_counts_of(column)
    # Sized up with the sample's share of nulls first: the exact null count is a pass of its own.
    if chao1_distinct(counts, round(len(column) * sampled / drawn)) <= DISTINCT_EXACT_LIMIT:
        return None
    return _from_sample(name, kind, column, counts, uniques, sampled)


def _sampled_profile(name: str, kind: str, column: pd.Series[Any]) -> ColumnProfile:
    """A text column of more than SAMPLED_VALUES_ABOVE rows, from a seeded sample of its rows."""
    counts, uniques, sampled, _ = _sample_counts_of(column)
    return _from_sample(name, kind, column, counts, uniques, sampled)


def _null_count(column: pd.Series[Any]) -> int:
    """Nulls of an object column: a column of nothing but strings (the common case) is told in
    one typed pass, a third of `isna`'s time over a million Python objects."""
    if pd.api.types.infer_dtype(column, skipna=False) == "string":
        return 0
    return int(column.isna().sum())


def _sample_counts_of(column: pd.Series[Any]) -> tuple[NDArray[Any], NDArray[Any], int, int]:
    """Counts of each distinct value in ESTIMATE_SAMPLE_ROWS seeded rows of `column`, those
    values, how many sampled values were not null, and how many rows were drawn."""
    rows = len(column)
    picks = np.unique(np.random.default_rng(_SAMPLE_SEED).integers(0, rows, ESTIMATE_SAMPLE_ROWS))
    codes, uniques = _factorize(column.iloc[picks].to_numpy(dtype=object))
    present = codes >= 0
    counts = np.bincount(codes[present], minlength=len(uniques))
    return counts, uniques, max(int(np.count_nonzero(present)), 1), len(codes)


def _from_sample(
    name: str,
    kind: str,
    column: pd.Series[Any],
    counts: NDArray[Any],
    uniques: NDArray[Any],
    sampled: int,
) -> ColumnProfile:
    """Exact row and null counts; the distinct count (Chao1) and top values (counts scaled)
    from the sample, both marked as estimates."""
    nulls = _null_count(column)
    population = len(column) - nulls
    scale = population / sampled
    # Only values seen more than once in the sample: a single sighting says nothing of a count.
    top = [
        ValueCount(value=_label(uniques[i]), count=round(int(counts[i]) * scale))
        for i in _top_indices(counts)
        if counts[i] > 1
    ]
    return ColumnProfile(
        name=name,
        kind=kind,
        count=len(column),
        nulls=nulls,
        distinct=chao1_distinct(counts, population),
        distinct_exact=False,
        top=top,
        top_exact=False,
    )


def _factorize(values: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
    """One hash table pass: a code per row (-1 for null) and the distinct values. Values of
    mixed types hash by value; unhashable ones (lists, dicts from JSON) by their text."""
    try:
        codes, uniques = pd.factorize(values)
    except TypeError:
        shown = np.array([v if v is None or v != v else repr(v) for v in values], dtype=object)
        codes, uniques = pd.factorize(shown)
    return np.asarray(codes), np.asarray(uniques, dtype=object)


def _top(counts: NDArray[Any], uniques: NDArray[Any] | pd.Index[Any]) -> list[ValueCount]:
    """The most frequent values; none when every value occurs once (an id: nothing to show)."""
    if len(counts) == 0 or counts.max() <= 1:
        return []
    return [
        ValueCount(value=_label(uniques[i]), count=int(counts[i]))
        for i in _top_indices(counts)
        if counts[i]
    ]


def _top_indices(counts: NDArray[Any], k: int = TOP_VALUES) -> NDArray[Any]:
    """The k largest counts, largest first; equal counts in order of first appearance."""
    candidates = np.arange(len(counts))
    if len(counts) > k:
        candidates = np.argpartition(-counts, k - 1)[:k]
    order = np.lexsort((candidates, -counts[candidates]))
    chosen: NDArray[Any] = candidates[order]
    return chosen


def _label(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    if isinstance(value, bool | np.bool_):
        text = str(bool(value)).lower()
    if len(text) > MAX_TOP_VALUE_CHARS:
        return text[: MAX_TOP_VALUE_CHARS - 1] + "\u2026"
    return text

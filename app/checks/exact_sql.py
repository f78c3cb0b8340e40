"""The exact set checks over SQL batches: inside the database when the data and the reference
share a connection; by streaming the SQL side in chunks past the other, held in memory; and,
on two connections, by streaming both sides past 64-bit row keys of the smaller one.

Same definitions and values as app/checks/exact_checks.py, which the differential tests hold
this module to. Every statement is built with SQLAlchemy Core on the batch as `sql_source`
gives it (a table, or the accepted query as a subquery with bound parameters) and runs on a
`read_only_engine`: read-only transactions, the statement timeout, the same guards as the suite.
"""

from __future__ import annotations

import datetime as dt
import decimal
import numbers
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app.checks.exact_checks import (
    ExactInputs,
    ExactResult,
    ExactRun,
    by_count,
    conflicting_labels_result,
    data_duplicates_result,
    date_leakage_result,
    index_leakage_result,
    new_category_result,
    new_label_result,
    row_group_ids,
    row_hashes,
    rows_in_reference,
    samples_mix_columns,
    samples_mix_result,
    single_value_result,
)
from app.ingest.references import BatchReference, bound_query, sql_errors
from app.ingest.sql_safety import read_only_engine

Where = Literal["database", "stream"]

# The checks of the data alone: on a SQL batch they always run in its database.
DATA_ALONE = ("DataDuplicates", "ConflictingLabels", "IsSingleValue")
# The train-test checks answered here; the other exact checks (StringMismatchComparison,
# MixedNulls, MixedDataTypes) stay on the sample: see docs/references.md for why.
TRAIN_TEST = (
    "TrainTestSamplesMix",
    "IndexTrainTestLeakage",
    "DateTrainTestLeakageOverlap",
    "DateTrainTestLeakageDuplicates",
    "NewCategoryTrainTest",
    "NewLabelTrainTest",
)

# Rows a streamed chunk holds: a chunk's codes and the frame it is checked against stay small.
CHUNK_ROWS = 100_000


@dataclass(frozen=True)
class SqlBatch:
    """A SQL batch the exact checks read: where it is, its columns, and how to connect."""

    reference: BatchReference
    columns: list[str]
    url: str
    # The request's field ("data" or "reference"), for error messages.
    field: str


@dataclass
class SqlExactChecks:
    """The exact checks of a run whose data, reference or both are SQL batches.

    `run` answers a check over every row, or returns None when it cannot here (then the
    engine answers it on the frames it holds, which for a SQL batch are a sample).
    """

    data: SqlBatch | None
    reference: SqlBatch | None
    timeout_s: float
    chunk_rows: int = CHUNK_ROWS
    _engines: dict[str, Engine] = field(default_factory=dict, repr=False)
    _rows: dict[str, int] = field(default_factory=dict, repr=False)
    # The train-test measures across two connections, read once a run for the roles they had.
    _across: tuple[Any, _AcrossMeasures] | None = field(default=None, repr=False)

    def close(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()

    def run(self, name: str, inputs: ExactInputs, limit: float) -> ExactRun | None:
        if name in DATA_ALONE:
            if self.data is None:
                return None
            return ExactRun(
                _IN_DATABASE[name](self, inputs, limit), {"data": self.rows(self.data)}, "database"
            )
        if name not in TRAIN_TEST or inputs.reference is None:
            return None
        if self.data is not None and self.reference is not None:
            if self.data.reference.connection != self.reference.reference.connection:
                # Two databases: no statement joins them, so both sides are streamed.
                result = _ACROSS[name](self, inputs, limit)
                where: Where = "stream"
            else:
                result = _IN_DATABASE[name](self, inputs, limit)
                where = "database"
        elif self.reference is not None:
            result = _AGAINST_DATA[name](self, inputs, limit)
            where = "stream"
        elif self.data is not None:
            result = _AGAINST_REFERENCE[name](self, inputs, limit)
            where = "stream"
        else:
            return None
        rows = {
            "data": self.rows(self.data) if self.data else len(inputs.data),
            "reference": self.rows(self.reference) if self.reference else len(inputs.reference),
        }
        return ExactRun(result, rows, where)

    # --- reading ----------------------------------------------------------------------------

    def engine(self, batch: SqlBatch) -> Engine:
        if batch.url not in self._engines:
            self._engines[batch.url] = read_only_engine(batch.url, self.timeout_s)
        return self._engines[batch.url]

    def rows(self, batch: SqlBatch) -> int:
        """The batch's row count, asked once a run."""
        if batch.field not in self._rows:
            source = batch_source(batch, "datagate_batch")
            count = sa.select(sa.func.count()).select_from(source)
            self._rows[batch.field] = int(self.scalar(batch, count))
        return self._rows[batch.field]

    def execute(self, batch: SqlBatch, statement: sa.Executable) -> list[tuple[Any, ...]]:
        with sql_errors(batch.reference, batch.field), self.engine(batch).connect() as conn:
            return [tuple(row) for row in conn.execute(statement)]

    def scalar(self, batch: SqlBatch, statement: sa.Executable) -> Any:
        return self.execute(batch, statement)[0][0]

    def chunks(self, batch: SqlBatch, columns: list[str]) -> Iterator[pd.DataFrame]:
        """The batch's `columns`, every row, `chunk_rows` at a time (a server-side cursor on
        PostgreSQL: the driver never holds more than a chunk)."""
        source = batch_source(batch, "datagate_batch")
        query = sa.select(*[source.c[col] for col in columns])
        with sql_errors(batch.reference, batch.field), self.engine(batch).connect() as conn:
            streamed = conn.execution_options(stream_results=True, max_row_buffer=self.chunk_rows)
            yield from pd.read_sql(query, streamed, chunksize=self.chunk_rows)


def batch_source(batch: SqlBatch, name: str) -> Any:
    """The batch as a FROM clause named `name`: the table, or the query as a subquery.

    Its parameters are made unique, so the data's and the reference's queries may both use
    `:day` in one statement; their values stay bound, never written into the text.
    """
    reference = batch.reference
    names: list[sa.ColumnClause[Any]] = [sa.column(col) for col in batch.columns]
    if reference.table is not None:
        return sa.table(reference.table, *names, schema=reference.db_schema).alias(name)
    statement = bound_query(reference, batch.field)
    params: list[sa.BindParameter[Any]] = [
        sa.bindparam(k, v, unique=True) for k, v in (reference.params or {}).items()
    ]
    if params:
        statement = statement.bindparams(*params)
    return statement.columns(*names).subquery(name)


def _sides(checks: SqlExactChecks) -> tuple[SqlBatch, Any, Any]:
    assert checks.data is not None and checks.reference is not None
    data = batch_source(checks.data, "datagate_data")
    reference = batch_source(checks.reference, "datagate_reference")
    return checks.data, data, reference


def _data_side(checks: SqlExactChecks) -> tuple[SqlBatch, Any]:
    assert checks.data is not None
    return checks.data, batch_source(checks.data, "datagate_data")


# --- in the database -----------------------------------------------------------------------


def _samples_mix_in_database(
    checks: SqlExactChecks, inputs: ExactInputs, limit: float
) -> ExactResult:
    """Both sides' rows tagged and grouped on every compared column: GROUP BY puts nulls in
    one group, as deepchecks makes nulls equal. (A join on IS NOT DISTINCT FROM says the same,
    but PostgreSQL can only run it as a nested loop: rows x rows comparisons.)"""
    batch, data, reference = _sides(checks)
    columns = samples_mix_columns(inputs)
    keys = [f"key_{i}" for i in range(len(columns))]
    in_data, in_reference = "datagate_in_data", "datagate_in_reference"
    one: sa.ColumnClause[Any] = sa.literal_column("1")
    zero: sa.ColumnClause[Any] = sa.literal_column("0")
    both = sa.union_all(
        sa.select(
            *[data.c[c].label(k) for c, k in zip(columns, keys, strict=True)],
            one.label(in_data),
            zero.label(in_reference),
        ),
        sa.select(
            *[reference.c[c].label(k) for c, k in zip(columns, keys, strict=True)], zero, one
        ),
    ).subquery("datagate_rows")
    groups = (
        sa.select(
            sa.func.sum(both.c[in_data]).label("data_rows"),
            sa.func.sum(both.c[in_reference]).label("reference_rows"),
        )
        .group_by(*[both.c[k] for k in keys])
        .subquery("datagate_groups")
    )
    shared = sa.select(sa.func.coalesce(sa.func.sum(groups.c.data_rows), 0), sa.func.count()).where(
        groups.c.data_rows > 0, groups.c.reference_rows > 0
    )
    found, distinct = checks.execute(batch, shared)[0]
    rows = checks.rows(batch)
    examples = pd.DataFrame(columns=columns)
    return samples_mix_result(int(found), rows, examples, limit, distinct=int(distinct))


def _index_leakage_in_database(
    checks: SqlExactChecks, inputs: ExactInputs, limit: float
) -> ExactResult:
    batch, data, reference = _sides(checks)
    assert inputs.index is not None
    ids_of = [
        sa.select(side.c[inputs.index]).where(side.c[inputs.index].is_not(None))
        for side in (data, reference)
    ]
    shared = sa.intersect(*ids_of).subquery("datagate_shared_ids")
    count = checks.scalar(batch, sa.select(sa.func.count()).select_from(shared))
    return index_leakage_result(int(count), checks.rows(batch), limit)


def _date_overlap_in_database(
    checks: SqlExactChecks, inputs: ExactInputs, limit: float
) -> ExactResult:
    batch, data, reference = _sides(checks)
    assert inputs.datetime is not None
    last = sa.select(sa.func.max(reference.c[inputs.datetime])).scalar_subquery()
    # A comparison with a null (no reference date) is never true: no leakage, as deepchecks.
    leaked = sa.select(sa.func.count()).select_from(data).where(data.c[inputs.datetime] < last)
    return date_leakage_result(int(checks.scalar(batch, leaked)), checks.rows(batch), limit)


def _date_duplicates_in_database(
    checks: SqlExactChecks, inputs: ExactInputs, limit: float
) -> ExactResult:
    batch, data, reference = _sides(checks)
    assert inputs.datetime is not None
    day = data.c[inputs.datetime]
    theirs = reference.c[inputs.datetime]
    # A plain EXISTS on `=` is a hash semi-join; OR-ing the null case into the same WHERE
    # turns it into a subplan run per data row. pandas' isin matches a null with a null,
    # so the data's null dates count apart, when the reference holds a null date too.
    matched = (
        sa.select(sa.func.count())
        .select_from(data)
        .where(sa.exists().select_from(reference).where(theirs == day))
        .scalar_subquery()
    )
    nulls = sa.select(sa.func.count()).select_from(data).where(day.is_(None)).scalar_subquery()
    reference_has_null = sa.exists().select_from(reference).where(theirs.is_(None))
    leaked = sa.select(matched + sa.case((reference_has_null, nulls), else_=0))
    return date_leakage_result(int(checks.scalar(batch, leaked)), checks.rows(batch), limit)


def _unseen_in_database(checks: SqlExactChecks, column: str) -> list[tuple[Any, int]]:
    """Values of the data's `column` (nulls aside) no reference row holds, with their rows."""
    batch, data, reference = _sides(checks)
    ours, theirs = data.c[column], reference.c[column]
    # `=` is enough: nulls are no categories, and a null reference value knows none.
    known = sa.exists().select_from(reference).where(theirs == ours)
    unseen = sa.select(ours, sa.func.count()).where(ours.is_not(None), ~known).group_by(ours)
    counts = {value: int(n) for value, n in checks.execute(batch, unseen)}
    return by_count(pd.Series(counts, dtype=np.int64))


def _new_category_in_database(
    checks: SqlExactChecks, inputs: ExactInputs, limit: float
) -> ExactResult:
    assert checks.data is not None
    unseen = {col: _unseen_in_database(checks, col) for col in inputs.categorical}
    return new_category_result(unseen, checks.rows(checks.data), limit)


def _new_label_in_database(
    checks: SqlExactChecks, inputs: ExactInputs, limit: float
) -> ExactResult:
    assert checks.data is not None and inputs.label is not None
    unseen = _unseen_in_database(checks, inputs.label)
    return new_label_result(unseen, checks.rows(checks.data), limit)


def _data_duplicates_in_database(
    checks: SqlExactChecks, inputs: ExactInputs, limit: float
) -> ExactResult:
    batch, data = _data_side(checks)
    # DISTINCT, like GROUP BY, takes nulls as equal.
    distinct = sa.select(*[data.c[c] for c in batch.columns]).distinct().subquery("datagate_rows")
    count = checks.scalar(batch, sa.select(sa.func.count()).select_from(distinct))
    return data_duplicates_result(int(count), checks.rows(batch), limit)


def _conflicting_labels_in_database(
    checks: SqlExactChecks, inputs: ExactInputs, limit: float
) -> ExactResult:
    batch, data = _data_side(checks)
    assert inputs.label is not None
    label = data.c[inputs.label]
    # COUNT(DISTINCT) skips nulls; a null label is one more label, as in deepchecks' groups.
    labels = sa.func.count(sa.distinct(label)) + sa.func.max(sa.case((label.is_(None), 1), else_=0))
    groups = (
        sa.select(sa.func.count().label("rows"), labels.label("labels"))
        .group_by(*[data.c[f] for f in inputs.features])
        .subquery("datagate_groups")
    )
    conflicting = sa.select(sa.func.coalesce(sa.func.sum(groups.c.rows), 0), sa.func.count()).where(
        groups.c.labels > 1
    )
    rows_in_conflict, count = checks.execute(batch, conflicting)[0]
    return conflicting_labels_result(int(rows_in_conflict), int(count), checks.rows(batch), limit)


def _single_value_in_database(
    checks: SqlExactChecks, inputs: ExactInputs, limit: float
) -> ExactResult:
    batch, data = _data_side(checks)
    columns = [str(c) for c in inputs.data.columns]
    counts = checks.execute(
        batch, sa.select(*[sa.func.count(sa.distinct(data.c[c])) for c in columns])
    )[0]
    return single_value_result({col: int(n) for col, n in zip(columns, counts, strict=True)})


# --- the reference streamed past the data in memory ----------------------------------------


def _dates(values: pd.Series[Any]) -> pd.Series[Any]:
    # As deepchecks' Dataset (and exact_checks) read a datetime column.
    return pd.to_datetime(values)


def _objects(values: pd.Series[Any]) -> pd.Series[Any]:
    return values.astype(object) if isinstance(values.dtype, pd.CategoricalDtype) else values


def _samples_mix_against_data(
    checks: SqlExactChecks, inputs: ExactInputs, limit: float
) -> ExactResult:
    assert checks.reference is not None
    columns = samples_mix_columns(inputs)
    data = inputs.data[columns]
    found = np.zeros(len(data), dtype=bool)
    for chunk in checks.chunks(checks.reference, columns):
        left = ~found
        if not left.any():
            break
        part = _chunk_inputs(inputs, data[left].reset_index(drop=True), chunk)
        found[np.flatnonzero(left)[rows_in_reference(part, columns)]] = True
    shared = data.loc[found].drop_duplicates()
    return samples_mix_result(int(found.sum()), len(data), shared, limit)


def _chunk_inputs(inputs: ExactInputs, data: pd.DataFrame, reference: pd.DataFrame) -> ExactInputs:
    """Inputs for comparing two frames' rows, with the run's roles (dates are parsed alike)."""
    return ExactInputs(
        data=data,
        reference=reference,
        features=inputs.features,
        categorical=[],
        label=inputs.label,
        index=None,
        datetime=inputs.datetime,
    )


def _index_leakage_against_data(
    checks: SqlExactChecks, inputs: ExactInputs, limit: float
) -> ExactResult:
    assert checks.reference is not None and inputs.index is not None
    ids = pd.Series(inputs.data[inputs.index].dropna().unique())
    shared = np.zeros(len(ids), dtype=bool)
    for chunk in checks.chunks(checks.reference, [inputs.index]):
        shared |= ids.isin(chunk[inputs.index].dropna()).to_numpy()
    return index_leakage_result(int(shared.sum()), len(inputs.data), limit)


def _date_overlap_against_data(
    checks: SqlExactChecks, inputs: ExactInputs, limit: float
) -> ExactResult:
    assert checks.reference is not None and inputs.datetime is not None
    lasts = [
        _dates(chunk[inputs.datetime]).max()
        for chunk in checks.chunks(checks.reference, [inputs.datetime])
    ]
    last = pd.Series(lasts, dtype=object).dropna()
    dates = _dates(inputs.data[inputs.datetime])
    leaked = int((dates < max(last)).sum()) if len(last) else 0
    return date_leakage_result(leaked, len(inputs.data), limit)


def _date_duplicates_against_data(
    checks: SqlExactChecks, inputs: ExactInputs, limit: float
) -> ExactResult:
    assert checks.reference is not None and inputs.datetime is not None
    dates = _dates(inputs.data[inputs.datetime])
    leaked = np.zeros(len(dates), dtype=bool)
    for chunk in checks.chunks(checks.reference, [inputs.datetime]):
        leaked |= dates.isin(_dates(chunk[inputs.datetime])).to_numpy()
    return date_leakage_result(int(leaked.sum()), len(inputs.data), limit)


def _unseen_against_data(
    checks: SqlExactChecks, inputs: ExactInputs, column: str
) -> list[tuple[Any, int]]:
    assert checks.reference is not None
    present = _objects(inputs.data[column].dropna())
    known = np.zeros(len(present), dtype=bool)
    for chunk in checks.chunks(checks.reference, [column]):
        known |= present.isin(_objects(chunk[column].dropna()).unique()).to_numpy()
    return by_count(present[~known].value_counts(sort=False))


def _new_category_against_data(
    checks: SqlExactChecks, inputs: ExactInputs, limit: float
) -> ExactResult:
    unseen = {col: _unseen_against_data(checks, inputs, col) for col in inputs.categorical}
    return new_category_result(unseen, len(inputs.data), limit)


def _new_label_against_data(
    checks: SqlExactChecks, inputs: ExactInputs, limit: float
) -> ExactResult:
    assert inputs.label is not None
    unseen = _unseen_against_data(checks, inputs, inputs.label)
    return new_label_result(unseen, len(inputs.data), limit)


# --- the data streamed past the reference in memory ----------------------------------------


def _reference_frame(inputs: ExactInputs) -> pd.DataFrame:
    assert inputs.reference is not None
    return inputs.reference


def _samples_mix_against_reference(
    checks: SqlExactChecks, inputs: ExactInputs, limit: float
) -> ExactResult:
    assert checks.data is not None
    columns = samples_mix_columns(inputs)
    reference = _reference_frame(inputs)[columns]
    found, rows = 0, 0
    shared: list[pd.DataFrame] = []
    for chunk in checks.chunks(checks.data, columns):
        in_reference = rows_in_reference(_chunk_inputs(inputs, chunk, reference), columns)
        found += int(in_reference.sum())
        rows += len(chunk)
        # At most one row per distinct reference row: bounded by the reference held already.
        shared.append(chunk.loc[in_reference].drop_duplicates())
    distinct = pd.concat(shared, ignore_index=True).drop_duplicates() if shared else reference[:0]
    return samples_mix_result(found, max(rows, 1), distinct, limit)


def _index_leakage_against_reference(
    checks: SqlExactChecks, inputs: ExactInputs, limit: float
) -> ExactResult:
    assert checks.data is not None and inputs.index is not None
    # Distinct data ids found in the reference are distinct reference ids found in the data.
    ids = pd.Series(_reference_frame(inputs)[inputs.index].dropna().unique())
    shared = np.zeros(len(ids), dtype=bool)
    rows = 0
    for chunk in checks.chunks(checks.data, [inputs.index]):
        shared |= ids.isin(chunk[inputs.index].dropna()).to_numpy()
        rows += len(chunk)
    return index_leakage_result(int(shared.sum()), max(rows, 1), limit)


def _date_overlap_against_reference(
    checks: SqlExactChecks, inputs: ExactInputs, limit: float
) -> ExactResult:
    assert checks.data is not None and inputs.datetime is not None
    last = _dates(_reference_frame(inputs)[inputs.datetime]).max()
    leaked, rows = 0, 0
    for chunk in checks.chunks(checks.data, [inputs.datetime]):
        if not pd.isna(last):
            leaked += int((_dates(chunk[inputs.datetime]) < last).sum())
        rows += len(chunk)
    return date_leakage_result(leaked, max(rows, 1), limit)


def _date_duplicates_against_reference(
    checks: SqlExactChecks, inputs: ExactInputs, limit: float
) -> ExactResult:
    assert checks.data is not None and inputs.datetime is not None
    dates = _dates(_reference_frame(inputs)[inputs.datetime])
    leaked, rows = 0, 0
    for chunk in checks.chunks(checks.data, [inputs.datetime]):
        leaked += int(_dates(chunk[inputs.datetime]).isin(dates).sum())
        rows += len(chunk)
    return date_leakage_result(leaked, max(rows, 1), limit)


def _unseen_against_reference(
    checks: SqlExactChecks, inputs: ExactInputs, column: str
) -> tuple[list[tuple[Any, int]], int]:
    """The data's unseen values of `column` with their rows, and the data's rows."""
    assert checks.data is not None
    known = _objects(_reference_frame(inputs)[column].dropna()).unique()
    counts: Counter[Any] = Counter()
    rows = 0
    for chunk in checks.chunks(checks.data, [column]):
        present = _objects(chunk[column].dropna())
        for value, n in present[~present.isin(known)].value_counts(sort=False).items():
            counts[value] += int(n)
        rows += len(chunk)
    return by_count(pd.Series(dict(counts), dtype=np.int64)), max(rows, 1)


def _new_category_against_reference(
    checks: SqlExactChecks, inputs: ExactInputs, limit: float
) -> ExactResult:
    unseen, rows = {}, 1
    for col in inputs.categorical:
        unseen[col], rows = _unseen_against_reference(checks, inputs, col)
    return new_category_result(unseen, rows, limit)


def _new_label_against_reference(
    checks: SqlExactChecks, inputs: ExactInputs, limit: float
) -> ExactResult:
    assert inputs.label is not None
    unseen, rows = _unseen_against_reference(checks, inputs, inputs.label)
    return new_label_result(unseen, rows, limit)


# --- both sides streamed: two connections --------------------------------------------------
#
# No statement joins two databases, and neither side may be read whole. So the smaller side
# (by COUNT(*)) is read once into a set of 64-bit row keys, the other side is streamed past
# it, and only the rows whose key matched are kept, as values: then the held side is read once
# more for its rows of the matched keys, and the two are compared on their values by
# `rows_in_reference`, exactly as the in-memory checks compare. A key is coarser than the
# checks' equality (equal values always get equal keys; see `_value_keys`), so the keys lose no
# match, and a collision only brings one more candidate to the comparison, never a false match.

# The key of a null cell, whatever kind of null: nulls equal to nulls, as deepchecks makes them.
NULL_KEY = np.uint64(0x9E3779B97F4A7C15)
# The SipHash key for values that are neither text nor numbers nor instants, keyed apart from
# text so that `date(2024, 1, 1)` and "2024-01-01" do not share a key (they are not equal).
_OTHER_HASH_KEY = "datagate-other-1"

Keys = np.ndarray[Any, np.dtype[np.uint64]]


def _value_keys(values: pd.Series[Any], is_datetime: bool) -> Keys:
    """A 64-bit key per value, equal for values the exact checks call equal.

    The exact checks compare a column's values by `pd.factorize` over both sides stacked: a
    number equals a number of the same value whatever its type (1, 1.0, True), -0.0 equals 0.0,
    text equals the same text, an instant the same instant, every null every null. So every
    number is keyed by its float64 bits (-0.0 as 0.0), an instant by its nanoseconds since the
    epoch (UTC), a duration by its nanoseconds, text by its SipHash, anything else by the
    SipHash of its `str`. Two values of one chunk's column need not share a dtype with another
    chunk's (a null turns an integer chunk into floats), so an object column is keyed cell
    by cell in the same way, one vectorised pass per kind of value.
    """
    if is_datetime:
        # As deepchecks' Dataset (and exact_checks) read the datetime column.
        values = pd.to_datetime(values)
    dtype = values.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or (isinstance(dtype, np.dtype) and dtype.kind == "M"):
        return _instant_keys(values)
    if isinstance(dtype, np.dtype) and dtype.kind in "biuf":
        return _number_keys(values.to_numpy(dtype=np.float64))
    if isinstance(dtype, np.dtype) and dtype.kind == "m":
        return _span_keys(values)
    cells = values.to_numpy(dtype=object)
    keys = np.full(len(cells), NULL_KEY, dtype=np.uint64)
    kinds = pd.Series(np.frompyfunc(type, 1, 1)(cells), dtype=object)
    classes = kinds.map({kind: _kind_of(kind) for kind in pd.unique(kinds)}).to_numpy()
    for kind in ("number", "instant", "span", "text", "other"):
        picked = classes == kind
        if picked.any():
            keys[picked] = _keys_of_kind(kind, cells[picked])
    keys[pd.isna(values).to_numpy()] = NULL_KEY
    return keys


def _keys_of_kind(kind: str, cells: np.ndarray[Any, np.dtype[np.object_]]) -> Keys:
    """The keys of object cells that all hold one kind of value (`_kind_of`)."""
    if kind == "number":
        return _number_keys(cells.astype(np.float64))
    if kind == "instant":
        return _instant_keys(pd.to_datetime(pd.Series(cells), utc=True))
    if kind == "span":
        return _span_keys(pd.to_timedelta(pd.Series(cells)))
    if kind == "text":
        return pd.util.hash_array(cells, categorize=False)
    return pd.util.hash_array(
        cells.astype(str).astype(object), hash_key=_OTHER_HASH_KEY, categorize=False
    )


def _kind_of(kind: type) -> str:
    if issubclass(kind, str):
        return "text"
    if issubclass(kind, (bool, np.bool_, numbers.Real, decimal.Decimal)):
        return "number"
    if issubclass(kind, (dt.datetime, np.datetime64)):
        return "instant"
    if issubclass(kind, (dt.timedelta, np.timedelta64)):
        return "span"
    return "other"


def _number_keys(values: np.ndarray[Any, np.dtype[np.float64]]) -> Keys:
    values = values.copy()
    values[values == 0] = 0.0
    keys = values.view(np.uint64)
    keys[np.isnan(values)] = NULL_KEY
    return keys


def _instant_keys(values: pd.Series[Any]) -> Keys:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    nanoseconds = values.astype("datetime64[ns]").to_numpy().view(np.int64)
    keys = nanoseconds.view(np.uint64).copy()
    keys[values.isna().to_numpy()] = NULL_KEY
    return keys


def _span_keys(values: pd.Series[Any]) -> Keys:
    keys = values.astype("timedelta64[ns]").to_numpy().view(np.int64).view(np.uint64).copy()
    keys[values.isna().to_numpy()] = NULL_KEY
    return keys


def _row_keys(chunk: pd.DataFrame, columns: list[str], datetime: str | None) -> Keys:
    """One 64-bit key per row over `columns`: the value keys combined as exact_checks combines
    its codes (`row_hashes`)."""
    keys = pd.DataFrame(
        {i: _value_keys(chunk[col], col == datetime) for i, col in enumerate(columns)}
    )
    return row_hashes(keys)


def _holding(keys: Keys, sorted_keys: Keys) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Which `keys` are in `sorted_keys`: a binary search, no hash table rebuilt per chunk."""
    if not len(sorted_keys):
        return np.zeros(len(keys), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    found: np.ndarray[Any, np.dtype[np.bool_]] = sorted_keys[at] == keys
    return found


class _KeySet:
    """Distinct row keys gathered chunk by chunk, as one sorted uint64 array: 8 bytes a key."""

    def __init__(self) -> None:
        self._merged: Keys = np.empty(0, dtype=np.uint64)
        self._parts: list[Keys] = []
        self._pending = 0

    def add(self, keys: Keys) -> None:
        part = np.unique(keys)
        self._parts.append(part)
        self._pending += len(part)
        # Merged when the parts outgrow the set: each key is sorted O(log n) times, not once
        # per chunk, and the parts never hold more than the set itself.
        if self._pending > max(len(self._merged), CHUNK_ROWS):
            self._merge()

    def _merge(self) -> None:
        if self._parts:
            self._merged = np.unique(np.concatenate([self._merged, *self._parts]))
            self._parts, self._pending = [], 0

    def sorted(self) -> Keys:
        self._merge()
        return self._merged


class _DistinctRows:
    """Distinct rows over `columns` (equal as the exact checks compare them), each with the
    number of rows it stands for, gathered chunk by chunk."""

    def __init__(self, columns: list[str], datetime: str | None) -> None:
        self.columns, self.datetime = columns, datetime
        self._frames: list[pd.DataFrame] = []
        self._counts: list[np.ndarray[Any, np.dtype[np.int64]]] = []
        self._merged_rows = 0
        self._pending = 0

    def add(self, rows: pd.DataFrame) -> None:
        frame, counts = self._distinct(rows, np.ones(len(rows), dtype=np.int64))
        self._frames.append(frame)
        self._counts.append(counts)
        self._pending += len(frame)
        if self._pending > max(self._merged_rows, CHUNK_ROWS):
            self._merge()

    def _distinct(
        self, rows: pd.DataFrame, counts: np.ndarray[Any, np.dtype[np.int64]]
    ) -> tuple[pd.DataFrame, np.ndarray[Any, np.dtype[np.int64]]]:
        rows = rows.reset_index(drop=True)
        if rows.empty:
            return rows, counts
        ids = row_group_ids(rows, self.columns, self.datetime)
        _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
        summed = np.bincount(inverse, weights=counts, minlength=len(first))
        return rows.take(first).reset_index(drop=True), summed.astype(np.int64)

    def _merge(self) -> None:
        if len(self._frames) > 1:
            frame, counts = self._distinct(
                pd.concat(self._frames, ignore_index=True), np.concatenate(self._counts)
            )
            self._frames, self._counts = [frame], [counts]
        self._merged_rows = sum(len(f) for f in self._frames)
        self._pending = 0

    def result(self) -> tuple[pd.DataFrame, np.ndarray[Any, np.dtype[np.int64]]]:
        self._merge()
        if not self._frames:
            return pd.DataFrame(columns=self.columns), np.zeros(0, dtype=np.int64)
        return self._frames[0], self._counts[0]


def _both(checks: SqlExactChecks) -> tuple[SqlBatch, SqlBatch]:
    assert checks.data is not None and checks.reference is not None
    return checks.data, checks.reference


Counts = np.ndarray[Any, np.dtype[np.int64]]


@dataclass
class _SharedRows:
    """One question "which data rows over `columns` does a reference row hold?", answered in
    three reads: the held side's keys; the other side's rows of those keys; the held side's rows
    of the keys that matched. Then the two candidate sets are compared on their values."""

    columns: list[str]
    datetime: str | None
    # A row with a null in `columns` takes no part (a null id is never a shared id).
    skip_nulls: bool = False
    held_keys: _KeySet = field(default_factory=_KeySet)
    matched: Keys = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    other_rows: tuple[pd.DataFrame, Counts] | None = None
    held_rows: tuple[pd.DataFrame, Counts] | None = None

    def _part(self, chunk: pd.DataFrame) -> pd.DataFrame:
        part = chunk[self.columns]
        return part[part.notna().all(axis=1)] if self.skip_nulls else part

    def keep_keys(self, chunk: pd.DataFrame) -> None:
        part = self._part(chunk)
        self.held_keys.add(_row_keys(part, self.columns, self.datetime))

    def start_rows(self) -> tuple[_DistinctRows, _KeySet]:
        return _DistinctRows(self.columns, self.datetime), _KeySet()

    def keep_rows(
        self, chunk: pd.DataFrame, keys: Keys, rows: _DistinctRows, matched: _KeySet
    ) -> None:
        part = self._part(chunk)
        part_keys = _row_keys(part, self.columns, self.datetime)
        hit = _holding(part_keys, keys)
        if hit.any():
            rows.add(part.loc[hit])
            matched.add(part_keys[hit])

    def shared(self, data_held: bool) -> tuple[pd.DataFrame, Counts]:
        """The distinct data rows a reference row holds, each with its number of data rows."""
        assert self.other_rows is not None and self.held_rows is not None
        data, reference = (
            (self.held_rows, self.other_rows) if data_held else (self.other_rows, self.held_rows)
        )
        (ours, counts), (theirs, _) = data, reference
        if ours.empty or theirs.empty:
            return ours[:0], counts[:0]
        inputs = ExactInputs(ours, theirs, self.columns, [], None, None, self.datetime)
        found = rows_in_reference(inputs, self.columns)
        return ours.loc[found].reset_index(drop=True), counts[found]


@dataclass
class _Unseen:
    """Values of one column of the data (nulls aside) that no reference row holds: the smaller
    side's distinct values held (a category's values are few), the other side's struck off or
    counted against them."""

    column: str
    counts: Counter[Any] = field(default_factory=Counter)
    known: Any = field(default_factory=lambda: np.empty(0, dtype=object))
    seen: np.ndarray[Any, np.dtype[np.bool_]] | None = None

    def _values(self, chunk: pd.DataFrame) -> pd.Series[Any]:
        return _objects(chunk[self.column].dropna())

    def count_data(self, chunk: pd.DataFrame) -> None:
        """Data held: every value's rows."""
        for value, n in self._values(chunk).value_counts(sort=False).items():
            self.counts[value] += int(n)

    def strike_known(self, chunk: pd.DataFrame) -> None:
        """Data held: the values the reference shows."""
        if self.seen is None:
            self.known = pd.Series(list(self.counts), dtype=object)
            self.seen = np.zeros(len(self.known), dtype=bool)
        self.seen |= self.known.isin(self._values(chunk).unique()).to_numpy()

    def keep_known(self, chunk: pd.DataFrame) -> None:
        """Reference held: its distinct values."""
        values = np.asarray(self._values(chunk).unique(), dtype=object)
        self.known = pd.unique(np.concatenate([self.known, values]))

    def count_unknown(self, chunk: pd.DataFrame) -> None:
        """Reference held: the data's rows of values it lacks."""
        present = self._values(chunk)
        for value, n in present[~present.isin(self.known)].value_counts(sort=False).items():
            self.counts[value] += int(n)

    def result(self, data_held: bool) -> list[tuple[Any, int]]:
        if data_held:
            seen = self.seen if self.seen is not None else np.zeros(len(self.counts), dtype=bool)
            values = list(self.counts)
            unseen = {v: self.counts[v] for v, hit in zip(values, seen, strict=True) if not hit}
            return by_count(pd.Series(unseen, dtype=np.int64))
        return by_count(pd.Series(dict(self.counts), dtype=np.int64))


@dataclass
class _LastDate:
    """DateTrainTestLeakageOverlap's two reads: the reference's last date, then the data's rows
    dated before it."""

    column: str
    lasts: list[Any] = field(default_factory=list)
    leaked: int = 0

    def keep_last(self, chunk: pd.DataFrame) -> None:
        self.lasts.append(_dates(chunk[self.column]).max())

    def count_before(self, chunk: pd.DataFrame) -> None:
        last = pd.Series(self.lasts, dtype=object).dropna()
        if len(last):
            self.leaked += int((_dates(chunk[self.column]) < max(last)).sum())


@dataclass(frozen=True)
class _AcrossMeasures:
    """What the six train-test checks measure across two connections, before their limits."""

    shared_rows: tuple[pd.DataFrame, Counts]
    shared_ids: int
    shared_dates: int
    dates_before: int
    unseen: dict[str, list[tuple[Any, int]]]
    data_rows: int


def _measure_across(checks: SqlExactChecks, inputs: ExactInputs) -> _AcrossMeasures:
    """Every train-test check's measure, in three reads of one chunked pass each: the smaller
    side (by COUNT(*)), the other, the smaller again. Reading is most of the cost (rows through
    the drivers into pandas), so the checks share each read instead of reading apart."""
    roles = (
        tuple(inputs.features),
        tuple(inputs.categorical),
        inputs.label,
        inputs.index,
        inputs.datetime,
    )
    if checks._across is not None and checks._across[0] == roles:
        return checks._across[1]
    data, reference = _both(checks)
    data_held = checks.rows(data) <= checks.rows(reference)
    held, other = (data, reference) if data_held else (reference, data)
    mix = _SharedRows(samples_mix_columns(inputs), inputs.datetime)
    questions = [mix]
    ids = dates = None
    if inputs.index is not None:
        # The ids are not dates: none is parsed as one.
        ids = _SharedRows([inputs.index], None, skip_nulls=True)
        questions.append(ids)
    last = None
    if inputs.datetime is not None:
        # pandas' isin matches a null date with a null date, as the row keys do.
        dates = _SharedRows([inputs.datetime], inputs.datetime)
        questions.append(dates)
        last = _LastDate(inputs.datetime)
    valued = list(dict.fromkeys([*inputs.categorical, *([inputs.label] if inputs.label else [])]))
    unseen = [_Unseen(col) for col in valued]
    columns = list(
        dict.fromkeys(
            [c for q in questions for c in q.columns]
            + valued
            + ([inputs.datetime] if inputs.datetime else [])
        )
    )
    # First read: the held side's keys and values (and last date, if it is the reference).
    for chunk in checks.chunks(held, columns):
        for question in questions:
            question.keep_keys(chunk)
        for values in unseen:
            (values.count_data if data_held else values.keep_known)(chunk)
        if last is not None and not data_held:
            last.keep_last(chunk)
    # Second read: the other side's rows of the held keys; its values; its dates.
    held_keys = [q.held_keys.sorted() for q in questions]
    other_rows = [q.start_rows() for q in questions]
    for chunk in checks.chunks(other, columns):
        for question, keys, (rows, matched) in zip(questions, held_keys, other_rows, strict=True):
            question.keep_rows(chunk, keys, rows, matched)
        for values in unseen:
            (values.strike_known if data_held else values.count_unknown)(chunk)
        if last is not None:
            (last.keep_last if data_held else last.count_before)(chunk)
    for question, (rows, matched) in zip(questions, other_rows, strict=True):
        question.other_rows, question.matched = rows.result(), matched.sorted()
    # Third read: the held side's rows of the keys that matched (and, if it is the data, its
    # dates against the reference's last one).
    held_rows = [q.start_rows() for q in questions]
    if any(len(q.matched) for q in questions) or (last is not None and data_held):
        for chunk in checks.chunks(held, columns):
            for question, (rows, matched) in zip(questions, held_rows, strict=True):
                if len(question.matched):
                    question.keep_rows(chunk, question.matched, rows, matched)
            if last is not None and data_held:
                last.count_before(chunk)
    for question, (rows, _) in zip(questions, held_rows, strict=True):
        question.held_rows = rows.result()
    measures = _AcrossMeasures(
        shared_rows=mix.shared(data_held),
        shared_ids=len(ids.shared(data_held)[0]) if ids is not None else 0,
        shared_dates=int(dates.shared(data_held)[1].sum()) if dates is not None else 0,
        dates_before=last.leaked if last is not None else 0,
        unseen={values.column: values.result(data_held) for values in unseen},
        data_rows=max(checks.rows(data), 1),
    )
    checks._across = (roles, measures)
    return measures


def _samples_mix_across(checks: SqlExactChecks, inputs: ExactInputs, limit: float) -> ExactResult:
    measures = _measure_across(checks, inputs)
    shared, counts = measures.shared_rows
    return samples_mix_result(int(counts.sum()), measures.data_rows, shared, limit)


def _index_leakage_across(checks: SqlExactChecks, inputs: ExactInputs, limit: float) -> ExactResult:
    measures = _measure_across(checks, inputs)
    return index_leakage_result(measures.shared_ids, measures.data_rows, limit)


def _date_overlap_across(checks: SqlExactChecks, inputs: ExactInputs, limit: float) -> ExactResult:
    measures = _measure_across(checks, inputs)
    return date_leakage_result(measures.dates_before, measures.data_rows, limit)


def _date_duplicates_across(
    checks: SqlExactChecks, inputs: ExactInputs, limit: float
) -> ExactResult:
    measures = _measure_across(checks, inputs)
    return date_leakage_result(measures.shared_dates, measures.data_rows, limit)


def _new_category_across(checks: SqlExactChecks, inputs: ExactInputs, limit: float) -> ExactResult:
    measures = _measure_across(checks, inputs)
    unseen = {col: measures.unseen[col] for col in inputs.categorical}
    return new_category_result(unseen, measures.data_rows, limit)


def _new_label_across(checks: SqlExactChecks, inputs: ExactInputs, limit: float) -> ExactResult:
    assert inputs.label is not None
    measures = _measure_across(checks, inputs)
    return new_label_result(measures.unseen[inputs.label], measures.data_rows, limit)


_Check = Callable[[SqlExactChecks, ExactInputs, float], ExactResult]

_IN_DATABASE: dict[str, _Check] = {
    "TrainTestSamplesMix": _samples_mix_in_database,
    "IndexTrainTestLeakage": _index_leakage_in_database,
    "DateTrainTestLeakageOverlap": _date_overlap_in_database,
    "DateTrainTestLeakageDuplicates": _date_duplicates_in_database,
    "NewCategoryTrainTest": _new_category_in_database,
    "NewLabelTrainTest": _new_label_in_database,
    "DataDuplicates": _data_duplicates_in_database,
    "ConflictingLabels": _conflicting_labels_in_database,
    "IsSingleValue": _single_value_in_database,
}
_AGAINST_DATA: dict[str, _Check] = {
    "TrainTestSamplesMix": _samples_mix_against_data,
    "IndexTrainTestLeakage": _index_leakage_against_data,
    "DateTrainTestLeakageOverlap": _date_overlap_against_data,
    "DateTrainTestLeakageDuplicates": _date_duplicates_against_data,
    "NewCategoryTrainTest": _new_category_against_data,
    "NewLabelTrainTest": _new_label_against_data,
}
_AGAINST_REFERENCE: dict[str, _Check] = {
    "TrainTestSamplesMix": _samples_mix_against_reference,
    "IndexTrainTestLeakage": _index_leakage_against_reference,
    "DateTrainTestLeakageOverlap": _date_overlap_against_reference,
    "DateTrainTestLeakageDuplicates": _date_duplicates_against_reference,
    "NewCategoryTrainTest": _new_category_against_reference,
    "NewLabelTrainTest": _new_label_against_reference,
}
_ACROSS: dict[str, _Check] = {
    "TrainTestSamplesMix": _samples_mix_across,
    "IndexTrainTestLeakage": _index_leakage_across,
    "DateTrainTestLeakageOverlap": _date_overlap_across,
    "DateTrainTestLeakageDuplicates": _date_duplicates_across,
    "NewCategoryTrainTest": _new_category_across,
    "NewLabelTrainTest": _new_label_across,
}

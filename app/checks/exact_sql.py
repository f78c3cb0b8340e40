"""The exact set checks over SQL batches: inside the database when the data and the reference
share a connection, else by streaming the SQL side in chunks past the other, held in memory.

Same definitions and values as app/checks/exact_checks.py, which the differential tests hold
this module to. Every statement is built with SQLAlchemy Core on the batch as `sql_source`
gives it (a table, or the accepted query as a subquery with bound parameters) and runs on a
`read_only_engine`: read-only transactions, the statement timeout, the same guards as the suite.
"""

from __future__ import annotations

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
                # Two databases: no join between them, and neither side fits in memory.
                return None
            result = _IN_DATABASE[name](self, inputs, limit)
            where: Where = "database"
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

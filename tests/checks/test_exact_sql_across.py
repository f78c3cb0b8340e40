"""The train-test checks between two connections (a SQLite file and a PostgreSQL database):
both sides streamed, with exact_checks.py's value and verdict, and deepchecks' on every row."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.checks import exact_sql
from app.checks.exact_checks import EXACT_CHECKS, ExactInputs
from app.checks.exact_sql import TRAIN_TEST, SqlBatch, SqlExactChecks
from app.ingest.references import BatchReference
from app.ingest.sql_safety import read_only_url
from tests.checks.test_exact_checks import _deepchecks
from tests.checks.test_exact_checks import _same as _same_as_deepchecks
from tests.checks.test_exact_sql import (
    CATEGORICAL,
    LIMITS,
    NAN,
    Warehouse,
    _copy_some_rows,
    _inputs,
    _planted,
    _same,
    frames,
)
from tests.conftest import fresh_postgres_database, reader_role


@pytest.fixture(scope="module")
def two_warehouses(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Warehouse, Warehouse]]:
    """A SQLite file and a PostgreSQL database: two connections no statement can join."""
    path = tmp_path_factory.mktemp("lite") / "lite.db"
    path.touch()
    url = f"sqlite:///{path}"
    with fresh_postgres_database() as admin_url, reader_role(admin_url) as reader_url:
        yield Warehouse(url, read_only_url(url, "lite")), Warehouse(admin_url, reader_url)


def _across(
    data: tuple[str, Warehouse], reference: tuple[str, Warehouse], columns: list[str], chunk: int
) -> SqlExactChecks:
    """The data's table `test_rows` on one connection, the reference's `train_rows` on another."""
    (data_name, data_at), (reference_name, reference_at) = data, reference
    return SqlExactChecks(
        SqlBatch(
            BatchReference(connection=data_name, table="test_rows"),
            columns,
            data_at.reader_url,
            "data",
        ),
        SqlBatch(
            BatchReference(connection=reference_name, table="train_rows"),
            columns,
            reference_at.reader_url,
            "reference",
        ),
        30,
        chunk_rows=chunk,
    )


def _load_apart(
    two_warehouses: tuple[Warehouse, Warehouse],
    data: pd.DataFrame,
    reference: pd.DataFrame,
    data_on_sqlite: bool,
    chunk: int,
) -> tuple[SqlExactChecks, pd.DataFrame, pd.DataFrame]:
    """The data on one of the two databases and the reference on the other; the checks over
    them (read `chunk` rows at a time) and the two tables as read back."""
    lite, pg = two_warehouses
    (data_name, data_at), (reference_name, reference_at) = (
        (("lite", lite), ("pg", pg)) if data_on_sqlite else (("pg", pg), ("lite", lite))
    )
    test_rows = data_at.load(test_rows=data)["test_rows"]
    train_rows = reference_at.load(train_rows=reference)["train_rows"]
    columns = list(data.columns)
    checks = _across((data_name, data_at), (reference_name, reference_at), columns, chunk)
    return checks, test_rows, train_rows


@given(
    data=frames(),
    reference=frames(),
    share=st.sampled_from([0.0, 0.5, 1.0]),
    data_on_sqlite=st.booleans(),
)
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_checks_across_two_connections_give_the_in_memory_value_and_verdict(
    two_warehouses: tuple[Warehouse, Warehouse],
    data: pd.DataFrame,
    reference: pd.DataFrame,
    share: float,
    data_on_sqlite: bool,
) -> None:
    data = _copy_some_rows(data, reference, share)
    # Chunks of 7 rows: most frames cross several.
    checks, test_rows, train_rows = _load_apart(two_warehouses, data, reference, data_on_sqlite, 7)
    # The engine's frames of a SQL batch are samples: a row stands for each table here.
    sample = _inputs(test_rows.head(1), train_rows.head(1))
    truth = _inputs(test_rows, train_rows)
    try:
        for name in TRAIN_TEST:
            run = checks.run(name, sample, LIMITS[name])
            assert run is not None and run.where == "stream", name
            _same(name, run.result, EXACT_CHECKS[name](truth, LIMITS[name]))
            assert run.rows_used == {"data": len(data), "reference": len(reference)}
    finally:
        checks.close()


def _constant_keys(keys: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.uint64]]:
    return np.zeros(len(keys), dtype=np.uint64)


@pytest.mark.parametrize("data_on_sqlite", [True, False], ids=["data-sqlite", "data-postgresql"])
@pytest.mark.parametrize("keys", ["real", "colliding"])
def test_planted_leaks_across_two_connections_match_memory_and_deepchecks(
    two_warehouses: tuple[Warehouse, Warehouse],
    monkeypatch: pytest.MonkeyPatch,
    data_on_sqlite: bool,
    keys: str,
) -> None:
    if keys == "colliding":
        # Every row key equal: each row is a candidate, and only the values decide.
        monkeypatch.setattr(exact_sql, "row_hashes", _constant_keys)
    data, reference = _planted()
    checks, test_rows, train_rows = _load_apart(two_warehouses, data, reference, data_on_sqlite, 64)
    truth = _inputs(test_rows, train_rows)
    try:
        for name in TRAIN_TEST:
            limit = LIMITS[name]
            run = checks.run(name, _inputs(test_rows.head(3), train_rows.head(3)), limit)
            assert run is not None and run.where == "stream", name
            assert run.rows_used == {"data": 400, "reference": 600}
            _same(name, run.result, EXACT_CHECKS[name](truth, limit))
            if keys == "real":
                # deepchecks on every row of both tables: the reference semantics.
                theirs = _deepchecks(name, truth, limit)
                _same_as_deepchecks(name, run.result, theirs, CATEGORICAL)
        mix = checks.run("TrainTestSamplesMix", truth, 0.05)
        assert mix is not None and not mix.result.passed
        assert mix.result.value["ratio"] == 40 / 400
        assert len(mix.result.value["data"]) == 40
        index = checks.run("IndexTrainTestLeakage", truth, 0.0)
        assert index is not None and index.result.value == 60 / 400
        overlap = checks.run("DateTrainTestLeakageOverlap", truth, 0.0)
        # The copied rows' dates and 9 of the 10 look-ahead ones: the tenth is the last date.
        assert overlap is not None and overlap.result.value == (40 + 9) / 400
        duplicates = checks.run("DateTrainTestLeakageDuplicates", truth, 0.0)
        assert duplicates is not None and duplicates.result.value == (40 + 10) / 400
        new = checks.run("NewCategoryTrainTest", truth, 0.0)
        assert new is not None
        # "teal" is in 2 reference rows only: never new.
        assert new.result.value.loc["colour", "Rows per new category"] == {"violet": 8}
    finally:
        checks.close()


def test_values_of_mixed_types_in_a_sqlite_column_match_as_in_memory(
    two_warehouses: tuple[Warehouse, Warehouse],
) -> None:
    """SQLite keeps each value's own type in a column: 1, 1.0, '1', 'a', NULL side by side.
    A number equals a number of the same value (1 = 1.0), never its text ('1')."""
    lite, pg = two_warehouses
    engine = sa.create_engine(lite.admin_url)
    with engine.begin() as conn:
        conn.execute(sa.text("drop table if exists test_rows"))
        conn.execute(sa.text("create table test_rows (v, label, id)"))
        conn.execute(
            sa.text(
                "insert into test_rows values (1, 'a', 1), (1.0, 'a', 2), ('1', 'a', 3),"
                " ('x', 'b', 4), (null, 'a', 5), (2.5, 'c', 6), (-0.0, 'a', 7), (0, 'a', 8)"
            )
        )
    with engine.connect() as conn:
        test_rows = pd.read_sql(sa.text("select * from test_rows"), conn)
    engine.dispose()
    reference = pd.DataFrame(
        {"v": [1.0, NAN, 0.0, 7.0], "label": ["a", "a", "a", "b"], "id": [2, 3, 9, 10]}
    )
    train_rows = pg.load(train_rows=reference)["train_rows"]
    columns = ["v", "label", "id"]
    checks = _across(("lite", lite), ("pg", pg), columns, 3)
    inputs = ExactInputs(test_rows, train_rows, ["v"], ["v"], "label", "id", None)
    try:
        for name in ("TrainTestSamplesMix", "IndexTrainTestLeakage", "NewCategoryTrainTest"):
            run = checks.run(name, inputs, 0.0)
            assert run is not None and run.where == "stream"
            _same(name, run.result, EXACT_CHECKS[name](inputs, 0.0))
        mix = checks.run("TrainTestSamplesMix", inputs, 0.0)
        assert mix is not None
        # (1, a), (1.0, a), (null, a), (-0.0, a), (0, a): five rows; ('1', a) is text.
        assert mix.result.value["ratio"] == 5 / 8
    finally:
        checks.close()

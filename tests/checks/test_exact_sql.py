"""The exact checks over SQL batches give exact_checks.py's value and verdict on the same rows:
in the database (SQLite and PostgreSQL, as a read-only role) and streamed in chunks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.checks.exact_checks import EXACT_CHECKS, ExactInputs, ExactResult
from app.checks.exact_sql import DATA_ALONE, TRAIN_TEST, SqlBatch, SqlExactChecks
from app.core.errors import UpstreamTimeout
from app.ingest.references import BatchReference
from app.ingest.sql_safety import read_only_url
from tests.conftest import fresh_postgres_database, reader_role

NAN = float("nan")
# Few distinct values a column, so frames drawn at random share rows, ids, dates and values.
NUMBERS = [0.0, -0.0, 1.0, 2.5, NAN]
WHOLE = [0, 1, 2]
COLOURS = ["red", "green", "blue", None]
LABELS = ["yes", "no", "maybe", None]
DATES = [*pd.date_range("2024-01-01", periods=4, freq="D"), pd.NaT]
IDS = list(range(8))

FEATURES = ["number", "whole", "colour"]
CATEGORICAL = ["colour", "whole"]
# Limits that some drawn frames pass and others breach.
LIMITS = {name: 0.2 for name in EXACT_CHECKS} | {"NewLabelTrainTest": 0.0}
CHECKED = (*TRAIN_TEST, *DATA_ALONE)


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 30))

    def column(values: list[Any]) -> list[Any]:
        return draw(st.lists(st.sampled_from(values), min_size=n, max_size=n))

    return pd.DataFrame(
        {
            "number": pd.Series(column(NUMBERS), dtype=float),
            "whole": pd.Series(column(WHOLE), dtype="int64"),
            "colour": pd.Series(column(COLOURS), dtype=object),
            "label": pd.Series(column(LABELS), dtype=object),
            "day": pd.Series(column(DATES), dtype="datetime64[ns]"),
            "id": pd.Series(column(IDS), dtype="int64"),
        }
    )


def _copy_some_rows(data: pd.DataFrame, reference: pd.DataFrame, share: float) -> pd.DataFrame:
    """`data` with its first rows replaced by reference rows: a known overlap to find."""
    n = min(len(data), len(reference), int(len(data) * share))
    return pd.concat([reference.iloc[:n], data.iloc[n:]], ignore_index=True)


@dataclass
class Warehouse:
    """A database the tests write as its owner and datagate reads as a read-only role."""

    admin_url: str
    reader_url: str

    def load(self, **tables: pd.DataFrame) -> dict[str, pd.DataFrame]:
        """Write each frame as a table; return the tables as read back, the rows compared."""
        engine = sa.create_engine(self.admin_url)
        try:
            with engine.begin() as conn:
                for name, frame in tables.items():
                    frame.to_sql(name, conn, index=False, if_exists="replace")
            with engine.connect() as conn:
                return {
                    name: pd.read_sql(sa.text(f"select * from {name}"), conn) for name in tables
                }
        finally:
            engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def warehouse(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Warehouse]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("warehouse") / "warehouse.db"
        path.touch()
        url = f"sqlite:///{path}"
        yield Warehouse(url, read_only_url(url, "warehouse"))
        return
    with fresh_postgres_database() as admin_url, reader_role(admin_url) as reader_url:
        yield Warehouse(admin_url, reader_url)


def _batch(warehouse: Warehouse, field: str, columns: list[str], **where: Any) -> SqlBatch:
    location = BatchReference.model_validate({"connection": "warehouse", **where})
    return SqlBatch(location, columns, warehouse.reader_url, field)


def _inputs(data: pd.DataFrame, reference: pd.DataFrame | None) -> ExactInputs:
    return ExactInputs(data, reference, FEATURES, CATEGORICAL, "label", "id", "day")


def _same(name: str, ours: ExactResult, truth: ExactResult) -> None:
    """The value and the verdict, read as the report reads them."""
    assert ours.passed == truth.passed, name
    assert ours.condition == truth.condition, name
    value, expected = ours.value, truth.value
    if name == "TrainTestSamplesMix":
        assert value["ratio"] == pytest.approx(expected["ratio"])
        shared = value.get("distinct_shared_rows", len(value["data"]))
        assert shared == len(expected["data"])
    elif name == "NewCategoryTrainTest":
        assert list(value.index) == list(expected.index)
        for column in ("# New Categories", "Ratio of New Categories", "Rows per new category"):
            assert value[column].tolist() == expected[column].tolist(), (name, column)
        assert value["New categories"].tolist() == expected["New categories"].tolist()
    elif isinstance(expected, float):
        assert value == pytest.approx(expected), name
    else:
        assert value == expected, name


def _compare(checks: SqlExactChecks, inputs: ExactInputs, truth: ExactInputs) -> None:
    for name in CHECKED:
        run = checks.run(name, inputs, LIMITS[name])
        assert run is not None, name
        _same(name, run.result, EXACT_CHECKS[name](truth, LIMITS[name]))


@given(data=frames(), reference=frames(), share=st.sampled_from([0.0, 0.3, 1.0]))
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_checks_in_the_database_give_the_in_memory_value_and_verdict(
    warehouse: Warehouse, data: pd.DataFrame, reference: pd.DataFrame, share: float
) -> None:
    data = _copy_some_rows(data, reference, share)
    tables = warehouse.load(test_rows=data, train_rows=reference)
    columns = list(data.columns)
    checks = SqlExactChecks(
        _batch(warehouse, "data", columns, table="test_rows"),
        _batch(warehouse, "reference", columns, table="train_rows"),
        timeout_s=30,
    )
    # The engine's frames of a SQL batch are samples: a few rows stand for the tables here.
    sample = _inputs(tables["test_rows"].head(1), tables["train_rows"].head(1))
    try:
        for name in CHECKED:
            run = checks.run(name, sample, LIMITS[name])
            assert run is not None and run.where == "database", name
            truth = _inputs(tables["test_rows"], tables["train_rows"])
            _same(name, run.result, EXACT_CHECKS[name](truth, LIMITS[name]))
            assert run.rows_used["data"] == len(data)
    finally:
        checks.close()


@given(data=frames(), reference=frames(), share=st.sampled_from([0.0, 0.5]))
@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_streamed_chunks_give_the_in_memory_value_and_verdict(
    warehouse: Warehouse, data: pd.DataFrame, reference: pd.DataFrame, share: float
) -> None:
    data = _copy_some_rows(data, reference, share)
    tables = warehouse.load(test_rows=data, train_rows=reference)
    test_rows, train_rows = tables["test_rows"], tables["train_rows"]
    truth = _inputs(test_rows, train_rows)
    columns = list(data.columns)
    # A file's data against a SQL reference, then a SQL data batch against a file's reference;
    # chunks of 7 rows, so most frames cross several.
    against_data = SqlExactChecks(
        None, _batch(warehouse, "reference", columns, table="train_rows"), 30, chunk_rows=7
    )
    against_reference = SqlExactChecks(
        _batch(warehouse, "data", columns, table="test_rows"), None, 30, chunk_rows=7
    )
    try:
        for name in TRAIN_TEST:
            one = against_data.run(name, _inputs(test_rows, train_rows.head(1)), LIMITS[name])
            other = against_reference.run(
                name, _inputs(test_rows.head(1), train_rows), LIMITS[name]
            )
            assert one is not None and other is not None
            assert (one.where, other.where) == ("stream", "stream")
            expected = EXACT_CHECKS[name](truth, LIMITS[name])
            _same(name, one.result, expected)
            _same(name, other.result, expected)
            assert (
                one.rows_used == other.rows_used == {"data": len(data), "reference": len(reference)}
            )
    finally:
        against_data.close()
        against_reference.close()


def _planted() -> tuple[pd.DataFrame, pd.DataFrame]:
    """600 training rows and 400 test rows: 40 copied rows, 20 shared ids, 8 rows of a new
    colour, 10 look-ahead dates, and a colour the reference holds in 2 rows only."""
    rng = np.random.default_rng(5)

    def frame(n: int, first_id: int, start: str) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "number": rng.normal(size=n).round(3),
                "whole": rng.integers(0, 50, size=n),
                "colour": rng.choice(["red", "green", "blue"], size=n).astype(object),
                "label": rng.choice(["yes", "no"], size=n).astype(object),
                "day": pd.date_range(start, periods=n, freq="h"),
                "id": np.arange(first_id, first_id + n),
            }
        )

    reference, data = frame(600, 0, "2024-01-01"), frame(400, 10_000, "2024-03-01")
    reference.loc[:1, "colour"] = "teal"
    data.loc[:39, :] = reference.loc[100:139].to_numpy()
    data.loc[40:59, "id"] = reference.loc[300:319, "id"].to_numpy()
    data.loc[60:67, "colour"] = "violet"
    data.loc[68:70, "colour"] = "teal"
    data.loc[71:80, "day"] = reference.loc[590:599, "day"].to_numpy()
    return data, reference


def test_planted_leaks_are_found_in_the_database_over_queries_with_the_same_parameter(
    warehouse: Warehouse,
) -> None:
    data, reference = _planted()
    tables = warehouse.load(test_rows=data, train_rows=reference)
    columns = list(data.columns)
    # Both queries bind `:low`, to different values: each keeps its own.
    checks = SqlExactChecks(
        _batch(
            warehouse,
            "data",
            columns,
            query="select * from test_rows where whole >= :low",
            params={"low": 0},
        ),
        _batch(
            warehouse,
            "reference",
            columns,
            query="select * from train_rows where whole >= :low",
            params={"low": -1},
        ),
        timeout_s=30,
    )
    truth = _inputs(tables["test_rows"], tables["train_rows"])
    try:
        _compare(checks, _inputs(tables["test_rows"].head(3), tables["train_rows"].head(3)), truth)
        mix = checks.run("TrainTestSamplesMix", truth, 0.05)
        assert mix is not None and not mix.result.passed
        assert mix.result.value["ratio"] == pytest.approx(40 / 400)
        index = checks.run("IndexTrainTestLeakage", truth, 0.0)
        assert index is not None and index.result.value == pytest.approx(60 / 400)
        new = checks.run("NewCategoryTrainTest", truth, 0.0)
        assert new is not None
        assert new.result.value.loc["colour", "Rows per new category"] == {"violet": 8}
        assert new.rows_used == {"data": 400, "reference": 600}
    finally:
        checks.close()


def test_a_statement_past_the_timeout_is_a_timeout_not_a_verdict(warehouse: Warehouse) -> None:
    if warehouse.admin_url.startswith("sqlite"):
        pytest.skip("SQLite's progress handler is tested with the suite engine")
    checks = SqlExactChecks(
        _batch(
            warehouse,
            "data",
            ["id"],
            query="select id from generate_series(1, 100000000) as id",
        ),
        None,
        timeout_s=0.2,
    )
    try:
        with pytest.raises(UpstreamTimeout):
            checks.run("IsSingleValue", _inputs(pd.DataFrame({"id": [1]}), None), 0)
    finally:
        checks.close()

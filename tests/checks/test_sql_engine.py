"""Great Expectations inside the database: SQLite and the local PostgreSQL, same report rows as
the pandas path; references to tables and queries, their failures and their samples."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from app.checks.expectations import LoadedSuite, parse_suite, run_suite
from app.checks.sql_engine import validate_sql_batch
from app.core.config import Settings
from app.core.errors import (
    Forbidden,
    InvalidRequest,
    NotFound,
    UpstreamError,
    UpstreamTimeout,
)
from app.ingest.formats import DataFormat, read_dataframe
from app.ingest.references import BatchReference, read_sample, resolve_reference
from app.ingest.sql_safety import read_only_engine, read_only_url
from tests.conftest import EXAMPLES, EXPECTATIONS, make_settings

PENGUINS_BAD = EXAMPLES / "penguins_bad.csv"


@pytest.fixture
def penguins_bad() -> pd.DataFrame:
    return read_dataframe(PENGUINS_BAD, DataFormat.CSV, max_rows=10_000)


@pytest.fixture
def warehouse(database_url: str, penguins_bad: pd.DataFrame) -> str:
    """The planted-defect penguins as table `penguins`, and 2,000 numbered rows as `numbers`."""
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        penguins_bad.to_sql("penguins", conn, index=False)
        pd.DataFrame({"n": range(2000), "even": [i % 2 == 0 for i in range(2000)]}).to_sql(
            "numbers", conn, index=False
        )
    engine.dispose()
    return database_url


@pytest.fixture
def reader_url(request: pytest.FixtureRequest, warehouse: str) -> str:
    """The URL datagate is configured with: on PostgreSQL a read-only role, as documented."""
    if warehouse.startswith("sqlite"):
        return warehouse
    url: str = request.getfixturevalue("postgres_reader_url")
    return url


@pytest.fixture
def settings(tmp_path: Path, reader_url: str) -> Settings:
    return make_settings(tmp_path, connections={"warehouse": reader_url})


def ref(**fields: Any) -> BatchReference:
    return BatchReference.model_validate({"connection": "warehouse", **fields})


def penguins_suite_without_types() -> LoadedSuite:
    # Type expectations name pandas dtypes ("float64"): a SQL column has SQL types instead.
    definition = json.loads((EXPECTATIONS / "penguins.json").read_text())
    definition["expectations"] = [
        e for e in definition["expectations"] if "type_list" not in e["kwargs"]
    ]
    return parse_suite("penguins_sql", json.dumps(definition), "inline")


def validate(reference: BatchReference, settings: Settings, suite: LoadedSuite | None) -> Any:
    resolved = resolve_reference(reference, settings)
    return validate_sql_batch(resolved, suite, settings, sample_values=5)


def essentials(check: Any) -> dict[str, Any]:
    return {
        "name": check.name,
        "column": check.column,
        "category": check.category,
        "severity": check.severity,
        "outcome": check.outcome,
        "unexpected_count": check.observed.get("unexpected_count"),
        "element_count": check.observed.get("element_count"),
    }


def test_suite_in_database_gives_the_same_rows_as_pandas(
    settings: Settings, penguins_bad: pd.DataFrame
) -> None:
    suite = penguins_suite_without_types()
    dataset, checks = validate(ref(table="penguins"), settings, suite)
    in_memory = run_suite(penguins_bad, suite, sample_values=5)
    assert [essentials(c) for c in checks] == [essentials(c) for c in in_memory]
    assert any(c.outcome == "failed" and c.column == "species" for c in checks)
    assert dataset.rows == len(penguins_bad)
    assert dataset.format == "sql"
    assert dataset.source == {"connection": "warehouse", "table": "penguins"}


def test_dataset_info_counts_rows_and_nulls_in_the_database(
    settings: Settings, penguins_bad: pd.DataFrame
) -> None:
    dataset, checks = validate(ref(table="penguins"), settings, None)
    assert checks == []
    assert dataset.rows == len(penguins_bad)
    nulls = {c.name: c.null_count for c in dataset.columns}
    assert nulls == penguins_bad.isna().sum().to_dict()
    assert dataset.sampled is False


def test_query_with_bound_parameters_validates_only_its_rows(settings: Settings) -> None:
    suite = parse_suite(
        "q",
        json.dumps(
            {
                "expectations": [
                    {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
                    {
                        "type": "expect_column_values_to_be_in_set",
                        "kwargs": {"column": "species", "value_set": ["Gentoo"]},
                    },
                ]
            }
        ),
        "inline",
    )
    reference = ref(query="select * from penguins where species = :sp", params={"sp": "Gentoo"})
    dataset, checks = validate(reference, settings, suite)
    assert dataset.rows == checks[0].observed["observed_value"] > 0
    assert checks[1].outcome == "passed"
    assert dataset.source == {
        "connection": "warehouse",
        "query": "select * from penguins where species = :sp",
        "params": {"sp": "Gentoo"},
    }


def test_parameter_values_are_data_not_sql(settings: Settings) -> None:
    reference = ref(
        query="select * from penguins where species = :sp", params={"sp": "x' or '1'='1"}
    )
    dataset, _ = validate(reference, settings, None)
    assert dataset.rows == 0


def test_with_statement_is_accepted(settings: Settings) -> None:
    reference = ref(query="with big as (select * from numbers where n >= 1500) select * from big")
    dataset, _ = validate(reference, settings, penguins_suite_without_types())
    assert dataset.rows == 500


def test_expectation_on_a_column_the_table_lacks_fails_not_errors(settings: Settings) -> None:
    suite = parse_suite(
        "missing",
        json.dumps(
            {
                "expectations": [
                    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "nope"}}
                ]
            }
        ),
        "inline",
    )
    _, checks = validate(ref(table="numbers"), settings, suite)
    assert checks[0].outcome == "failed"
    assert checks[0].details["missing_columns"] == ["nope"]


def test_missing_table_is_not_found(settings: Settings) -> None:
    with pytest.raises(NotFound, match=r"data\.table: no table 'nope'"):
        resolve_reference(ref(table="nope"), settings)


@pytest.mark.parametrize("table", ["penguins; drop table penguins", "a.b", '"x"', "1abc"])
def test_table_must_be_a_plain_identifier(settings: Settings, table: str) -> None:
    with pytest.raises(InvalidRequest, match=r"data\.table"):
        resolve_reference(ref(table=table), settings)


@pytest.mark.parametrize(
    "query",
    [
        "delete from penguins",
        "/* hi */ drop table penguins",
        "select 1; delete from penguins",
        "insert into numbers values (1, true)",
    ],
)
def test_only_one_reading_statement_is_run(settings: Settings, query: str) -> None:
    with pytest.raises(InvalidRequest, match=r"data\.query"):
        resolve_reference(ref(query=query), settings)


def test_writing_inside_a_query_is_refused(
    tmp_path: Path, warehouse: str, database_url: str
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("sequences and data-modifying WITH are PostgreSQL features")
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("create sequence ticket"))
    engine.dispose()
    # The worst case: the operator let datagate use a role that can write (the superuser).
    settings = make_settings(
        tmp_path, connections={"warehouse": warehouse}, sql_allow_writable_role=True
    )
    # The session is read-only, so even a function that writes is refused.
    with pytest.raises(Forbidden, match="read-only"):
        validate(ref(query="select nextval('ticket') as v"), settings, None)
    # The query runs as a subquery, where PostgreSQL refuses a data-modifying WITH.
    with pytest.raises(InvalidRequest):
        resolve_reference(
            ref(query="with gone as (delete from numbers returning *) select * from gone"),
            settings,
        )


def test_parameters_must_match_the_query(settings: Settings) -> None:
    with pytest.raises(InvalidRequest, match=r"data\.params: missing value for sp"):
        resolve_reference(ref(query="select * from penguins where species = :sp"), settings)
    with pytest.raises(InvalidRequest, match="no parameter extra"):
        resolve_reference(ref(query="select * from penguins", params={"extra": 1}), settings)


def test_failing_query_is_a_client_error_naming_the_query(settings: Settings) -> None:
    with pytest.raises(InvalidRequest, match=r"data\.query failed"):
        resolve_reference(ref(query="select * from no_such_table"), settings)


def test_statement_over_the_timeout_answers_upstream_timeout(
    tmp_path: Path, reader_url: str
) -> None:
    settings = make_settings(
        tmp_path, connections={"warehouse": reader_url}, sql_statement_timeout_s=0.3
    )
    if reader_url.startswith("postgresql"):
        slow = "select pg_sleep(5) as s"
    else:
        slow = (
            "with recursive r(i) as (select 1 union all select i + 1 from r where i < 100000000) "
            "select count(*) as c from r"
        )
    with pytest.raises(UpstreamTimeout) as caught:
        validate(ref(query=f"select * from ({slow}) as t"), settings, None)
    assert caught.value.status_code == 504


def test_unreachable_database_is_an_upstream_error_without_its_password(
    tmp_path: Path,
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"postgresql+psycopg://nobody:s3cret-pw@127.0.0.1:{port}/none"
    settings = make_settings(tmp_path, connections={"warehouse": url})
    with pytest.raises(UpstreamError) as caught:
        resolve_reference(ref(table="t"), settings)
    assert caught.value.status_code == 502
    assert caught.value.message.startswith("data: connection 'warehouse' failed")
    assert "s3cret-pw" not in caught.value.message


def test_sample_of_a_table_is_bounded_and_seeded(settings: Settings) -> None:
    first = read_sample(ref(table="numbers"), 100, seed=3, settings=settings)
    assert list(first.columns) == ["n", "even"]
    assert 0 < len(first) <= 100
    again = read_sample(ref(table="numbers"), 100, seed=3, settings=settings)
    assert first["n"].tolist() == again["n"].tolist()
    other = read_sample(ref(table="numbers"), 100, seed=4, settings=settings)
    assert first["n"].tolist() != other["n"].tolist()


def test_sample_of_a_query_is_bounded_and_seeded(settings: Settings) -> None:
    reference = ref(query="select n from numbers where even = :even", params={"even": True})
    first = read_sample(reference, 100, seed=3, settings=settings)
    assert 0 < len(first) <= 100
    assert (first["n"] % 2 == 0).all()
    again = read_sample(reference, 100, seed=3, settings=settings)
    assert first["n"].tolist() == again["n"].tolist()


def test_small_batch_is_read_whole_instead_of_sampled(settings: Settings) -> None:
    frame = read_sample(ref(table="numbers"), 5000, seed=3, settings=settings)
    assert sorted(frame["n"].tolist()) == list(range(2000))


def test_table_in_a_schema(tmp_path: Path, postgres_url: str, postgres_reader_url: str) -> None:
    reader = sa.engine.make_url(postgres_reader_url).username
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("create schema features"))
        conn.execute(sa.text("create table features.daily (x integer)"))
        conn.execute(sa.text("insert into features.daily values (1), (2), (null)"))
        conn.execute(sa.text(f'grant usage on schema features to "{reader}"'))
        conn.execute(sa.text(f'grant select on features.daily to "{reader}"'))
    engine.dispose()
    settings = make_settings(tmp_path, connections={"warehouse": postgres_reader_url})
    dataset, _ = validate(ref(table="daily", schema="features"), settings, None)
    assert dataset.rows == 3
    assert dataset.columns[0].null_count == 1
    with pytest.raises(NotFound, match="schema 'public'"):
        resolve_reference(ref(table="daily", schema="public"), settings)


# --- a query reference on a role that could do anything: the superuser --------------------------


@pytest.fixture
def superuser_settings(tmp_path: Path, postgres_url: str) -> Settings:
    """The worst configuration: the superuser, let through with the override."""
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        pd.DataFrame({"n": range(10)}).to_sql("numbers", conn, index=False)
    engine.dispose()
    return make_settings(
        tmp_path,
        connections={"warehouse": postgres_url},
        sql_allow_writable_role=True,
        sql_statement_timeout_s=2,
    )


def test_the_superuser_really_can_read_server_files(postgres_url: str) -> None:
    # What the tests below stop: this role reads /etc/passwd when asked directly.
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        assert "root:" in conn.execute(sa.text("select pg_read_file('/etc/passwd')")).scalar_one()
    engine.dispose()


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("select pg_read_file('/etc/passwd') as line", "pg_read_file"),
        ("select * from pg_catalog.pg_read_file('/etc/passwd') as line", "pg_read_file"),
        ("select \"pg_read_file\"('/etc/passwd') as line", "pg_read_file"),
        ("SELECT PG_READ_BINARY_FILE('/etc/passwd') AS b", "PG_READ_BINARY_FILE"),
        ("select f from pg_ls_dir('/etc') as f", "pg_ls_dir"),
        ("select (pg_stat_file('/etc/passwd')).size", "pg_stat_file"),
        ("select lo_import('/etc/passwd') as o", "lo_import"),
        ("select set_config('statement_timeout', '0', false) as s", "set_config"),
        ("select pg_advisory_lock(42) as l", "pg_advisory_lock"),
        ("select n from numbers where pg_try_advisory_xact_lock(n)", "pg_try_advisory_xact_lock"),
        ("select pg_cancel_backend(pg_backend_pid()) as c", "pg_cancel_backend"),
        ("select pg_terminate_backend(1) as t", "pg_terminate_backend"),
        ("select pg_reload_conf() as r", "pg_reload_conf"),
        ("select dblink('host=10.0.0.1', 'select 1') as d", "dblink"),
        # SQL hidden in a string literal is run by these: the function itself is refused.
        (
            "select query_to_xml('select pg_read_file(''/etc/passwd'')', true, true, '') as x",
            "query_to_xml",
        ),
        (
            "select n from numbers where pg_catalog . pg_advisory_lock /* x */ (n) is null",
            "pg_advisory_lock",
        ),
    ],
)
def test_query_cannot_call_server_functions_even_as_superuser(
    superuser_settings: Settings, query: str, name: str
) -> None:
    reference = ref(query=query)
    for attempt in (
        lambda: resolve_reference(reference, superuser_settings),
        lambda: read_sample(reference, 10, seed=1, settings=superuser_settings),
    ):
        with pytest.raises(InvalidRequest) as caught:
            attempt()
        assert caught.value.status_code == 422
        assert caught.value.message.startswith(f"data.query: {name!r} is a server function")
        assert "root:" not in caught.value.message


def test_function_names_in_literals_and_comments_are_only_text(
    superuser_settings: Settings,
) -> None:
    query = (
        "select n, 'pg_read_file(''/etc/passwd'')' as a, $q$set_config($q$ as b,"
        " e'\\' pg_sleep(9)' as c, ';' as semi from numbers /* pg_advisory_lock(1) */"
        " -- pg_cancel_backend(1)\n where n < :k;"
    )
    frame = read_sample(ref(query=query, params={"k": 3}), 10, seed=1, settings=superuser_settings)
    assert frame["n"].tolist() == [0, 1, 2]
    assert frame["a"].iloc[0] == "pg_read_file('/etc/passwd')"
    assert frame["c"].iloc[0] == "' pg_sleep(9)"


@pytest.mark.parametrize(
    "query",
    [
        "select 1 as a; set local statement_timeout = 0",
        "select n from numbers) as x; delete from numbers; select * from (select 1",
        # The E-string ends at its second quote, as the server reads it: the ';' is outside.
        "select e'\\'' as a; delete from numbers --'",
        "select '\\' as a; delete from numbers --'",
    ],
)
def test_several_statements_are_refused_naming_the_reference(
    superuser_settings: Settings, postgres_url: str, query: str
) -> None:
    with pytest.raises(InvalidRequest, match=r"^data\.query: one statement only"):
        resolve_reference(ref(query=query), superuser_settings)
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from numbers")).scalar_one() == 10
    engine.dispose()


def test_the_session_refuses_several_statements_past_the_query_check(postgres_url: str) -> None:
    # The extended query protocol is the second line behind `check_query`.
    engine = read_only_engine(postgres_url, 2)
    with (
        engine.connect() as conn,
        pytest.raises(sa.exc.ProgrammingError, match="multiple commands"),
    ):
        conn.execute(sa.text("select 1; set statement_timeout = 0"))
    engine.dispose()


def test_every_transaction_is_read_only_and_bounded_past_the_query_check(postgres_url: str) -> None:
    engine = read_only_engine(postgres_url, 0.5)
    with engine.connect() as conn:
        assert conn.execute(sa.text("show transaction_read_only")).scalar_one() == "on"
        assert conn.execute(sa.text("show statement_timeout")).scalar_one() == "500ms"
        with pytest.raises(sa.exc.DBAPIError, match="must be set before any query"):
            conn.execute(sa.text("select set_config('transaction_read_only', 'off', true)"))
    with engine.connect() as conn:
        # Session defaults changed by one transaction do not loosen the next one.
        conn.execute(sa.text("select set_config('default_transaction_read_only', 'off', false)"))
        conn.execute(sa.text("select set_config('statement_timeout', '0', false)"))
        conn.commit()
        with pytest.raises(sa.exc.DBAPIError, match="read-only transaction"):
            conn.execute(sa.text("create table escaped (a integer)"))
        conn.rollback()
        with pytest.raises(sa.exc.OperationalError, match="statement timeout"):
            conn.execute(sa.text("select pg_sleep(3)"))
    engine.dispose()


def test_sqlite_file_is_opened_read_only_and_never_created(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.execute(sa.text("create table t (x integer)"))
    engine.dispose()
    # The URL alone (no PRAGMA, no guard) opens the file read-only.
    opened = sa.create_engine(read_only_url(f"sqlite:///{path}", "w"))
    with opened.connect() as conn, pytest.raises(sa.exc.OperationalError, match="readonly"):
        conn.execute(sa.text("insert into t values (1)"))
    opened.dispose()
    missing = tmp_path / "missing.db"
    settings = make_settings(tmp_path, connections={"warehouse": f"sqlite:///{missing}"})
    with pytest.raises(NotFound) as caught:
        resolve_reference(ref(table="t"), settings)
    assert caught.value.status_code == 404
    assert "connection 'warehouse' does not exist" in caught.value.message
    assert not missing.exists()

"""A suite's own SQL (`unexpected_rows_expectation`) against SQL batches: refused unless the
operator allows the connection, and then one statement in a read-only transaction it cannot
leave. Run against SQLite and the local PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from app.checks import expectations
from app.checks.expectations import LoadedSuite, parse_suite
from app.checks.sql_engine import validate_sql_batch
from app.core.config import Settings
from app.core.errors import SuiteInvalid
from app.ingest.references import BatchReference, resolve_reference
from app.ingest.sql_safety import guard_engine
from tests.conftest import make_settings

ROWS = "unexpected_rows_expectation"
NOT_NULL = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "n"}}
# The attack: leave the read-only transaction, write, commit, and end with a harmless SELECT.
BREAKOUT = (
    "SELECT * FROM {batch} WHERE n < 0; COMMIT; BEGIN READ WRITE; CREATE TABLE pwned (x int); "
    "INSERT INTO victim VALUES (1); COMMIT; SELECT 1 AS n WHERE false"
)


def make_warehouse(url: str) -> str:
    """Table `numbers` (n = 0..9) to validate and an empty table `victim` to attack."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        pd.DataFrame({"n": range(10)}).to_sql("numbers", conn, index=False)
        conn.execute(sa.text("CREATE TABLE victim (x int)"))
    engine.dispose()
    return url


@pytest.fixture
def warehouse(database_url: str) -> str:
    return make_warehouse(database_url)


def settings_for(tmp_path: Path, url: str, *, allowed: list[str]) -> Settings:
    # The attacks run as the superuser on purpose, an operator's override of the role check: the
    # read-only transaction must hold even for a role that could write.
    return make_settings(
        tmp_path,
        connections={"warehouse": url},
        suite_sql_connections=allowed,
        sql_allow_writable_role=True,
    )


def rows_suite(*queries: str) -> LoadedSuite:
    """A suite as a queued job carries it (not parsed here), the null check last."""
    found = [{"type": ROWS, "kwargs": {"unexpected_rows_query": q}} for q in queries]
    definition = {"name": "sql", "expectations": [*found, NOT_NULL], "meta": {}}
    return LoadedSuite("sql", definition, "5" * 64, "api", len(found) + 1)


def validate(settings: Settings, suite: LoadedSuite) -> list[Any]:
    reference = BatchReference.model_validate({"connection": "warehouse", "table": "numbers"})
    _dataset, checks = validate_sql_batch(
        resolve_reference(reference, settings), suite, settings, sample_values=3
    )
    return checks


def victim_state(url: str) -> tuple[int, bool]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT COUNT(*) FROM victim")).scalar_one()
            tables = sa.inspect(conn).get_table_names()
    finally:
        engine.dispose()
    return int(rows), "pwned" in tables


def test_suite_sql_on_a_connection_the_operator_did_not_allow_is_an_error_row(
    tmp_path: Path, warehouse: str
) -> None:
    settings = settings_for(tmp_path, warehouse, allowed=[])
    checks = validate(settings, rows_suite("SELECT * FROM {batch} WHERE n > 7"))

    assert [c.outcome for c in checks] == ["error", "passed"]
    assert checks[0].details["error"] == (
        "suites may not run their own SQL on connection 'warehouse': the operator allows it "
        "per connection with DATAGATE_SUITE_SQL_CONNECTIONS"
    )


def test_suite_sql_on_an_allowed_connection_runs_and_finds_its_rows(
    tmp_path: Path, warehouse: str
) -> None:
    settings = settings_for(tmp_path, warehouse, allowed=["warehouse"])
    checks = validate(settings, rows_suite("SELECT * FROM {batch} WHERE n > 7"))

    assert [c.outcome for c in checks] == ["failed", "passed"]
    assert checks[0].observed["observed_value"] == 2


def test_a_breakout_query_is_refused_before_it_reaches_the_database(
    tmp_path: Path, warehouse: str
) -> None:
    settings = settings_for(tmp_path, warehouse, allowed=["warehouse"])
    with pytest.raises(SuiteInvalid, match=r"kwargs.unexpected_rows_query: one statement only"):
        validate(settings, rows_suite(BREAKOUT))
    assert victim_state(warehouse) == (0, False)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "query",
    [
        "SELECT pg_read_file('/etc/passwd') AS leak FROM {batch}",
        "SELECT * FROM {batch} WHERE pg_advisory_lock(42) IS NULL",
        "SELECT * FROM {batch} WHERE set_config('statement_timeout', '0', true) = 'x'",
        'SELECT * FROM {batch} WHERE PG_CATALOG."pg_cancel_backend"(1)',
    ],
)
def test_suite_sql_naming_a_refused_server_function_is_refused_before_it_runs(
    tmp_path: Path, postgres_url: str, query: str
) -> None:
    # As the superuser these ran from a suite (the file came back as unexpected rows, the lock
    # stayed held), although a query reference naming them is refused.
    url = make_warehouse(postgres_url)
    settings = settings_for(tmp_path, url, allowed=["warehouse"])
    with pytest.raises(SuiteInvalid) as caught:
        parse_suite(
            "sql",
            json.dumps(
                {"expectations": [{"type": ROWS, "kwargs": {"unexpected_rows_query": query}}]}
            ),
            "api",
        )
    assert "is a server function datagate does not run" in caught.value.message

    with pytest.raises(SuiteInvalid, match="a suite's SQL may only read data"):
        validate(settings, rows_suite(query))
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            locks = conn.execute(
                sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
            )
            assert locks.scalar_one() == 0
    finally:
        engine.dispose()


def test_the_database_refuses_a_breakout_even_past_the_text_check(
    tmp_path: Path, warehouse: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Should the text check ever miss a second statement, the connection still runs only one:
    # psycopg prepares each statement, sqlite3 executes one per call.
    monkeypatch.setattr(expectations, "data_problem", lambda expectation: None)
    settings = settings_for(tmp_path, warehouse, allowed=["warehouse"])

    checks = validate(settings, rows_suite(BREAKOUT))

    assert [c.outcome for c in checks] == ["error", "passed"]
    assert victim_state(warehouse) == (0, False)


def test_a_statement_cannot_turn_the_next_transactions_read_write(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Session defaults are PostgreSQL's; SQLite's query_only is set on every connection.
    warehouse = make_warehouse(postgres_url)
    engine = sa.create_engine(warehouse)
    with engine.begin() as conn:
        # A function that writes, as warehouses have (a sequence's nextval is one too).
        conn.execute(
            sa.text(
                "CREATE FUNCTION bump() RETURNS int LANGUAGE sql "
                "AS 'INSERT INTO victim VALUES (2) RETURNING x'"
            )
        )
    engine.dispose()
    monkeypatch.setattr(expectations, "data_problem", lambda expectation: None)
    settings = settings_for(tmp_path, warehouse, allowed=["warehouse"])
    turn_off = "SELECT set_config('default_transaction_read_only', 'off', false) AS x FROM {batch}"
    write = "SELECT * FROM {batch} WHERE bump() IS NULL"

    checks = validate(settings, rows_suite(turn_off, write, turn_off, write))

    assert checks[1].outcome == checks[3].outcome == "error"
    assert "read-only transaction" in checks[1].details["error"]
    assert victim_state(warehouse) == (0, False)


def test_every_transaction_of_a_suite_sql_engine_is_read_only(postgres_url: str) -> None:
    # Without the session default (which a statement can change), on a fresh engine.
    engine = guard_engine(sa.create_engine(postgres_url, poolclass=NullPool), timeout_s=30)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SET SESSION default_transaction_read_only = off"))
            conn.commit()
            assert conn.execute(sa.text("SHOW transaction_read_only")).scalar_one() == "on"
            with pytest.raises(sa.exc.InternalError, match="read-only transaction"):
                conn.execute(sa.text("CREATE TABLE pwned (x int)"))
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "url", ["postgresql+psycopg2://u@db/dw", "mysql+pymysql://u@db/dw"], ids=["psycopg2", "mysql"]
)
def test_suite_sql_is_refused_on_drivers_that_run_many_statements(tmp_path: Path, url: str) -> None:
    from app.checks.sql_engine import suite_sql_refusal

    settings = settings_for(tmp_path, url, allowed=["warehouse"])
    refusal = suite_sql_refusal("warehouse", url, settings)
    assert refusal is not None and "suite SQL" in refusal


def test_a_parsed_suite_keeps_suite_sql_that_is_one_select() -> None:
    query = (
        "-- rows out of range\nWITH big AS (SELECT * FROM {batch} WHERE n > 7) SELECT * FROM big"
    )
    suite = parse_suite(
        "ok",
        json.dumps({"expectations": [{"type": ROWS, "kwargs": {"unexpected_rows_query": query}}]}),
        "api",
        check=False,
    )
    assert suite.expectation_count == 1

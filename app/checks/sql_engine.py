"""Great Expectations on a SQL batch: the suite runs inside the database (GE's SQL data source),
so ranges and nulls of a large table are checked without pulling it into memory.

A suite's own SQL (`unexpected_rows_expectation`) runs only on connections the operator names in
`suite_sql_connections`, one statement at a time, inside a read-only transaction.
"""

from __future__ import annotations

import uuid
import warnings
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from app.checks.expectations import LoadedSuite, error_row, gx_context, validate_batch
from app.checks.failing_rows import check_id_columns, keep_sql_rows
from app.checks.suite_safety import has_free_sql
from app.core.config import Settings
from app.core.errors import UpstreamError, UpstreamTimeout
from app.ingest.references import (
    BatchReference,
    ResolvedReference,
    bound_query,
    connection_url,
    sql_error,
    sql_errors,
    sql_source,
)
from app.ingest.sql_safety import engine_options, guard_engine, read_only_engine
from app.reports.model import CheckResult, ColumnInfo, DatasetInfo


def validate_sql_batch(
    resolved: ResolvedReference,
    suite: LoadedSuite | None,
    settings: Settings,
    *,
    sample_values: int,
    field: str = "data",
    rows_folder: Path | None = None,
    max_failing_rows: int = 0,
) -> tuple[DatasetInfo, list[CheckResult]]:
    """Describe the batch (rows and nulls from one aggregate query) and run `suite` on it.

    With `rows_folder`, the unexpected rows of each failed row-level expectation are kept there,
    at most `max_failing_rows` each, read by a bounded query (app/checks/failing_rows.py)."""
    reference = resolved.reference
    if suite is not None:
        check_id_columns(suite, resolved.columns)
    url = connection_url(reference, settings, field)
    dataset = describe_sql_batch(resolved, url, settings, field=field)
    if suite is None:
        return dataset, []
    with sql_errors(reference, field):
        checks = _run_in_database(
            resolved,
            url,
            suite,
            settings,
            sample_values=sample_values,
            rows_folder=rows_folder,
            max_failing_rows=max_failing_rows,
        )
    return dataset, checks


def describe_sql_batch(
    resolved: ResolvedReference, url: str, settings: Settings, *, field: str = "data"
) -> DatasetInfo:
    """Row count, column types and null counts: one COUNT(*) / COUNT(column) scan."""
    reference = resolved.reference
    engine = read_only_engine(url, settings.sql_statement_timeout_s)
    try:
        with sql_errors(reference, field), engine.connect() as conn:
            source = sql_source(reference, resolved.columns, field)
            counts = conn.execute(
                sa.select(
                    sa.func.count(), *[sa.func.count(source.c[name]) for name in resolved.columns]
                ).select_from(source)
            ).one()
            types = _column_types(conn, reference)
    finally:
        engine.dispose()
    rows = int(counts[0])
    return DatasetInfo(
        name=resolved.name,
        format="sql",
        rows=rows,
        columns=[
            ColumnInfo(
                name=name, dtype=types.get(name, "unknown"), null_count=rows - int(counts[i + 1])
            )
            for i, name in enumerate(resolved.columns)
        ],
        source=resolved.source,
    )


def _column_types(conn: sa.Connection, reference: BatchReference) -> dict[str, str]:
    if reference.table is None:
        # A query's column types are known only to the database driver: not portable.
        return {}
    inspector = sa.inspect(conn)
    return {
        str(column["name"]): str(column["type"])
        for column in inspector.get_columns(reference.table, schema=reference.db_schema)
    }


def _run_in_database(
    resolved: ResolvedReference,
    url: str,
    suite: LoadedSuite,
    settings: Settings,
    *,
    sample_values: int,
    rows_folder: Path | None,
    max_failing_rows: int,
) -> list[CheckResult]:
    reference = resolved.reference
    expectations = suite.definition["expectations"]
    free_sql = {index for index, e in enumerate(expectations) if has_free_sql(e)}
    refusal = suite_sql_refusal(reference.connection, url, settings) if free_sql else None
    refused = free_sql if refusal else set()
    run = [index for index in range(len(expectations)) if index not in refused]
    context = gx_context()
    name = f"sql-{uuid.uuid4().hex}"
    timeout = settings.sql_statement_timeout_s
    backend = sa.engine.make_url(url).get_backend_name()
    add = {
        "postgresql": context.data_sources.add_postgres,
        "sqlite": context.data_sources.add_sqlite,
    }.get(backend, context.data_sources.add_sql)
    # engine_options makes psycopg prepare every statement: the server then parses a string as
    # exactly one statement, so a suite's "...; COMMIT; BEGIN READ WRITE; ..." is an error
    # instead of a way out of the read-only transaction that guard_engine starts each time.
    options = engine_options(url, timeout)
    try:
        source = add(name, connection_string=url, kwargs=options)
    except Exception as exc:  # GE wraps every connection failure in its own error types
        raise UpstreamError(f"connection {reference.connection!r} failed: {_cause(exc)}") from exc
    try:
        engine = source.get_execution_engine().engine
        guard_engine(engine, timeout)
        asset = _asset(source, reference)
        batch = asset.add_batch_definition_whole_table("whole").get_batch()
        checks = validate_batch(
            batch, suite, columns=set(resolved.columns), sample_values=sample_values, only=run
        )
        _raise_on_timeout(checks, reference)
        if rows_folder is not None:
            keep_sql_rows(
                batch,
                suite,
                dict(zip(run, checks, strict=True)),
                rows_folder,
                limit=max_failing_rows,
            )
    finally:
        source.get_execution_engine().engine.dispose()
        context.data_sources.delete(name)
    rows = dict(zip(run, checks, strict=True))
    for index in refused:
        rows[index] = error_row(expectations[index], refusal)
    return [rows[index] for index in range(len(expectations))]


def _raise_on_timeout(checks: list[CheckResult], reference: BatchReference) -> None:
    # GE turns a metric's database error into that expectation's "error" row; a statement that
    # ran over the timeout is the run's failure, not the data's, so it answers 504 instead.
    for check in checks:
        error = check.details.get("error")
        if error and isinstance(sql_error(Exception(error), reference), UpstreamTimeout):
            raise UpstreamTimeout(
                f"data: the statement on connection {reference.connection!r} ran over the "
                "statement timeout"
            )


def suite_sql_refusal(connection: str | None, url: str, settings: Settings) -> str | None:
    """Why a suite's own SQL may not run on this connection, or None when it may."""
    if connection not in settings.suite_sql_connections:
        return (
            f"suites may not run their own SQL on connection {connection!r}: the operator "
            "allows it per connection with DATAGATE_SUITE_SQL_CONNECTIONS"
        )
    parsed = sa.engine.make_url(url)
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend == "postgresql" and driver != "psycopg":
        return (
            f"suite SQL on connection {connection!r} needs the postgresql+psycopg driver "
            f"(got {driver}), which the service makes run one statement at a time"
        )
    if backend not in ("postgresql", "sqlite"):
        return f"suite SQL runs only on PostgreSQL and SQLite connections, not {backend}"
    return None


def _asset(source: Any, reference: BatchReference) -> Any:
    if reference.table is not None:
        with warnings.catch_warnings():
            # GE 1.14+ prefers the schema in the connection URL, but a connection serves many
            # schemas here; the argument still works and is the only per-table way.
            warnings.simplefilter("ignore")
            return source.add_table_asset(
                "batch", table_name=reference.table, schema_name=reference.db_schema
            )
    # GE's query asset takes SQL text only, so the bound parameters are rendered as literals by
    # SQLAlchemy's dialect (quoted and escaped by the dialect, never by string formatting); the
    # query is wrapped so that WITH statements pass GE's "starts with SELECT" check.
    selectable = sa.select(sa.text("*")).select_from(
        bound_query(reference).columns().subquery("datagate_batch")
    )
    compiled = selectable.compile(
        dialect=source.get_execution_engine().engine.dialect,
        compile_kwargs={"literal_binds": True},
    )
    return source.add_query_asset("batch", query=str(compiled))


def _cause(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

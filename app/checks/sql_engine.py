"""Great Expectations on a SQL batch: the suite runs inside the database (GE's SQL data source),
so ranges and nulls of a large table are checked without pulling it into memory.
"""

from __future__ import annotations

import uuid
import warnings
from typing import Any

import sqlalchemy as sa

from app.checks.expectations import LoadedSuite, gx_context, validate_batch
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
) -> tuple[DatasetInfo, list[CheckResult]]:
    """Describe the batch (rows and nulls from one aggregate query) and run `suite` on it."""
    reference = resolved.reference
    url = connection_url(reference, settings, field)
    dataset = describe_sql_batch(resolved, url, settings, field=field)
    if suite is None:
        return dataset, []
    with sql_errors(reference, field):
        checks = _run_in_database(resolved, url, suite, settings, sample_values=sample_values)
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
) -> list[CheckResult]:
    reference = resolved.reference
    context = gx_context()
    name = f"sql-{uuid.uuid4().hex}"
    timeout = settings.sql_statement_timeout_s
    backend = sa.engine.make_url(url).get_backend_name()
    add = {
        "postgresql": context.data_sources.add_postgres,
        "sqlite": context.data_sources.add_sqlite,
    }.get(backend, context.data_sources.add_sql)
    try:
        source = add(name, connection_string=url, kwargs=engine_options(url, timeout))
    except Exception as exc:  # GE wraps every connection failure in its own error types
        raise UpstreamError(f"connection {reference.connection!r} failed: {_cause(exc)}") from exc
    try:
        guard_engine(source.get_execution_engine().engine, timeout)
        asset = _asset(source, reference)
        batch = asset.add_batch_definition_whole_table("whole").get_batch()
        checks = validate_batch(
            batch, suite, columns=set(resolved.columns), sample_values=sample_values
        )
    finally:
        source.get_execution_engine().engine.dispose()
        context.data_sources.delete(name)
    # GE turns a metric's database error into that expectation's "error" row; a statement that
    # ran over the timeout is the run's failure, not the data's, so it answers 504 instead.
    for check in checks:
        error = check.details.get("error")
        if error and isinstance(sql_error(Exception(error), reference), UpstreamTimeout):
            raise UpstreamTimeout(
                f"data: the statement on connection {reference.connection!r} ran over the "
                "statement timeout"
            )
    return checks


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

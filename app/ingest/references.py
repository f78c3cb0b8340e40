"""Batch references: name data where it lives (a file, an S3 object or folder, a SQL table or
query), check that the operator allows it, and read it without an upload.
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import json
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pa_dataset
import sqlalchemy as sa
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from app.core.config import Settings, get_settings
from app.core.errors import (
    DatagateError,
    Forbidden,
    InvalidData,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    UnsupportedFormat,
    UpstreamError,
    UpstreamTimeout,
)
from app.core.text import storable, text_problem
from app.ingest.formats import (
    DataFormat,
    DecodeBudget,
    DecodeLimits,
    detect_format,
    read_dataframe,
)
from app.ingest.sql_safety import (
    RoleCheck,
    check_query,
    inspect_role,
    read_only_engine,
    read_only_url,
)

log = logging.getLogger("datagate")

ReferenceKind = Literal["file", "s3", "sql"]
ParamValue = StrictStr | StrictInt | StrictFloat | StrictBool | None

GLOB_CHARACTERS = frozenset("*?[")
# Files a partitioned dataset's writer leaves beside the data (_SUCCESS, .crc, _metadata):
# pyarrow skips the same prefixes when it discovers a dataset.
IGNORED_PREFIXES = (".", "_")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")
# Formats pyarrow reads as one dataset from many files, with hive partition columns.
DATASET_FORMATS = {DataFormat.PARQUET: "parquet", DataFormat.ARROW: "ipc"}


class SqlFormat(StrEnum):
    """The format of a batch that stays in its database."""

    SQL = "sql"


class BatchReference(BaseModel):
    """Where a batch lives: exactly one of `uri`, `connection` + `table`, `connection` + `query`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    uri: str | None = Field(
        default=None,
        description="file:///path, /path, a glob (/data/2026-11-*.parquet), a folder of Parquet "
        "files, or s3://bucket/key-or-prefix/",
    )
    format: str | None = Field(
        default=None, description="Overrides the format guessed from the file extension"
    )
    connection: str | None = Field(default=None, description="Name of a configured connection")
    db_schema: str | None = Field(default=None, alias="schema", description="Schema of `table`")
    table: str | None = Field(default=None, description="Table to validate, in the database")
    query: str | None = Field(default=None, description="SELECT or WITH statement to validate")
    params: dict[str, ParamValue] | None = Field(
        default=None, description="Values bound to the query's :name parameters"
    )
    name: str | None = Field(default=None, description="Name shown in the report")

    @field_validator("uri", "format", "connection", "db_schema", "table", "query", "name")
    @classmethod
    def _storable(cls, value: str | None) -> str | None:
        # Paths, drivers and databases stop at (or choke on) a NUL, and every field is stored
        # with the job: the one rule for stored text, refused by field name.
        return None if value is None else storable(value)

    @field_validator("params")
    @classmethod
    def _storable_params(cls, value: dict[str, ParamValue] | None) -> dict[str, ParamValue] | None:
        for key, item in (value or {}).items():
            problem = text_problem(key) or (text_problem(item) if isinstance(item, str) else None)
            if problem is not None:
                raise ValueError(f"parameter {key[:40]!r} {problem}")
        return value

    @model_validator(mode="after")
    def _one_location(self) -> BatchReference:
        given = [key for key in ("uri", "connection", "table", "query") if getattr(self, key)]
        if self.uri is not None:
            extra = [
                k for k in ("connection", "schema", "table", "query", "params") if self._has(k)
            ]
            if extra:
                raise ValueError(f"'uri' cannot be combined with {', '.join(map(repr, extra))}")
            if not self.uri.strip():
                raise ValueError("'uri' is empty")
            return self
        if self.connection is None:
            raise ValueError(
                "give exactly one of 'uri', 'connection' + 'table' or 'connection' + 'query'"
                + (f" (got {', '.join(map(repr, given))})" if given else "")
            )
        if (self.table is None) == (self.query is None):
            raise ValueError("with 'connection', give exactly one of 'table' or 'query'")
        if self.format is not None:
            raise ValueError("'format' applies to 'uri' references only")
        if self.table is not None and self.params is not None:
            raise ValueError("'params' applies to 'query' only")
        if self.query is not None and self.db_schema is not None:
            raise ValueError("'schema' applies to 'table' only; qualify names inside the query")
        return self

    def _has(self, key: str) -> bool:
        return getattr(self, "db_schema" if key == "schema" else key) is not None

    @property
    def kind(self) -> ReferenceKind:
        if self.uri is None:
            return "sql"
        return "s3" if urlsplit(self.uri.strip()).scheme.lower() == "s3" else "file"

    def describe(self) -> dict[str, Any]:
        """The reference as the report records it: what was named, never how to connect."""
        return self.model_dump(by_alias=True, exclude_none=True, exclude={"name"})


# --- configuration ---------------------------------------------------------------------------


def configured_connections(settings: Settings) -> dict[str, str]:
    """Connection name to SQLAlchemy URL: `connections`, then `connections_file` over it."""
    urls = {name: url.get_secret_value() for name, url in settings.connections.items()}
    path = settings.connections_file
    if path is None:
        return urls
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UpstreamError(
            f"the connections file {path} cannot be read: {exc.strerror}; fix "
            "DATAGATE_CONNECTIONS_FILE"
        ) from exc
    loaded: Any
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        loaded = yaml.safe_load(text)
    else:
        loaded = json.loads(text)
    if not isinstance(loaded, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in loaded.items()
    ):
        raise UpstreamError(
            f"the connections file {path} must map connection names to SQLAlchemy URL strings"
        )
    return {**urls, **loaded}


# --- resolving ---------------------------------------------------------------------------------


@dataclass
class ResolvedFiles:
    """Files one reference names, checked and listed; `base` is a folder's root, for partitions."""

    paths: list[str]
    format: DataFormat
    bytes: int
    base: str | None = None


@dataclass
class ResolvedReference:
    """What the engines need to read a reference, and what the report says about it."""

    reference: BatchReference
    name: str
    format: DataFormat | SqlFormat
    source: dict[str, Any]
    files: ResolvedFiles | None = None
    bytes: int | None = None
    columns: list[str] = dataclasses.field(default_factory=list)


def resolve_reference(
    reference: BatchReference, settings: Settings, *, field: str = "data"
) -> ResolvedReference:
    """Check that `reference` is allowed and exists, without reading the data itself.

    Raises Forbidden (not allowed), NotFound (missing file, object or table), InvalidRequest or
    UnsupportedFormat (malformed), UpstreamError / UpstreamTimeout (the source failed).
    """
    match reference.kind:
        case "file":
            files = _resolve_local(reference, settings, field)
            return _resolved_files(reference, files)
        case "s3":
            with _s3_errors(reference, field):
                files = _resolve_s3(reference, settings, field, _s3_filesystem(settings))
            return _resolved_files(reference, files)
        case "sql":
            columns = _resolve_sql(reference, settings, field)
            return ResolvedReference(
                reference=reference,
                name=reference.name or reference.table or "query",
                format=SqlFormat.SQL,
                source=reference.describe(),
                columns=columns,
            )


def _resolved_files(reference: BatchReference, files: ResolvedFiles) -> ResolvedReference:
    assert reference.uri is not None
    shown = reference.uri.strip().rstrip("/")
    return ResolvedReference(
        reference=reference,
        name=reference.name or PurePosixPath(urlsplit(shown).path).name or shown,
        format=files.format,
        source=reference.describe(),
        files=files,
        bytes=files.bytes,
    )


def _local_path(uri: str, field: str) -> str:
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "":
        path = uri
    elif scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise InvalidRequest(
                f"{field}.uri: file URIs name a local path (file:///path), not host "
                f"{parts.netloc!r}"
            )
        path = unquote(parts.path)
    else:
        raise InvalidRequest(
            f"{field}.uri: scheme {scheme!r} is not supported; use file:///path, an absolute "
            "path, or s3://bucket/key"
        )
    if not path.startswith("/"):
        raise InvalidRequest(f"{field}.uri: the path must be absolute, got {path!r}")
    return path


def _allowed_roots(settings: Settings) -> list[str]:
    return [os.path.realpath(root) for root in settings.data_roots]


def _forbidden_path(field: str, shown: str, roots: list[str], why: str) -> Forbidden:
    allowed = ", ".join(roots) if roots else "none (DATAGATE_DATA_ROOTS is empty)"
    return Forbidden(f"{field}.uri: {shown} {why}; allowed roots: {allowed}")


def _inside(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def _resolve_local(reference: BatchReference, settings: Settings, field: str) -> ResolvedFiles:
    assert reference.uri is not None
    path = _local_path(reference.uri.strip(), field)
    roots = _allowed_roots(settings)
    if ".." in PurePosixPath(path).parts:
        raise _forbidden_path(field, path, roots, "contains '..'")
    if not roots:
        raise _forbidden_path(field, path, roots, "is not under an allowed root")
    if GLOB_CHARACTERS & set(path):
        # The fixed part of a pattern is checked before anything is listed, so a pattern cannot
        # probe folders outside the roots.
        fixed = path[: min(path.index(c) for c in GLOB_CHARACTERS if c in path)]
        if not _inside(os.path.realpath(os.path.dirname(fixed) or "/"), roots):
            raise _forbidden_path(field, path, roots, "is not under an allowed root")
        matches = sorted(m for m in glob.glob(path, recursive=True) if os.path.isfile(m))
        if not matches:
            raise NotFound(f"{field}.uri: no file matches {path}")
        real = [_checked_real(m, roots, field) for m in matches]
        fmt = _common_format(reference, real, field)
        return ResolvedFiles(real, fmt, sum(os.path.getsize(p) for p in real))
    real_path = os.path.realpath(path)
    if not _inside(real_path, roots):
        why = "leaves the allowed roots through a symlink" if _inside(path, roots) else ""
        raise _forbidden_path(field, path, roots, why or "is not under an allowed root")
    if os.path.isdir(real_path):
        files = _folder_files(real_path, roots, field)
        fmt = _common_format(reference, files, field, default=DataFormat.PARQUET)
        return ResolvedFiles(files, fmt, sum(os.path.getsize(p) for p in files), base=real_path)
    if not os.path.isfile(real_path):
        raise NotFound(f"{field}.uri: no file or folder at {path}")
    fmt = _common_format(reference, [real_path], field)
    return ResolvedFiles([real_path], fmt, os.path.getsize(real_path))


def _checked_real(path: str, roots: list[str], field: str) -> str:
    real = os.path.realpath(path)
    if not _inside(real, roots):
        raise _forbidden_path(field, path, roots, "leaves the allowed roots through a symlink")
    return real


def _folder_files(folder: str, roots: list[str], field: str) -> list[str]:
    found: list[str] = []
    for current, dirs, names in os.walk(folder, followlinks=True):
        # Each folder is checked as it is entered, so a linked folder outside never gets read.
        _checked_real(current, roots, field)
        dirs[:] = sorted(d for d in dirs if not d.startswith(IGNORED_PREFIXES))
        for name in sorted(names):
            if not name.startswith(IGNORED_PREFIXES):
                found.append(_checked_real(os.path.join(current, name), roots, field))
    if not found:
        raise NotFound(f"{field}.uri: the folder {folder} holds no data files")
    return found


def _common_format(
    reference: BatchReference,
    paths: list[str],
    field: str,
    *,
    default: DataFormat | None = None,
) -> DataFormat:
    """The explicit format, else the one extension all files share (else `default`)."""
    if reference.format:
        try:
            return detect_format(None, None, reference.format)
        except InvalidRequest as exc:
            raise InvalidRequest(f"{field}.format: {exc.message}") from exc
    try:
        formats = {detect_format(PurePosixPath(p).name, None) for p in paths}
    except UnsupportedFormat as exc:
        if default is not None:
            return default
        raise UnsupportedFormat(f"{field}: {exc.message}") from exc
    if len(formats) > 1:
        raise InvalidRequest(
            f"{field}.uri: the files mix formats ({', '.join(sorted(formats))}); name one "
            "format's files or set 'format'"
        )
    return formats.pop()


# --- S3 ------------------------------------------------------------------------------------------


def _s3_filesystem(settings: Settings) -> Any:
    import s3fs

    timeout = settings.s3_read_timeout_s
    fs = s3fs.S3FileSystem(
        key=settings.s3_key.get_secret_value() if settings.s3_key else None,
        secret=settings.s3_secret.get_secret_value() if settings.s3_secret else None,
        endpoint_url=settings.s3_endpoint_url,
        client_kwargs={"region_name": settings.s3_region} if settings.s3_region else {},
        # One attempt each: a stalled store answers 504 after the timeout, not after retries
        # with back-off that multiply it.
        config_kwargs={
            "connect_timeout": timeout,
            "read_timeout": timeout,
            "retries": {"max_attempts": 1, "mode": "standard"},
        },
        skip_instance_cache=True,
        use_listings_cache=False,
    )
    fs.retries = 1
    return fs


def _s3_location(uri: str, settings: Settings, field: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    bucket, key = parts.netloc, unquote(parts.path).lstrip("/")
    if parts.username or parts.password:
        raise InvalidRequest(f"{field}.uri: credentials do not belong in a URI")
    if not bucket:
        raise InvalidRequest(f"{field}.uri: an S3 URI names a bucket: s3://bucket/key")
    if bucket not in settings.allowed_buckets:
        allowed = ", ".join(settings.allowed_buckets) or "none (DATAGATE_ALLOWED_BUCKETS is empty)"
        raise Forbidden(
            f"{field}.uri: bucket {bucket!r} is not allowed; allowed buckets: {allowed}"
        )
    if ".." in PurePosixPath(key).parts:
        raise Forbidden(f"{field}.uri: {uri} contains '..'")
    return bucket, key


def _resolve_s3(
    reference: BatchReference, settings: Settings, field: str, fs: Any
) -> ResolvedFiles:
    assert reference.uri is not None
    uri = reference.uri.strip()
    bucket, key = _s3_location(uri, settings, field)
    path = f"{bucket}/{key}".rstrip("/")
    if GLOB_CHARACTERS & set(key):
        keys = sorted(k for k in fs.glob(path) if not fs.isdir(k))
        if not keys:
            raise NotFound(f"{field}.uri: no object matches {uri}")
        sizes = [int(fs.info(k)["size"]) for k in keys]
        return ResolvedFiles(keys, _common_format(reference, keys, field), sum(sizes))
    if not key or key.endswith("/") or fs.isdir(path):
        listed = fs.find(path, detail=True)
        keys = sorted(
            k
            for k, info in listed.items()
            if info.get("type") != "directory"
            and not any(
                part.startswith(IGNORED_PREFIXES) for part in PurePosixPath(k[len(path) :]).parts
            )
        )
        if not keys:
            raise NotFound(f"{field}.uri: no objects under {uri}")
        fmt = _common_format(reference, keys, field, default=DataFormat.PARQUET)
        size = sum(int(listed[k]["size"]) for k in keys)
        return ResolvedFiles(keys, fmt, size, base=path)
    info = fs.info(path)  # FileNotFoundError for a missing object: 404 below
    return ResolvedFiles([path], _common_format(reference, [path], field), int(info["size"]))


@contextlib.contextmanager
def _s3_errors(reference: BatchReference, field: str) -> Iterator[None]:
    """Object store failures as domain errors: 404 missing, 403 refused, 504 slow, 502 else."""
    from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError
    from botocore.exceptions import ReadTimeoutError as BotoReadTimeout
    from fsspec.exceptions import FSTimeoutError

    uri = reference.uri
    try:
        yield
    except (BotoReadTimeout, ConnectTimeoutError, FSTimeoutError, TimeoutError) as exc:
        raise UpstreamTimeout(f"{field}.uri: the object store did not answer for {uri}") from exc
    except FileNotFoundError as exc:
        raise NotFound(f"{field}.uri: no object at {uri}") from exc
    except PermissionError as exc:
        raise Forbidden(f"{field}.uri: the object store refused to read {uri}: {exc}") from exc
    except (ClientError, BotoCoreError, OSError) as exc:
        raise UpstreamError(f"{field}.uri: the object store failed on {uri}: {exc}") from exc


# --- SQL -----------------------------------------------------------------------------------------


def connection_url(reference: BatchReference, settings: Settings, field: str = "data") -> str:
    """The URL datagate opens for the reference's named connection; never from the request.

    SQLite files open read-only; the connection's role must be read-only unless
    DATAGATE_SQL_ALLOW_WRITABLE_ROLE is set (see `require_read_only_role`).
    """
    connections = configured_connections(settings)
    assert reference.connection is not None
    name = reference.connection
    if name not in connections:
        known = ", ".join(sorted(connections)) or "none (DATAGATE_CONNECTIONS is empty)"
        raise InvalidRequest(
            f"{field}.connection: unknown connection {name!r}; configured connections: {known}"
        )
    url = read_only_url(connections[name], name, field)
    require_read_only_role(name, url, settings, field)
    return url


# --- the connections' roles --------------------------------------------------------------------

# Each process asks once per connection (at start-up in the API process, at first use in a
# worker); a check that could not reach the database is not kept, so it is asked again.
_ROLE_CHECKS: dict[tuple[str, str], RoleCheck] = {}
_UNCHECKED: dict[str, str] = {}
ALLOW_WRITABLE = "DATAGATE_SQL_ALLOW_WRITABLE_ROLE"


class ConnectionRefused(RuntimeError):
    """A configured connection's role can do more than read, and the override is not set."""


def role_check(name: str, url: str) -> RoleCheck:
    """The connection's role, checked once per process (UpstreamError if unreachable)."""
    key = (name, url)
    if key not in _ROLE_CHECKS:
        _ROLE_CHECKS[key] = inspect_role(name, url)
        _UNCHECKED.pop(name, None)
    return _ROLE_CHECKS[key]


def require_read_only_role(name: str, url: str, settings: Settings, field: str = "data") -> None:
    """Forbidden when the role can write or administer and the override is off."""
    try:
        check = role_check(name, url)
    except UpstreamError as exc:
        raise UpstreamError(f"{field}: {exc.message}") from exc
    if check.powers and not settings.sql_allow_writable_role:
        raise Forbidden(
            f"{field}.connection: connection {name!r} is refused: {check.describe()}; the "
            f"operator must give datagate a read-only role or set {ALLOW_WRITABLE}=true"
        )


def check_connections_at_start(settings: Settings) -> None:
    """Check every configured connection's role; raise ConnectionRefused if one can write.

    Each problem is logged at ERROR with the connection's name. A connection that cannot be
    reached (or a missing SQLite file) does not stop the start: it is checked on first use.
    """
    refused: list[str] = []
    for name, configured in configured_connections(settings).items():
        try:
            url = read_only_url(configured, name, None)
            check = role_check(name, url)
        except DatagateError as exc:
            _UNCHECKED[name] = "unreachable at start-up (the log says why)"
            log.error("SQL connection %s not checked at start: %s", name, exc.message)
            continue
        if not check.powers:
            log.info("SQL connection %s: %s", name, check.describe())
        elif settings.sql_allow_writable_role:
            log.error(
                "SQL connection %s: %s; used anyway because %s=true",
                name,
                check.describe(),
                ALLOW_WRITABLE,
            )
        else:
            log.error("SQL connection %s refused: %s", name, check.describe())
            refused.append(f"{name} ({check.describe()})")
    if refused:
        raise ConnectionRefused(
            f"SQL connection(s) refused: {'; '.join(refused)}. Give datagate a read-only role "
            f"(docs/references.md) or set {ALLOW_WRITABLE}=true to start anyway"
        )


def connection_states(settings: Settings) -> dict[str, str]:
    """Each configured connection's state as this process knows it, for the readiness probe:
    `read-only`, `refused: <why>`, `writable, allowed by ...: <why>`, or `not checked: <why>`.

    /readyz answers without a key, so a state names no role, host, path or driver message:
    those are in the ERROR log lines of `check_connections_at_start`.
    """
    try:
        connections = configured_connections(settings)
    except DatagateError:
        return {"connections_file": "not checked: it cannot be read (the log says why)"}
    states: dict[str, str] = {}
    for name, configured in connections.items():
        try:
            url = read_only_url(configured, name, None)
        except DatagateError as exc:
            states[name] = f"not checked: {exc.message}"
            continue
        check = _ROLE_CHECKS.get((name, url))
        powers = "; ".join(check.powers) if check else ""
        if check is None:
            states[name] = f"not checked: {_UNCHECKED.get(name, 'not used yet')}"
        elif not check.powers:
            states[name] = "read-only"
        elif settings.sql_allow_writable_role:
            states[name] = f"writable, allowed by {ALLOW_WRITABLE}: the role {powers}"
        else:
            states[name] = f"refused: the role {powers}"
    return states


def bound_query(reference: BatchReference, field: str = "data") -> sa.TextClause:
    """The reference's query with its parameters bound (never formatted into the text)."""
    assert reference.query is not None
    statement = sa.text(check_query(reference.query, f"{field}.query"))
    wanted = set(statement.compile().params)
    given = set(reference.params or {})
    if wanted - given:
        raise InvalidRequest(
            f"{field}.params: missing value for {', '.join(sorted(wanted - given))}"
        )
    if given - wanted:
        raise InvalidRequest(
            f"{field}.params: the query has no parameter {', '.join(sorted(given - wanted))}"
        )
    return statement.bindparams(**(reference.params or {})) if wanted else statement


def sql_source(reference: BatchReference, columns: list[str], field: str = "data") -> Any:
    """A FROM clause for the reference: the table, or the query as a named subquery."""
    names: list[sa.ColumnClause[Any]] = [sa.column(name) for name in columns]
    if reference.table is not None:
        return sa.table(reference.table, *names, schema=reference.db_schema)
    return bound_query(reference, field).columns(*names).subquery("datagate_batch")


def _check_identifier(value: str, what: str) -> None:
    if not IDENTIFIER.match(value):
        raise InvalidRequest(
            f"{what}: {value[:80]!r} is not a plain identifier (letters, digits, '_', '$'; "
            "at most 63 characters)"
        )


def _resolve_sql(reference: BatchReference, settings: Settings, field: str) -> list[str]:
    """Check the connection, then the table (with the inspector) or the query; the columns."""
    # The request is checked before anything connects: a refused query never reaches a server.
    if reference.table is not None:
        _check_identifier(reference.table, f"{field}.table")
        if reference.db_schema is not None:
            _check_identifier(reference.db_schema, f"{field}.schema")
    else:
        bound_query(reference, field)
    url = connection_url(reference, settings, field)
    engine = read_only_engine(url, settings.sql_statement_timeout_s)
    try:
        with sql_errors(reference, field), engine.connect() as conn:
            if reference.table is not None:
                inspector = sa.inspect(conn)
                if not inspector.has_table(reference.table, schema=reference.db_schema):
                    where = f" in schema {reference.db_schema!r}" if reference.db_schema else ""
                    raise NotFound(
                        f"{field}.table: no table {reference.table!r}{where} in connection "
                        f"{reference.connection!r}"
                    )
                return [
                    str(c["name"])
                    for c in inspector.get_columns(reference.table, schema=reference.db_schema)
                ]
            probe = sa.select(sa.text("*")).select_from(
                bound_query(reference, field).columns().subquery("datagate_batch")
            )
            return list(conn.execute(probe.limit(0)).keys())
    finally:
        engine.dispose()


@contextlib.contextmanager
def sql_errors(reference: BatchReference, field: str = "data") -> Iterator[None]:
    """Database failures as domain errors (see `sql_error`)."""
    try:
        yield
    except sa.exc.DBAPIError as exc:
        raise sql_error(exc, reference, field) from exc


def sql_error(exc: BaseException, reference: BatchReference, field: str = "data") -> DatagateError:
    """504 past the statement timeout, 403 a write, 422 a failing query or table, else 502."""
    source = f"connection {reference.connection!r}"
    message = _first_line(getattr(exc, "orig", None) or exc)
    lowered = message.lower()
    what = f"{field}.query" if reference.query is not None else f"{field}.table"
    if _is_timeout(lowered):
        return UpstreamTimeout(f"{field}: the statement on {source} ran over the statement timeout")
    if "read-only transaction" in lowered or "readonly database" in lowered:
        return Forbidden(
            f"{what}: {source} is read-only for datagate; the statement tried to write"
        )
    client_fault = isinstance(
        exc, sa.exc.ProgrammingError | sa.exc.DataError | sa.exc.NotSupportedError
    ) or any(marker in lowered for marker in ("syntax error", "no such table", "no such column"))
    if client_fault:
        return InvalidRequest(f"{what} failed on {source}: {message}")
    return UpstreamError(f"{field}: {source} failed: {message}")


def _is_timeout(message: str) -> bool:
    # PostgreSQL: "canceling statement due to statement timeout" or "connection timeout
    # expired"; SQLite: "interrupted". Not a bare "timeout": a column may be named so.
    markers = ("statement timeout", "interrupted", "timeout expired", "timed out")
    return any(marker in message for marker in markers)


def _first_line(exc: BaseException | None) -> str:
    text = str(exc or "unknown error").strip()
    return text.splitlines()[0] if text else "unknown error"


# --- reading -----------------------------------------------------------------------------------


@dataclass
class ReadBatch:
    """A reference read into memory, and how much was read."""

    frame: pd.DataFrame
    resolved: ResolvedReference
    rows: int
    sampled: bool = False


def read_reference(
    reference: BatchReference,
    settings: Settings,
    *,
    max_rows: int,
    field: str = "data",
    limits: DecodeLimits | None = None,
) -> ReadBatch:
    """Read a file or S3 reference into a DataFrame (a SQL batch is read only as a sample).

    `limits` bound the decoding (default the settings' limits), over all the files it names.
    """
    resolved = resolve_reference(reference, settings, field=field)
    if resolved.files is None:
        raise InvalidRequest(f"{field}: a SQL batch is validated in its database, not read")
    limits = limits or DecodeLimits.from_settings(settings)
    if reference.kind == "s3":
        with _s3_errors(reference, field), _s3_download(resolved.files, settings) as local:
            frame = _read_files(local, max_rows, limits, resolved.name)
    else:
        frame = _read_files(resolved.files, max_rows, limits, resolved.name)
    return ReadBatch(frame=frame, resolved=resolved, rows=len(frame))


@contextlib.contextmanager
def _s3_download(files: ResolvedFiles, settings: Settings) -> Iterator[ResolvedFiles]:
    """Copy the objects to a temporary folder, keeping a prefix's layout for partitions."""
    fs = _s3_filesystem(settings)
    spool = settings.uploads_dir if settings.uploads_dir.is_dir() else None
    with tempfile.TemporaryDirectory(prefix="datagate-s3-", dir=spool) as folder:
        local: list[str] = []
        for key in files.paths:
            relative = key[len(files.base) :].lstrip("/") if files.base else PurePosixPath(key).name
            target = os.path.join(folder, relative)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            fs.get_file(key, target)
            local.append(target)
        yield ResolvedFiles(local, files.format, files.bytes, base=folder if files.base else None)


def _read_files(
    files: ResolvedFiles, max_rows: int, limits: DecodeLimits, name: str
) -> pd.DataFrame:
    if len(files.paths) == 1 and files.base is None:
        return read_dataframe(
            Path(files.paths[0]), files.format, max_rows=max_rows, limits=limits, name=name
        )
    if files.format in DATASET_FORMATS:
        return _read_dataset(files, max_rows, limits, name)
    frames = []
    rows = 0
    decoded = 0  # the frames' own bytes so far: each file may decode only what is left
    for path in files.paths:
        left = limits.model_copy(update={"decoded_bytes": max(limits.decoded_bytes - decoded, 1)})
        frame = read_dataframe(
            Path(path), files.format, max_rows=max_rows - rows, limits=left, name=path
        )
        rows += len(frame)
        decoded += int(frame.memory_usage(index=False, deep=False).sum())
        for key, value in _hive_values(path, files.base).items():
            frame[key] = value
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _hive_values(path: str, base: str | None) -> dict[str, str]:
    if base is None:
        return {}
    folders = PurePosixPath(os.path.relpath(path, base)).parts[:-1]
    return dict(part.split("=", 1) for part in folders if "=" in part)


def _read_dataset(
    files: ResolvedFiles, max_rows: int, limits: DecodeLimits, name: str
) -> pd.DataFrame:
    budget = DecodeBudget(name, max_rows, limits)
    try:
        dataset = pa_dataset.dataset(
            files.paths,
            format=DATASET_FORMATS[files.format],
            partitioning="hive" if files.base else None,
            partition_base_dir=files.base,
        )
        budget.check_columns(len(dataset.schema.names))
        rows = dataset.count_rows()
        if rows > max_rows:
            raise PayloadTooLarge(f"the dataset has {rows} rows; the limit is {max_rows} rows")
        # Batch by batch, so compressed files that decode past the limit stop there.
        batches = []
        for batch in dataset.to_batches(batch_size=65_536):
            budget.add_batch(batch)
            batches.append(batch)
        frame: pd.DataFrame = pa.Table.from_batches(batches, schema=dataset.schema).to_pandas()
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InvalidData(
            f"could not read the {len(files.paths)} files as one {files.format.value} dataset: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
        ) from exc
    return frame


# --- sampling ------------------------------------------------------------------------------------


def read_sample(
    ref: BatchReference, rows: int, seed: int, *, settings: Settings | None = None
) -> pd.DataFrame:
    """At most `rows` rows of the batch, the same rows for the same seed and data.

    Files and objects are read (within max_rows) and sampled in memory. A SQL batch is sampled
    in its database: on PostgreSQL with TABLESAMPLE BERNOULLI ... REPEATABLE(seed) for a table
    and setseed() + random() < p for a query; on other databases the rows stream through a
    seeded Bernoulli filter, so memory stays bounded by `rows` either way.
    """
    settings = settings or get_settings()
    if ref.kind != "sql":
        frame = read_reference(ref, settings, max_rows=settings.max_rows).frame
        if len(frame) <= rows:
            return frame
        return frame.sample(n=rows, random_state=seed).sort_index().reset_index(drop=True)
    columns = resolve_reference(ref, settings).columns
    engine = read_only_engine(connection_url(ref, settings), settings.sql_statement_timeout_s)
    try:
        with sql_errors(ref), engine.connect() as conn:
            source = sql_source(ref, columns)
            total = int(conn.execute(sa.select(sa.func.count()).select_from(source)).scalar_one())
            if total <= rows:
                return pd.read_sql(sa.select(source), conn)
            fraction = rows / total
            if conn.dialect.name == "postgresql":
                return _postgres_sample(conn, ref, columns, rows, seed, fraction)
            return _streamed_sample(conn, sa.select(source), rows, seed, fraction)
    finally:
        engine.dispose()


def _postgres_sample(
    conn: sa.Connection,
    ref: BatchReference,
    columns: list[str],
    rows: int,
    seed: int,
    fraction: float,
) -> pd.DataFrame:
    if ref.table is not None:
        sampled = sa.tablesample(
            sa.table(ref.table, *[sa.column(c) for c in columns], schema=ref.db_schema),
            sa.func.bernoulli(fraction * 100),
            seed=sa.literal(seed % 2**31),
        )
        return pd.read_sql(sa.select(sampled).limit(rows), conn)
    # setseed() makes random() repeatable for the rest of this session's transaction.
    conn.execute(sa.select(sa.func.setseed((seed % 2**31) / 2**31)))
    source = sql_source(ref, columns)
    query = sa.select(source).where(sa.func.random() < fraction).limit(rows)
    return pd.read_sql(query, conn)


def _streamed_sample(
    conn: sa.Connection, query: Any, rows: int, seed: int, fraction: float
) -> pd.DataFrame:
    import numpy as np

    rng = np.random.default_rng(seed)
    kept: list[pd.DataFrame] = []
    count = 0
    for chunk in pd.read_sql(query, conn, chunksize=50_000):
        chosen = chunk[rng.random(len(chunk)) < fraction]
        kept.append(chosen.iloc[: rows - count])
        count += len(kept[-1])
        if count >= rows:
            break
    return pd.concat(kept, ignore_index=True)

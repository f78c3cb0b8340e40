"""What a SQL reference may run: one SELECT, without server functions that reach past the data,
in a read-only, bounded session, on a role that is checked for powers beyond reading.
"""

from __future__ import annotations

import fnmatch
import os
import re
import time
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from app.core.errors import InvalidRequest, NotFound, UpstreamError

READING_VERBS = ("select", "with")
# A role check at start-up or first use must not hold a request or the start for the statement
# timeout (300 s by default) when a database does not answer.
ROLE_CHECK_TIMEOUT_S = 10.0

# --- the statement ---------------------------------------------------------------------------

# Server functions a query reference may not name. A second line of defence: the first is a
# read-only, non-superuser role (docs/references.md). Patterns are fnmatch globs, matched
# case-insensitively against every identifier outside string literals and comments.
REFUSED_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "reads server files": (
        "pg_read_file",
        "pg_read_binary_file",
        "pg_ls_*",
        "pg_stat_file",
        "pg_file_*",
        "pg_logdir_ls",
    ),
    "reads or writes large objects": (
        "lo_import",
        "lo_export",
        "lo_get",
        "lo_put",
        "lo_open",
        "lo_close",
        "lo_creat",
        "lo_create",
        "lo_unlink",
        "lo_from_bytea",
        "lo_lseek*",
        "lo_tell*",
        "lo_truncate*",
        "loread",
        "lowrite",
    ),
    "takes locks": ("pg_*lock*",),
    "signals or controls the server": (
        "pg_cancel_backend",
        "pg_terminate_backend",
        "pg_signal_backend",
        "pg_reload_conf",
        "pg_rotate_logfile*",
        "pg_log_backend_memory_contexts",
        "pg_promote",
        "pg_switch_wal",
        "pg_create_restore_point",
        "pg_*backup*",
        "pg_*replication*",
        "pg_logical_*",
        "pg_wal_replay_*",
        "pg_stat_reset*",
        "pg_notify",
        "pg_import_system_collations",
    ),
    "changes settings": ("set_config",),
    # These run SQL given as a string, which the identifier check cannot see into.
    "runs SQL text it is given": (
        "query_to_xml*",
        "cursor_to_xml*",
        "table_to_xml*",
        "schema_to_xml*",
        "database_to_xml*",
        "ts_stat",
        "ts_rewrite",
    ),
    "reaches other servers": ("dblink*", "postgres_fdw_*"),
    "loads code": ("load_extension",),
}
_REFUSED = [
    (re.compile(fnmatch.translate(pattern)), reason)
    for reason, patterns in REFUSED_FUNCTIONS.items()
    for pattern in patterns
]

_WORD = re.compile(r"[^\W\d][\w$]*")
_DOLLAR_TAG = re.compile(r"\$(?:[^\W\d]\w*)?\$")


@dataclass(frozen=True)
class SqlToken:
    """One lexical token of a query: a bare or quoted identifier, a literal, `;`, or other."""

    kind: Literal["word", "quoted", "string", "semicolon", "other"]
    text: str
    start: int
    end: int


def sql_tokens(query: str, what: str) -> list[SqlToken]:
    """PostgreSQL's lexical structure, as far as telling code from literals and comments.

    Comments (`--`, nested `/* */`) are dropped; strings ('', E'' with backslash escapes,
    $tag$ dollar quotes) and quoted identifiers ("") become one token each. The session runs
    with standard_conforming_strings on, so the server reads '...' as this does. Unicode-escaped
    identifiers (U&"...") are refused: their name is only known after unescaping.
    """
    tokens: list[SqlToken] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch.isspace():
            i += 1
        elif query.startswith("--", i):
            end = query.find("\n", i)
            i = n if end < 0 else end + 1
        elif query.startswith("/*", i):
            i = _comment_end(query, i, what)
        elif ch == "'":
            end = _quoted_end(query, i, "'", backslash=False, what=what)
            tokens.append(SqlToken("string", query[i:end], i, end))
            i = end
        elif ch == '"':
            end = _quoted_end(query, i, '"', backslash=False, what=what)
            name = query[i + 1 : end - 1].replace('""', '"')
            tokens.append(SqlToken("quoted", name, i, end))
            i = end
        elif ch == ";":
            tokens.append(SqlToken("semicolon", ";", i, i + 1))
            i += 1
        elif ch == "$" and (tag := _DOLLAR_TAG.match(query, i)):
            close = query.find(tag.group(0), tag.end())
            if close < 0:
                raise InvalidRequest(f"{what}: the dollar-quoted string {tag.group(0)} is open")
            end = close + len(tag.group(0))
            tokens.append(SqlToken("string", query[i:end], i, end))
            i = end
        elif word := _WORD.match(query, i):
            end = word.end()
            text = word.group(0)
            if text in ("e", "E") and query.startswith("'", end):
                close = _quoted_end(query, end, "'", backslash=True, what=what)
                tokens.append(SqlToken("string", query[i:close], i, close))
                i = close
            elif text in ("u", "U") and query.startswith('&"', end):
                raise InvalidRequest(
                    f'{what}: Unicode-escaped identifiers (U&"...") are not accepted; '
                    "write the name plainly"
                )
            elif text in ("u", "U") and query.startswith("&'", end):
                close = _quoted_end(query, end + 1, "'", backslash=False, what=what)
                tokens.append(SqlToken("string", query[i:close], i, close))
                i = close
            else:
                tokens.append(SqlToken("word", text, i, end))
                i = end
        else:
            # Numbers, operators, punctuation, $1 parameters: none can hide a name.
            end = i + 1
            while end < n and query[end].isdigit() and ch.isdigit():
                end += 1
            tokens.append(SqlToken("other", query[i:end], i, end))
            i = end
    return tokens


def _comment_end(query: str, start: int, what: str) -> int:
    # PostgreSQL nests block comments; a lexer that did not would end one too early.
    depth, i = 0, start
    while i < len(query):
        if query.startswith("/*", i):
            depth += 1
            i += 2
        elif query.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    raise InvalidRequest(f"{what}: a /* comment is not closed")


def _quoted_end(query: str, start: int, quote_char: str, *, backslash: bool, what: str) -> int:
    """The index after the closing quote of the literal opening at `start`."""
    i = start + 1
    while i < len(query):
        ch = query[i]
        if backslash and ch == "\\":
            i += 2
        elif ch == quote_char:
            if query.startswith(quote_char, i + 1):  # a doubled quote stands for itself
                i += 2
            else:
                return i + 1
        else:
            i += 1
    kind = "identifier" if quote_char == '"' else "string"
    raise InvalidRequest(f"{what}: a quoted {kind} is not closed")


def refused_function(name: str) -> str | None:
    """Why the server function `name` may not be named by a query, or None if it may."""
    lowered = name.lower()
    for pattern, reason in _REFUSED:
        if pattern.match(lowered):
            return reason
    return None


def check_query(query: str, what: str, *, reader: str = "a query reference") -> str:
    """The query if it is one SELECT or WITH statement naming no refused function, else 422
    naming `what` (the field, e.g. `data.query`); `reader` says whose SQL it is.

    Returns the statement without leading comments and trailing `;`.
    """
    tokens = sql_tokens(query, what)
    while tokens and tokens[-1].kind == "semicolon":
        tokens.pop()
    first = tokens[0] if tokens else None
    if first is None or first.kind != "word" or first.text.lower() not in READING_VERBS:
        raise InvalidRequest(f"{what}: only a SELECT or WITH statement may be run")
    if any(token.kind == "semicolon" for token in tokens):
        raise InvalidRequest(f"{what}: one statement only (found ';' between statements)")
    for token in tokens:
        if token.kind in ("word", "quoted") and (reason := refused_function(token.text)):
            raise InvalidRequest(
                f"{what}: {token.text!r} is a server function datagate does not run (it "
                f"{reason}); {reader} may only read data"
            )
    return query[first.start : tokens[-1].end]


# --- the session -------------------------------------------------------------------------------


def read_only_url(url: str, name: str, field: str | None = "data") -> str:
    """The URL as datagate opens it: a SQLite file read-only (never created); others as given.

    A missing SQLite file is NotFound, naming the connection (not the path: the URL is secret)
    and, for a request, the request's field.
    """
    parsed = make_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return url
    if database.startswith("file:"):
        path = database[len("file:") :].split("?", 1)[0]
        query = {**parsed.query, "uri": "true", "mode": "ro"}
    else:
        path = os.path.abspath(database)
        database = "file:" + quote(path)
        query = {**parsed.query, "uri": "true", "mode": "ro"}
    if not os.path.isfile(path):
        where = f"{field}.connection: " if field else ""
        raise NotFound(f"{where}the SQLite database file of connection {name!r} does not exist")
    return parsed.set(database=database, query=query).render_as_string(hide_password=False)


def engine_options(url: str, timeout_s: float) -> dict[str, Any]:
    """`create_engine` keyword arguments that make PostgreSQL sessions read-only and bounded.

    Plain values only: Great Expectations keeps them in its data source configuration.
    `prepare_threshold=0` prepares every statement, so psycopg always uses the extended query
    protocol, which refuses more than one statement in a string. standard_conforming_strings
    is pinned so the server reads string literals as `sql_tokens` does.
    """
    if make_url(url).get_backend_name() != "postgresql":
        return {}
    options = (
        f"-c statement_timeout={_milliseconds(timeout_s)} -c default_transaction_read_only=on "
        "-c standard_conforming_strings=on"
    )
    return {
        "connect_args": {
            "options": options,
            "connect_timeout": max(int(timeout_s), 2),
            "prepare_threshold": 0,
        }
    }


def _milliseconds(seconds: float) -> int:
    return max(int(seconds * 1000), 1)


def guard_engine(engine: Engine, timeout_s: float) -> Engine:
    """Bound and lock every transaction of `engine` to reading.

    PostgreSQL: each transaction starts with SET TRANSACTION READ ONLY, which the server will
    not undo once a query has run, and SET LOCAL statement_timeout (set_config, the one way a
    SELECT could change it, is refused by `check_query`). SQLite, which has no statement
    timeout: a progress handler interrupts work past `timeout_s`, and PRAGMA query_only.
    """
    if engine.dialect.name == "postgresql":

        @sa.event.listens_for(engine, "begin")
        def _read_only(conn: sa.Connection) -> None:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {_milliseconds(timeout_s)}")

    elif engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "checkout")
        def _bounded(dbapi_connection: Any, record: Any, proxy: Any) -> None:
            deadline = time.monotonic() + timeout_s
            # The handler runs every 10,000 SQLite instructions; non-zero interrupts it.
            dbapi_connection.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
            dbapi_connection.execute("PRAGMA query_only = ON")

    return engine


def read_only_engine(url: str, timeout_s: float) -> Engine:
    """A read-only engine for one job; NullPool, as a worker keeps no connections between jobs."""
    engine = sa.create_engine(url, poolclass=NullPool, **engine_options(url, timeout_s))
    return guard_engine(engine, timeout_s)


# --- the role ----------------------------------------------------------------------------------

# Built-in roles in `member_of` can read or write server files, run programs or signal backends.
_ROLE_QUERY = """
select r.rolname, r.rolsuper, r.rolcreaterole, r.rolcreatedb, r.rolreplication, r.rolbypassrls,
  has_database_privilege(current_database(), 'CREATE') as creates_schemas,
  (select string_agg(n.nspname, ', ' order by n.nspname) from pg_namespace n
   where has_schema_privilege(n.oid, 'CREATE') and n.nspname not like 'pg\\_%'
     and n.nspname <> 'information_schema') as creates_in,
  (select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where c.relkind in ('r', 'p', 'v', 'm', 'f') and n.nspname not like 'pg\\_%'
     and n.nspname <> 'information_schema'
     and has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE')) as writable_tables,
  (select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where c.relkind = 'S' and n.nspname not like 'pg\\_%'
     and case when c.relkind = 'S' then has_sequence_privilege(c.oid, 'USAGE, UPDATE') end
  ) as writable_sequences,
  (select string_agg(b.rolname, ', ' order by b.rolname) from pg_roles b
   where b.rolname in ('pg_read_server_files', 'pg_write_server_files',
                       'pg_execute_server_program', 'pg_signal_backend', 'pg_write_all_data')
     and pg_has_role(r.oid, b.oid, 'USAGE')) as member_of
from pg_roles r where r.rolname = current_user
"""


@dataclass(frozen=True)
class RoleCheck:
    """What a connection's role may do beyond reading: no `powers` is a read-only role."""

    role: str
    powers: tuple[str, ...]

    def describe(self) -> str:
        if not self.powers:
            return f"role {self.role!r} is read-only"
        return f"role {self.role!r} {'; '.join(self.powers)}"


def inspect_role(name: str, url: str) -> RoleCheck:
    """Ask the database what the connection's role may do. UpstreamError if it cannot answer."""
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        # Opened with mode=ro (see `read_only_url`): the file cannot be written through it.
        return RoleCheck(role="sqlite, opened read-only", powers=())
    if backend != "postgresql":
        return RoleCheck(role=f"{backend}, not inspected", powers=())
    engine = read_only_engine(url, ROLE_CHECK_TIMEOUT_S)
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.text(_ROLE_QUERY)).mappings().one()
    except sa.exc.DBAPIError as exc:
        first = str(exc.orig or exc).strip().splitlines()
        raise UpstreamError(
            f"connection {name!r} failed: {first[0] if first else type(exc).__name__}"
        ) from exc
    finally:
        engine.dispose()
    if row["rolsuper"]:
        # A superuser can do all the rest; listing it would only bury the point.
        return RoleCheck(role=str(row["rolname"]), powers=("is a superuser",))
    powers = [
        text
        for flag, text in (
            ("rolcreaterole", "can create roles"),
            ("rolcreatedb", "can create databases"),
            ("rolreplication", "can start replication"),
            ("rolbypassrls", "bypasses row-level security"),
            ("creates_schemas", "can create schemas in the database"),
        )
        if row[flag]
    ]
    if row["creates_in"]:
        powers.append(f"can create objects in schema(s) {row['creates_in']}")
    if row["writable_tables"]:
        powers.append(f"can write to {row['writable_tables']} table(s)")
    if row["writable_sequences"]:
        powers.append(f"can advance {row['writable_sequences']} sequence(s)")
    if row["member_of"]:
        powers.append(f"is a member of {row['member_of']}")
    return RoleCheck(role=str(row["rolname"]), powers=tuple(powers))

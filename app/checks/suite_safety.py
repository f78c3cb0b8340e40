"""Suites are data, never code: the bounds a suite is held to and the fields that would run code.

A suite comes from anyone with write access, so nothing in it may reach an evaluator: a
`row_condition` becomes a pandas `DataFrame.query` (which evaluates Python), a free SQL query
reaches the database, a regular expression runs in the worker. Everything here is pure Python
(no Great Expectations), so the API process refuses a suite before it is stored or queued.
"""

from __future__ import annotations

import math
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.core.errors import InvalidRequest
from app.ingest.sql_safety import check_query

if TYPE_CHECKING:
    from app.core.config import Settings

# A suite is a small JSON document; a body this large is a mistake (a dataset sent as a suite).
MAX_SUITE_BYTES = 10 * 1024 * 1024
# Deeper JSON buys nothing a suite needs (a suite's own levels are four) and 900 levels broke
# pickling the job for a worker (RecursionError).
MAX_SUITE_DEPTH = 32
DEFAULT_MAX_EXPECTATIONS = 1_000


@dataclass(frozen=True)
class SuiteLimits:
    """How large a suite may be: body bytes, JSON nesting depth, number of expectations."""

    max_bytes: int = MAX_SUITE_BYTES
    max_depth: int = MAX_SUITE_DEPTH
    max_expectations: int = DEFAULT_MAX_EXPECTATIONS


def suite_limits(settings: Settings) -> SuiteLimits:
    """The limits a service with `settings` holds suites to."""
    return SuiteLimits(max_expectations=settings.max_suite_expectations)


# One string token (escapes included) or one bracket; strings are skipped inside the regex
# engine, so a 10 MB suite is scanned without a Python step per character.
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def size_problem(text: str, limits: SuiteLimits) -> str | None:
    """Why `text` is over the byte or depth limit, or None. Runs before `json.loads`, which
    raises RecursionError (not a JSON error) on deep enough input."""
    size = len(text.encode("utf-8"))
    if size > limits.max_bytes:
        return f"{size} bytes is over the limit of {limits.max_bytes} bytes per suite"
    depth = 0
    for match in _JSON_TOKEN.finditer(text):
        lexeme = match.group()
        if lexeme in ("[", "{"):
            depth += 1
            if depth > limits.max_depth:
                return (
                    f"JSON nested deeper than the limit of {limits.max_depth} levels "
                    f"(at character {match.start()})"
                )
        elif lexeme in ("]", "}"):
            depth -= 1
    return None


# --- row conditions --------------------------------------------------------------------------

# Great Expectations' own parser (and its older name). Any other parser ("pandas", "python",
# "spark", none at all) hands the string to DataFrame.query, which evaluates Python:
# `@pd.compat.os.system("...")` runs a shell command in the worker.
GX_CONDITION_PARSERS = frozenset({"great_expectations", "great_expectations__experimental__"})

# GE renders a condition for DataFrame.query as `column <op> repr(value)`, wrapping the column
# in backticks: a backtick or quote in the column name ends that quoting and what follows is
# evaluated. These characters are refused in a condition's column names.
_UNSAFE_COLUMN_CHARS = frozenset("`'\"\\#@")
_CONDITION_OPERATORS = frozenset({"==", "!=", "<", "<=", ">", ">=", "IN", "NOT_IN"})
_NUMBER = r"[+-]?\d+(?:\.\d*)?(?:[eE][+-]?\d+)?"
_QUOTED = r"\"[^\"'\n]*\"|'[^\"'\n]*'"
# The whole of GE's string grammar: col("name") <op> number|"text"|date("text"), or
# col("name").notnull(). No operators between conditions, no calls, no names.
_GX_CONDITION = re.compile(
    rf'\s*col\("(?P<column>[^"\n]*)"\)\s*(?:(?i:\.notnull\(\))|(?:==|!=|<=|>=|<|>)\s*'
    rf"(?:{_NUMBER}|{_QUOTED}|date\(\s*(?:{_QUOTED})\s*\)))\s*"
)


def _column_problem(name: Any) -> str | None:
    if not isinstance(name, str) or not name:
        return "a condition's column must be a non-empty string"
    if len(name) > 256 or not name.isprintable() or _UNSAFE_COLUMN_CHARS & set(name):
        return (
            f"column name {name[:80]!r} cannot be used in a row_condition (no backticks, "
            "quotes, '\\', '#', '@' or control characters)"
        )
    return None


def _parameter_problem(value: Any, operator: str) -> str | None:
    if operator in ("IN", "NOT_IN"):
        if not isinstance(value, list):
            return f"operator {operator} needs a list of values"
        problems = [_parameter_problem(item, "==") for item in value]
        return next((p for p in problems if p), None)
    if isinstance(value, bool | int | str):
        return None
    if isinstance(value, float) and math.isfinite(value):
        return None
    return f"condition value {value!r} must be a string, a finite number or a boolean"


_CONDITION_KEYS = {
    "comparison": {"type", "column", "operator", "parameter"},
    "nullity": {"type", "column", "is_null"},
    "and": {"type", "conditions"},
    "or": {"type", "conditions"},
}


def _condition_object_problem(condition: Any) -> str | None:
    """Why a serialised GE Condition is not plain data, or None."""
    if not isinstance(condition, dict):
        return f"expected a condition object, got {type(condition).__name__}"
    kind = condition.get("type")
    if kind == "pass_through":
        return "pass_through conditions are evaluated by pandas as Python and are not accepted"
    if kind not in _CONDITION_KEYS:
        return f"condition type {kind!r} is not one of {', '.join(sorted(_CONDITION_KEYS))}"
    unknown = set(condition) - _CONDITION_KEYS[kind]
    if unknown:
        return f"unknown key(s) {', '.join(sorted(unknown))} in a {kind} condition"
    if kind in ("and", "or"):
        parts = condition.get("conditions")
        if not isinstance(parts, list) or not parts:
            return f"an {kind} condition needs a non-empty list of conditions"
        return next((p for p in map(_condition_object_problem, parts) if p), None)
    column = condition.get("column")
    if not isinstance(column, dict) or set(column) != {"name"}:
        return 'a condition\'s column must be {"name": "..."}'
    problem = _column_problem(column["name"])
    if problem or kind == "nullity":
        if kind == "nullity" and not isinstance(condition.get("is_null"), bool):
            return "a nullity condition needs is_null true or false"
        return problem
    operator = condition.get("operator")
    if operator not in _CONDITION_OPERATORS:
        return f"operator {operator!r} is not one of {', '.join(sorted(_CONDITION_OPERATORS))}"
    return _parameter_problem(condition.get("parameter"), str(operator))


def row_condition_problem(kwargs: dict[str, Any]) -> str | None:
    """Why an expectation's `row_condition` / `condition_parser` could run code, or None."""
    condition = kwargs.get("row_condition")
    parser = kwargs.get("condition_parser")
    if parser is not None and parser not in GX_CONDITION_PARSERS:
        return (
            f'kwargs.condition_parser {parser!r} is not accepted: only "great_expectations" '
            "(the pandas and python parsers evaluate the condition as code)"
        )
    if condition is None or condition == "":
        return None
    if isinstance(condition, str):
        if parser is None:
            return (
                'kwargs.row_condition: a string needs condition_parser "great_expectations" '
                "(without it the string is evaluated by pandas)"
            )
        match = _GX_CONDITION.fullmatch(condition)
        if match is None:
            return (
                f"kwargs.row_condition {condition[:120]!r} is not of the form "
                'col("name") <op> value or col("name").notnull()'
            )
        problem = _column_problem(match["column"])
    else:
        problem = _condition_object_problem(condition)
    return f"kwargs.row_condition: {problem}" if problem else None


# --- free SQL --------------------------------------------------------------------------------

# Expectations whose kwargs carry SQL text that reaches the database as written.
FREE_SQL_KWARGS = {"unexpected_rows_expectation": "unexpected_rows_query"}
_LEADING_COMMENTS = re.compile(r"^(?:\s|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)
# GE fills the query with str.format: `{batch.__init__.__globals__}` would walk Python objects.
_PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def has_free_sql(expectation: dict[str, Any]) -> bool:
    return str(expectation.get("type")) in FREE_SQL_KWARGS


def free_sql_problem(expectation: dict[str, Any]) -> str | None:
    """Why a free SQL query is not one SELECT (or WITH ... SELECT), or None."""
    key = FREE_SQL_KWARGS.get(str(expectation.get("type")))
    if key is None:
        return None
    query = expectation["kwargs"].get(key)
    if not isinstance(query, str) or not query.strip():
        return f"kwargs.{key} must be a SQL SELECT statement"
    body = _LEADING_COMMENTS.sub("", query)
    # Stricter than a query reference: no ';' at all, not even a trailing one or in a literal.
    if ";" in body:
        return f"kwargs.{key}: one statement only (';' is not allowed)"
    placeholders = set(_PLACEHOLDER.findall(body.replace("{{", "").replace("}}", "")))
    if placeholders - {"{batch}"}:
        found = ", ".join(sorted(placeholders))
        return f"kwargs.{key}: the only placeholder is {{batch}}; found {found}"
    # One SELECT naming none of the server functions a query reference may not name
    # (pg_read_file, set_config...): a read-only transaction does not stop them.
    try:
        check_query(body, f"kwargs.{key}", reader="a suite's SQL")
    except InvalidRequest as exc:
        return exc.message
    return None


# --- regular expressions ---------------------------------------------------------------------


def matches_user_patterns(expectation: dict[str, Any]) -> bool:
    """True for expectations that run a suite's own patterns (regex, JSON schema "pattern")."""
    kind = str(expectation.get("type"))
    return "regex" in kind or "json_schema" in kind


def regex_problem(kwargs: dict[str, Any]) -> str | None:
    """Why a `regex` / `regex_list` argument is not a pattern Python's `re` compiles, or None."""
    patterns: list[Any] = []
    if "regex" in kwargs:
        patterns.append(kwargs["regex"])
    if "regex_list" in kwargs:
        listed = kwargs["regex_list"]
        if not isinstance(listed, list):
            return "kwargs.regex_list must be a list of regular expressions"
        patterns.extend(listed)
    for pattern in patterns:
        if not isinstance(pattern, str):
            return f"kwargs.regex: {pattern!r} must be a string"
        try:
            re.compile(pattern)
        except re.error as exc:
            return f"kwargs.regex: {pattern[:120]!r} does not compile: {exc}"
    return None


# --- JSON schemas ------------------------------------------------------------------------------

# jsonschema resolves a reference outside the schema by fetching its URL (urllib, no allow-list):
# `{"$ref": "http://127.0.0.1:6379/"}` made the worker connect to any host and port. A schema may
# refer only inside itself ("#..."); what it needs from elsewhere is pasted in.
_REFERENCE_KEYS = ("$ref", "$dynamicRef", "$recursiveRef")


def json_schema_problem(kwargs: dict[str, Any]) -> str | None:
    """Why a `json_schema` argument would make the worker fetch a URL, or None."""
    if "json_schema" not in kwargs:
        return None
    pending: list[Any] = [kwargs["json_schema"]]
    while pending:
        value = pending.pop()
        if isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, dict):
            for key in _REFERENCE_KEYS:
                target = value.get(key)
                if key in value and not (isinstance(target, str) and target.startswith("#")):
                    return (
                        f"kwargs.json_schema: {key} {str(target)[:120]!r} points outside the "
                        'schema; only references within it ("#/...") are followed'
                    )
            pending.extend(value.values())
    return None


def data_problem(expectation: dict[str, Any]) -> str | None:
    """Why an expectation (already an object with "type" and "kwargs") is not plain data."""
    kwargs: dict[str, Any] = expectation["kwargs"]
    if _mentions_suite_parameter(kwargs):
        # GE evaluates a $PARAMETER's arithmetic ("9^9^9^9" never ends); datagate passes none.
        return "kwargs: suite parameters ($PARAMETER) are not supported"
    return (
        row_condition_problem(kwargs)
        or regex_problem(kwargs)
        or json_schema_problem(kwargs)
        or free_sql_problem(expectation)
    )


def _mentions_suite_parameter(value: Any) -> bool:
    if isinstance(value, dict):
        return "$PARAMETER" in value or any(map(_mentions_suite_parameter, value.values()))
    if isinstance(value, list):
        return any(map(_mentions_suite_parameter, value))
    return False


# --- time budget -----------------------------------------------------------------------------


class CheckTimeout(BaseException):
    """A check ran over its time budget. A BaseException, so that Great Expectations, which
    turns every Exception of a metric into a result, lets it through to the budget's owner."""


@contextmanager
def time_budget(seconds: float | None) -> Iterator[None]:
    """Raise CheckTimeout inside the block once it has run `seconds`.

    SIGALRM interrupts pure Python and a running `re` match alike, but only in the process's
    main thread (where a worker runs its jobs); elsewhere, or with no budget, it is a no-op.
    """
    if (
        not seconds
        or not hasattr(signal, "setitimer")
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return

    def expired(signum: int, frame: Any) -> None:
        raise CheckTimeout(seconds)

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

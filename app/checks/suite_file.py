"""Check a suite file offline, as the service would load it, with problems that name their line.

Used by `datagate suites check` before a suite is committed or PUT.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from app.checks.expectations import parse_suite
from app.core.errors import InvalidRequest, SuiteInvalid

ROLE_COLUMNS = ("label", "datetime", "index")
ROLE_LISTS = ("categorical", "features")
_INDEX = re.compile(r"expectations\[(\d+)\]")
_JSON_LINE = re.compile(r"at line (\d+), column \d+")


def expectation_lines(text: str) -> list[int]:
    """The line (1-based) on which each element of the top-level "expectations" array starts.

    A small scanner over the JSON text, because `json` keeps no positions; it assumes the text
    is valid JSON, and returns [] when there is no such array.
    """
    starts: list[int] = []
    depth = 0
    in_string = escaped = False
    string_start = 0
    last_string = ""
    key = ""  # the key of the top-level member being read
    array_depth: int | None = None  # depth inside the "expectations" array
    element_next = False
    for position, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
                last_string = text[string_start + 1 : position]
            continue
        if char.isspace():
            continue
        if element_next and char != "]":
            starts.append(text.count("\n", 0, position) + 1)
        element_next = False
        if char == '"':
            in_string, string_start = True, position
        elif char == ":" and depth == 1:
            key = last_string
        elif char in "{[":
            depth += 1
            if char == "[" and depth == 2 and key == "expectations" and array_depth is None:
                array_depth, element_next = depth, True
        elif char in "}]":
            depth -= 1
            if array_depth is not None and depth < array_depth:
                return starts
        elif char == "," and depth == array_depth:
            element_next = True
    return starts


def check_suite_file(path: Path, *, name: str | None = None, engine: bool = True) -> list[str]:
    """Every problem found in the suite file at `path`, each as `FILE:LINE: message`.

    With `engine=False` only what needs no Great Expectations is checked (the JSON, its shape,
    the data rules of app/checks/suite_safety.py, `meta.datagate`): an unknown expectation type
    or a misspelt argument is then found by the service, or by a check without it."""
    shown = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return [f"{shown}: cannot read: {exc.strerror}"]
    suite_name = name or path.stem
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return [f"{shown}: not UTF-8 text ({exc.reason})"]
    try:
        suite = parse_suite(suite_name, text, "file", check=engine)
    except InvalidRequest as exc:
        return [f"{shown}: {exc.message} (name it with --name, or rename the file)"]
    except SuiteInvalid as exc:
        return _located_problems(shown, suite_name, text, exc.message, engine)
    return [f"{shown}: {problem}" for problem in role_problems(suite.definition)]


def _located_problems(shown: str, name: str, text: str, first: str, engine: bool) -> list[str]:
    json_error = _JSON_LINE.search(first)
    if json_error:
        return [f"{shown}:{json_error[1]}: {first}"]
    if not _INDEX.search(first):
        return [f"{shown}: {first}"]
    # One bad expectation was found; check each on its own so that the author sees them all.
    expectations = json.loads(text)["expectations"]
    lines = expectation_lines(text)
    problems = []
    for index, expectation in enumerate(expectations):
        try:
            parse_suite(name, json.dumps({"expectations": [expectation]}), "file", check=engine)
        except SuiteInvalid as exc:
            message = _INDEX.sub(f"expectations[{index}]", exc.message, count=1)
            line = lines[index] if index < len(lines) else None
            problems.append(f"{shown}:{line}: {message}" if line else f"{shown}: {message}")
    return problems or [f"{shown}: {first}"]


def role_problems(definition: dict[str, Any]) -> list[str]:
    """Column roles in meta.datagate.roles that cannot be right."""
    block = definition.get("meta", {}).get("datagate", {})
    roles = dict(block.get("roles") or {}) if isinstance(block.get("roles"), dict) else {}
    problems = [
        f'meta.datagate {key}: column roles go under "roles", e.g. {{"roles": {{"{key}": ...}}}}'
        for key in (*ROLE_COLUMNS, *ROLE_LISTS)
        if key in block
    ]
    columns = _declared_columns(definition)
    named: list[tuple[str, str]] = []
    for role in ROLE_COLUMNS:
        value = roles.get(role)
        if value is None:
            continue
        if not isinstance(value, str) or not value:
            problems.append(f"meta.datagate {role}: expected a column name, got {value!r}")
        else:
            named.append((role, value))
    for role in ROLE_LISTS:
        value = roles.get(role)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            problems.append(f"meta.datagate {role}: expected a list of column names, got {value!r}")
        else:
            named.extend((role, v) for v in value)
    if columns is not None:
        for role, column in named:
            if column not in columns:
                problems.append(
                    f'meta.datagate {role}: column "{column}" is not in the suite\'s column set '
                    f"({', '.join(sorted(columns))})"
                )
    thresholds = block.get("thresholds")
    numbers = isinstance(thresholds, dict) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in thresholds.values()
    )
    if thresholds is not None and not numbers:
        problems.append("meta.datagate thresholds: expected an object of numbers")
    return problems


def _declared_columns(definition: dict[str, Any]) -> set[str] | None:
    for expectation in definition["expectations"]:
        if expectation["type"] in (
            "expect_table_columns_to_match_set",
            "expect_table_columns_to_match_ordered_list",
        ):
            kwargs = expectation["kwargs"]
            listed = kwargs.get("column_set") or kwargs.get("column_list")
            if isinstance(listed, list):
                return {str(c) for c in listed}
    return None

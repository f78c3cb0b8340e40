"""Text that may be stored: the check at the edge and the escaping before the database.

PostgreSQL `text` cannot hold NUL, and no database driver encodes a lone surrogate to UTF-8. A
string carrying either, once inside a job or a report, makes every write of it fail: the job can
then never finish. Clients' texts are refused at the edge (`StoredText`, `check_storable`);
texts that come from the data itself (column names, cell values, error messages) are escaped
before they are stored (`make_storable`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator

from app.core.errors import InvalidRequest

NUL = "\x00"
_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored, or None when it can."""
    if NUL in value:
        return "must not contain NUL (\\x00) characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid UTF-8 (it holds a lone surrogate)"
    return None


def storable(value: str) -> str:
    """A pydantic validator: refuse a text that could not be stored."""
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


StoredText = Annotated[str, AfterValidator(storable)]
"""A client's text that ends up stored (names, roles, URLs): NUL and non-UTF-8 refused (422)."""


def nested_text_problem(value: Any, path: str = "") -> str | None:
    """The first string (or key) in parsed JSON `value` that could not be stored, as
    "<path>: <why>", or None when every one can."""
    if isinstance(value, str):
        problem = text_problem(value)
        return None if problem is None else f"{path or 'value'}: {problem}"
    items: list[tuple[str, Any]] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            # The path is echoed to the client: a bad key is shown escaped, not raw.
            shown = str(key).encode("unicode_escape", "backslashreplace").decode("ascii")
            where = f"{path}.{shown}" if path else shown
            problem = text_problem(str(key))
            if problem is not None:
                return f"{where} (a key): {problem}"
            items.append((where, item))
    elif isinstance(value, list):
        items = [(f"{path}[{index}]", item) for index, item in enumerate(value)]
    for where, item in items:
        found = nested_text_problem(item, where)
        if found is not None:
            return found
    return None


def check_storable(fields: Mapping[str, str | None]) -> None:
    """The same rule for texts that arrive outside a model (form fields, file names): 422."""
    for name, value in fields.items():
        if value is None:
            continue
        problem = text_problem(value)
        if problem is not None:
            raise InvalidRequest(f"field {name!r} {problem}")


def safe_text(value: str) -> str:
    """`value` with NUL and lone surrogates replaced by U+FFFD: storable, and still readable."""
    if text_problem(value) is None:
        return value
    return _SURROGATE.sub(REPLACEMENT, value.replace(NUL, REPLACEMENT))


def make_storable(value: Any) -> Any:
    """A JSON-like value (dicts, lists, strings...) with every string and key made safe."""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, dict):
        return {
            safe_text(k) if isinstance(k, str) else k: make_storable(v) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [make_storable(item) for item in value]
    return value

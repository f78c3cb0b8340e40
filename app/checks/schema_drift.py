"""Schema drift between a reference and the data: failed rows, not a 422, and the shared columns.

A renamed, added or dropped column, or one whose type changed (numbers in the reference,
strings in the data), is the most common defect a gate meets: it is reported as a failed
`schema` row naming the column, and every other check still runs on the columns both share.
A role naming a column neither dataset has stays the client's mistake (a 422).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from app.checks.roles import ColumnRoles, validate_roles
from app.reports.model import CheckResult

SOURCE = "deepchecks"
CATEGORY = "schema"

# One row per column, so that every failing row names the column it is about.
MISSING = "SchemaColumnMissing"
ADDED = "SchemaColumnAdded"
TYPE_CHANGED = "SchemaColumnType"
SCHEMA_CHECKS = (MISSING, ADDED, TYPE_CHANGED)

# A string column with more distinct values than this share of its non-null rows is an id or
# free text: every value is its own category, so a category drift score on it is noise.
ID_LIKE_DISTINCT_SHARE = 0.5

Kind = Literal["number", "string", "boolean", "datetime", "timedelta"]
_SPECIAL_ROLES = ("label", "datetime", "index")
_SAMPLES = 5


@dataclass(frozen=True)
class ResolvedColumns:
    """What the checks run on after the schemas are compared.

    `roles` names only usable columns, with `features` always set; `not_measured` holds the
    features left out of deepchecks and why (each still gets a `skipped` row per per-column
    check); `role_reasons` says why a role the client gave was dropped.
    """

    roles: ColumnRoles
    rows: list[CheckResult] = field(default_factory=list)
    not_measured: dict[str, str] = field(default_factory=dict)
    role_reasons: dict[str, str] = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        assert self.roles.features is not None
        return list(self.roles.features)


def column_kind(column: pd.Series[Any]) -> Kind | None:
    """The kind of values a column holds, or None when it holds no values to tell by.

    Kinds, not dtypes: int64 and float64 (an integer column with a null) are both numbers, an
    object column of Python strings and a pandas category of strings are both strings.
    """
    if isinstance(column.dtype, pd.CategoricalDtype):
        column = pd.Series(column.cat.categories)
    if pd.api.types.is_bool_dtype(column.dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(column.dtype):
        return "number"
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return "datetime"
    if pd.api.types.is_timedelta64_dtype(column.dtype):
        return "timedelta"
    inferred = pd.api.types.infer_dtype(column, skipna=True)
    if inferred == "empty":
        return None
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
        return "number"
    if inferred == "boolean":
        return "boolean"
    if inferred in ("datetime64", "datetime", "date"):
        return "datetime"
    if inferred == "timedelta64":
        return "timedelta"
    return "string"


def _same_kind(was: Kind, now: Kind, reference: pd.DataFrame, data: pd.DataFrame, col: str) -> bool:
    """Rule: the kinds match, or one side is dates and the other strings that all read as
    dates (a CSV carries dates as text, Parquet as timestamps). A side with no values at all
    has no kind and is never a change."""
    if was == now:
        return True
    if {was, now} == {"datetime", "string"}:
        text = data[col] if now == "string" else reference[col]
        values = text.dropna()
        parsed = pd.to_datetime(values, errors="coerce", format="mixed")
        return bool(parsed.notna().all())
    return False


def is_categorical_kind(kind: Kind | None) -> bool:
    """Strings and booleans can only be compared as categories: never left to a numeric test."""
    return kind in ("string", "boolean")


def is_id_like(column: pd.Series[Any]) -> bool:
    """Rule: a string column is id-like (not measured as a category) when its distinct non-null
    values are more than ID_LIKE_DISTINCT_SHARE of its non-null rows."""
    values = column.dropna()
    return len(values) > 0 and values.nunique() > ID_LIKE_DISTINCT_SHARE * len(values)


def resolve_columns(
    data: pd.DataFrame, reference: pd.DataFrame | None, roles: ColumnRoles
) -> ResolvedColumns:
    """Compare the schemas and settle the roles and features the checks run on.

    Without a reference a role naming a column the data lacks is a 422, as before. With one, a
    role is a 422 only when neither dataset has its column; a column on one side only, or of
    another kind on each side, is a failed schema row, and roles naming it are dropped.
    """
    if reference is None:
        validate_roles(roles, list(data.columns), dataset="data")
        return _with_categories(ResolvedColumns(roles=_with_features(roles, data)), data)
    union = [*data.columns, *(c for c in reference.columns if c not in data.columns)]
    validate_roles(roles, union, dataset="data or reference")
    rows: list[CheckResult] = []
    unusable: dict[str, str] = {}
    role_of = _role_of(roles)
    for col in reference.columns:
        if col not in data.columns:
            unusable[col] = f"the column {col!r} is in the reference but not in the data"
            rows.append(_missing_row(col, reference, role_of.get(col)))
    for col in data.columns:
        if col not in reference.columns:
            unusable[col] = f"the column {col!r} is in the data but not in the reference"
            rows.append(_added_row(col, data, role_of.get(col)))
    for col in data.columns:
        if col not in reference.columns:
            continue
        was, now = column_kind(reference[col]), column_kind(data[col])
        if was is not None and now is not None and not _same_kind(was, now, reference, data, col):
            unusable[col] = (
                f"its type changed: {was} in the reference, {now} in the data (see {TYPE_CHANGED})"
            )
            rows.append(_type_row(col, was, now, data[col], role_of.get(col)))
    special = set(roles.special_columns())
    kept: dict[str, Any] = {}
    role_reasons: dict[str, str] = {}
    for role in _SPECIAL_ROLES:
        col = getattr(roles, role)
        if col is not None and col in unusable:
            role_reasons[role] = f"the {role} column {col!r} cannot be used: {unusable[col]}"
            kept[role] = None
    shared = [c for c in data.columns if c in reference.columns]
    if roles.features is not None:
        features = [c for c in roles.features if c in shared]
    else:
        features = [c for c in shared if c not in special]
    not_measured = {c: f"not measured: {unusable[c]}" for c in features if c in unusable}
    usable = [c for c in features if c not in unusable]
    categorical = (
        None if roles.categorical is None else [c for c in roles.categorical if c in usable]
    )
    resolved = ResolvedColumns(
        roles=roles.model_copy(update={**kept, "features": usable, "categorical": categorical}),
        rows=rows,
        not_measured=not_measured,
        role_reasons=role_reasons,
    )
    return _with_categories(resolved, reference)


def measured_categorical(
    resolved: ResolvedColumns, held_to: pd.DataFrame, inferred: Sequence[str]
) -> list[str]:
    """The categorical features: those given or inferred, plus every string and boolean
    feature, which only a category test can compare (id-like ones are already left out)."""
    listed = set(inferred)
    return [
        c for c in resolved.features if c in listed or is_categorical_kind(column_kind(held_to[c]))
    ]


def _with_features(roles: ColumnRoles, data: pd.DataFrame) -> ColumnRoles:
    return roles.model_copy(update={"features": roles.feature_columns(list(data.columns))})


def _with_categories(resolved: ResolvedColumns, held_to: pd.DataFrame) -> ResolvedColumns:
    """Leave id-like string features out of deepchecks, each with the reason, unless the
    client listed it as categorical."""
    given = set(resolved.roles.categorical or [])
    left_out: dict[str, str] = {}
    for col in resolved.features:
        column = held_to[col]
        if col in given or column_kind(column) != "string" or not is_id_like(column):
            continue
        values = column.dropna()
        left_out[col] = (
            f"not measured: a string column with {values.nunique()} distinct values in "
            f"{len(values)} rows is an id or free text, not a category; list it in "
            "`categorical` to measure it as one"
        )
    if not left_out:
        return resolved
    features = [c for c in resolved.features if c not in left_out]
    return ResolvedColumns(
        roles=resolved.roles.model_copy(update={"features": features}),
        rows=resolved.rows,
        not_measured={**resolved.not_measured, **left_out},
        role_reasons=resolved.role_reasons,
    )


def _role_of(roles: ColumnRoles) -> dict[str, str]:
    named = {getattr(roles, r): r for r in _SPECIAL_ROLES if getattr(roles, r) is not None}
    return {**{c: "features" for c in roles.features or []}, **named}


def _samples(column: pd.Series[Any]) -> list[Any]:
    values = column.dropna().drop_duplicates().head(_SAMPLES)
    return [v.item() if hasattr(v, "item") else str(v) for v in values]


def _schema_row(
    name: str,
    column: str,
    observed: dict[str, Any],
    expected: dict[str, Any],
    reason: str,
    role: str | None,
) -> CheckResult:
    details: dict[str, Any] = {"reason": reason}
    if role is not None:
        details["role"] = role
    return CheckResult(
        source=SOURCE,
        category=CATEGORY,
        name=name,
        column=column,
        success=False,
        outcome="failed",
        severity="critical",
        observed=observed,
        expected=expected,
        details=details,
    )


def _missing_row(column: str, reference: pd.DataFrame, role: str | None) -> CheckResult:
    return _schema_row(
        MISSING,
        column,
        {"in_data": False},
        {"in_data": True, "reference_type": column_kind(reference[column])},
        f"the reference has a column {column!r} that the data lacks (dropped or renamed)",
        role,
    )


def _added_row(column: str, data: pd.DataFrame, role: str | None) -> CheckResult:
    return _schema_row(
        ADDED,
        column,
        {"in_reference": False, "data_type": column_kind(data[column])},
        {"in_reference": True},
        f"the data has a column {column!r} that the reference lacks (new or renamed)",
        role,
    )


def _type_row(
    column: str, was: Kind, now: Kind, values: pd.Series[Any], role: str | None
) -> CheckResult:
    return _schema_row(
        TYPE_CHANGED,
        column,
        {"data_type": now, "data_dtype": str(values.dtype), "data_samples": _samples(values)},
        {"data_type": was},
        f"the column {column!r} holds {was} values in the reference and {now} values in the "
        "data; it is compared in no other check",
        role,
    )


def reason_for_role(role_reasons: Mapping[str, str], need: str) -> str | None:
    """Why a check needing `need` (label, datetime, index) cannot run, when schema drift
    dropped that role; None when the role was simply not given."""
    return role_reasons.get(need)

"""Column roles for the deepchecks engine: which column is the label, the date, the index.

A role naming a column the dataset lacks is the client's mistake, so it is a 422 naming both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from app.core.errors import InvalidRequest

ROLE_FIELDS = ("label", "datetime", "index", "categorical", "features")


class ColumnRoles(BaseModel):
    """What each column is for. `None` means "not given": categorical is then inferred, and
    features are every column that is not the label, the datetime or the index."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str | None = None
    datetime: str | None = None
    index: str | None = None
    categorical: list[str] | None = None
    features: list[str] | None = None

    @field_validator("label", "datetime", "index", mode="before")
    @classmethod
    def _blank_is_absent(cls, value: Any) -> Any:
        # HTML forms send an empty string for an untouched field.
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator("categorical", "features", mode="before")
    @classmethod
    def _split_comma_list(cls, value: Any) -> Any:
        # Form fields carry lists as "a,b,c"; JSON carries them as lists.
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    def special_columns(self) -> list[str]:
        """The label, datetime and index columns that are set, in that order."""
        return [c for c in (self.label, self.datetime, self.index) if c is not None]

    def feature_columns(self, columns: Sequence[str]) -> list[str]:
        """The features: as given, or every column that has no other role."""
        if self.features is not None:
            return list(self.features)
        special = set(self.special_columns())
        return [c for c in columns if c not in special]


def validate_roles(roles: ColumnRoles, columns: Sequence[str], *, dataset: str) -> None:
    """Raise InvalidRequest naming the first role whose column is not in `columns` of `dataset`."""
    present = set(columns)
    named: list[tuple[str, str]] = [
        (role, column)
        for role in ("label", "datetime", "index")
        if (column := getattr(roles, role)) is not None
    ]
    named += [("categorical", c) for c in roles.categorical or []]
    named += [("features", c) for c in roles.features or []]
    for role, column in named:
        if column not in present:
            raise InvalidRequest(
                f"Column role {role}={column!r} names a column that is not in the {dataset} "
                f"dataset; its columns are: {_preview(columns)}"
            )
    special = roles.special_columns()
    if len(special) != len(set(special)):
        raise InvalidRequest(
            f"Column roles label, datetime and index must name different columns, got {special}"
        )
    for column in set(special) & set(roles.features or []):
        raise InvalidRequest(
            f"Column {column!r} is listed in features but also has the label, datetime or "
            "index role; a column has one role"
        )
    for column in set(roles.categorical or []) - set(roles.feature_columns(columns)):
        raise InvalidRequest(
            f"Column {column!r} is listed as categorical but is not a feature; "
            "categorical columns must be features"
        )


def _preview(columns: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(map(str, columns[:limit]))
    return shown if len(columns) <= limit else f"{shown}, ... ({len(columns)} in all)"

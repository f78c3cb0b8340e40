"""Severity and thresholds per check and per column (`per_check`): validated, merged, applied.

A suite's `meta.datagate.per_check` and a request's `per_check` are plain JSON, checked here
against what each check accepts; the merge keeps where each value came from, and the report's
rows say it (`details.set_by`). The checks' own decisions are not changed: a threshold is
handed to the check that uses it, and a severity turns a breached row into `failed` or `warned`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from math import isfinite
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from app.core.errors import InvalidRequest, SuiteInvalid
from app.core.text import StoredText
from app.reports.model import CheckResult, Severity, outcome_for

Origin = Literal["default", "suite", "request"]

SEVERITY = "severity"
COLUMNS = "columns"
# A Great Expectations expectation type names its rows: its severity can be set the same way.
EXPECTATION_PREFIX = "expect_"
# The thresholds a column of its own can loosen or tighten. FeatureDrift's effect size is judged
# column by column; `drift_alpha` is a family-wise level over all columns, so it has no column.
COLUMN_THRESHOLDS: Mapping[str, tuple[str, ...]] = {"FeatureDrift": ("max_feature_drift",)}


@dataclass(frozen=True)
class CheckCatalogue:
    """What a check accepts: the thresholds it is held to, and whether its rows have columns."""

    thresholds: tuple[str, ...]
    per_column: bool


class ColumnOptions(BaseModel):
    """One column's own severity and thresholds within one check."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: Severity | None = None
    thresholds: dict[str, float] = Field(default_factory=dict)


class CheckOptions(BaseModel):
    """One check's severity, thresholds and columns, as one level (suite or request) gave them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: Severity | None = None
    thresholds: dict[str, float] = Field(default_factory=dict)
    columns: dict[StoredText, ColumnOptions] = Field(default_factory=dict)


class CheckConfig(BaseModel):
    """Both levels of `per_check`, and which global thresholds each level set.

    Precedence: the request over the suite over the defaults; within one level, a column's own
    value over its check's, and its check's over the level's global `thresholds`.
    """

    model_config = ConfigDict(frozen=True)

    suite: dict[str, CheckOptions] = Field(default_factory=dict)
    request: dict[str, CheckOptions] = Field(default_factory=dict)
    # Global `thresholds` keys each level gave (their values are in DeepchecksThresholds).
    suite_thresholds: frozenset[str] = frozenset()
    request_thresholds: frozenset[str] = frozenset()

    def severity(self, check: str, column: str | None = None) -> tuple[Severity, Origin] | None:
        """The severity set for this check's rows (of this column), and by which level."""
        for origin, options in self._levels(check):
            if column is not None and column in options.columns:
                own = options.columns[column].severity
                if own is not None:
                    return own, origin
            if options.severity is not None:
                return options.severity, origin
        return None

    def threshold(
        self, check: str, key: str, column: str | None = None
    ) -> tuple[float | None, Origin]:
        """A threshold set for this check (or this column of it) and its origin.

        None with the origin of the global value when no per-check value takes precedence
        over it: the check then keeps the value already in its thresholds.
        """
        for origin, options in self._levels(check):
            if column is not None and column in options.columns:
                own = options.columns[column].thresholds.get(key)
                if own is not None:
                    return own, origin
            if key in options.thresholds:
                return options.thresholds[key], origin
            given = self.request_thresholds if origin == "request" else self.suite_thresholds
            if key in given:
                return None, origin
        return None, "default"

    def check_thresholds(self, check: str, keys: Iterable[str]) -> dict[str, float]:
        """The per-check values that replace the global ones for this check's own run."""
        values = {key: self.threshold(check, key)[0] for key in keys}
        return {key: value for key, value in values.items() if value is not None}

    def column_thresholds(self, check: str, key: str) -> dict[str, float]:
        """Each column whose own value for `key` wins over the check's: column -> value."""
        out = {}
        for column in sorted(self.columns().get(check, set())):
            value, _ = self.threshold(check, key, column)
            if value is not None and value != self.threshold(check, key)[0]:
                out[column] = value
        return out

    def columns(self) -> dict[str, set[str]]:
        """Every column named, per check: each must exist in the data or the reference."""
        named: dict[str, set[str]] = {}
        for level in (self.suite, self.request):
            for check, options in level.items():
                named.setdefault(check, set()).update(options.columns)
        return {check: cols for check, cols in named.items() if cols}

    def names_any(self, checks: Iterable[str]) -> bool:
        """Whether the request's `per_check` names one of `checks`."""
        return any(name in self.request for name in checks)

    def _levels(self, check: str) -> list[tuple[Origin, CheckOptions]]:
        """The request's options for `check`, then the suite's (empty where a level has none)."""
        return [
            ("request", self.request.get(check, _NONE)),
            ("suite", self.suite.get(check, _NONE)),
        ]


_NONE = CheckOptions()
ThresholdValidator = Callable[[dict[str, Any]], None]


def parse_per_check(
    raw: Any,
    catalogue: Mapping[str, CheckCatalogue],
    *,
    where: str,
    error: type[InvalidRequest] | type[SuiteInvalid],
    validate_thresholds: ThresholdValidator,
) -> dict[str, CheckOptions]:
    """`per_check` JSON checked against `catalogue`; raise `error` naming the first problem.

    `{"DataDuplicates": {"severity": "critical", "max_duplicates_ratio": 0.0},
      "FeatureDrift": {"columns": {"income": {"max_feature_drift": 0.5}}}}`: a check name (or a
    Great Expectations expectation type), then `severity`, the check's own thresholds (named as
    in `thresholds`), and `columns` for checks with a row per column. `validate_thresholds` is
    called with each object of thresholds and raises ValueError naming a value out of range.
    """
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise error(f"{where} must be an object of checks, got {type(raw).__name__}")
    parsed: dict[str, CheckOptions] = {}
    for check, given in raw.items():
        here = f"{where}.{check}"
        is_expectation = isinstance(check, str) and check.startswith(EXPECTATION_PREFIX)
        if check not in catalogue and not is_expectation:
            raise error(
                f"{where}: unknown check {check!r}; known: {', '.join(catalogue)}, or an "
                "expectation type of the suite (expect_...)"
            )
        known = catalogue.get(check, CheckCatalogue(thresholds=(), per_column=True))
        if not isinstance(given, Mapping):
            raise error(f"{here} must be an object, got {type(given).__name__}")
        accepted = (SEVERITY, *known.thresholds, *((COLUMNS,) if known.per_column else ()))
        options = _level_options(given, accepted, here, error, validate_thresholds)
        columns_raw = given.get(COLUMNS)
        if columns_raw is not None and not isinstance(columns_raw, Mapping):
            raise error(f"{here}.columns must be an object of columns, got {type(columns_raw)}")
        column_keys = (SEVERITY, *COLUMN_THRESHOLDS.get(check, ()))
        columns = {
            str(column): ColumnOptions(
                **_level_options(
                    value, column_keys, f"{here}.columns.{column}", error, validate_thresholds
                )
            )
            for column, value in (columns_raw or {}).items()
        }
        try:
            parsed[str(check)] = CheckOptions(**options, columns=columns)
        except ValidationError as exc:
            raise error(f"{here}: {_first_error(exc)}") from exc
    return parsed


def _level_options(
    given: Any,
    accepted: tuple[str, ...],
    where: str,
    error: type[InvalidRequest] | type[SuiteInvalid],
    validate_thresholds: ThresholdValidator,
) -> dict[str, Any]:
    if not isinstance(given, Mapping):
        raise error(f"{where} must be an object, got {type(given).__name__}")
    unknown = sorted(str(k) for k in set(given) - set(accepted))
    if unknown:
        raise error(f"{where}: unknown option {unknown[0]!r}; accepted: {', '.join(accepted)}")
    severity = given.get(SEVERITY)
    if severity is not None and severity not in ("critical", "warning", "info"):
        raise error(f"{where}.severity: {severity!r} is not one of critical, warning, info")
    thresholds = {k: v for k, v in given.items() if k not in (SEVERITY, COLUMNS)}
    for key, value in thresholds.items():
        # A non-finite limit has no JSON form in the report that states it.
        if isinstance(value, bool) or not isinstance(value, int | float) or not isfinite(value):
            raise error(f"{where}.{key}: expected a finite number, got {value!r}")
    try:
        validate_thresholds(thresholds)
    except ValueError as exc:
        raise error(f"{where}.{exc}") from exc
    return {"severity": severity, "thresholds": {k: float(v) for k, v in thresholds.items()}}


def check_columns(config: CheckConfig, present: Iterable[str]) -> None:
    """A column named in `per_check` must be in the data or the reference: a 422 otherwise.

    As for roles: a column absent from both is a typo nobody would see, since its rows would
    simply never appear; a column on one side only is schema drift and has its own failed row.
    """
    have = set(present)
    for check, columns in config.columns().items():
        absent = sorted(columns - have)
        if absent:
            raise InvalidRequest(
                f"per_check.{check}.columns names {absent[0]!r}, which is in neither the data "
                "nor the reference"
            )


def check_expectation_types(config: CheckConfig, types: Iterable[str]) -> None:
    """An expectation type named in `per_check` must be one the suite holds: a 4xx otherwise."""
    held = set(types)
    for level, error in ((config.suite, SuiteInvalid), (config.request, InvalidRequest)):
        for name in level:
            if name.startswith(EXPECTATION_PREFIX) and name not in held:
                where = "suite meta.datagate.per_check" if error is SuiteInvalid else "per_check"
                raise error(
                    f"{where}: the suite has no expectation of type {name!r}; it has: "
                    f"{', '.join(sorted(held)) or 'none'}"
                )


def apply_check_config(
    rows: list[CheckResult], config: CheckConfig, threshold_keys: Mapping[str, tuple[str, ...]]
) -> list[CheckResult]:
    """Give each row the severity set for it, and say where its severity and thresholds came from.

    A breached row (`failed` or `warned`) is `failed` when its severity is critical and `warned`
    otherwise (warning, info), as a Great Expectations expectation's severity does; an `error`
    row takes the severity too, so an error in a check set to `warning` does not make the
    report `error`. Passed and skipped rows keep their outcome. `details.set_by` names the
    level (default, suite, request) of the severity and of each threshold in `expected`.
    """
    for row in rows:
        set_by: dict[str, Origin] = dict(row.details.get("set_by") or {})
        chosen = config.severity(row.name, row.column)
        if chosen is not None:
            severity, origin = chosen
            set_by[SEVERITY] = origin
            if row.outcome != "skipped":
                row.severity = severity
            if row.outcome in ("failed", "warned"):
                row.outcome = outcome_for(False, severity)
        else:
            set_by.setdefault(SEVERITY, "default")
        for key in threshold_keys.get(row.name, ()):
            if key not in row.expected:
                continue
            value, origin = config.threshold(row.name, key, row.column)
            if value is not None and row.column is not None:
                # The column's own value was the one its check was held to.
                row.expected = {**row.expected, key: value}
            set_by[key] = origin
        row.details = {**row.details, "set_by": set_by}
    return rows


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "value"
    return f"{where}: {err['msg']}"

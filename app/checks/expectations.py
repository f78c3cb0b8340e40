"""Great Expectations engine: load expectation suites from JSON and run them on a DataFrame.

Every expectation becomes one `CheckResult`, in the suite's order.
"""

from __future__ import annotations

import builtins
import datetime as dt
import decimal
import hashlib
import json
import logging
import math
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from functools import cache
from pathlib import Path
from typing import Any, Literal, cast, get_args

import numpy as np
import pandas as pd

from app.checks.allowance import allowance_problem, apply_allowances
from app.checks.check_config import check_expectation_types
from app.checks.deepchecks_engine import resolve_config
from app.checks.suite_safety import (
    CheckTimeout,
    SuiteLimits,
    data_problem,
    matches_user_patterns,
    size_problem,
    time_budget,
)
from app.core.errors import InvalidRequest, SuiteInvalid, SuiteNotFound
from app.core.text import nested_text_problem
from app.ingest.formats import LARGE_TABLE_CELLS
from app.reports.model import CheckResult, Severity, outcome_for

log = logging.getLogger(__name__)

SuiteOrigin = Literal["file", "api", "inline"]

# How long a worker may take to check a suite's expectations with Great Expectations.
SUITE_CHECK_SECONDS = 60.0

SUITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
SEVERITIES: tuple[str, ...] = get_args(Severity)

# The report's category for an expectation type: first matching pattern wins, so the specific
# patterns (row count, column count, type checks) come before the broad ones ("*_between").
CATEGORY_BY_TYPE: tuple[tuple[str, str], ...] = (
    ("expect_table_columns_*", "schema"),
    ("expect_table_column_count_*", "schema"),
    ("expect_column_to_exist", "schema"),
    ("expect_column_values_to_be_of_type", "schema"),
    ("expect_column_values_to_be_in_type_list", "schema"),
    ("expect_table_row_count_*", "volume"),
    ("expect_column_values_to_not_be_null", "missing"),
    ("expect_column_values_to_be_null", "missing"),
    ("*unique*", "uniqueness"),
    ("*_in_set", "set"),
    ("expect_column_distinct_values_*", "set"),
    ("*regex*", "format"),
    ("*like_pattern*", "format"),
    ("*strftime*", "format"),
    ("*json*", "format"),
    ("*dateutil*", "format"),
    ("*kl_divergence*", "distribution"),
    ("*_between", "range"),
    ("expect_column_min_*", "range"),
    ("expect_column_max_*", "range"),
    ("expect_column_mean_*", "range"),
    ("expect_column_median_*", "range"),
    ("expect_column_quantile_*", "range"),
    ("expect_column_stdev_*", "range"),
    ("expect_column_sum_*", "range"),
)

# GE result keys copied into `observed`; the two sample lists are cut to `sample_values`.
OBSERVED_KEYS = (
    "element_count",
    "unexpected_count",
    "unexpected_percent",
    "observed_value",
    "missing_count",
    "missing_percent",
)
SAMPLE_KEYS = ("partial_unexpected_list", "partial_unexpected_counts")

# kwargs naming the columns an expectation reads: used for `column` and to recognise a
# missing column when GE raises.
COLUMN_KWARGS = ("column", "column_A", "column_B")

# Expectation types whose GE domain is the columns their kwargs name (column, column pair,
# multicolumn), which run_suite may therefore validate on a frame of those columns alone.
COLUMN_DOMAIN_PREFIXES = (
    "expect_column_",
    "expect_multicolumn_",
    "expect_select_column_values_",
    "expect_compound_columns_",
)
WHOLE_FRAME_TYPES = frozenset({"expect_column_to_exist"})


def category_for(expectation_type: str) -> str:
    """The report category of an expectation type; "other" when no rule matches."""
    for pattern, category in CATEGORY_BY_TYPE:
        if fnmatchcase(expectation_type, pattern):
            return category
    return "other"


def check_suite_name(name: str) -> str:
    """Return `name` if it can name a suite (and a file), else raise InvalidRequest."""
    if not isinstance(name, str) or not SUITE_NAME.match(name):
        raise InvalidRequest(
            f"suite name {name!r} is not allowed: use 1-128 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class LoadedSuite:
    """A checked suite definition, ready to run; `definition` is the suite's JSON object."""

    name: str
    definition: dict[str, Any]
    sha256: str
    origin: SuiteOrigin
    expectation_count: int

    @property
    def datagate_meta(self) -> dict[str, Any]:
        """Column roles and check thresholds kept for the deepchecks engine."""
        return cast(dict[str, Any], self.definition["meta"].get("datagate", {}))

    @property
    def id_columns(self) -> list[str]:
        """The columns that name a row (`meta.datagate.id_columns`), for failing-row files."""
        return id_columns_of(self.name, self.datagate_meta)


def id_columns_of(suite: str, block: Mapping[str, Any]) -> list[str]:
    """`id_columns` of a suite's `meta.datagate` block: a list of distinct column names, or []
    when absent; SuiteInvalid naming the key otherwise."""
    value = block.get("id_columns")
    if value is None:
        return []
    where = f'suite "{suite}": meta.datagate.id_columns'
    if not isinstance(value, list) or not value:
        raise SuiteInvalid(f"{where} must be a non-empty list of column names")
    for column in value:
        if not isinstance(column, str) or not column:
            raise SuiteInvalid(f"{where}: {column!r} is not a column name")
    if len(set(value)) != len(value):
        raise SuiteInvalid(f"{where} names a column twice")
    return list(value)


def canonical_json(value: Any) -> str:
    """The JSON text the suite hash is taken over: sorted keys, no whitespace."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def parse_suite(
    name: str,
    text: str | bytes,
    origin: SuiteOrigin,
    *,
    check: bool = True,
    limits: SuiteLimits | None = None,
) -> LoadedSuite:
    """Parse and check a suite's JSON; raise SuiteInvalid naming what is wrong and where.

    The suite is named by `name` (the file stem for files): a different "name" inside the JSON
    is replaced, so that the name a client asks for is the one in the report.

    With `check=False` only the JSON's shape is checked, without importing Great Expectations:
    the API process parses suites that way and has a worker run `check_expectations`. Either
    way the suite must be data within `limits` (see app/checks/suite_safety.py).
    """
    check_suite_name(name)
    limits = limits or SuiteLimits()
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise SuiteInvalid(f'suite "{name}": not UTF-8 text ({exc.reason})') from exc
    too_large = size_problem(text, limits)
    if too_large:
        raise SuiteInvalid(f'suite "{name}": {too_large}')
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SuiteInvalid(
            f'suite "{name}": invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}'
        ) from exc
    if not isinstance(raw, dict):
        raise SuiteInvalid(f'suite "{name}": expected a JSON object, got {type(raw).__name__}')
    # A suite is stored and its strings reach column look-ups and reports: NUL and lone
    # surrogates are refused here, like every client text bound for the store.
    unstorable = nested_text_problem(raw)
    if unstorable:
        raise SuiteInvalid(f'suite "{name}": {unstorable}')
    if not isinstance(raw.get("name", ""), str):
        raise SuiteInvalid(f'suite "{name}": "name" must be a string')
    expectations = raw.get("expectations")
    if not isinstance(expectations, list):
        raise SuiteInvalid(f'suite "{name}": "expectations" must be a list of expectations')
    if len(expectations) > limits.max_expectations:
        raise SuiteInvalid(
            f'suite "{name}": {len(expectations)} expectations is over the limit of '
            f"{limits.max_expectations} per suite (DATAGATE_MAX_SUITE_EXPECTATIONS)"
        )
    meta = raw.get("meta", {})
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise SuiteInvalid(f'suite "{name}": "meta" must be an object')
    if not isinstance(meta.get("datagate", {}), dict):
        raise SuiteInvalid(f'suite "{name}": "meta.datagate" must be an object')
    for index, expectation in enumerate(expectations):
        _check_shape(name, index, expectation)
    id_columns_of(name, meta.get("datagate", {}))
    try:
        # Roles, thresholds and per_check for deepchecks: a bad key is found when the suite
        # loads, not when a pipeline first sends a reference.
        _, settings = resolve_config(meta, None, None)
        check_expectation_types(settings.per_check, [e["type"] for e in expectations])
    except SuiteInvalid as exc:
        raise SuiteInvalid(f'suite "{name}": {exc.message}') from exc

    definition = {**raw, "name": name, "meta": meta}
    suite = LoadedSuite(
        name=name,
        definition=definition,
        sha256=hashlib.sha256(canonical_json(definition).encode()).hexdigest(),
        origin=origin,
        expectation_count=len(expectations),
    )
    if check:
        check_expectations(suite)
    return suite


def _check_shape(suite: str, index: int, expectation: Any) -> None:
    where = f'suite "{suite}": expectations[{index}]'
    if not isinstance(expectation, dict):
        raise SuiteInvalid(f"{where} must be an object")
    kind = expectation.get("type")
    if not isinstance(kind, str) or not kind:
        raise SuiteInvalid(f'{where} has no "type"')
    where = f"{where} ({kind})"
    if not isinstance(expectation.get("kwargs"), dict):
        raise SuiteInvalid(f'{where}: "kwargs" must be an object')
    severity = expectation.get("severity", "critical")
    if severity not in SEVERITIES:
        raise SuiteInvalid(f"{where}: severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    _check_data(where, expectation)


def _check_data(where: str, expectation: dict[str, Any]) -> None:
    # Suites are data: a field that would reach an evaluator (pandas query, free SQL, suite
    # parameter arithmetic) or a pattern `re` cannot compile is refused wherever a suite is read.
    problem = data_problem(expectation) or allowance_problem(expectation)
    if problem:
        raise SuiteInvalid(f"{where}: {problem}")


def check_expectations(suite: LoadedSuite) -> None:
    """Raise SuiteInvalid naming the first expectation Great Expectations cannot build: an
    unknown type, a missing, misspelt or out-of-range argument. Imports Great Expectations."""
    for index, expectation in enumerate(suite.definition["expectations"]):
        _check_shape(suite.name, index, expectation)
        _check_expectation(suite.name, index, expectation)


def suite_problems(suites: Sequence[LoadedSuite]) -> dict[str, str]:
    """The suites Great Expectations rejects, by name, with the reason; runs in a worker."""
    problems: dict[str, str] = {}
    for suite in suites:
        try:
            check_expectations(suite)
        except SuiteInvalid as exc:
            problems[suite.name] = exc.message
    return problems


def _check_expectation(suite: str, index: int, expectation: dict[str, Any]) -> None:
    # Checked one by one, because gx.ExpectationSuite(...) only logs an invalid expectation and
    # drops it from the suite (GE 1.24), which would silently run fewer checks.
    from great_expectations.exceptions import (
        ExpectationNotFoundError,
        InvalidExpectationConfigurationError,
    )
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )
    from pydantic.v1 import ValidationError as GxValidationError

    kind = expectation["type"]
    where = f'suite "{suite}": expectations[{index}] ({kind})'
    try:
        ExpectationConfiguration(**expectation).to_domain_obj()
    except ExpectationNotFoundError as exc:
        raise SuiteInvalid(f'{where}: unknown expectation type "{kind}"') from exc
    except GxValidationError as exc:
        raise SuiteInvalid(f"{where}: {_describe_bad_kwargs(exc.errors())}") from exc
    except InvalidExpectationConfigurationError as exc:
        raise SuiteInvalid(f"{where}: {_first_line(str(exc))}") from exc
    except TypeError as exc:
        # ExpectationConfiguration(**...) rejects keys it does not know, such as a misspelt
        # "kwarg" or "severty".
        raise SuiteInvalid(f"{where}: {_first_line(str(exc))}") from exc
    except Exception as exc:
        # Whatever else GE raises while building an expectation (a row_condition it cannot
        # parse raises ConditionParserError, a ValueError) is this suite's problem: it must
        # not stop the service's start-up or answer 500 to a PUT.
        raise SuiteInvalid(f"{where}: {_first_line(str(exc))}") from exc


def _describe_bad_kwargs(errors: Sequence[Mapping[str, Any]]) -> str:
    # pydantic v1 reports every branch of a Union that failed; one message per argument is
    # enough to tell the author which argument to fix.
    by_argument: dict[str, str] = {}
    for error in errors:
        loc = error.get("loc") or ("__root__",)
        argument = str(loc[0])
        by_argument.setdefault(argument, str(error.get("msg", "invalid")))
    parts = []
    for argument, message in by_argument.items():
        if argument == "__root__":
            parts.append(message)
        elif message == "extra fields not permitted":
            parts.append(f'unknown argument "{argument}"')
        else:
            parts.append(f'bad argument "{argument}": {message}')
    return "; ".join(parts)


def _first_line(message: str) -> str:
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    return lines[0] if lines else "unknown error"


class SuiteRegistry:
    """The suites the service knows: loaded from a folder, plus any added through the API."""

    def __init__(self, limits: SuiteLimits | None = None) -> None:
        self.limits = limits or SuiteLimits()
        self._suites: dict[str, LoadedSuite] = {}
        self.errors: dict[str, str] = {}
        # Suite files whose changed version was refused, by name: the reason. The version
        # loaded before keeps running (see app/checks/suite_reload.py).
        self.not_reloaded: dict[str, str] = {}
        # sha256 of the suite versions whose expectations Great Expectations has accepted.
        self._checked: set[str] = set()

    @classmethod
    def from_directory(
        cls, folder: Path, *, check: bool = True, limits: SuiteLimits | None = None
    ) -> SuiteRegistry:
        """Load every `*.json` in `folder`; a broken file is recorded in `errors`, not raised.

        `check=False` leaves the expectations' Great Expectations check to the caller (see
        `parse_suite`), who reports what it finds with `mark_broken`.
        """
        registry = cls(limits)
        if not folder.is_dir():
            log.error("expectations folder %s does not exist: no suites loaded", folder)
            return registry
        for path in sorted(folder.glob("*.json")):
            name = path.stem
            try:
                size = path.stat().st_size
                if size > registry.limits.max_bytes:
                    raise SuiteInvalid(
                        f'suite "{name}": {size} bytes is over the limit of '
                        f"{registry.limits.max_bytes} bytes per suite"
                    )
                text = path.read_bytes()
                suite = parse_suite(name, text, "file", check=check, limits=registry.limits)
            except (SuiteInvalid, InvalidRequest) as exc:
                registry.errors[name] = exc.message
                log.error("suite file %s not loaded: %s", path, exc.message)
            except OSError as exc:
                registry.errors[name] = f"cannot read {path.name}: {exc.strerror}"
                log.error("suite file %s not loaded: %s", path, exc.strerror)
            else:
                registry._suites[name] = suite
                if check:
                    registry.mark_checked(suite)
        return registry

    def get(self, name: str) -> LoadedSuite:
        check_suite_name(name)
        if name in self._suites:
            return self._suites[name]
        if name in self.errors:
            raise SuiteInvalid(self.errors[name])
        available = ", ".join(self.names()) or "none"
        raise SuiteNotFound(f'suite "{name}" not found; available suites: {available}')

    def add(self, suite: LoadedSuite) -> None:
        """Add or replace a suite; a replaced broken file's error is forgotten."""
        check_suite_name(suite.name)
        self._suites[suite.name] = suite
        self.errors.pop(suite.name, None)

    def mark_checked(self, suite: LoadedSuite) -> None:
        """Record that Great Expectations accepted this version of the suite's expectations."""
        self._checked.add(suite.sha256)

    def is_checked(self, suite: LoadedSuite) -> bool:
        return suite.sha256 in self._checked

    def holds(self, suite: LoadedSuite) -> bool:
        """True when this very version of the suite is the one registered under its name."""
        current = self._suites.get(suite.name)
        return current is not None and current.sha256 == suite.sha256

    def mark_broken(self, name: str, message: str) -> None:
        """Record a loaded suite as broken: it is listed with `message` and refused when used."""
        self._suites.pop(name, None)
        self.errors[name] = message

    def remove(self, name: str) -> None:
        check_suite_name(name)
        if self._suites.pop(name, None) is None and self.errors.pop(name, None) is None:
            raise SuiteNotFound(f'suite "{name}" not found')

    def names(self) -> builtins.list[str]:
        return sorted(self._suites)

    def list(self) -> builtins.list[LoadedSuite]:
        return [self._suites[name] for name in self.names()]


@cache
def gx_context() -> Any:
    """One ephemeral GE context per process: creating it costs far more than a validation."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )
    from great_expectations.execution_engine import pandas_execution_engine

    # GE logs every metric it computes at INFO and prints tqdm bars to stderr by default;
    # the service's own log is the record, so only GE's warnings get through.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    # Every pandas batch gets an md5 "fingerprint" over row hashes of the whole frame, for
    # batch markers datagate never reads: 0.18 s and 100 MiB per batch at 1M x 20. GE skips it
    # for frames over HASH_THRESHOLD bytes; zero skips it always.
    pandas_execution_engine.HASH_THRESHOLD = 0
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        # A validation service must not phone home with usage statistics.
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


@cache
def _batch_definition() -> Any:
    source = gx_context().data_sources.add_pandas("datagate")
    return source.add_dataframe_asset("dataframe").add_batch_definition_whole_dataframe("whole")


def pandas_batch(data: pd.DataFrame) -> Any:
    """A GE batch over `data`, through the one pandas data source of this process."""
    return _batch_definition().get_batch(batch_parameters={"dataframe": data})


def _expectation_id(index: int) -> str:
    # GE returns results grouped by what it computes, not in suite order; a UUID that encodes
    # the position lets each result find its row again.
    return str(uuid.UUID(int=index))


def run_suite(
    df: pd.DataFrame,
    suite: LoadedSuite,
    *,
    sample_values: int,
    narrow: bool | None = None,
    check_timeout_s: float | None = None,
) -> list[CheckResult]:
    """Validate `df` against `suite`: one CheckResult per expectation, in the suite's order.

    A missing column is a data defect, not an engine fault: an expectation on a column the
    dataset lacks is reported as not met (outcome from its severity) with `details.message`.
    Any other exception GE raises gives outcome "error" with a one-line `details.error`.

    Expectations on named columns run on a frame of those columns alone, one GE batch per
    column set; the rest run on the whole frame. GE's pandas engine drops the null rows of a
    column by indexing the whole domain frame (`df[df[column].notnull()]`), which copies every
    column once per expectation: at 1M rows x 20 columns that was 0.09 s and 100 MiB each.
    Each batch costs GE about 8 ms, so a frame under LARGE_TABLE_CELLS values (where the copies
    cost less than that) is validated as one batch; `narrow` overrides the choice.

    With `check_timeout_s`, each GE call may take that long per expectation in it; one over
    its budget is stopped and its expectations become "error" rows while the rest still run.
    An expectation that matches user patterns (a regex can backtrack for ever) gets a call,
    and so a budget, of its own. An expectation whose meta holds a calibrated allowance
    (app/checks/allowance.py) runs with the `mostly` that rule gives for this batch's size.
    """
    frame = without_arrow_dtypes(df)
    # Calibrated expectations (meta.datagate.allowance) get the `mostly` of this batch's size.
    calibrated = apply_allowances(suite.definition["expectations"], frame)
    suite = replace(suite, definition={**suite.definition, "expectations": calibrated})
    columns = {str(column) for column in df.columns}
    labels = {str(column): column for column in frame.columns}
    expectations: list[dict[str, Any]] = suite.definition["expectations"]
    if narrow is None:
        narrow = frame.size >= LARGE_TABLE_CELLS
    rows: dict[int, CheckResult] = {}
    for group, indexes in _batches(expectations, columns, narrow=narrow):
        data = frame if group is None else frame[[labels[column] for column in group]]
        budget = check_timeout_s * len(indexes) if check_timeout_s else None
        try:
            with time_budget(budget):
                checks = validate_batch(
                    pandas_batch(data),
                    suite,
                    columns=columns,
                    sample_values=sample_values,
                    only=indexes,
                )
        except CheckTimeout:
            assert budget is not None
            log.warning("suite %s: expectations %s ran over %g s", suite.name, indexes, budget)
            checks = [_timed_out(expectations[index], budget, len(indexes)) for index in indexes]
        rows.update(zip(indexes, checks, strict=True))
    return [rows[index] for index in range(len(expectations))]


def _batches(
    expectations: Sequence[dict[str, Any]], columns: set[str], *, narrow: bool
) -> list[tuple[tuple[str, ...] | None, list[int]]]:
    """Suite positions grouped into GE calls: by the columns their expectation reads when
    `narrow` (None: the whole frame), and one call of its own per pattern-matching one."""
    groups: dict[tuple[tuple[str, ...] | None, int | None], list[int]] = {}
    for index, expectation in enumerate(expectations):
        group = narrow_columns(expectation, columns) if narrow else None
        alone = index if matches_user_patterns(expectation) else None
        groups.setdefault((group, alone), []).append(index)
    return [(group, indexes) for (group, _alone), indexes in groups.items()]


def _timed_out(expectation: dict[str, Any], budget: float, together: int) -> CheckResult:
    row = error_row(expectation)
    if together == 1:
        row.details["error"] = f"took longer than {budget:g} s and was stopped"
        if matches_user_patterns(expectation):
            row.details["error"] += (
                "; the regular expression may be catastrophic (nested repetition such as "
                "(a+)+ backtracks exponentially)"
            )
    else:
        row.details["error"] = (
            f"the {together} expectations checked together with this one took longer than "
            f"{budget:g} s and were stopped"
        )
    return row


def narrow_columns(expectation: dict[str, Any], columns: set[str]) -> tuple[str, ...] | None:
    # Only column-domain types qualify: table-domain ones look at the column set or the column
    # order, and expect_column_to_exist may check a column's position. A row condition may
    # name any column, and a missing column must meet GE's own error on the whole frame.
    kind: str = expectation["type"]
    kwargs: dict[str, Any] = expectation["kwargs"]
    if not kind.startswith(COLUMN_DOMAIN_PREFIXES) or kind in WHOLE_FRAME_TYPES:
        return None
    if kwargs.get("row_condition"):
        return None
    named = columns_read(kwargs)
    if not named or any(column not in columns for column in named):
        return None
    return tuple(dict.fromkeys(named))


def _gx_suite(suite: LoadedSuite, indexes: Sequence[int]) -> Any:
    import great_expectations as gx

    every = suite.definition["expectations"]
    for index in indexes:
        # Checked again right before Great Expectations sees it: a job read back from the
        # queue holds the suite as it was stored, whichever process wrote it.
        _check_shape(suite.name, index, every[index])
    expectations = [{**every[index], "id": _expectation_id(index)} for index in indexes]
    gx_suite = gx.ExpectationSuite(name=suite.name, expectations=expectations)
    if len(gx_suite.expectations) != len(expectations):
        raise SuiteInvalid(f'suite "{suite.name}": Great Expectations rejected an expectation')
    return gx_suite


def validate_batch(
    batch: Any,
    suite: LoadedSuite,
    *,
    columns: set[str],
    sample_values: int,
    only: Sequence[int] | None = None,
) -> list[CheckResult]:
    """Validate a GE batch (a DataFrame's or a SQL table's) against `suite`, in suite order.

    `columns` are the dataset's column names, to tell a missing column from an engine fault;
    `only` limits the run to those suite positions (results come back in that order).
    """
    expectations = suite.definition["expectations"]
    indexes = list(range(len(expectations))) if only is None else list(only)
    results = gx_results(
        batch,
        suite,
        indexes,
        {"result_format": "SUMMARY", "partial_unexpected_count": max(sample_values, 1)},
    )
    return [
        _check_result(expectations[index], results.get(index), columns, sample_values=sample_values)
        for index in indexes
    ]


def unexpected_index_list(
    batch: Any, expectation: dict[str, Any], result_format: dict[str, Any]
) -> list[Any] | None:
    """Great Expectations' `unexpected_index_list` metric of one map expectation on `batch`,
    computed alone: the metric a validation at `result_format` reports (cut at its
    `partial_unexpected_count` unless COMPLETE), without the counts and value lists a whole
    validation computes beside it. None when the expectation has no such metric."""
    from great_expectations.execution_engine import SqlAlchemyExecutionEngine
    from great_expectations.expectations.expectation_configuration import (
        ExpectationConfiguration,
    )
    from great_expectations.expectations.registry import get_metric_kwargs
    from great_expectations.validator.metric_configuration import MetricConfiguration
    from great_expectations.validator.validator import Validator

    config = ExpectationConfiguration(**{**expectation, "id": None})
    map_metric = getattr(config.to_domain_obj(), "map_metric", None)
    engine = batch.data.execution_engine
    if not map_metric or (
        # As GE's own validation does: its SQL index list of compound columns is a cross join.
        map_metric == "compound_columns.unique" and isinstance(engine, SqlAlchemyExecutionEngine)
    ):
        return None
    name = f"{map_metric}.unexpected_index_list"
    kwargs = get_metric_kwargs(
        metric_name=name,
        configuration=config,
        runtime_configuration={"result_format": result_format},
    )
    metric = MetricConfiguration(
        metric_name=name,
        metric_domain_kwargs=kwargs["metric_domain_kwargs"],
        metric_value_kwargs=kwargs["metric_value_kwargs"],
    )
    validator = Validator(execution_engine=engine, data_context=gx_context(), batches=[batch])
    resolved, aborted = validator.compute_metrics(
        [metric], runtime_configuration={"catch_exceptions": True}
    )
    if metric.id in aborted:
        info = aborted[metric.id].get("exception_info")
        raise RuntimeError(str(getattr(info, "exception_message", info)))
    listed = resolved.get(metric.id)
    return list(listed) if listed is not None else None


def gx_results(
    batch: Any, suite: LoadedSuite, indexes: Sequence[int], result_format: dict[str, Any]
) -> dict[int, dict[str, Any]]:
    """Great Expectations' own result JSON of the suite positions `indexes`, by position."""
    validation = batch.validate(_gx_suite(suite, indexes), result_format=result_format)
    by_id = {
        result["expectation_config"]["id"]: result
        for result in validation.to_json_dict()["results"]
    }
    return {
        index: by_id[_expectation_id(index)] for index in indexes if _expectation_id(index) in by_id
    }


def without_arrow_dtypes(df: pd.DataFrame) -> pd.DataFrame:
    # GE 1.24's type expectations know numpy and pandas' own dtypes but not pyarrow-backed
    # ones (an int64[pyarrow] column matches no type name), so those columns are handed over
    # as pandas' nullable equivalents: string, Float64, Int64, boolean.
    arrow = [column for column, dtype in df.dtypes.items() if isinstance(dtype, pd.ArrowDtype)]
    if not arrow:
        return df
    converted = df.copy(deep=False)
    for column in arrow:
        converted[column] = df[column].convert_dtypes(dtype_backend="numpy_nullable")
    return converted


def _check_result(
    expectation: dict[str, Any],
    result: dict[str, Any] | None,
    columns: set[str],
    *,
    sample_values: int,
) -> CheckResult:
    kwargs: dict[str, Any] = expectation["kwargs"]
    severity = cast(Severity, expectation.get("severity", "critical"))
    row = error_row(expectation)
    if result is None:
        row.details["error"] = "Great Expectations returned no result for this expectation"
        return row

    config_kwargs = result["expectation_config"].get("kwargs") or kwargs
    row.expected = json_safe({k: v for k, v in config_kwargs.items() if k != "batch_id"})
    row.observed = _observed(result.get("result") or {}, sample_values)
    error = _exception_message(result.get("exception_info") or {})
    if error is None:
        row.success = bool(result["success"])
        row.outcome = outcome_for(row.success, severity)
        return row

    absent = [column for column in columns_read(kwargs) if column not in columns]
    if absent:
        row.outcome = outcome_for(False, severity)
        row.details["message"] = "; ".join(
            f'column "{column}" is not in the dataset' for column in absent
        )
        row.details["missing_columns"] = absent
    else:
        row.details["error"] = error
    return row


def error_row(expectation: dict[str, Any], message: str | None = None) -> CheckResult:
    """The report row of an expectation before (or instead of) its result: outcome "error",
    with `message` as `details.error` when given."""
    kind: str = expectation["type"]
    severity = cast(Severity, expectation.get("severity", "critical"))
    kwargs: dict[str, Any] = expectation["kwargs"]
    row = CheckResult(
        source="great_expectations",
        category=category_for(kind),
        name=kind,
        column=_column_of(kwargs),
        success=False,
        outcome="error",
        severity=severity,
        expected=json_safe({k: v for k, v in kwargs.items() if k != "batch_id"}),
        details=json_safe(dict(expectation.get("meta") or {})),
    )
    if message is not None:
        row.details["error"] = message
    # Where the severity came from; a request's per_check may override it (check_config.py).
    row.details["set_by"] = {"severity": "suite" if "severity" in expectation else "default"}
    return row


def _column_of(kwargs: dict[str, Any]) -> str | None:
    if isinstance(kwargs.get("column"), str):
        return cast(str, kwargs["column"])
    if "column_A" in kwargs or "column_B" in kwargs:
        return ",".join(str(kwargs[k]) for k in ("column_A", "column_B") if k in kwargs)
    if isinstance(kwargs.get("column_list"), list):
        return ",".join(str(column) for column in kwargs["column_list"])
    return None


def columns_read(kwargs: dict[str, Any]) -> list[str]:
    named = [str(kwargs[key]) for key in COLUMN_KWARGS if key in kwargs]
    if isinstance(kwargs.get("column_list"), list):
        named.extend(str(column) for column in kwargs["column_list"])
    return named


def _exception_message(info: dict[str, Any]) -> str | None:
    # Two shapes: {"raised_exception": ..., "exception_message": ...} when the expectation
    # itself raised, or one such dict per metric id when a metric it needs raised.
    if "raised_exception" in info:
        if not info.get("raised_exception"):
            return None
        return _first_line(str(info.get("exception_message") or "unknown error"))
    for metric_info in info.values():
        if isinstance(metric_info, dict) and metric_info.get("raised_exception"):
            return _first_line(str(metric_info.get("exception_message") or "unknown error"))
    return None


def _observed(result: dict[str, Any], sample_values: int) -> dict[str, Any]:
    observed = {key: result[key] for key in OBSERVED_KEYS if key in result}
    for key in SAMPLE_KEYS:
        if key in result:
            observed[key] = list(result[key] or [])[:sample_values]
    mismatched = (result.get("details") or {}).get("mismatched")
    if mismatched:
        # expect_table_columns_to_match_* says which columns are missing and unexpected here.
        observed["mismatched"] = mismatched
    return cast(dict[str, Any], json_safe(observed))


def json_safe(value: Any) -> Any:
    """A copy of `value` that strict JSON accepts: NaN becomes null, infinities "inf"/"-inf"."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(item) for item in value]
    if isinstance(value, np.ndarray):
        return [json_safe(item) for item in value.tolist()]
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, np.datetime64 | np.timedelta64):
        # .item() of a nanosecond datetime64 is a bare int; pandas keeps it a timestamp.
        if np.isnat(value):
            return None
        if isinstance(value, np.datetime64):
            return pd.Timestamp(value).isoformat()
        return str(pd.Timedelta(value))
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return None
        # An infinite value is a real finding (often a division by zero): keep it visible.
        return value if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, decimal.Decimal):
        return json_safe(float(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, pd.Timedelta | dt.timedelta):
        return str(value)
    return str(value)

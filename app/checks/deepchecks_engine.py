"""The deepchecks engine: leakage, drift and integrity checks as report rows, and an HTML view.

Verdicts come from each check's own conditions, never from `SuiteResult.passed()` (see STACK.md).
"""

from __future__ import annotations

import html
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

import joblib
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.checks.check_config import CheckCatalogue, CheckConfig, parse_per_check
from app.checks.decisions import is_strong_predictor
from app.checks.drift_checks import (
    DATAGATE_KEY,
    as_observed,
    feature_drift_check,
    label_drift_check,
    multivariate_drift_check,
    pps_change_check,
)
from app.checks.exact_checks import (
    EXACT_CHECKS,
    MIXED_TYPES_RANGE,
    ExactCheck,
    ExactInputs,
    ExactSource,
)
from app.checks.reference_levels import (
    RELATIVE_CHECKS,
    VALUE_KEY,
    judge_against_reference,
    rows_of,
)
from app.checks.roles import ROLE_FIELDS, ColumnRoles
from app.checks.schema_drift import column_kind, measured_categorical, resolve_columns
from app.core.errors import InvalidData, InvalidRequest, SuiteInvalid, UpstreamTimeout
from app.reports.model import CheckResult, Outcome, Severity

logger = logging.getLogger(__name__)

SOURCE = "deepchecks"
META_KEY = "datagate"

# How many offending values (new categories, variants, ...) a row keeps.
_MAX_LISTED = 20


class DeepchecksThresholds(BaseModel):
    """Limits the checks are held to. Defaults are deepchecks' own condition defaults."""

    model_config = ConfigDict(extra="forbid")

    max_feature_drift: float = Field(
        default=0.1,
        ge=0,
        description="FeatureDrift, per feature: effect size (Wasserstein distance in reference "
        "SDs for numbers, Jensen-Shannon distance for categories) a drifting column exceeds",
    )
    max_label_drift: float = Field(
        default=0.1, ge=0, description="LabelDrift: effect size, measured as for FeatureDrift"
    )
    drift_alpha: float = Field(
        default=0.01,
        gt=0,
        lt=1,
        description="FeatureDrift and LabelDrift: family-wise significance level (Holm)",
    )
    max_multivariate_drift: float = Field(
        default=0.25,
        ge=0,
        description="MultivariateDrift: effect size 2*AUC-1 of a domain classifier a drift "
        "exceeds (its AUC must also be significant at drift_alpha)",
    )
    max_samples_mix_ratio: float = Field(
        default=0.05, ge=0, le=1, description="TrainTestSamplesMix: share of data rows in reference"
    )
    max_feature_label_pps: float = Field(
        default=0.8, ge=0, le=1, description="FeatureLabelCorrelation: predictive power score"
    )
    max_feature_label_pps_change: float = Field(
        default=0.2, ge=0, le=1, description="FeatureLabelCorrelationChange: |PPS difference|"
    )
    max_new_category_ratio: float = Field(
        default=0.0, ge=0, le=1, description="NewCategoryTrainTest: share of rows, per feature"
    )
    max_new_labels: int = Field(default=0, ge=0, description="NewLabelTrainTest: label values")
    max_new_variants_ratio: float = Field(
        default=0.0, ge=0, le=1, description="StringMismatchComparison: share of rows, per column"
    )
    max_date_leakage_ratio: float = Field(
        default=0.0, ge=0, le=1, description="DateTrainTestLeakageOverlap and ...Duplicates"
    )
    max_index_leakage_ratio: float = Field(
        default=0.0, ge=0, le=1, description="IndexTrainTestLeakage"
    )
    max_duplicates_ratio: float = Field(default=0.05, ge=0, le=1, description="DataDuplicates")
    max_conflicting_labels_ratio: float = Field(
        default=0.0, ge=0, le=1, description="ConflictingLabels"
    )
    max_null_types: int = Field(default=1, ge=0, description="MixedNulls, per column")


class DeepchecksSettings(BaseModel):
    """How the checks run: thresholds, drift methods, and when to sample."""

    model_config = ConfigDict(extra="forbid")

    thresholds: DeepchecksThresholds = Field(default_factory=DeepchecksThresholds)
    max_rows_before_sampling: int = Field(
        default=100_000, gt=0, description="A frame with more rows is sampled down to this many"
    )
    random_state: int = 42
    numerical_drift_method: Literal["KS", "EMD"] = "KS"
    categorical_drift_method: Literal["cramers_v", "PSI"] = "cramers_v"
    checks: list[str] | None = Field(
        default=None, description="Run only these checks (class names); default all of them"
    )
    run: Literal["with_reference", "always"] = Field(
        default="with_reference",
        description="`always`: integrity checks run on every validation of this suite, even "
        "without a reference or roles in the request",
    )
    per_check: CheckConfig = Field(
        default_factory=CheckConfig,
        description="Severity and thresholds per check and per column, suite and request "
        "(app/checks/check_config.py)",
    )

    @field_validator("checks")
    @classmethod
    def _known_checks(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            if name not in CHECK_NAMES:
                raise ValueError(f"unknown check {name!r}; known: {', '.join(CHECK_NAMES)}")
        return value


@dataclass
class DeepchecksOutcome:
    """What one run produced: report rows, the roles used, the samples taken, the HTML file."""

    checks: list[CheckResult]
    roles: dict[str, Any]
    data_sample_rows: int | None = None
    reference_sample_rows: int | None = None
    html_path: Path | None = None
    # Why no HTML view was written although one was asked for.
    html_error: str | None = None
    # Milliseconds per check that ran: where the time of a slow run went.
    durations_ms: dict[str, int] = field(default_factory=dict)


def resolve_config(
    suite_meta: Mapping[str, Any] | None,
    request_roles: Mapping[str, Any] | None,
    request_thresholds: Mapping[str, Any] | None,
    request_per_check: Mapping[str, Any] | None = None,
) -> tuple[ColumnRoles, DeepchecksSettings]:
    """Merge the suite's `meta["datagate"]` under the request's roles, thresholds and per_check.

    The suite block may hold `roles`, `thresholds` and `per_check` dicts and the other
    DeepchecksSettings fields. A request value of None (or an empty string) leaves the suite's
    value in place.
    """
    block = _mapping((suite_meta or {}).get(META_KEY), f'meta["{META_KEY}"]')
    suite_roles = _mapping(block.pop("roles", None), f'meta["{META_KEY}"]["roles"]')
    suite_thresholds = _mapping(block.pop("thresholds", None), f'meta["{META_KEY}"]["thresholds"]')
    # The rows' names in failing-row files: checked by LoadedSuite.id_columns, not a setting here.
    block.pop("id_columns", None)
    suite_per_check = parse_per_check(
        block.pop("per_check", None),
        check_catalogue(),
        where=f'suite meta["{META_KEY}"].per_check',
        error=SuiteInvalid,
        validate_thresholds=_validate_threshold_values,
    )
    request_per_check_parsed = parse_per_check(
        request_per_check or None,
        check_catalogue(),
        where="per_check",
        error=InvalidRequest,
        validate_thresholds=_validate_threshold_values,
    )

    _refuse_unknown(suite_roles, ROLE_FIELDS, f'suite meta["{META_KEY}"]["roles"]', SuiteInvalid)
    _refuse_unknown(
        suite_thresholds,
        tuple(DeepchecksThresholds.model_fields),
        f'suite meta["{META_KEY}"]["thresholds"]',
        SuiteInvalid,
    )
    setting_keys = tuple(k for k in DeepchecksSettings.model_fields if k != "thresholds")
    # `per_check` was taken out above: it is listed as accepted, never validated twice.
    _refuse_unknown(
        block, (*setting_keys, "roles", "thresholds"), f'suite meta["{META_KEY}"]', SuiteInvalid
    )
    _refuse_unknown(request_roles or {}, ROLE_FIELDS, "column roles", InvalidRequest)
    _refuse_unknown(
        request_thresholds or {},
        tuple(DeepchecksThresholds.model_fields),
        "thresholds",
        InvalidRequest,
    )

    given_roles = {k: v for k, v in (request_roles or {}).items() if not _absent(v)}
    given_thresholds = {k: v for k, v in (request_thresholds or {}).items() if not _absent(v)}
    try:
        suite_side = ColumnRoles.model_validate(suite_roles)
        suite_settings = DeepchecksSettings.model_validate(
            {**block, "thresholds": suite_thresholds}
        )
    except ValidationError as exc:
        raise SuiteInvalid(f'Suite meta["{META_KEY}"]: {_first_error(exc)}') from exc
    try:
        roles = ColumnRoles.model_validate(
            {**suite_side.model_dump(exclude_none=True), **given_roles}
        )
        thresholds = DeepchecksThresholds.model_validate(
            {**suite_settings.thresholds.model_dump(), **given_thresholds}
        )
    except ValidationError as exc:
        raise InvalidRequest(_first_error(exc)) from exc
    per_check = CheckConfig(
        suite=suite_per_check,
        request=request_per_check_parsed,
        suite_thresholds=frozenset(suite_thresholds),
        request_thresholds=frozenset(given_thresholds),
    )
    return roles, suite_settings.model_copy(
        update={"thresholds": thresholds, "per_check": per_check}
    )


def check_catalogue() -> dict[str, CheckCatalogue]:
    """What `per_check` may set for each check: its thresholds, and columns where it has them."""
    return {
        spec.name: CheckCatalogue(spec.thresholds, spec.per_column and not spec.on_label)
        for spec in _SPECS
    }


def _validate_threshold_values(values: dict[str, Any]) -> None:
    """Hold `per_check` thresholds to the ranges of the same fields in DeepchecksThresholds."""
    try:
        DeepchecksThresholds.model_validate(values)
    except ValidationError as exc:
        raise ValueError(_first_error(exc)) from exc


def _settings_for(spec: _Spec, settings: DeepchecksSettings) -> DeepchecksSettings:
    """The settings one check runs with: its own `per_check` thresholds over the global ones."""
    own = settings.per_check.check_thresholds(spec.name, spec.thresholds)
    if not own:
        return settings
    return settings.model_copy(update={"thresholds": settings.thresholds.model_copy(update=own)})


def plotly_js_path() -> Path:
    """The plotly.min.js the installed plotly package ships: the one script the HTML view loads."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def run_deepchecks(
    data: pd.DataFrame,
    reference: pd.DataFrame | None,
    roles: ColumnRoles,
    settings: DeepchecksSettings,
    *,
    html_path: Path | None = None,
    plotly_src: str = "/static/plotly.min.js",
    already_sampled: tuple[str, ...] = (),
    exact_source: ExactSource | None = None,
) -> DeepchecksOutcome:
    """Run every leakage, drift and integrity check on `data` (against `reference` where given).

    Raises InvalidRequest for a role naming a column neither frame has and InvalidData for an
    empty frame. Schema drift (a column on one side only, or of another type on each side) is
    a failed `schema` row per column and the checks run on the columns both share
    (app/checks/schema_drift.py); everything that goes wrong inside deepchecks becomes an
    `error` row instead. Every feature gets a row in each per-feature check.
    With `html_path`, checks keep their figures and the deepchecks view is written there.
    `already_sampled` names the frames ("data", "reference") that are samples of a larger
    batch (a SQL batch read in the database): set checks over them are then not exact, unless
    `exact_source` answers them over every row of the batch (app/checks/exact_sql.py).
    """
    from deepchecks.tabular import Dataset
    from deepchecks.tabular.utils.task_inference import infer_task_type_by_labels
    from deepchecks.tabular.utils.task_type import TaskType

    # Roles name columns by string; a frame read without a header has integer column names.
    data = _string_columns(data)
    reference = None if reference is None else _string_columns(reference)
    frames = {"data": data} if reference is None else {"data": data, "reference": reference}
    for name, frame in frames.items():
        if frame.empty:
            raise InvalidData(f"The {name} dataset has no rows; deepchecks needs at least one")
    # Schema drift is a verdict, not a 422: the checks run on the columns both share, and each
    # column missing, added or of another type is a failed row of its own.
    resolved = resolve_columns(data, reference, roles)
    roles = resolved.roles
    features = resolved.features

    data_used, data_sampled = _sample(data, settings)
    ref_used, ref_sampled = (None, None) if reference is None else _sample(reference, settings)

    def dataset(frame: pd.DataFrame, categorical: list[str] | None, task: Any) -> Any:
        return Dataset(
            frame,
            label=roles.label,
            label_type=None if task is None else task.value,
            features=features,
            cat_features=categorical,
            index_name=roles.index,
            datetime_name=roles.datetime,
            dataset_name=None,
        )

    # Both datasets must agree on which features are categorical, so the inference (when roles
    # give none) runs once, on the reference when there is one: it is what the data is held to.
    # The task type too: left to each check, a single-dataset check on the data alone can call
    # an integer label classes where a train-test check over both calls it a regression target.
    try:
        used = [f for f in (ref_used, data_used) if f is not None]
        task = None
        if roles.label is not None:
            task = infer_task_type_by_labels(pd.concat([f[roles.label] for f in used]))
        first = dataset(used[0], roles.categorical, task)
        # A string or boolean feature deepchecks did not infer (or the client did not list)
        # would vanish from the drift and category checks without a row: it is a category.
        categorical = measured_categorical(resolved, used[0], [str(c) for c in first.cat_features])
        if set(categorical) != {str(c) for c in first.cat_features}:
            first = dataset(used[0], categorical, task)
        data_ds = first if ref_used is None else dataset(data_used, categorical, task)
        ref_ds = None if ref_used is None else first
    except Exception as exc:
        # A frame deepchecks cannot model (e.g. a label column it refuses) fails every check.
        logger.warning("deepchecks could not build its datasets: %s", exc)
        return _all_errored(exc, roles, settings, features, data_sampled, ref_sampled)

    roles_used: dict[str, Any] = {
        "label": roles.label,
        "datetime": roles.datetime,
        "index": roles.index,
        "features": features,
        "categorical": categorical,
        "categorical_inferred": roles.categorical is None,
    }
    if resolved.not_measured:
        roles_used["not_measured"] = dict(resolved.not_measured)
    if resolved.role_reasons:
        roles_used["dropped_roles"] = dict(resolved.role_reasons)
    regression = task == TaskType.REGRESSION
    if roles.label is not None:
        roles_used["label_type"] = "regression" if regression else "classification"
    want_display = html_path is not None
    # One for every exact check: the per-column codes it caches are computed once a run.
    inputs = ExactInputs(
        data=data,
        reference=reference,
        features=features,
        categorical=categorical,
        label=roles.label,
        index=roles.index,
        datetime=roles.datetime,
    )
    rows: list[CheckResult] = list(resolved.rows)
    results: list[Any] = []
    durations: dict[str, int] = {}
    for spec in _SPECS:
        if settings.checks is not None and spec.name not in settings.checks:
            continue
        missing = _missing_prerequisites(spec, roles, reference is not None, regression)
        n_samples = settings.max_rows_before_sampling
        if missing:
            rows.append(_not_applicable_row(spec, missing, resolved.role_reasons))
            continue
        own = _settings_for(spec, settings)
        exact = EXACT_CHECKS.get(spec.name)
        if exact is not None:
            started = time.perf_counter()
            rows.extend(
                _exact_rows(spec, exact, inputs, own, roles.label, already_sampled, exact_source)
            )
            durations[spec.name] = round((time.perf_counter() - started) * 1000)
            continue
        check = spec.build(own, n_samples)
        started = time.perf_counter()
        try:
            # deepchecks' permutation importance asks joblib for n_jobs=-1 worker processes:
            # 15 s of start-up inside a worker that is already one process of a pool. Threads
            # give the same numbers in well under a second.
            # deepchecks 0.19 calls pandas and sklearn APIs that warn of their own deprecation on
            # every run; nobody running datagate can act on them.
            with joblib.parallel_config(backend="threading"), warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                warnings.simplefilter("ignore", DeprecationWarning)
                if spec.train_test:
                    result = check.run(ref_ds, data_ds, with_display=want_display)
                else:
                    result = check.run(data_ds, with_display=want_display)
        except Exception as exc:
            logger.warning("deepchecks check %s crashed: %s", spec.name, exc)
            rows.append(_error_row(spec, f"{type(exc).__name__}: {exc}"))
            if want_display:
                from deepchecks.core.check_result import CheckFailure

                results.append(CheckFailure(check, exc))
            continue
        durations[spec.name] = round((time.perf_counter() - started) * 1000)
        results.append(result)
        checked = {"data": min(n_samples, len(data_used))}
        if spec.train_test and ref_used is not None:
            checked["reference"] = min(n_samples, len(ref_used))
        conditions = [
            {"name": c.name, "category": c.category.value, "details": str(c.details)}
            for c in result.conditions_results
        ]
        details = {
            "method": "sampled",
            "rows_used": checked,
            "conditions": conditions,
            "n_samples": n_samples,
            "rows_checked": checked,
        }
        rows.extend(_rows_for(spec, result.value, details, own, roles.label))
    every_feature = [c for c in data.columns if c in features or c in resolved.not_measured]
    kinds = {c: column_kind(data[c]) for c in every_feature}
    rows = _every_feature_has_a_row(rows, kinds, categorical, resolved.not_measured)

    written, html_error = None, None
    if html_path is not None:
        try:
            names = [*data.columns, *([] if reference is None else reference.columns)]
            written = write_html(results, html_path, plotly_src=plotly_src, names=names)
        except Exception as exc:
            # The rows stand without the view; the report says why there is none.
            logger.warning("could not write the deepchecks HTML view: %s", exc)
            html_error = f"{type(exc).__name__}: {exc}"
    return DeepchecksOutcome(
        checks=rows,
        roles=roles_used,
        data_sample_rows=data_sampled,
        reference_sample_rows=ref_sampled,
        html_path=written,
        html_error=html_error,
        durations_ms=durations,
    )


def _escaped(text: str) -> str:
    return html.escape(text, quote=True)


def _escaped_frame(frame: pd.DataFrame) -> pd.DataFrame:
    def cell(value: Any) -> Any:
        # Numbers stay numbers (the Styler formats them); anything else is shown as its text,
        # lists of the dataset's values included.
        if value is None or isinstance(value, int | float | complex | np.number):
            return value
        return _escaped(str(value))

    return frame.rename(index=cell, columns=cell).map(cell)


def _escaped_item(item: Any, risky: list[str]) -> Any:
    """One display item with the dataset's text escaped; deepchecks' own markup left as it is."""
    from deepchecks.core.check_result import DisplayMap
    from pandas.io.formats.style import Styler

    if isinstance(item, DisplayMap):
        return DisplayMap(
            {_escaped_item(k, risky): [_escaped_item(i, risky) for i in v] for k, v in item.items()}
        )
    if isinstance(item, str):
        # Markup by design (deepchecks writes <p>, <b>...), with column names pasted in.
        for name in risky:
            item = item.replace(name, _escaped(name))
        return item
    if isinstance(item, Styler):
        # Its styles are lost; its cells are the dataset's text.
        item = cast(pd.DataFrame, getattr(item, "data"))  # noqa: B009 (untyped in the stubs)
    if isinstance(item, pd.DataFrame):
        return _escaped_frame(item)
    return item  # plotly figures: their JSON escapes `<` and plotly draws text as text


def escape_dataset_text(results: list[Any], names: Iterable[str]) -> None:
    """Escape, in place, the text of the dataset that deepchecks pastes into its HTML raw.

    deepchecks builds its view with f-strings and pandas Stylers that do not escape: a column
    named `<script>...</script>` or a category `<img onerror=...>` would run in every reader's
    view. Condition details, table cells and labels, check failures and column names inside
    display text are escaped; the rows of the report were read before and are not touched.
    """
    from deepchecks.core.check_result import CheckFailure
    from deepchecks.core.errors import DeepchecksBaseError

    risky = sorted({str(n) for n in names if _escaped(str(n)) != str(n)}, key=len, reverse=True)
    for result in results:
        if isinstance(result, CheckFailure):
            exc = result.exception
            exc.args = tuple(_escaped(str(a)) for a in exc.args)
            if isinstance(exc, DeepchecksBaseError):
                exc.message, exc.html = _escaped(exc.message), _escaped(exc.html)
            continue
        for condition in result.conditions_results:
            condition.details = _escaped(str(condition.details))
        result.display = [_escaped_item(item, risky) for item in result.display]


def write_html(
    results: list[Any], path: Path, *, plotly_src: str, names: Iterable[str] = ()
) -> Path:
    """Write deepchecks' view of `results` as one page that loads plotly only from `plotly_src`.

    deepchecks' own `save_as_html` either inlines 4.5 MB of plotly.js or points at public CDNs.
    Its serializer can leave both out; its figures then call `require(["plotly"], ...)`, which
    a four-line shim answers with the `Plotly` global from the one local script. `names`: the
    datasets' column names, escaped wherever deepchecks pastes them into markup.
    """
    from deepchecks.core.serialization.suite_result.html import SuiteResultSerializer
    from deepchecks.core.suite import SuiteResult

    escape_dataset_text(results, names)
    suite_result = SuiteResult("datagate: deepchecks", results)
    body = SuiteResultSerializer(suite_result).serialize(
        output_id="datagate",
        full_html=False,
        include_plotlyjs=False,
        include_requirejs=False,
        connected=False,
    )
    src = html.escape(plotly_src, quote=True)
    page = f"""<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8"/>
<title>deepchecks: datagate</title>
<script charset="utf-8" src="{src}"></script>
<script type="text/javascript">
window.require = window.require || function (deps, callback) {{ callback(window.Plotly); }};
</script>
</head>
<body style="background-color: white; padding: 1rem 1rem 0 1rem;">
{body}
</body>
</html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


# --- the checks -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Measure:
    column: str | None
    observed: dict[str, Any]
    breached: bool
    # Set when deepchecks measured nothing for this column, and why.
    not_measured: str | None = None
    # Set when the row is informative: a fact that is not a failure, and why.
    note: str | None = None


@dataclass(frozen=True)
class _Spec:
    """One deepchecks check: when it applies, how to build it, how to read its value."""

    name: str
    category: str
    needs: tuple[str, ...]
    train_test: bool
    build: Callable[[DeepchecksSettings, int], Any]
    measure: Callable[[Any, DeepchecksThresholds], list[_Measure]]
    # The DeepchecksThresholds fields the check's condition uses, stated in each row's `expected`.
    thresholds: tuple[str, ...] = ()
    fixed_expected: Mapping[str, Any] = field(default_factory=dict)
    # Per-column checks give one row a column; the others one row a check.
    per_column: bool = False
    # Label checks measure one column, the label: their row names it.
    on_label: bool = False

    def expected(self, thresholds: DeepchecksThresholds) -> dict[str, Any]:
        limits = {key: getattr(thresholds, key) for key in self.thresholds}
        return {**limits, **self.fixed_expected}


def _checks() -> Any:
    from deepchecks.tabular import checks

    return checks


def _build_samples_mix(s: DeepchecksSettings, n: int) -> Any:
    check = _checks().TrainTestSamplesMix(n_samples=n, random_state=s.random_state)
    return check.add_condition_duplicates_ratio_less_or_equal(s.thresholds.max_samples_mix_ratio)


def _build_date_overlap(s: DeepchecksSettings, n: int) -> Any:
    check = _checks().DateTrainTestLeakageOverlap(n_samples=n, random_state=s.random_state)
    return check.add_condition_leakage_ratio_less_or_equal(s.thresholds.max_date_leakage_ratio)


def _build_date_duplicates(s: DeepchecksSettings, n: int) -> Any:
    check = _checks().DateTrainTestLeakageDuplicates(n_samples=n, random_state=s.random_state)
    return check.add_condition_leakage_ratio_less_or_equal(s.thresholds.max_date_leakage_ratio)


def _build_index_leakage(s: DeepchecksSettings, n: int) -> Any:
    check = _checks().IndexTrainTestLeakage(n_samples=n, random_state=s.random_state)
    return check.add_condition_ratio_less_or_equal(s.thresholds.max_index_leakage_ratio)


def _build_feature_label_correlation(s: DeepchecksSettings, n: int) -> Any:
    from deepchecks.core import ConditionCategory, ConditionResult

    limit = s.thresholds.max_feature_label_pps

    # A good predictor is not leakage: a PPS over the limit on the data alone is informative,
    # never a failure or a warning (app/checks/decisions.py, is_strong_predictor).
    def note_strong_predictors(value: Any) -> Any:
        strong = [str(c) for c, pps in value.items() if is_strong_predictor(pps, limit)]
        if strong:
            return ConditionResult(
                ConditionCategory.PASS, f"strong predictors (PPS >= {limit}): {', '.join(strong)}"
            )
        return ConditionResult(ConditionCategory.PASS)

    check = _checks().FeatureLabelCorrelation(n_samples=n, random_state=s.random_state)
    return check.add_condition(f"strong predictors noted at PPS >= {limit}", note_strong_predictors)


def _build_feature_label_correlation_change(s: DeepchecksSettings, n: int) -> Any:
    return pps_change_check(
        n_samples=n, random_state=s.random_state
    ).add_condition_feature_pps_difference_less_than(s.thresholds.max_feature_label_pps_change)


# FeatureDrift and LabelDrift: deepchecks scores with `numerical_drift_method` and
# `categorical_drift_method`; datagate decides (app/checks/decisions.py, docs/drift.md).


def _build_feature_drift(s: DeepchecksSettings, n: int) -> Any:
    return feature_drift_check(
        s.thresholds.max_feature_drift,
        s.thresholds.drift_alpha,
        column_max_effect=s.per_check.column_thresholds("FeatureDrift", "max_feature_drift"),
        n_samples=n,
        random_state=s.random_state,
        numerical_drift_method=s.numerical_drift_method,
        categorical_drift_method=s.categorical_drift_method,
    )


def _build_label_drift(s: DeepchecksSettings, n: int) -> Any:
    return label_drift_check(
        s.thresholds.max_label_drift,
        s.thresholds.drift_alpha,
        n_samples=n,
        random_state=s.random_state,
        numerical_drift_method=s.numerical_drift_method,
        categorical_drift_method=s.categorical_drift_method,
    )


def _build_multivariate_drift(s: DeepchecksSettings, n: int) -> Any:
    return multivariate_drift_check(
        s.thresholds.max_multivariate_drift,
        s.thresholds.drift_alpha,
        n_samples=n,
        random_state=s.random_state,
    )


def _build_new_category(s: DeepchecksSettings, n: int) -> Any:
    check = _checks().NewCategoryTrainTest(n_samples=n, random_state=s.random_state)
    return check.add_condition_new_category_ratio_less_or_equal(s.thresholds.max_new_category_ratio)


def _build_new_label(s: DeepchecksSettings, n: int) -> Any:
    check = _checks().NewLabelTrainTest(n_samples=n, random_state=s.random_state)
    return check.add_condition_new_labels_number_less_or_equal(s.thresholds.max_new_labels)


def _build_string_mismatch(s: DeepchecksSettings, n: int) -> Any:
    check = _checks().StringMismatchComparison(n_samples=n, random_state=s.random_state)
    return check.add_condition_ratio_new_variants_less_or_equal(s.thresholds.max_new_variants_ratio)


def _build_mixed_nulls(s: DeepchecksSettings, n: int) -> Any:
    check = _checks().MixedNulls(n_samples=n, random_state=s.random_state)
    return check.add_condition_different_nulls_less_equal_to(s.thresholds.max_null_types)


def _build_duplicates(s: DeepchecksSettings, n: int) -> Any:
    check = _checks().DataDuplicates(n_samples=n, random_state=s.random_state)
    return check.add_condition_ratio_less_or_equal(s.thresholds.max_duplicates_ratio)


def _build_conflicting_labels(s: DeepchecksSettings, n: int) -> Any:
    check = _checks().ConflictingLabels(n_samples=n, random_state=s.random_state)
    return check.add_condition_ratio_of_conflicting_labels_less_or_equal(
        s.thresholds.max_conflicting_labels_ratio
    )


def _build_single_value(s: DeepchecksSettings, n: int) -> Any:
    return (
        _checks()
        .IsSingleValue(n_samples=n, random_state=s.random_state)
        .add_condition_not_single_value()
    )


_RARE_TYPE_RANGE = MIXED_TYPES_RANGE


def _build_mixed_types(s: DeepchecksSettings, n: int) -> Any:
    check = _checks().MixedDataTypes(n_samples=n, random_state=s.random_state)
    return check.add_condition_rare_type_ratio_not_in_range(_RARE_TYPE_RANGE)


# Each measure mirrors the comparison of the deepchecks condition it sits beside (some use `>`,
# some `>=`), so that a column marked as breaching is one the condition counted.


def _ratio(key: str, limit_of: Callable[[DeepchecksThresholds], float]) -> Any:
    def measure(value: Any, t: DeepchecksThresholds) -> list[_Measure]:
        ratio = float(value)
        return [_Measure(None, {key: ratio}, ratio > limit_of(t))]

    return measure


def _judged_or(measure: Any) -> Any:
    """`measure` for a deepchecks value; the verdicts themselves for a value judged against
    the reference (app/checks/reference_levels.py)."""

    def read(value: Any, t: DeepchecksThresholds) -> list[_Measure]:
        judged = rows_of(value)
        if judged is None:
            return cast(list[_Measure], measure(value, t))
        # What deepchecks' value says of each row (e.g. which categories are new), then the
        # judgement's own figures and verdict.
        read_raw = cast(list[_Measure], measure(value[VALUE_KEY], t))
        base = {m.column: m.observed for m in read_raw}
        return [
            _Measure(j.column, {**base.get(j.column, {}), **j.observed}, j.failed, note=j.note)
            for j in judged
        ]

    return read


def _measure_samples_mix(value: Any, t: DeepchecksThresholds) -> list[_Measure]:
    ratio = float(value["ratio"])
    # The database path counts the distinct shared rows instead of bringing them back.
    shared = value.get("distinct_shared_rows", len(value["data"]))
    observed = {"ratio": ratio, "duplicated_rows_shown": int(shared)}
    return [_Measure(None, observed, ratio > t.max_samples_mix_ratio)]


def _measure_feature_label_pps(value: Any, t: DeepchecksThresholds) -> list[_Measure]:
    limit = t.max_feature_label_pps
    rows = []
    for col, pps in value.items():
        note = None
        if is_strong_predictor(_num(pps), limit):
            note = (
                f"a strong predictor (PPS {_num(pps):.2f} >= {limit}): informative, not a "
                "failure on the data alone; a leak shows as a PPS rise against the reference "
                "(FeatureLabelCorrelationChange)"
            )
        rows.append(_Measure(str(col), {"pps": _num(pps)}, False, note=note))
    return rows


def _measure_pps_change(value: Any, t: DeepchecksThresholds) -> list[_Measure]:
    rows = []
    too_small = value.get(DATAGATE_KEY, {}).get("skipped")
    for col, diff in value["train-test difference"].items():
        if too_small is not None:
            rows.append(_Measure(str(col), {}, False, not_measured=too_small))
            continue
        observed = {
            "pps_reference": _num(value["train"].get(col)),
            "pps_data": _num(value["test"].get(col)),
            "pps_difference": _num(diff),
        }
        rows.append(_Measure(str(col), observed, abs(_num(diff)) >= t.max_feature_label_pps_change))
    return rows


def _measure_feature_drift(value: Any, t: DeepchecksThresholds) -> list[_Measure]:
    rows = []
    for col, info in value.items():
        rows.append(_drift_measure(str(col), info))
    return rows


def _measure_label_drift(value: Any, t: DeepchecksThresholds) -> list[_Measure]:
    return [_drift_measure(None, value)]


def _drift_measure(column: str | None, info: Mapping[str, Any]) -> _Measure:
    """One column's datagate verdict (app/checks/drift_checks.py), deepchecks' score beside it."""
    verdict = info[DATAGATE_KEY]
    if "skipped" in verdict:
        return _Measure(column, {}, False, not_measured=verdict["skipped"])
    observed = as_observed(verdict, info["Drift score"], info["Method"])
    return _Measure(column, observed, bool(verdict["drifted"]))


def _measure_multivariate_drift(value: Any, t: DeepchecksThresholds) -> list[_Measure]:
    verdict = value[DATAGATE_KEY]
    if "skipped" in verdict:
        return [_Measure(None, {}, False, not_measured=verdict["skipped"])]
    importance = value.get("domain_classifier_feature_importance") or {}
    top = sorted(importance.items(), key=lambda kv: kv[1], reverse=True)[:5]
    observed = {
        "drift_score": float(value["domain_classifier_drift_score"]),
        "domain_classifier_auc": float(value["domain_classifier_auc"]),
        **{k: v for k, v in verdict.items() if k not in ("drifted", "summary")},
        "top_features": {str(k): float(v) for k, v in top},
    }
    return [_Measure(None, observed, bool(verdict["drifted"]))]


def _measure_new_category(value: Any, t: DeepchecksThresholds) -> list[_Measure]:
    rows = []
    for col, row in value.iterrows():
        ratio = float(row["Ratio of New Categories"])
        observed = {
            "new_category_ratio": ratio,
            "new_category_count": int(row["# New Categories"]),
            "new_categories": [_plain(v) for v in list(row["New categories"])[:_MAX_LISTED]],
        }
        if "Rows per new category" in row.index:
            # Only the exact check counts rows per category: which category, how many rows.
            per_category = list(row["Rows per new category"].items())[:_MAX_LISTED]
            observed["rows_per_new_category"] = {str(_plain(k)): int(n) for k, n in per_category}
        rows.append(_Measure(str(col), observed, ratio > t.max_new_category_ratio))
    return rows


def _measure_new_label(value: Any, t: DeepchecksThresholds) -> list[_Measure]:
    new_labels = [_plain(v) for v in (value or {}).get("new_labels", [])]
    per_label = (value or {}).get("n_samples_per_new_label") or {}
    observed = {
        "new_labels": new_labels[:_MAX_LISTED],
        "new_label_count": len(new_labels),
        "rows_with_new_labels": int(sum(per_label.values())),
    }
    return [_Measure(None, observed, len(new_labels) > t.max_new_labels)]


def _measure_string_mismatch(value: Any, t: DeepchecksThresholds) -> list[_Measure]:
    rows = []
    for col, baseforms in value.items():
        ratio = float(sum(info["percent_variants_only_in_test"] for info in baseforms.values()))
        variants = [str(v) for info in baseforms.values() for v in info["variants_only_in_test"]]
        observed = {"new_variants_ratio": ratio, "new_variants": variants[:_MAX_LISTED]}
        rows.append(_Measure(str(col), observed, ratio > t.max_new_variants_ratio))
    return rows


def _measure_mixed_nulls(value: Any, t: DeepchecksThresholds) -> list[_Measure]:
    rows = []
    for col, nulls in value["columns"].items():
        observed = {"null_types": {str(k): int(v["count"]) for k, v in nulls.items()}}
        rows.append(_Measure(str(col), observed, len(nulls) > t.max_null_types))
    return rows


def _measure_conflicting_labels(value: Any, t: DeepchecksThresholds) -> list[_Measure]:
    ratio = float(value["percent_of_conflicting_samples"])
    # The exact check counts the groups; deepchecks lists each group's row indices.
    groups = value.get("conflicting_groups")
    if groups is None:
        groups = len(value["samples_indices"])
    observed = {"conflicting_ratio": ratio, "conflicting_groups": int(groups)}
    return [_Measure(None, observed, ratio > t.max_conflicting_labels_ratio)]


def _measure_single_value(value: Any, t: DeepchecksThresholds) -> list[_Measure]:
    return [
        _Measure(str(col), {"distinct_values": int(n)}, int(n) == 1) for col, n in value.items()
    ]


def _measure_mixed_types(value: Any, t: DeepchecksThresholds) -> list[_Measure]:
    rows = []
    for col, mix in value.items():
        if not mix:
            # deepchecks leaves non-string columns and unmixed ones empty.
            rows.append(_Measure(str(col), {"mixed_types": False}, False))
            continue
        rarer = min(mix["strings"], mix["numbers"])
        observed = {
            "mixed_types": True,
            "strings_ratio": float(mix["strings"]),
            "numbers_ratio": float(mix["numbers"]),
        }
        low, high = _RARE_TYPE_RANGE
        rows.append(_Measure(str(col), observed, low < rarer < high))
    return rows


# One check a line group, in the order rows appear in the report.
# fmt: off
_SPECS: tuple[_Spec, ...] = (
    # leakage between reference and data, and of the label into one dataset
    _Spec(
        "TrainTestSamplesMix", "leakage", ("reference",), train_test=True,
        build=_build_samples_mix, measure=_judged_or(_measure_samples_mix),
        thresholds=("max_samples_mix_ratio",),
    ),
    _Spec(
        "DateTrainTestLeakageOverlap", "leakage", ("reference", "datetime"), train_test=True,
        build=_build_date_overlap,
        measure=_ratio("leakage_ratio", lambda t: t.max_date_leakage_ratio),
        thresholds=("max_date_leakage_ratio",),
    ),
    _Spec(
        "DateTrainTestLeakageDuplicates", "leakage", ("reference", "datetime"), train_test=True,
        build=_build_date_duplicates,
        measure=_ratio("leakage_ratio", lambda t: t.max_date_leakage_ratio),
        thresholds=("max_date_leakage_ratio",),
    ),
    _Spec(
        "IndexTrainTestLeakage", "leakage", ("reference", "index"), train_test=True,
        build=_build_index_leakage,
        measure=_ratio("leakage_ratio", lambda t: t.max_index_leakage_ratio),
        thresholds=("max_index_leakage_ratio",),
    ),
    _Spec(
        "FeatureLabelCorrelation", "leakage", ("label",), train_test=False,
        build=_build_feature_label_correlation, measure=_measure_feature_label_pps,
        thresholds=("max_feature_label_pps",), per_column=True,
    ),
    _Spec(
        "FeatureLabelCorrelationChange", "leakage", ("reference", "label"), train_test=True,
        build=_build_feature_label_correlation_change, measure=_measure_pps_change,
        thresholds=("max_feature_label_pps_change",), per_column=True,
    ),
    # drift, and values in the data the reference never had
    _Spec(
        "FeatureDrift", "drift", ("reference",), train_test=True,
        build=_build_feature_drift, measure=_measure_feature_drift,
        thresholds=("max_feature_drift", "drift_alpha"), per_column=True,
        fixed_expected={"correction": "holm"},
    ),
    _Spec(
        "LabelDrift", "drift", ("reference", "label"), train_test=True,
        build=_build_label_drift, measure=_measure_label_drift,
        thresholds=("max_label_drift", "drift_alpha"), per_column=True, on_label=True,
    ),
    _Spec(
        "MultivariateDrift", "drift", ("reference",), train_test=True,
        build=_build_multivariate_drift, measure=_measure_multivariate_drift,
        thresholds=("max_multivariate_drift", "drift_alpha"),
    ),
    _Spec(
        "NewCategoryTrainTest", "drift", ("reference",), train_test=True,
        build=_build_new_category, measure=_judged_or(_measure_new_category),
        thresholds=("max_new_category_ratio",), per_column=True,
    ),
    _Spec(
        "NewLabelTrainTest", "drift", ("reference", "label", "classification"), train_test=True,
        build=_build_new_label, measure=_judged_or(_measure_new_label),
        thresholds=("max_new_labels",), on_label=True,
    ),
    _Spec(
        "StringMismatchComparison", "drift", ("reference",), train_test=True,
        build=_build_string_mismatch, measure=_measure_string_mismatch,
        thresholds=("max_new_variants_ratio",), per_column=True,
    ),
    # integrity of the data alone
    _Spec(
        "MixedNulls", "integrity", (), train_test=False,
        build=_build_mixed_nulls, measure=_judged_or(_measure_mixed_nulls),
        thresholds=("max_null_types",), per_column=True,
    ),
    _Spec(
        "DataDuplicates", "integrity", (), train_test=False,
        build=_build_duplicates,
        measure=_judged_or(_ratio("duplicates_ratio", lambda t: t.max_duplicates_ratio)),
        thresholds=("max_duplicates_ratio",),
    ),
    _Spec(
        "ConflictingLabels", "integrity", ("label", "classification"), train_test=False,
        build=_build_conflicting_labels, measure=_judged_or(_measure_conflicting_labels),
        thresholds=("max_conflicting_labels_ratio",),
    ),
    _Spec(
        "IsSingleValue", "integrity", (), train_test=False,
        build=_build_single_value, measure=_judged_or(_measure_single_value),
        fixed_expected={"min_distinct_values": 2}, per_column=True,
    ),
    _Spec(
        "MixedDataTypes", "integrity", (), train_test=False,
        build=_build_mixed_types, measure=_measure_mixed_types,
        fixed_expected={"rare_type_ratio_not_between": list(_RARE_TYPE_RANGE)}, per_column=True,
    ),
)
# fmt: on

CHECK_NAMES: tuple[str, ...] = tuple(spec.name for spec in _SPECS)
# The thresholds each check states in its rows' `expected`: where each came from is reported.
CHECK_THRESHOLDS: dict[str, tuple[str, ...]] = {spec.name: spec.thresholds for spec in _SPECS}


# --- turning deepchecks results into rows ---------------------------------------------------

_CATEGORY_ORDER = {"PASS": 0, "WARN": 1, "FAIL": 2, "ERROR": 3}
_OUTCOME: dict[str, tuple[Outcome, Severity]] = {
    "PASS": ("passed", "critical"),
    "WARN": ("warned", "warning"),
    "FAIL": ("failed", "critical"),
    "ERROR": ("error", "critical"),
}
_REASONS = {
    "reference": "no reference dataset was given",
    "label": "no label column was given",
    "datetime": "no datetime column was given",
    "index": "no index column was given",
    "classification": "the label is numeric (a regression target); the check needs classes",
}


def _exact_rows(
    spec: _Spec,
    exact: ExactCheck,
    inputs: ExactInputs,
    settings: DeepchecksSettings,
    label: str | None,
    already_sampled: tuple[str, ...],
    exact_source: ExactSource | None = None,
) -> list[CheckResult]:
    """Rows of a check answered over every row (app/checks/exact_checks.py), read as deepchecks'.

    Every row of the frames given, that is: a frame that is itself a sample makes the row
    `sampled`, since a set question over a sample has no exact answer. A SQL batch's rows are
    answered by `exact_source` instead, in its database or streamed, where it can.
    """
    limit = getattr(settings.thresholds, spec.thresholds[0]) if spec.thresholds else 0
    computed_in = "memory"
    try:
        run = None if exact_source is None else exact_source.run(spec.name, inputs, limit)
        if run is not None:
            result, rows_used, computed_in = run.result, run.rows_used, run.where
            already_sampled = ()
        else:
            result = exact(inputs, limit)
            rows_used = {"data": len(inputs.data)}
            if spec.train_test and inputs.reference is not None:
                rows_used["reference"] = len(inputs.reference)
        if spec.name in RELATIVE_CHECKS:
            # Integrity judged against the reference's own level (app/checks/reference_levels.py).
            # Over a SQL batch the reference's level comes from the frames held (a sample).
            result = judge_against_reference(spec.name, inputs, result, limit)
            if rows_of(result.value) is not None and inputs.reference is not None:
                rows_used.setdefault("reference", len(inputs.reference))
    except UpstreamTimeout:
        # The run's failure, not the data's: a 504, as for the suite on the same batch.
        raise
    except Exception as exc:
        logger.warning("exact check %s crashed: %s", spec.name, exc)
        return [
            _error_row(spec, f"{type(exc).__name__}: {exc}", spec.expected(settings.thresholds))
        ]
    already_sampled = tuple(side for side in already_sampled if side in rows_used)
    details: dict[str, Any] = {
        "method": "sampled" if already_sampled else "exact",
        "rows_used": rows_used,
        "computed_in": computed_in,
        "conditions": [
            {
                "name": spec.name,
                "category": "PASS" if result.passed else result.breach,
                "details": result.condition,
            }
        ],
        "rows_checked": rows_used,
    }
    if already_sampled:
        details["sampled_before_the_check"] = list(already_sampled)
    return _rows_for(spec, result.value, details, settings, label)


def _rows_for(
    spec: _Spec,
    value: Any,
    details: dict[str, Any],
    settings: DeepchecksSettings,
    label: str | None,
) -> list[CheckResult]:
    """Report rows from a check's value and `details["conditions"]`, its verdicts."""
    conditions = details["conditions"]
    worst = max(
        (c["category"] for c in conditions), key=_CATEGORY_ORDER.__getitem__, default="PASS"
    )
    expected = spec.expected(settings.thresholds)
    if worst == "ERROR":
        reason = "; ".join(c["details"] for c in conditions if c["category"] == "ERROR")
        return [_error_row(spec, f"condition could not be evaluated: {reason}", expected)]
    try:
        measures = spec.measure(value, settings.thresholds)
    except Exception as exc:
        # The condition ran, but the value is not shaped as expected: keep the verdict.
        logger.warning("could not read %s's value: %s", spec.name, exc)
        measures = []
        details["value_error"] = f"{type(exc).__name__}: {exc}"
    if spec.on_label:
        measures = [replace(m, column=label) for m in measures]
    outcome, severity = _OUTCOME[worst]
    if not measures:
        # Nothing measured per column (e.g. no string columns to compare): one row, the verdict.
        return [_row(spec, None, outcome, severity, {}, expected, details)]
    if len(measures) == 1 and not spec.per_column:
        # A check with one number: deepchecks' verdict on it is the row's outcome.
        only = measures[0]
        if only.not_measured is not None:
            return [_skipped_row(spec, only.not_measured, column=only.column)]
        if only.note is not None and outcome == "passed":
            details = {**details, "reason": only.note}
            severity = "info"
        return [_row(spec, only.column, outcome, severity, only.observed, expected, details)]
    rows = []
    for m in measures:
        if m.not_measured is not None:
            rows.append(_skipped_row(spec, m.not_measured, column=m.column))
        elif m.breached and worst != "PASS":
            rows.append(_row(spec, m.column, outcome, severity, m.observed, expected, details))
        elif m.note is not None:
            # A fact worth knowing that is not a failure: the row says why.
            noted = {**details, "reason": m.note}
            rows.append(_row(spec, m.column, "passed", "info", m.observed, expected, noted))
        else:
            # A column is only failed where deepchecks' condition failed too.
            rows.append(_row(spec, m.column, "passed", "critical", m.observed, expected, details))
    if worst != "PASS" and not any(m.breached for m in measures):
        # The condition did not pass though no column crossed the threshold as read here:
        # deepchecks' verdict still stands, on a row of its own.
        details = {**details, "note": "no single column crossed the threshold"}
        rows.append(_row(spec, None, outcome, severity, {}, expected, details))
    return rows


def _row(
    spec: _Spec,
    column: str | None,
    outcome: Outcome,
    severity: Severity,
    observed: dict[str, Any],
    expected: dict[str, Any],
    details: dict[str, Any],
) -> CheckResult:
    return CheckResult(
        source=SOURCE,
        category=spec.category,
        name=spec.name,
        column=column,
        success=outcome in ("passed", "skipped"),
        outcome=outcome,
        severity=severity,
        observed=_jsonable(observed),
        expected=expected,
        details=_jsonable(details),
    )


# The per-column checks over features: each feature gets a row in each, measured or not.
# (MixedNulls, IsSingleValue and MixedDataTypes already give every column of the data one.)
_FEATURE_CHECKS = (
    "FeatureLabelCorrelation",
    "FeatureLabelCorrelationChange",
    "FeatureDrift",
    "NewCategoryTrainTest",
    "StringMismatchComparison",
)


def _every_feature_has_a_row(
    rows: list[CheckResult],
    features: Mapping[str, str | None],
    categorical: list[str],
    not_measured: Mapping[str, str],
) -> list[CheckResult]:
    """Add a `skipped` row, with the reason, for each feature a per-feature check left out.

    A check that did not run at all (not applicable, or crashed) already has its one row; then
    only the features left out of deepchecks on purpose (`not_measured`) get rows of their own.
    """
    by_name = {spec.name: spec for spec in _SPECS}
    out: list[CheckResult] = []
    for i, row in enumerate(rows):
        out.append(row)
        last_of_check = i + 1 == len(rows) or rows[i + 1].name != row.name
        if row.source != SOURCE or row.name not in _FEATURE_CHECKS or not last_of_check:
            continue
        spec = by_name[row.name]
        own = [r for r in rows if r.name == row.name]
        covered = {r.column for r in own}
        ran = not any(r.column is None and r.outcome in ("skipped", "error") for r in own)
        for col in features:
            if col in covered or (not ran and col not in not_measured):
                continue
            reason = not_measured.get(col) or _why_no_row(
                spec.name, col in categorical, features[col]
            )
            out.append(_skipped_row(spec, reason, column=col))
    return out


def _why_no_row(check: str, is_categorical: bool, kind: str | None) -> str:
    kind = {"number": "numeric", None: "empty"}.get(kind, kind)
    if check == "NewCategoryTrainTest" and not is_categorical:
        return (
            f"not applicable: a {kind} feature not treated as categorical has no "
            "categories (FeatureDrift measures its distribution)"
        )
    if check == "StringMismatchComparison" and kind != "string":
        return f"not applicable: a {kind} column has no string variants"
    return "not measured: deepchecks returned no value for this feature"


def _not_applicable_row(
    spec: _Spec, missing: list[str], role_reasons: Mapping[str, str]
) -> CheckResult:
    reason = "not applicable: " + "; ".join(role_reasons.get(m) or _REASONS[m] for m in missing)
    row = _skipped_row(spec, reason)
    row.details["needs"] = list(spec.needs)
    return row


def _skipped_row(spec: _Spec, reason: str, *, column: str | None = None) -> CheckResult:
    return CheckResult(
        source=SOURCE,
        category=spec.category,
        name=spec.name,
        column=column,
        success=True,
        outcome="skipped",
        severity="info",
        details={"reason": reason},
    )


def _error_row(spec: _Spec, message: str, expected: dict[str, Any] | None = None) -> CheckResult:
    return CheckResult(
        source=SOURCE,
        category=spec.category,
        name=spec.name,
        success=False,
        outcome="error",
        severity="critical",
        expected=expected or {},
        details={"reason": message},
    )


def _all_errored(
    exc: Exception,
    roles: ColumnRoles,
    settings: DeepchecksSettings,
    features: list[str],
    data_rows: int | None,
    ref_rows: int | None,
) -> DeepchecksOutcome:
    message = f"deepchecks could not read the datasets: {type(exc).__name__}: {exc}"
    return DeepchecksOutcome(
        checks=[
            _error_row(spec, message)
            for spec in _SPECS
            if settings.checks is None or spec.name in settings.checks
        ],
        roles={**roles.model_dump(), "features": features, "categorical_inferred": False},
        data_sample_rows=data_rows,
        reference_sample_rows=ref_rows,
    )


def _missing_prerequisites(
    spec: _Spec, roles: ColumnRoles, has_reference: bool, regression: bool
) -> list[str]:
    present = {
        "reference": has_reference,
        "label": roles.label is not None,
        "classification": not regression,
        "datetime": roles.datetime is not None,
        "index": roles.index is not None,
    }
    return [need for need in spec.needs if not present[need]]


def _string_columns(frame: pd.DataFrame) -> pd.DataFrame:
    if all(isinstance(c, str) for c in frame.columns):
        return frame
    return frame.rename(columns=str)


def _sample(frame: pd.DataFrame, settings: DeepchecksSettings) -> tuple[pd.DataFrame, int | None]:
    """All rows up to the limit; above it a fixed-seed sample, whose size is returned."""
    if len(frame) <= settings.max_rows_before_sampling:
        return frame, None
    sample = frame.sample(n=settings.max_rows_before_sampling, random_state=settings.random_state)
    return sample, len(sample)


# --- small conversions ----------------------------------------------------------------------


def _num(value: Any) -> float:
    return 0.0 if value is None else float(value)


def _plain(value: Any) -> Any:
    """A numpy or pandas scalar as the Python value JSON can hold."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    value = _plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _absent(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SuiteInvalid(f"Suite {where} must be an object, got {type(value).__name__}")
    return dict(value)


def _refuse_unknown(
    given: Mapping[str, Any],
    accepted: tuple[str, ...],
    where: str,
    error: type[InvalidRequest] | type[SuiteInvalid],
) -> None:
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        raise error(
            f"Unknown key {unknown[0]!r} in {where}; accepted keys are: {', '.join(accepted)}"
        )


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "value"
    return f"{where}: {err['msg']} (got {err.get('input')!r})"

"""deepchecks' drift and PPS-change checks with datagate's decisions (app/checks/decisions.py).

deepchecks still computes and draws its scores; FeatureDrift and LabelDrift also judge the same
sampled rows by effect size and Holm-adjusted significance, write the verdict into their value
(key "datagate"), and their one condition reads it. MultivariateDrift judges its domain
classifier's held-out AUC against its null. Both MultivariateDrift and
FeatureLabelCorrelationChange do not run below the size at which their answer is noise; their
value says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from app.checks.decisions import (
    MULTIVARIATE_METHOD,
    PPS_CHANGE_MIN_ROWS,
    DriftDecision,
    TooSmall,
    decide_multivariate_drift,
    held_out_sizes,
    judge_drift,
    multivariate_rows_needed,
    pps_change_is_decidable,
)

DATAGATE_KEY = "datagate"


def feature_drift_check(
    max_effect: float,
    alpha: float,
    *,
    column_max_effect: Mapping[str, float] | None = None,
    **options: Any,
) -> Any:
    """A deepchecks FeatureDrift whose condition is datagate's per-column drift decision.

    `column_max_effect`: columns held to an effect size of their own (`per_check`).
    """
    check = _classes()[0](**options)
    check.datagate_limits = (max_effect, alpha)
    check.datagate_column_limits = dict(column_max_effect or {})
    name = f"no feature drifts: effect > {max_effect} and Holm-adjusted p < {alpha}"
    return check.add_condition(name, _features_pass)


def label_drift_check(max_effect: float, alpha: float, **options: Any) -> Any:
    """A deepchecks LabelDrift whose condition is datagate's drift decision on the label."""
    check = _classes()[1](**options)
    check.datagate_limits = (max_effect, alpha)
    name = f"label does not drift: effect > {max_effect} and p < {alpha}"
    return check.add_condition(name, _label_passes)


def multivariate_drift_check(max_effect: float, alpha: float, **options: Any) -> Any:
    """A deepchecks MultivariateDrift whose condition is datagate's effect-and-significance rule."""
    check = _classes()[3](**options)
    check.datagate_limits = (max_effect, alpha)
    name = f"no multivariate drift: 2*AUC-1 > {max_effect} and p < {alpha}"
    return check.add_condition(name, _multivariate_passes)


def pps_change_check(**options: Any) -> Any:
    """A deepchecks FeatureLabelCorrelationChange that is skipped on too few rows."""
    return _classes()[2](**options)


def as_observed(verdict: dict[str, Any], score: Any, method: Any) -> dict[str, Any]:
    """A row's `observed`: datagate's numbers first, deepchecks' score beside them."""
    return {
        **{k: v for k, v in verdict.items() if k != "drifted"},
        "deepchecks_score": None if score is None else float(score),
        "deepchecks_method": method,
    }


def _verdict(judged: DriftDecision | TooSmall) -> dict[str, Any]:
    if isinstance(judged, TooSmall):
        return {"skipped": judged.reason, "rows_needed": judged.rows_needed}
    return {
        "drifted": judged.drifted,
        "effect": judged.effect,
        "p_value": judged.p_value,
        "p_value_adjusted": judged.p_value_adjusted,
        "method": judged.method,
        "rows_reference": judged.n_reference,
        "rows_data": judged.n_data,
    }


def _features_pass(value: Any) -> Any:
    from deepchecks.core import ConditionCategory, ConditionResult

    drifted = [str(c) for c, info in value.items() if info[DATAGATE_KEY].get("drifted")]
    if drifted:
        return ConditionResult(ConditionCategory.FAIL, f"drifted: {', '.join(drifted)}")
    return ConditionResult(ConditionCategory.PASS, "no feature drifted")


def _label_passes(value: Any) -> Any:
    from deepchecks.core import ConditionCategory, ConditionResult

    if value[DATAGATE_KEY].get("drifted"):
        return ConditionResult(ConditionCategory.FAIL, "the label drifted")
    return ConditionResult(ConditionCategory.PASS, "the label did not drift")


def _multivariate_passes(value: Any) -> Any:
    from deepchecks.core import ConditionCategory, ConditionResult

    verdict = value[DATAGATE_KEY]
    if verdict.get("drifted"):
        return ConditionResult(ConditionCategory.FAIL, f"the data drifted: {verdict['summary']}")
    return ConditionResult(ConditionCategory.PASS, verdict.get("summary", "skipped"))


@lru_cache(maxsize=1)
def _classes() -> tuple[type[Any], type[Any], type[Any], type[Any]]:
    """The two subclasses, built on first use: deepchecks takes seconds to import."""
    from deepchecks.tabular import checks
    from deepchecks.tabular.utils.task_type import TaskType

    def sampled(check: Any, dataset: Any) -> Any:
        # The rows deepchecks' own run_logic scored, so both verdicts speak of the same sample.
        return dataset.sample(check.n_samples, random_state=check.random_state).data

    class FeatureDrift(checks.FeatureDrift):  # type: ignore[misc]
        """FeatureDrift, each scored column also judged by datagate."""

        datagate_limits: tuple[float, float]
        datagate_column_limits: dict[str, float]

        def run_logic(self, context: Any) -> Any:
            result = super().run_logic(context)
            max_effect, alpha = self.datagate_limits
            columns = [str(c) for c in result.value]
            judged = judge_drift(
                sampled(self, context.train),
                sampled(self, context.test),
                columns,
                {str(c) for c in context.train.cat_features},
                max_effect,
                alpha,
                column_max_effect=self.datagate_column_limits,
            )
            for column, info in result.value.items():
                info[DATAGATE_KEY] = _verdict(judged[str(column)])
            return result

    class LabelDrift(checks.LabelDrift):  # type: ignore[misc]
        """LabelDrift, the label also judged by datagate."""

        datagate_limits: tuple[float, float]

        def run_logic(self, context: Any) -> Any:
            result = super().run_logic(context)
            max_effect, alpha = self.datagate_limits
            label = context.train.label_name
            judged = judge_drift(
                sampled(self, context.train),
                sampled(self, context.test),
                [label],
                set() if context.task_type == TaskType.REGRESSION else {label},
                max_effect,
                alpha,
            )
            result.value[DATAGATE_KEY] = _verdict(judged[label])
            return result

    class FeatureLabelCorrelationChange(checks.FeatureLabelCorrelationChange):  # type: ignore[misc]
        """FeatureLabelCorrelationChange, not computed where its answer would be noise."""

        def run_logic(self, context: Any) -> Any:
            from deepchecks.core import CheckResult

            rows = (context.train.n_samples, context.test.n_samples)
            if pps_change_is_decidable(*rows):
                return super().run_logic(context)
            reason = (
                f"too few rows to tell a PPS change from noise ({rows[0]} in the reference, "
                f"{rows[1]} in the data); needs at least {PPS_CHANGE_MIN_ROWS} on each side"
            )
            features = [str(c) for c in context.train.features]
            value = {
                "train": {},
                "test": {},
                "train-test difference": dict.fromkeys(features, 0.0),
                DATAGATE_KEY: {"skipped": reason, "rows_needed": PPS_CHANGE_MIN_ROWS},
            }
            return CheckResult(value=value, header="Feature Label Correlation Change")

    class MultivariateDrift(checks.MultivariateDrift):  # type: ignore[misc]
        """MultivariateDrift, its AUC judged against its null; not run on too few rows."""

        datagate_limits: tuple[float, float]

        def run_logic(self, context: Any) -> Any:
            from deepchecks.core import CheckResult

            max_effect, alpha = self.datagate_limits
            rows = (context.train.n_samples, context.test.n_samples)
            n_samples = self.n_samples if self.n_samples is not None else max(rows)
            needed = multivariate_rows_needed(*rows, n_samples, max_effect, alpha)
            if needed is not None:
                reason = (
                    f"too few rows to tell a multivariate drift of {max_effect} from noise "
                    f"({rows[0]} in the reference, {rows[1]} in the data); needs at least "
                    f"{needed} on each side"
                )
                value = {
                    "domain_classifier_auc": None,
                    "domain_classifier_drift_score": None,
                    "domain_classifier_feature_importance": {},
                    DATAGATE_KEY: {"skipped": reason, "rows_needed": needed},
                }
                return CheckResult(value=value, header="Multivariate Drift")
            result = super().run_logic(context)
            n1, n2 = held_out_sizes(*rows, n_samples)
            auc = float(result.value["domain_classifier_auc"])
            judged = decide_multivariate_drift(auc, n1, n2, max_effect, alpha)
            result.value[DATAGATE_KEY] = {
                "drifted": judged.drifted,
                "effect": judged.effect,
                "auc": judged.auc,
                "p_value": judged.p_value,
                "held_out_reference": judged.held_out_reference,
                "held_out_data": judged.held_out_data,
                "method": MULTIVARIATE_METHOD,
                "summary": f"2*AUC-1 = {judged.effect:.3f}, p = {judged.p_value:.2g}",
            }
            return result

    return FeatureDrift, LabelDrift, FeatureLabelCorrelationChange, MultivariateDrift

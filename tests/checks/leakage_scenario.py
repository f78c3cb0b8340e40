"""A contaminated train/test pair with known leakage, and a clean one: for tests and bench/."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from app.checks.roles import ColumnRoles

ROLES = ColumnRoles(label="label", datetime="day", index="id", categorical=["cat_0", "cat_1"])
NEW_CATEGORY = "brand_new"
NEW_CATEGORY_ROWS = 20
START = pd.Timestamp("2020-01-01")


@dataclass(frozen=True)
class Truth:
    """What every exact check must measure on the contaminated pair."""

    samples_mix: float
    index_leakage: float
    date_leakage: float
    new_category_ratio: float


def _frame(rows: int, rng: np.random.Generator, first_id: int, first_minute: int) -> pd.DataFrame:
    """12 columns: id, day (one a minute: 10M rows stay in pandas' range), label, 5 continuous,
    1 count, 2 categorical, 1 boolean."""
    data: dict[str, Any] = {
        "id": np.arange(first_id, first_id + rows, dtype=np.int64),
        "day": START + pd.to_timedelta(np.arange(first_minute, first_minute + rows), unit="min"),
        "label": rng.choice(["low", "mid", "high"], size=rows),
    }
    for i in range(5):
        data[f"num_{i}"] = rng.normal(loc=i, scale=1.0, size=rows)
    data["count"] = rng.integers(0, 50, size=rows)
    data["cat_0"] = rng.choice(["a", "b", "c", "d"], size=rows)
    data["cat_1"] = rng.choice(["x", "y", "z"], size=rows)
    data["flag"] = rng.random(rows) < 0.5
    return pd.DataFrame(data)


FEATURES = ["num_0", "num_1", "num_2", "num_3", "num_4", "count", "cat_0", "cat_1", "flag"]


def contaminated_pair(rows: int, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame, Truth]:
    """(reference, data, truth): 10% of data rows copy a reference row's features and label,
    5% of data ids are reference ids, 1% of data rows carry a reference date (so they fall
    before the reference's last date), and 20 rows hold a category the reference never had."""
    rng = np.random.default_rng(seed)
    reference = _frame(rows, rng, first_id=0, first_minute=0)
    data = _frame(rows, rng, first_id=rows, first_minute=rows)
    order = rng.permutation(rows)
    copied, rest = order[: rows // 10], order[rows // 10 :]
    sources = rng.choice(rows, size=len(copied), replace=False)
    columns = [*FEATURES, "label"]
    for col in columns:
        data[col] = data[col].to_numpy().copy()
        data.loc[copied, col] = reference[col].to_numpy()[sources]
    shared_ids = rng.choice(rows, size=rows // 20, replace=False)
    data.loc[rng.choice(rows, size=rows // 20, replace=False), "id"] = shared_ids
    # Reference dates short of the last one: before it, and equal to a reference date.
    looked_ahead = rng.choice(rows, size=rows // 100, replace=False)
    data.loc[looked_ahead, "day"] = (
        reference["day"]
        .iloc[rng.choice(rows - 1, size=len(looked_ahead), replace=False)]
        .to_numpy()
    )
    data.loc[rest[:NEW_CATEGORY_ROWS], "cat_0"] = NEW_CATEGORY
    data = data.astype(reference.dtypes.to_dict())
    truth = Truth(
        samples_mix=len(copied) / rows,
        index_leakage=len(shared_ids) / rows,
        date_leakage=len(looked_ahead) / rows,
        new_category_ratio=NEW_CATEGORY_ROWS / rows,
    )
    return reference, data, truth


def clean_pair(rows: int, seed: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(reference, data) with no shared row, id or date, data dated after the reference, and
    50 rare categories the reference holds 5 times each and the data holds once or twice."""
    rng = np.random.default_rng(seed)
    reference = _frame(rows, rng, first_id=0, first_minute=0)
    data = _frame(rows, rng, first_id=rows, first_minute=rows)
    rare = [f"rare_{i}" for i in range(50)]
    reference.loc[rng.choice(rows, size=250, replace=False), "cat_1"] = np.repeat(rare, 5)
    data.loc[rng.choice(rows, size=75, replace=False), "cat_1"] = rare + rare[:25]
    return reference, data

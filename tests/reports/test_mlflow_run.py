"""Reports logged to MLflow by the CLI, the Python client and the pytest plugin, read back from a
real `mlflow server` (SQLite backend, local artifact folder) through MlflowClient."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import pandas as pd
import pytest
from httpx import ASGITransport
from mlflow import MlflowClient
from mlflow.utils.validation import _validate_metric_name

from app import cli
from app.client import AsyncDatagateClient, DatagateClient
from app.pytest_plugin import DatagateCheckFailed, assert_valid, validate_data
from app.reports.mlflow_run import (
    MlflowUnavailable,
    import_mlflow,
    metric_key,
    report_metrics,
)
from app.reports.model import CheckResult, DatasetInfo, Report, Summary
from tests.conftest import EXAMPLES, EXPECTATIONS, REPO

if TYPE_CHECKING:
    from tests.conftest import RunningApp
    from tests.mlflow_server import MlflowServer
    from tests.server_process import Server

pytest_plugins = ["pytester", "tests.server_process", "tests.mlflow_server"]


def drift_row(column: str, effect: float | None, outcome: str = "passed") -> CheckResult:
    observed: dict[str, Any] = {"effect": effect, "method": "wasserstein_sd"}
    if effect is None:
        observed = {"skipped": "too few rows", "rows_needed": 50}
    return CheckResult(
        source="deepchecks",
        category="drift",
        name="FeatureDrift",
        column=column,
        success=outcome != "failed",
        outcome=outcome,  # type: ignore[arg-type]
        observed=observed,
    )


def small_report(checks: list[CheckResult]) -> Report:
    return Report(
        id="r1",
        status="failed",
        success=False,
        dataset=DatasetInfo(name="d.csv", format="csv", rows=10),
        summary=Summary(evaluated=3, passed=1, failed=2),
        checks=checks,
    )


@pytest.mark.parametrize(
    "column", ["body mass (g)", "a/b", "../up", "x:y", "naïve", "a" * 400, "", "tab\there"]
)
def test_metric_key_is_accepted_by_mlflows_own_rule(column: str) -> None:
    key = metric_key(f"datagate.drift.{column}")
    _validate_metric_name(key)  # raises MlflowException on a key the server would refuse
    assert key.startswith("datagate.drift.")
    assert len(key) <= 250


def test_report_metrics_hold_counts_and_one_drift_effect_per_measured_column() -> None:
    report = small_report(
        [
            drift_row("carat", 0.42, "failed"),
            drift_row("price (usd)", 0.03),
            drift_row("depth", None, "skipped"),
        ]
    )
    metrics = report_metrics(report)
    assert metrics["datagate.failed"] == 2
    assert metrics["datagate.passed"] == 1
    assert metrics["datagate.rows"] == 10
    assert metrics["datagate.drift.carat"] == pytest.approx(0.42)
    assert metrics["datagate.drift.price _usd_"] == pytest.approx(0.03)
    assert not any("depth" in key for key in metrics)


def test_columns_that_sanitise_alike_keep_separate_metrics() -> None:
    metrics = report_metrics(small_report([drift_row("a?", 0.1), drift_row("a!", 0.2)]))
    drift = {k: v for k, v in metrics.items() if k.startswith("datagate.drift.")}
    assert sorted(drift.values()) == [pytest.approx(0.1), pytest.approx(0.2)]
    assert len(drift) == 2


def test_without_mlflow_installed_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "mlflow", None)
    with pytest.raises(MlflowUnavailable, match=r"datagate\[mlflow\]"):
        import_mlflow()
    code = cli.main(["validate", str(EXAMPLES / "penguins.csv"), "--suite", "penguins", "--mlflow"])
    assert code == cli.EXIT_ERROR
    assert "pip install 'datagate[mlflow]'" in capsys.readouterr().err


def logged_run(url: str, run_id: str) -> tuple[Any, dict[str, Any], str]:
    """The run, the report JSON it holds, and its HTML page."""
    client = MlflowClient(tracking_uri=url)
    run = client.get_run(run_id)
    paths = sorted(a.path for a in client.list_artifacts(run_id, "datagate"))
    assert len(paths) == 2 and paths[0].endswith(".html") and paths[1].endswith(".json"), paths
    folder = Path(client.download_artifacts(run_id, "datagate"))
    report = json.loads((folder / Path(paths[1]).name).read_text())
    page = (folder / Path(paths[0]).name).read_text()
    return run, report, page


def test_cli_logs_a_failed_report_to_a_run_it_starts_and_keeps_the_exit_code(
    mlflow_server: MlflowServer, tmp_path: Path
) -> None:
    run = subprocess.run(
        [
            *(sys.executable, "-m", "app.cli", "validate", str(EXAMPLES / "penguins_bad.csv")),
            *("--suite", "penguins", "--local", "--expectations", str(EXPECTATIONS)),
            *("--mlflow", "--output", str(tmp_path / "report.json")),
        ],
        cwd=REPO,
        env=mlflow_server.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == cli.EXIT_FAILED, run.stderr
    [line] = [x for x in run.stderr.splitlines() if "logged to MLflow" in x]
    run_id = line.rsplit(" ", 1)[1]
    expected = json.loads((tmp_path / "report.json").read_text())
    mlflow_run, report, page = logged_run(mlflow_server.url, run_id)
    assert mlflow_run.info.status == "FINISHED"
    assert mlflow_run.data.tags["datagate.verdict"] == "failed"
    assert mlflow_run.data.tags["datagate.report_id"] == expected["id"]
    assert mlflow_run.data.metrics["datagate.failed"] == expected["summary"]["failed"] >= 1
    assert mlflow_run.data.metrics["datagate.passed"] == expected["summary"]["passed"]
    assert mlflow_run.data.metrics["datagate.rows"] == 344
    assert report == expected
    assert "<style>" in page and "penguins_bad.csv" in page
    assert "/static/datagate.css" not in page  # readable without the service


def test_cli_exits_2_when_the_tracking_server_cannot_be_reached() -> None:
    run = subprocess.run(
        [
            *(sys.executable, "-m", "app.cli", "validate", str(EXAMPLES / "penguins.csv")),
            *("--suite", "penguins", "--local", "--expectations", str(EXPECTATIONS), "--mlflow"),
        ],
        cwd=REPO,
        # A port nothing listens on; MLflow's own retries cut short.
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DATAGATE_"))},
            "MLFLOW_TRACKING_URI": "http://127.0.0.1:9",
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "5",
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == cli.EXIT_ERROR
    assert "datagate: PASSED" in run.stdout  # the verdict is still shown
    assert "could not log the report to MLflow" in run.stderr


def test_client_logs_to_the_callers_active_run_and_leaves_it_running(
    datagate_server: Server, mlflow_tracking: str
) -> None:
    with mlflow.start_run() as active:
        with DatagateClient(datagate_server.url, api_key=datagate_server.write_key) as client:
            report = client.validate(
                str(EXAMPLES / "penguins_bad.csv"), suite="penguins", mlflow=True
            )
        still = mlflow.active_run()
        assert still is not None and still.info.run_id == active.info.run_id
        assert MlflowClient().get_run(active.info.run_id).info.status == "RUNNING"
    mlflow_run, logged, _ = logged_run(mlflow_tracking, active.info.run_id)
    assert mlflow_run.data.tags["datagate.verdict"] == report.status == "failed"
    assert mlflow_run.data.tags["datagate.report_url"] == report.report_url
    assert mlflow_run.data.metrics["datagate.failed"] == report.summary.failed
    assert logged["id"] == report.id


@pytest.mark.anyio
async def test_async_client_logs_to_the_run_active_on_its_loops_thread(
    running_app: RunningApp, mlflow_tracking: str
) -> None:
    """MLflow's active run is per thread; the async client logs from a worker thread, and must
    still reach the run the caller started."""
    with mlflow.start_run() as active:
        async with AsyncDatagateClient(
            "http://testserver", transport=ASGITransport(app=running_app.app)
        ) as client:
            report = await client.validate(
                str(EXAMPLES / "penguins.csv"), suite="penguins", mlflow=True
            )
    mlflow_run, logged, page = logged_run(mlflow_tracking, active.info.run_id)
    assert mlflow_run.data.tags["datagate.verdict"] == report.status == "passed"
    assert mlflow_run.data.metrics["datagate.passed"] == report.summary.passed
    assert logged["id"] == report.id
    assert "penguins.csv" in page


def test_pytest_plugin_logs_drift_effects_per_column_before_failing(
    mlflow_tracking: str,
) -> None:
    bad = pd.read_csv(EXAMPLES / "penguins_bad.csv")
    good = pd.read_csv(EXAMPLES / "penguins.csv")
    with mlflow.start_run() as active, pytest.raises(DatagateCheckFailed) as failure:
        assert_valid(bad, "penguins", good, expectations=EXPECTATIONS, label="species", mlflow=True)
    report = failure.value.report
    metrics = MlflowClient().get_run(active.info.run_id).data.metrics
    measured = {
        c.column: c.observed["effect"]
        for c in report.checks
        if c.name == "FeatureDrift" and c.column and c.outcome != "skipped"
    }
    assert "body_mass_g" in measured
    for column, effect in measured.items():
        assert metrics[metric_key(f"datagate.drift.{column}")] == pytest.approx(effect)
    assert metrics["datagate.failed"] == report.summary.failed


def test_pytest_plugin_validate_data_starts_a_run_when_none_is_active(
    mlflow_tracking: str,
) -> None:
    report = validate_data(
        EXAMPLES / "penguins.csv", "penguins", expectations=EXPECTATIONS, mlflow=True
    )
    assert mlflow.active_run() is None
    [found] = MlflowClient().search_runs(
        ["0"], filter_string=f"tags.`datagate.report_id` = '{report.id}'"
    )
    assert found.info.status == "FINISHED"
    assert found.data.tags["datagate.verdict"] == "passed"


def test_datagate_mlflow_option_logs_every_report_of_the_fixture(
    pytester: pytest.Pytester, mlflow_tracking: str
) -> None:
    pytester.makepyfile(
        test_project=f"""
        def test_clean(datagate):
            datagate.validate(r"{EXAMPLES / "penguins.csv"}", suite="penguins",
                              dataset_name="option-clean")
        """
    )
    result = pytester.runpytest_subprocess(
        "--datagate-mlflow", "--datagate-expectations", str(EXPECTATIONS)
    )
    result.assert_outcomes(passed=1)
    [found] = MlflowClient().search_runs(
        ["0"], filter_string="tags.`datagate.dataset` = 'option-clean'"
    )
    assert found.data.tags["datagate.verdict"] == "passed"

"""docs/integrations/*.md, run: the JUnit commands and GitLab job against a real server process,
the DATAGATE_NOTIFY example against a real receiver, and the receiver's signature check; the
MLflow examples against a real mlflow server; the OpenLineage settings against a receiver."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
import yaml
from mlflow import MlflowClient

from app.client import DatagateClient
from app.core.config import Settings
from app.jobs.callbacks import SIGNATURE_HEADER
from app.main import create_app
from tests.conftest import EXAMPLES, REPO, RunningApp, make_settings
from tests.jobs.test_lineage import valid_event
from tests.jobs.test_notifications import Receiver
from tests.reports.test_junit import valid_junit

if TYPE_CHECKING:
    from tests.mlflow_server import MlflowServer
    from tests.server_process import Server

pytest_plugins = ["tests.server_process", "tests.mlflow_server"]

# One page per integration under docs/integrations/; docs/integrations.md lists them.
PAGES = sorted((REPO / "docs" / "integrations").glob("*.md"))
PAGE = "\n".join(page.read_text() for page in PAGES)
VENV_BIN = str(Path(sys.executable).parent)


def example(name: str) -> str:
    """The fenced block after `<!-- example: name -->`."""
    found = re.search(rf"<!-- example: {name} -->\n```\w+\n(.*?)```", PAGE, re.S)
    assert found, f"no page under docs/integrations/ has an example {name!r}"
    return found[1]


def shell(command: str, server: Server, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full = server.env(PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", **env)
    return subprocess.run(
        ["bash", "-e", "-c", command],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    return tmp_path


def test_junit_cli_example_writes_failures_and_keeps_the_exit_code(
    datagate_server: Server, workdir: Path
) -> None:
    run = shell(example("junit-cli"), datagate_server, workdir)
    assert run.returncode == 1, run.stderr
    suite = valid_junit((workdir / "datagate-junit.xml").read_bytes()).find("testsuite")
    assert suite is not None and int(suite.attrib["failures"]) >= 1


def test_gitlab_job_script_passes_and_leaves_the_junit_report_it_declares(
    datagate_server: Server, workdir: Path
) -> None:
    job: dict[str, Any] = yaml.safe_load(example("gitlab"))["data-gate"]
    run = shell("\n".join(job["script"]), datagate_server, workdir)
    assert run.returncode == 0, run.stdout + run.stderr
    assert job["artifacts"]["when"] == "always"
    report = workdir / job["artifacts"]["reports"]["junit"]
    suite = valid_junit(report.read_bytes()).find("testsuite")
    assert suite is not None
    assert (suite.attrib["failures"], suite.attrib["errors"]) == ("0", "0")


def test_junit_api_example_fetches_the_stored_report(
    datagate_server: Server, workdir: Path
) -> None:
    with DatagateClient(datagate_server.url, api_key=datagate_server.write_key) as client:
        report = client.validate(str(EXAMPLES / "penguins_bad.csv"), suite="penguins")
    run = shell(example("junit-api"), datagate_server, workdir, REPORT_ID=report.id)
    assert run.returncode == 0, run.stderr
    suite = valid_junit((workdir / "datagate-junit.xml").read_bytes()).find("testsuite")
    assert suite is not None and suite.attrib["id"] == report.id
    assert int(suite.attrib["failures"]) == report.summary.failed


def verify_function() -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(example("verify"), "docs/integrations/notifications.md", "exec"), namespace)
    return namespace["is_from_datagate"]


def documented_notify() -> tuple[str, list[dict[str, Any]]]:
    """The secret and targets the `notify` example exports, read back from bash."""
    script = example("notify") + '\nprintf "%s\\n%s" "$DATAGATE_CALLBACK_SECRET" "$DATAGATE_NOTIFY"'
    run = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    secret, targets = run.stdout.split("\n", 1)
    return secret, json.loads(targets)


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    served = Receiver()
    yield served
    served.close()


def test_notify_example_is_a_valid_setting() -> None:
    secret, targets = documented_notify()
    settings = Settings(notify=targets, callback_secret=secret)  # type: ignore[arg-type]
    assert [t.kind for t in settings.notify] == ["slack", "webhook"]


@pytest.mark.anyio
async def test_notify_example_delivers_a_failed_report_to_both_targets(
    tmp_path: Path, receiver: Receiver
) -> None:
    """The documented targets, their host swapped for a receiver on loopback (same paths)."""
    secret, targets = documented_notify()
    for target in targets:
        target["url"] = receiver.url + urlsplit(target["url"]).path
    running = RunningApp(
        create_app(make_settings(tmp_path, notify=targets, callback_secret=secret))
    )
    try:
        async with running.client() as client:
            response = await client.post(
                "/v1/validations",
                files={"data": ("penguins_bad.csv", (EXAMPLES / "penguins_bad.csv").read_bytes())},
                data={"suite": "penguins"},
            )
        assert response.status_code == 200
        report_id = response.json()["id"]
        [(headers, body)] = await asyncio.to_thread(receiver.posts, "/datagate", report_id)
        is_from_datagate = verify_function()
        assert is_from_datagate(body, headers[SIGNATURE_HEADER.lower()], secret)
        assert not is_from_datagate(body + b" ", headers[SIGNATURE_HEADER.lower()], secret)
        [(_, slack)] = await asyncio.to_thread(
            receiver.posts, "/services/T000/B000/XXXX", report_id
        )
        assert json.loads(slack)["text"].startswith("*datagate: FAILED*")
    finally:
        running.close()


# --- MLflow: the three examples against a real mlflow server ----------------------------------


def mlflow_runs(server: MlflowServer, experiment: str, dataset: str, also: str = "") -> list[Any]:
    """The runs of `experiment` that hold a report on `dataset` (and match `also`)."""
    client = MlflowClient(tracking_uri=server.url)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no MLflow experiment {experiment!r}"
    query = f"tags.`datagate.dataset` = '{dataset}'" + (f" and {also}" if also else "")
    runs: list[Any] = client.search_runs([found.experiment_id], filter_string=query)
    return runs


def test_mlflow_cli_example_logs_the_failed_report_to_a_new_run(
    datagate_server: Server, mlflow_server: MlflowServer, workdir: Path
) -> None:
    script = example("mlflow-cli").replace("http://127.0.0.1:5000", mlflow_server.url)
    run = shell(script, datagate_server, workdir)
    assert run.returncode == 1, run.stdout + run.stderr  # the gate's code: the data failed
    [logged] = mlflow_runs(mlflow_server, "penguins", "penguins_bad.csv")
    assert logged.info.status == "FINISHED"
    assert logged.data.tags["datagate.verdict"] == "failed"
    assert logged.data.metrics["datagate.failed"] >= 1
    assert f"logged to MLflow started run {logged.info.run_id}" in run.stderr


def test_mlflow_python_example_logs_into_the_training_run(
    datagate_server: Server, mlflow_server: MlflowServer, workdir: Path
) -> None:
    (workdir / "train.py").write_text(example("mlflow-python"))
    run = subprocess.run(
        [sys.executable, "train.py"],
        cwd=workdir,
        env=datagate_server.env(MLFLOW_TRACKING_URI=mlflow_server.url),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    # The script's run, not one that datagate started.
    [logged] = mlflow_runs(
        mlflow_server, "Default", "penguins.csv", "attributes.run_name = 'train-penguins'"
    )
    assert logged.data.params["rows"] == "344"
    assert logged.data.tags["datagate.verdict"] == "passed"
    artifacts = MlflowClient(tracking_uri=mlflow_server.url).list_artifacts(
        logged.info.run_id, "datagate"
    )
    assert sorted(a.path.rsplit(".", 1)[1] for a in artifacts) == ["html", "json"]


def test_mlflow_pytest_example_logs_the_fixtures_report(
    mlflow_server: MlflowServer, workdir: Path
) -> None:
    (workdir / "test_features.py").write_text(example("mlflow-pytest"))
    run = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_features.py"),
            *("--datagate-expectations", str(REPO / "expectations")),
        ],
        cwd=workdir,
        env=mlflow_server.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    [logged] = mlflow_runs(mlflow_server, "Default", "features")
    assert logged.info.status == "FINISHED"
    assert logged.data.metrics["datagate.passed"] == logged.data.metrics["datagate.evaluated"]


# --- OpenLineage: the documented settings, a receiver in the collector's place ----------------


def documented_lineage_env() -> dict[str, str]:
    script = example("openlineage") + "\nenv | grep '^DATAGATE_OPENLINEAGE_'"
    run = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    return dict(line.split("=", 1) for line in run.stdout.splitlines())


@pytest.mark.anyio
async def test_openlineage_example_sends_a_valid_event_for_each_report(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    documented = documented_lineage_env()
    assert urlsplit(documented["DATAGATE_OPENLINEAGE_URL"]).hostname == "marquez"
    documented["DATAGATE_OPENLINEAGE_URL"] = receiver.url  # the collector, on loopback
    for name, value in documented.items():
        monkeypatch.setenv(name, value)
    running = RunningApp(create_app(make_settings(tmp_path)))
    try:
        async with running.client() as client:
            response = await client.post(
                "/v1/validations",
                files={"data": ("penguins_bad.csv", (EXAMPLES / "penguins_bad.csv").read_bytes())},
                data={"suite": "penguins"},
            )
        assert response.status_code == 200
        report = response.json()
        run_id = str(uuid.UUID(report["id"]))
        [(headers, body)] = await asyncio.to_thread(receiver.posts, "/api/v1/lineage", run_id)
    finally:
        running.close()
    assert headers["authorization"] == "Bearer collector-api-key"
    event = valid_event(json.loads(body))
    assert event["job"]["namespace"] == "ml-platform"
    facets = event["inputs"][0]["inputFacets"]
    assert len(facets["dataQualityAssertions"]["assertions"]) == report["summary"]["evaluated"]
    assert facets["dataQualityMetrics"]["rowCount"] == 344


def test_each_integration_has_its_page_listed_and_its_examples_run() -> None:
    index = (REPO / "docs" / "integrations.md").read_text()
    tested = set(re.findall(r'example\("([\w-]+)"\)', Path(__file__).read_text()))
    assert {p.stem for p in PAGES} == {"junit", "notifications", "mlflow", "openlineage"}
    for page in PAGES:
        assert f"](integrations/{page.name})" in index, f"{page.name} is not listed"
        examples = set(re.findall(r"<!-- example: ([\w-]+) -->\n```", page.read_text()))
        assert examples, f"{page.name} has no example"
        assert examples <= tested, f"{page.name}: examples no test runs: {examples - tested}"

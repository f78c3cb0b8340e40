"""The pipeline recipes in docs/recipes, run as far as possible without their orchestrators:
the commands they run are run here against a real server process."""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from tests.conftest import EXAMPLES, REPO

if TYPE_CHECKING:
    from tests.server_process import Server

pytest_plugins = ["tests.server_process"]

RECIPES = REPO / "docs" / "recipes"
VENV_BIN = str(Path(sys.executable).parent)


def shell(command: str, server: Server, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = server.env(PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run(
        ["bash", "-e", "-c", command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def workflow() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((RECIPES / "github-actions.yml").read_text())
    return loaded


def test_actions_workflow_is_valid_against_the_github_schema() -> None:
    run = subprocess.run(
        [
            f"{VENV_BIN}/check-jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            str(RECIPES / "github-actions.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_actions_gate_step_passes_clean_data_and_fails_planted_defects(
    datagate_server: Server, tmp_path: Path
) -> None:
    steps = workflow()["jobs"]["validate"]["steps"]
    command = next(step["run"] for step in steps if step.get("id") == "gate")
    (tmp_path / "examples").mkdir()
    (tmp_path / "examples" / "penguins.csv").write_bytes((EXAMPLES / "penguins.csv").read_bytes())
    passed = shell(command, datagate_server, tmp_path)
    assert passed.returncode == 0, passed.stderr
    assert (tmp_path / "datagate-report.json").exists()

    (tmp_path / "examples" / "penguins.csv").write_bytes(
        (EXAMPLES / "penguins_bad.csv").read_bytes()
    )
    failed = shell(command, datagate_server, tmp_path)
    assert failed.returncode == 1
    assert "column=species" in failed.stdout


def airflow_gate_command(params: dict[str, str]) -> str:
    """GATE_COMMAND from the DAG file, with its {{ params.x }} rendered as Airflow would."""
    tree = ast.parse((RECIPES / "airflow_dag.py").read_text())
    template = next(
        ast.literal_eval(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "GATE_COMMAND" for t in node.targets)
    )
    return re.sub(r"\{\{\s*params\.(\w+)\s*\}\}", lambda m: shlex.quote(params[m[1]]), template)


@pytest.mark.parametrize(("example", "code"), [("penguins.csv", 0), ("penguins_bad.csv", 1)])
def test_airflow_gate_task_command_exits_with_the_verdict(
    datagate_server: Server, tmp_path: Path, example: str, code: int
) -> None:
    data = tmp_path / example
    data.write_bytes((EXAMPLES / example).read_bytes())
    command = airflow_gate_command({"data": str(data), "suite": "penguins"})
    run = shell(command, datagate_server, tmp_path)
    assert run.returncode == code, run.stderr
    assert Path(f"{data}.datagate.json").exists()


@pytest.fixture
def prefect_stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A stand-in `prefect` module: decorators that return the function, a list-backed logger."""
    logged: list[str] = []

    def decorator(*args: Any, **_: Any) -> Any:
        if args and callable(args[0]):
            return args[0]
        return lambda fn: fn

    class Logger:
        def info(self, message: str, *args: Any) -> None:
            logged.append(message % args)

        error = info

    stub = types.ModuleType("prefect")
    stub.flow = decorator  # type: ignore[attr-defined]
    stub.task = decorator  # type: ignore[attr-defined]
    stub.get_run_logger = Logger  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "prefect", stub)
    yield logged


def load_flow() -> Callable[..., str]:
    namespace: dict[str, Any] = {"__name__": "prefect_flow"}
    exec(compile((RECIPES / "prefect_flow.py").read_text(), "prefect_flow.py", "exec"), namespace)
    flow: Callable[..., str] = namespace["training_flow"]
    return flow


def test_prefect_flow_passes_clean_data_and_raises_on_defects(
    datagate_server: Server, prefect_stub: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in datagate_server.env().items():
        if key.startswith("DATAGATE_"):
            monkeypatch.setenv(key, value)
    flow = load_flow()
    assert len(flow(str(EXAMPLES / "penguins.csv"), "penguins")) == 32
    assert any("datagate passed" in line for line in prefect_stub)
    with pytest.raises(RuntimeError, match="failed"):
        flow(str(EXAMPLES / "penguins_bad.csv"), "penguins")
    assert any("expect_column_values_to_be_in_set on species" in line for line in prefect_stub)


@pytest.mark.parametrize(("example", "code"), [("penguins.csv", 0), ("penguins_bad.csv", 1)])
def test_training_script_trains_only_on_data_that_passed(
    datagate_server: Server, tmp_path: Path, example: str, code: int
) -> None:
    model = tmp_path / "model.pkl"
    command = shlex.join(
        [sys.executable, str(RECIPES / "train.py"), str(EXAMPLES / example), str(model)]
    )
    run = shell(command, datagate_server, tmp_path)
    assert run.returncode == code, run.stderr
    assert model.exists() == (code == 0)
    assert (tmp_path / "datagate-report.json").exists()

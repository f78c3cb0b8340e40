"""The README is the operator's manual: it names every setting the service reads, and its CLI
and Python examples run as pasted (against a real `datagate serve` where they need one)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from app.core.config import Settings
from tests.conftest import REPO

if TYPE_CHECKING:
    from tests.server_process import Server

pytest_plugins = ["tests.server_process"]

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readme_documents_every_setting() -> None:
    missing = [
        f"DATAGATE_{name.upper()}"
        for name in Settings.model_fields
        if f"`DATAGATE_{name.upper()}`" not in README
    ]
    assert missing == []


def test_readme_keeps_the_two_set_up_commands_that_ci_runs() -> None:
    assert "make serve" in README and "make test" in README
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "make test" in ci


def blocks(language: str, containing: str) -> list[str]:
    """The README's fenced `language` blocks that contain `containing`."""
    found = re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)
    return [block for block in found if containing in block]


def commands(block: str) -> list[str]:
    """The commands of a shell block, a backslash-continued line joined to its next."""
    return [c for c in re.sub(r"\\\n\s*", " ", block).splitlines() if c.strip()]


def pasted_in(tmp_path: Path) -> Path:
    """A folder where the README's relative paths (examples/...) resolve, outside the repo."""
    (tmp_path / "examples").symlink_to(REPO / "examples")
    (tmp_path / "expectations").symlink_to(REPO / "expectations")
    return tmp_path


def test_readme_cli_examples_run_as_written_against_a_local_server(
    datagate_server: Server, tmp_path: Path
) -> None:
    env = datagate_server.env()
    env["PATH"] = (
        f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # `. .venv/bin/activate`
    )
    folder = pasted_in(tmp_path)
    (block,) = blocks("sh", "datagate suites infer")
    for command in commands(block):
        run = subprocess.run(
            ["bash", "-c", command],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        expected = 1 if "exit 1" in command else 0
        assert run.returncode == expected, (command, run.stderr)


def test_readme_python_examples_run_as_written(datagate_server: Server, tmp_path: Path) -> None:
    folder = pasted_in(tmp_path)
    (client_example,) = blocks("python", "DatagateClient()")
    client = subprocess.run(
        [sys.executable, "-c", client_example],
        cwd=folder,
        env=datagate_server.env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert client.returncode == 0, client.stderr

    (plugin_example,) = blocks("python", "def test_features_are_valid")
    (folder / "test_readme_example.py").write_text(plugin_example)
    plugin = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_readme_example.py"],
        cwd=folder,
        env=datagate_server.env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert plugin.returncode == 0, plugin.stdout + plugin.stderr

"""The image's command and environment, run on this machine: it serves, validates, stops cleanly.

There is no Docker engine here, so the runtime stage's ENV and CMD are read from the
Dockerfile and run with this repository's virtual environment instead of the image's.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.deploy.readers import REPO, Stage

READY_WITHIN_S = 120  # importing Great Expectations and deepchecks is slow on a busy machine
STOP_WITHIN_S = 60
PYTHON_SLIM_ENV = {"LANG": "C.UTF-8"}  # what python:3.11-slim sets besides PATH


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _image_environment(runtime: Stage, builder: Stage, root: Path) -> dict[str, str]:
    """The runtime ENV with the image's folders moved under `root` and its venv this repo's."""
    moved = {
        builder.env()["UV_PROJECT_ENVIRONMENT"]: str(REPO / ".venv"),
        "/tmp": str(root / "tmp"),
    }
    raw = runtime.env({"PATH": "${PATH}"})
    env = dict(PYTHON_SLIM_ENV)
    for key, value in raw.items():
        for image_path, local_path in moved.items():
            # Only whole leading path components, in a value or in each PATH entry.
            entries = value.split(":")
            value = ":".join(
                local_path + entry[len(image_path) :]
                if entry == image_path or entry.startswith(image_path + "/")
                else entry
                for entry in entries
            )
        env[key] = value.replace("${PATH}", os.environ["PATH"])
    env["HOME"] = str(root / "home")
    env["DATAGATE_DATA_DIR"] = str(root / "data")
    env["DATAGATE_EXPECTATIONS_DIR"] = str(root / "expectations")
    return env


def _image_command(runtime: Stage, env: dict[str, str], port: int) -> list[str]:
    """CMD as the image runs it, on loopback and a free port (the service needs no keys there)."""
    command = runtime.exec_form("CMD")
    executable = shutil.which(command[0], path=env["PATH"])
    assert executable == str(REPO / ".venv" / "bin" / command[0]), executable
    args = command[1:]
    args[args.index("--host") + 1] = "127.0.0.1"
    args[args.index("--port") + 1] = str(port)
    return [executable, *args]


@pytest.fixture
def served(
    runtime: Stage, builder: Stage, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    for folder in ("tmp", "home", "data"):
        (tmp_path / folder).mkdir()
    # The image copies the repository's suites into its expectations folder; so does this.
    shutil.copytree(REPO / "expectations", tmp_path / "expectations")
    env = _image_environment(runtime, builder, tmp_path)
    port = _free_port()
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            _image_command(runtime, env, port),
            env=env,
            cwd=tmp_path / "data",
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process, f"http://127.0.0.1:{port}", log_path
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait_ready(process: subprocess.Popen[bytes], base: str, log_path: Path) -> None:
    deadline = time.monotonic() + READY_WITHIN_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.5)
    pytest.fail(f"/readyz not 200 within {READY_WITHIN_S} s:\n{log_path.read_text()[-4000:]}")


@pytest.mark.slow
def test_image_command_serves_validates_the_example_and_stops_on_sigterm(
    served: tuple[subprocess.Popen[bytes], str, Path],
) -> None:
    process, base, log_path = served
    _wait_ready(process, base, log_path)

    with (REPO / "examples" / "penguins.csv").open("rb") as data:
        response = httpx.post(
            f"{base}/v1/validations",
            files={"data": ("penguins.csv", data, "text/csv")},
            data={"suite": "penguins"},
            timeout=120,
        )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["status"] == "passed", report
    # The report is kept in the data folder the image declares as its volume.
    stored = httpx.get(f"{base}/v1/reports/{report['id']}", timeout=30)
    assert stored.status_code == 200
    assert stored.json()["status"] == "passed"
    assert any((log_path.parent / "data").iterdir())

    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=STOP_WITHIN_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {STOP_WITHIN_S} s after SIGTERM")
    assert code == 0, log_path.read_text()[-4000:]

"""A real `mlflow server` on loopback (SQLite backend store, artifacts served from a local folder),
started once per session for the MLflow tests and the docs examples that log to it.

Loaded with `pytest_plugins = ["tests.mlflow_server"]`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.server_process import free_port

# mlflow's server imports much of its stack before it answers; on a busy two-core machine that
# has taken over a minute.
READY_WITHIN_S = 300


@dataclass(frozen=True)
class MlflowServer:
    url: str
    root: Path

    def env(self, **extra: str) -> dict[str, str]:
        """An environment for a process that logs to this server (and to no run yet)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env.update(MLFLOW_TRACKING_URI=self.url, **extra)
        return env


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    root = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--backend-store-uri",
            f"sqlite:///{root / 'mlflow.db'}",
            "--artifacts-destination",
            str(root / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=root,
        env={k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_WITHIN_S
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"mlflow server exited {process.returncode}: {_tail(root)}")
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server not ready within {READY_WITHIN_S} s: {_tail(root)}")
            time.sleep(0.5)
        yield MlflowServer(url=url, root=root)
    finally:
        # Its own session: the server's workers go with it.
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.fixture
def mlflow_tracking(mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """This process's MLflow client pointed at the test server, with no run active."""
    import mlflow

    for name in [k for k in os.environ if k.startswith("MLFLOW_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server.url)
    mlflow.set_tracking_uri(mlflow_server.url)
    yield mlflow_server.url
    while mlflow.active_run() is not None:
        mlflow.end_run()


def _tail(root: Path) -> str:
    return (root / "server.log").read_text(errors="replace")[-2000:]

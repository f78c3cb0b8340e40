"""Real `datagate serve` processes on loopback: start, wait until ready, kill -9 or stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import EXAMPLES, REPO, make_settings

PENGUINS = EXAMPLES / "penguins.csv"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """One service process. Its log goes to a file beside its data, for the tests and for people."""

    def __init__(self, root: Path, name: str = "server", **settings: Any) -> None:
        self.root = root
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / f"{name}.log"
        base = make_settings(root)  # copies the example suites into root/expectations
        env = {k: v for k, v in os.environ.items() if not k.startswith("DATAGATE_")}
        env.update(
            {
                "DATAGATE_DATA_DIR": str(root / "data"),
                "DATAGATE_EXPECTATIONS_DIR": str(base.expectations_dir),
                "DATAGATE_PORT": str(self.port),
                "DATAGATE_WORKERS": "1",
                "DATAGATE_LOG_LEVEL": "INFO",
            }
        )
        env.update({f"DATAGATE_{k.upper()}": str(v) for k, v in settings.items()})
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "app.cli", "serve"],
                cwd=REPO,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.process.returncode}: {self.tail()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not become ready in 120 s: {self.tail()}")

    def kill(self) -> None:
        """kill -9: no shutdown code runs, as when a machine or container dies."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(90)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    """Every server a test starts is registered here and stopped afterwards, whatever happened."""
    started: list[Server] = []
    yield started
    for server in started:
        if server.process is not None and server.process.poll() is None:
            server.kill()


def wait_until_ended(client: httpx.Client, job_id: str, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state: dict[str, Any] = client.get(f"/v1/validations/{job_id}").json()
        if state["status"] in ("done", "error"):
            return state
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not end within {timeout} s")


def penguins_times(copies: int) -> bytes:
    """The penguins CSV with its rows repeated: real data, as slow as a test needs."""
    header, *rows = PENGUINS.read_text().splitlines(keepends=True)
    return (header + "".join(rows) * copies).encode()

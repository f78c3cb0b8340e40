"""A real `datagate serve` process on a free port, shared by the CLI, client and recipe tests.

Loaded with `pytest_plugins = ["tests.server_process"]`, so that one process serves them all.
Test modules import it only under TYPE_CHECKING: pytest must import it first, as a plugin, to
rewrite its asserts.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXPECTATIONS, REPO

WRITE_KEY = "tooling-write-key-0123456789"
READ_KEY = "tooling-read-key-0123456789"
READY_WITHIN_S = 120


@dataclass(frozen=True)
class Server:
    url: str
    root: Path
    write_key: str = WRITE_KEY
    read_key: str = READ_KEY

    def env(self, **extra: str) -> dict[str, str]:
        """An environment for a client process: the server's URL and write key, no CI flag."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DATAGATE_")}
        env.update(DATAGATE_URL=self.url, DATAGATE_API_KEY=WRITE_KEY)
        env.update(extra)
        return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def datagate_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("served")
    shutil.copytree(EXPECTATIONS, root / "expectations")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATAGATE_")}
    env.update(
        DATAGATE_DATA_DIR=str(root / "data"),
        DATAGATE_EXPECTATIONS_DIR=str(root / "expectations"),
        DATAGATE_WORKERS="1",
        DATAGATE_API_KEYS=f"{WRITE_KEY}:write,{READ_KEY}:read",
        DATAGATE_LOG_LEVEL="WARNING",
        # The shipped examples may be named by reference (file://) as well as uploaded.
        DATAGATE_DATA_ROOTS=str(Path(__file__).resolve().parents[1] / "examples"),
    )
    log = (root / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + READY_WITHIN_S
    while True:
        if process.poll() is not None:
            pytest.fail(f"datagate serve exited {process.returncode}: {_tail(root)}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"datagate serve not ready within {READY_WITHIN_S} s: {_tail(root)}")
        time.sleep(0.3)
    yield Server(url=url, root=root)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()


def _tail(root: Path) -> str:
    return (root / "server.log").read_text(errors="replace")[-2000:]

"""Fixtures shared by every test: fixed seeds, settings in a temporary folder, a running app."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.main import create_app

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
EXPECTATIONS = REPO / "expectations"


POSTGRES_ADMIN_URL = os.environ.get(
    "DATAGATE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the local PostgreSQL server, dropped afterwards."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"datagate_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # the server is absent on this machine
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {type(exc).__name__}")
    yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(autouse=True)
def _fixed_seeds() -> None:
    random.seed(1234)
    np.random.seed(1234)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_settings(root: Path, **overrides: object) -> Settings:
    expectations = root / "expectations"
    if not expectations.exists():
        shutil.copytree(EXPECTATIONS, expectations)
    values: dict[str, object] = {
        "data_dir": root / "data",
        "expectations_dir": expectations,
        "workers": 1,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


class RunningApp:
    """An app whose lifespan (workers, job dispatcher) runs on its own loop in a thread, shared
    by many tests; requests reach it through httpx's ASGI transport on each test's loop."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._context = app.router.lifespan_context(app)
        asyncio.run_coroutine_threadsafe(self._context.__aenter__(), self._loop).result(180)

    def client(self) -> AsyncClient:
        """An HTTP client that reaches this app in-process, on the caller's loop."""
        return AsyncClient(transport=ASGITransport(app=self.app), base_url="http://testserver")

    def close(self) -> None:
        stop = self._context.__aexit__(None, None, None)
        asyncio.run_coroutine_threadsafe(stop, self._loop).result(120)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()


@pytest.fixture(scope="session")
def service_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("service")


@pytest.fixture(scope="session")
def running_app(service_root: Path) -> Iterator[RunningApp]:
    settings = make_settings(service_root, max_upload_bytes=5_000_000, max_rows=100_000)
    # Two broken suites beside the real ones: the service must start and name the problems.
    (settings.expectations_dir / "broken_json.json").write_text('{"name": "x", "expectations": [')
    (settings.expectations_dir / "unknown_type.json").write_text(
        '{"name": "unknown_type", "expectations": [{"type": "expect_magic", "kwargs": {}}]}'
    )
    running = RunningApp(create_app(settings))
    yield running
    running.close()


@pytest.fixture
async def client(running_app: RunningApp) -> AsyncIterator[AsyncClient]:
    async with running_app.client() as http:
        yield http

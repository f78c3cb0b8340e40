"""Fixtures shared by every test: fixed seeds, settings in a temporary folder, a running app."""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.main import create_app

# httpx's in-process clients send `Host: testserver`, which a keyless service refuses as a
# possible DNS-rebinding page (app/core/host_guard.py): the tests' own name is allowed.
os.environ.setdefault("DATAGATE_ALLOWED_HOSTS", "testserver")

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
EXPECTATIONS = REPO / "expectations"


POSTGRES_ADMIN_URL = os.environ.get(
    "DATAGATE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new database on the local PostgreSQL server (its admin URL), dropped afterwards."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"datagate_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # the server is absent on this machine
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {type(exc).__name__}")
    try:
        yield make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def reader_role(database_url: str) -> Iterator[str]:
    """A read-only login role on the database at `database_url` (an admin URL), as
    docs/references.md tells operators to create for datagate: SELECT on the tables of `public`,
    present and future. Yields the role's URL; the role is dropped afterwards."""
    role = f"datagate_reader_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    database = create_engine(database_url, isolation_level="AUTOCOMMIT")
    name = make_url(database_url).database
    with admin.connect() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
    try:
        with database.connect() as conn:
            for statement in (
                f'GRANT CONNECT ON DATABASE "{name}" TO "{role}"',
                f'GRANT USAGE ON SCHEMA public TO "{role}"',
                f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"',
                f'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO "{role}"',
                f'ALTER ROLE "{role}" SET default_transaction_read_only = on',
            ):
                conn.execute(text(statement))
        yield make_url(database_url).set(username=role).render_as_string(hide_password=False)
    finally:
        with database.connect() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}"'))
        database.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the local PostgreSQL server, dropped afterwards."""
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture
def postgres_reader_url(postgres_url: str) -> Iterator[str]:
    """A read-only role's URL on `postgres_url`'s database (see `reader_role`)."""
    with reader_role(postgres_url) as url:
        yield url


@pytest.fixture(autouse=True)
def _fixed_seeds() -> None:
    random.seed(1234)
    np.random.seed(1234)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test on the shared `datagate serve` process is a `process` test: `make test-fast`
    leaves it out without each module having to say so."""
    for item in items:
        if "datagate_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.process)


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


async def _started(app: FastAPI) -> None:
    await app.state.startup


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
        # The lifespan returns before a worker is warm; the tests want the started service.
        asyncio.run_coroutine_threadsafe(_started(app), self._loop).result(180)

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

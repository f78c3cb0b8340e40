"""API suites in the database: two catalogs on one database behave like two replicas."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from app.checks.expectations import SuiteRegistry, parse_suite
from app.checks.suite_store import SuiteCatalog, SuiteStore
from app.core.db import make_engine, make_sessionmaker, migrate
from app.core.errors import Conflict, ServiceBusy, SuiteInvalid, SuiteNotFound
from tests.conftest import EXPECTATIONS

SUITE = '{"expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "a"}}]}'
OTHER = '{"expectations": [{"type": "expect_column_to_exist", "kwargs": {"column": "b"}}]}'


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'suites.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    migrate(engine)
    request.addfinalizer(engine.dispose)
    return engine


def replica(engine: Engine) -> SuiteCatalog:
    files = SuiteRegistry.from_directory(EXPECTATIONS)
    return SuiteCatalog(files, SuiteStore(make_sessionmaker(engine)))


def test_a_suite_put_on_one_replica_runs_on_another(engine: Engine) -> None:
    first, second = replica(engine), replica(engine)
    assert first.put(parse_suite("shared", SUITE, "api")) is True
    assert second.get("shared").origin == "api"
    assert second.get("shared").sha256 == first.get("shared").sha256

    first.put(parse_suite("shared", OTHER, "api"))
    assert second.get("shared").definition["expectations"][0]["kwargs"] == {"column": "b"}

    second.delete("shared")
    with pytest.raises(SuiteNotFound):
        first.get("shared")


def test_api_suites_are_loaded_at_start_up_and_listed_after_refresh(engine: Engine) -> None:
    first = replica(engine)
    first.put(parse_suite("kept", SUITE, "api"))
    restarted = replica(engine)
    assert "kept" in restarted.names()
    assert "penguins" in restarted.names()

    first.delete("kept")
    restarted.refresh()
    assert "kept" not in restarted.names()


def test_file_suites_cannot_be_replaced_or_deleted(engine: Engine) -> None:
    catalog = replica(engine)
    with pytest.raises(Conflict, match="version control"):
        catalog.put(parse_suite("penguins", SUITE, "api"))
    with pytest.raises(Conflict):
        catalog.delete("penguins")
    assert catalog.get("penguins").origin == "file"


def test_a_stored_suite_that_no_longer_parses_is_listed_as_broken(engine: Engine) -> None:
    catalog = replica(engine)
    catalog.put(parse_suite("decayed", SUITE, "api"))
    with engine.begin() as connection:
        connection.exec_driver_sql(
            "UPDATE suites SET definition = '{\"expectations\": 3}', sha256 = 'x' "
            "WHERE name = 'decayed'"
        )
    restarted = replica(engine)
    assert "decayed" in restarted.errors
    with pytest.raises(SuiteInvalid):
        restarted.get("decayed")


class UnreachableStore(SuiteStore):
    def fetch(self, name: str) -> None:
        raise OperationalError("SELECT", {}, Exception("connection refused"))


def test_a_replica_keeps_running_its_cached_suite_while_the_database_is_away(
    engine: Engine,
) -> None:
    catalog = replica(engine)
    catalog.put(parse_suite("cached", SUITE, "api"))
    catalog.store = UnreachableStore(make_sessionmaker(engine))
    assert catalog.get("cached").origin == "api"
    with pytest.raises(ServiceBusy):
        catalog.get("never-loaded")

"""Fixtures for the deployment tests: the parsed Dockerfile stages and the Compose file."""

from __future__ import annotations

import pytest
import yaml

from tests.deploy.readers import COMPOSE_FILE, DOCKERFILE, Stage, parse_dockerfile


@pytest.fixture(scope="session")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


@pytest.fixture(scope="session")
def runtime(stages: list[Stage]) -> Stage:
    return stages[-1]


@pytest.fixture(scope="session")
def builder(stages: list[Stage]) -> Stage:
    return next(stage for stage in stages if stage.name == "builder")


@pytest.fixture(scope="session")
def compose() -> dict[str, object]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded

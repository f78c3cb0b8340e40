"""Fixtures for the Great Expectations engine: hand-built frames and suites."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from app.checks.expectations import LoadedSuite, parse_suite

SuiteFactory = Callable[..., LoadedSuite]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A warehouse database for the SQL engine: a SQLite file, then a fresh PostgreSQL one."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'warehouse.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def people() -> pd.DataFrame:
    """Four rows, one missing score, one duplicated name, one odd date."""
    return pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "name": ["ann", "bob", "cat", "cat"],
            "score": [0.5, 1.5, 2.5, np.nan],
            "joined": ["2024-01-01", "2024-02-01", "2024-03-01", "01/04/2024"],
            "seen": pd.to_datetime(["2024-05-01", "2024-05-02", "2024-05-03", "2024-05-04"]),
        }
    )


@pytest.fixture
def suite_of() -> SuiteFactory:
    """Build a checked inline suite from expectation dicts."""

    def build(*expectations: dict[str, Any], name: str = "inline") -> LoadedSuite:
        text = json.dumps({"name": name, "expectations": list(expectations)})
        return parse_suite(name, text, "inline")

    return build

"""Fixtures for the ingestion tests: the anyio backend and fixed random seeds."""

from __future__ import annotations

import random

import numpy as np
import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def fixed_seeds() -> None:
    random.seed(20261124)
    np.random.seed(20261124)

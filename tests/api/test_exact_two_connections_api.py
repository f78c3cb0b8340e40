"""A validation whose data and reference are tables on two different connections (a SQLite file
and a PostgreSQL database): the set checks read every row of both, streamed, through the API."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from httpx import AsyncClient

from app.main import create_app
from tests.checks.leakage_scenario import ROLES, Truth, contaminated_pair
from tests.conftest import RunningApp, fresh_postgres_database, make_settings, reader_role

pytestmark = pytest.mark.anyio

ROWS = 2_000


@pytest.fixture(scope="module")
def pair() -> tuple[pd.DataFrame, pd.DataFrame, Truth]:
    """2,000 training and 2,000 test rows: 10% of the test rows copy training rows, 5% of
    the test ids are training ids, 1% of the test dates are training dates, 20 rows hold a
    category training never had."""
    return contaminated_pair(ROWS)


@pytest.fixture(scope="module")
def two_connections_app(
    tmp_path_factory: pytest.TempPathFactory, pair: tuple[pd.DataFrame, pd.DataFrame, Truth]
) -> Iterator[RunningApp]:
    reference, data, _ = pair
    folder = tmp_path_factory.mktemp("lite")
    lite = sa.create_engine(f"sqlite:///{folder / 'test.db'}")
    with lite.begin() as conn:
        data.to_sql("test_rows", conn, index=False)
    lite.dispose()
    with fresh_postgres_database() as admin_url:
        engine = sa.create_engine(admin_url)
        with engine.begin() as conn:
            reference.to_sql("train_rows", conn, index=False)
        engine.dispose()
        with reader_role(admin_url) as reader_url, pytest.MonkeyPatch.context() as patch:
            # The workers read the connections from the environment they inherit.
            connections = {"lite": f"sqlite:///{folder / 'test.db'}", "pg": reader_url}
            patch.setenv("DATAGATE_CONNECTIONS", json.dumps(connections))
            settings = make_settings(tmp_path_factory.mktemp("service"))
            (settings.expectations_dir / "empty.json").write_text(
                json.dumps({"name": "empty", "expectations": []})
            )
            running = RunningApp(create_app(settings))
            yield running
            running.close()


@pytest.fixture
async def client(two_connections_app: RunningApp) -> AsyncIterator[AsyncClient]:
    async with two_connections_app.client() as http:
        yield http


async def test_leaks_between_two_connections_are_measured_on_every_row(
    client: AsyncClient, pair: tuple[pd.DataFrame, pd.DataFrame, Truth]
) -> None:
    _, _, truth = pair
    body: dict[str, Any] = {
        "data": {"connection": "lite", "table": "test_rows"},
        "reference": {"connection": "pg", "table": "train_rows"},
        "suite": "empty",
        "label": ROLES.label,
        "datetime": ROLES.datetime,
        "index": ROLES.index,
        "categorical": ROLES.categorical,
    }
    response = await client.post("/v1/validations", json=body)
    assert response.status_code == 200, response.text
    report = response.json()
    rows = {
        (c["name"], c.get("column")): c for c in report["checks"] if c["source"] == "deepchecks"
    }
    mix = rows[("TrainTestSamplesMix", None)]
    assert mix["outcome"] == "failed"
    assert mix["observed"]["ratio"] == truth.samples_mix == 0.1
    expected = {
        ("TrainTestSamplesMix", None): truth.samples_mix,
        ("IndexTrainTestLeakage", None): truth.index_leakage,
        ("NewCategoryTrainTest", "cat_0"): truth.new_category_ratio,
    }
    for key in expected:
        details = rows[key]["details"]
        assert details["method"] == "exact", key
        assert details["computed_in"] == "stream", key
        assert details["rows_used"] == {"data": ROWS, "reference": ROWS}, key
        assert rows[key]["outcome"] == "failed", key
    index = rows[("IndexTrainTestLeakage", None)]["observed"]["leakage_ratio"]
    assert index == pytest.approx(truth.index_leakage)
    new = rows[("NewCategoryTrainTest", "cat_0")]
    assert "brand_new" in json.dumps(new["observed"])
    overlap = rows[("DateTrainTestLeakageOverlap", None)]
    assert overlap["details"]["computed_in"] == "stream"
    assert overlap["outcome"] == "failed"

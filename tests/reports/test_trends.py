"""Trends over a dataset's runs and the comparison of two runs (issue 16 items 3 and 4): the
figures stored with each report, the JSON and pages that read them, and the migration."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from httpx import AsyncClient
from sqlalchemy import Engine, func, insert, select

from app.core.db import (
    MIGRATIONS_DIR,
    MetricRow,
    ReportRow,
    make_engine,
    make_sessionmaker,
    migrate,
)
from app.jobs.queue import JobQueue
from app.reports.compare import compare
from app.reports.model import (
    CheckResult,
    ColumnInfo,
    ColumnProfile,
    DatasetInfo,
    DatasetProfile,
    Report,
    SuiteInfo,
    summarise,
)
from app.reports.run_metrics import report_metrics
from app.reports.store import ReportStore, report_row
from app.reports.trends import Trends, downsample
from tests.conftest import RunningApp

START = datetime(2026, 1, 1, tzinfo=UTC)


def make_run(
    dataset: str,
    *,
    day: int,
    price_nulls: int = 0,
    failing: bool = False,
    drift: float = 0.05,
    profiles: bool = True,
    extra_column: bool = False,
) -> Report:
    """One run of 100 rows: a not-null check on `price` (mostly 0.95), a FeatureDrift row, and
    the data's profile (price's nulls and mean) unless `profiles` is False."""
    rows = 100
    checks = [
        CheckResult(
            source="great_expectations",
            category="missing",
            name="expect_column_values_to_not_be_null",
            column="price",
            success=not failing,
            outcome="failed" if failing else "passed",
            observed={"unexpected_count": price_nulls, "unexpected_percent": price_nulls},
            expected={"mostly": 0.95},
        ),
        CheckResult(
            source="deepchecks",
            category="drift",
            name="FeatureDrift",
            column="price",
            success=drift <= 0.1,
            outcome="passed" if drift <= 0.1 else "failed",
            observed={"drift_score": drift, "method": "Wasserstein"},
            expected={"max_drift_score": 0.1},
        ),
    ]
    status, summary = summarise(checks)
    columns = [
        ColumnInfo(name="price", dtype="float64", null_count=price_nulls),
        ColumnInfo(name="city", dtype="object"),
    ]
    if extra_column:
        columns.append(ColumnInfo(name="discount", dtype="float64"))
    report = Report(
        id=uuid.uuid4().hex,
        status=status,
        success=status == "passed",
        created_at=START + timedelta(days=day),
        dataset=DatasetInfo(name=dataset, format="csv", rows=rows, columns=columns),
        suite=SuiteInfo(name="prices", sha256="0" * 64),
        summary=summary,
        checks=checks,
    )
    if profiles:
        report.profiles["data"] = DatasetProfile(
            rows=rows,
            columns=[
                ColumnProfile(
                    name="price",
                    kind="number",
                    count=rows,
                    nulls=price_nulls,
                    mean=10.0 + day,
                    std=2.0,
                    quantiles={"p50": 10.0 + day},
                ),
                ColumnProfile(name="city", kind="string", count=rows, distinct=3),
            ],
        )
    return report


def sqlite_store(path: Path) -> tuple[ReportStore, Engine]:
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    return ReportStore(make_sessionmaker(engine)), engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ReportStore, Engine]]:
    if request.param == "sqlite":
        found, engine = sqlite_store(tmp_path / "r.db")
        yield found, engine
    else:
        url = request.getfixturevalue("postgres_url")
        engine = make_engine(url)
        migrate(engine)
        yield ReportStore(make_sessionmaker(engine)), engine
    engine.dispose()


def stored_metrics(engine: Engine, report_id: str) -> dict[tuple[str, str], MetricRow]:
    with make_sessionmaker(engine)() as session:
        rows = session.scalars(select(MetricRow).where(MetricRow.report_id == report_id)).all()
    return {(r.metric, r.subject): r for r in rows}


# --- the figures of a report -------------------------------------------------------------------


def test_store_writes_each_figure_of_a_report_with_it(store: tuple[ReportStore, Engine]) -> None:
    reports, engine = store
    run = reports.save(make_run("prices.csv", day=1, price_nulls=20, failing=True, drift=0.3))
    figures = stored_metrics(engine, run.id)
    assert figures[("verdict", "")].outcome == "failed"
    assert figures[("verdict", "")].value == 2  # both checks failed
    assert figures[("rows", "")].value == 100
    assert figures[("null_share", "price")].value == pytest.approx(0.2)
    assert figures[("mean", "price")].value == pytest.approx(11.0)
    share = figures[("unexpected_share", "expect_column_values_to_not_be_null[price]")]
    assert (share.value, share.threshold, share.outcome) == (
        pytest.approx(0.2),
        pytest.approx(0.05),
        "failed",
    )
    drift = figures[("drift_score", "FeatureDrift[price]")]
    assert (drift.value, drift.threshold) == (pytest.approx(0.3), pytest.approx(0.1))
    assert all(
        r.dataset_name == "prices.csv" and r.created_at == run.created_at for r in figures.values()
    )


def test_saving_a_report_again_replaces_its_figures(store: tuple[ReportStore, Engine]) -> None:
    reports, engine = store
    run = make_run("prices.csv", day=1, price_nulls=1)
    reports.save(run)
    run.dataset.rows = 250
    reports.save(run)
    assert stored_metrics(engine, run.id)[("rows", "")].value == 250
    assert len(stored_metrics(engine, run.id)) == len(report_metrics(run))


@pytest.mark.postgres
def test_the_minimal_report_stored_for_a_refused_one_has_its_figures(postgres_url: str) -> None:
    # 600 characters do not fit dataset_name: PostgreSQL refuses the report and its figures.
    engine = make_engine(postgres_url)
    migrate(engine)
    reports = ReportStore(make_sessionmaker(engine))
    stored = reports.save(make_run("n" * 600, day=1, failing=True))
    assert stored.status == "error" and stored.dataset.name == "n" * 512
    figures = stored_metrics(engine, stored.id)
    assert figures[("verdict", "")].outcome == "error"
    assert reports.trends("n" * 512).runs == 1
    engine.dispose()


def test_without_profiles_null_shares_come_from_the_dataset_columns() -> None:
    run = make_run("prices.csv", day=1, price_nulls=7, profiles=False)
    figures = {m.key: m for m in report_metrics(run)}
    assert figures[("null_share", "price")].value == pytest.approx(0.07)
    assert figures[("null_share", "city")].value == 0
    assert ("mean", "price") not in figures


def test_a_check_without_share_or_score_is_followed_by_its_outcome() -> None:
    run = make_run("prices.csv", day=1)
    run.checks.append(
        CheckResult(
            source="great_expectations",
            category="schema",
            name="expect_column_to_exist",
            column="price",
            success=False,
            outcome="failed",
        )
    )
    figures = {m.key: m for m in report_metrics(run)}
    assert figures[("outcome", "expect_column_to_exist[price]")].value == 1.0


def test_retention_deletes_the_figures_with_their_reports(tmp_path: Path) -> None:
    reports, engine = sqlite_store(tmp_path / "r.db")
    old = reports.save(make_run("prices.csv", day=1))  # 2026: older than a day
    kept = reports.save(make_run("prices.csv", day=1))
    with make_sessionmaker(engine).begin() as session:
        session.query(ReportRow).filter(ReportRow.id == kept.id).update(
            {ReportRow.created_at: datetime.now(UTC)}
        )
    JobQueue(make_sessionmaker(engine), owner="test").purge_reports(timedelta(days=1))
    assert stored_metrics(engine, old.id) == {}
    assert stored_metrics(engine, kept.id) != {}
    engine.dispose()


# --- trends --------------------------------------------------------------------------------------


def test_trends_hold_each_runs_values_oldest_first(store: tuple[ReportStore, Engine]) -> None:
    reports, _ = store
    runs = [
        reports.save(make_run("prices.csv", day=d, price_nulls=d, failing=d >= 4))
        for d in (3, 1, 4, 2)
    ]
    reports.save(make_run("other.csv", day=5, price_nulls=50))
    trends = reports.trends("prices.csv")
    assert (trends.stored_runs, trends.runs) == (4, 4)
    ordered = sorted(runs, key=lambda r: r.created_at)
    assert [v.report_id for v in trends.verdicts] == [r.id for r in ordered]
    assert [v.status for v in trends.verdicts] == ["passed", "passed", "passed", "failed"]
    series = {(s.metric, s.subject): s for s in trends.series}
    nulls = series[("null_share", "price")]
    assert nulls.runs == [0, 1, 2, 3]
    assert nulls.values == pytest.approx([0.01, 0.02, 0.03, 0.04])
    share = series[("unexpected_share", "expect_column_values_to_not_be_null[price]")]
    assert share.threshold == pytest.approx(0.05)
    assert share.outcomes == ["passed", "passed", "passed", "failed"]
    assert series[("mean", "price")].values == [11.0, 12.0, 13.0, 14.0]


def test_trends_window_takes_the_newest_runs_within_since_and_until(
    store: tuple[ReportStore, Engine],
) -> None:
    reports, _ = store
    runs = [reports.save(make_run("prices.csv", day=d)) for d in range(1, 8)]
    assert [v.report_id for v in reports.trends("prices.csv", limit=3).verdicts] == [
        r.id for r in runs[-3:]
    ]
    window = reports.trends(
        "prices.csv", since=START + timedelta(days=2), until=START + timedelta(days=4)
    )
    assert [v.report_id for v in window.verdicts] == [r.id for r in runs[1:4]]
    assert all(s.runs == [0, 1, 2] for s in window.series)


def test_downsampling_keeps_the_first_the_last_and_every_spike() -> None:
    values: list[float | None] = [float(i % 7) for i in range(5000)]
    values[1234], values[4321] = 100.0, -100.0
    kept = downsample(values, max_points=100)
    assert len(kept) <= 100
    assert kept[0] == 0 and kept[-1] == 4999
    assert 1234 in kept and 4321 in kept
    assert downsample([1.0, None, 2.0]) == [0, 2]


# --- comparison ---------------------------------------------------------------------------------


def test_comparison_shows_a_planted_regression() -> None:
    before = make_run("prices.csv", day=1, price_nulls=1)
    after = make_run("prices.csv", day=2, price_nulls=30, failing=True, extra_column=True)
    after.dataset.columns[1].dtype = "string"
    result = compare(before, after)
    assert [c.key for c in result.started_failing] == ["expect_column_values_to_not_be_null[price]"]
    assert result.started_failing[0].before == "passed"
    assert result.stopped_failing == []
    top = result.moved[0]
    assert (top.metric, top.subject) in {
        ("null_share", "price"),
        ("unexpected_share", "expect_column_values_to_not_be_null[price]"),
    }
    assert (top.before, top.after) == (pytest.approx(0.01), pytest.approx(0.3))
    assert top.relative == pytest.approx(29.0)
    changes = {(s.column, s.change) for s in result.schema_changes}
    assert changes == {("discount", "added"), ("city", "dtype")}
    assert result.profiles_compared
    profile = {(c.subject, c.metric): c for c in result.profile_changes}
    assert profile[("price", "null_share")].after == pytest.approx(0.3)
    assert profile[("price", "mean")].change == pytest.approx(1.0)
    # The other way round the check stopped failing.
    assert [c.key for c in compare(after, before).stopped_failing] == [
        "expect_column_values_to_not_be_null[price]"
    ]


def test_comparison_without_profiles_says_so() -> None:
    result = compare(make_run("a", day=1, profiles=False), make_run("a", day=2))
    assert not result.profiles_compared and result.profile_changes == []


# --- migration ----------------------------------------------------------------------------------


def test_upgrade_from_0003_keeps_existing_reports_and_adds_the_metrics_table(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0003")
    old = make_run("prices.csv", day=1)
    row = report_row(old)
    with engine.begin() as connection:
        connection.execute(
            insert(ReportRow.__table__),  # type: ignore[arg-type]
            [{c.name: getattr(row, c.key) for c in ReportRow.__table__.columns}],
        )
    migrate(engine)
    reports = ReportStore(make_sessionmaker(engine))
    assert reports.get(old.id) == old
    # Old reports get no figures (no backfill): the dataset exists, with no run to draw.
    trends = reports.trends("prices.csv")
    assert (trends.stored_runs, trends.runs) == (1, 0)
    new = reports.save(make_run("prices.csv", day=2))
    assert [v.report_id for v in reports.trends("prices.csv").verdicts] == [new.id]
    assert reports.previous_run(new) == old.id
    with make_sessionmaker(engine)() as session:
        assert session.scalar(select(func.count()).select_from(MetricRow)) == len(
            report_metrics(new)
        )
    engine.dispose()


# --- the API and the pages ----------------------------------------------------------------------

HOSTILE = 'a/b "<script>alert(1)</script>" ünï/../x?y#z'


@pytest.fixture
def saved(running_app: RunningApp) -> tuple[str, Report, Report]:
    """Two runs of a fresh dataset in the shared app's store: a clean one, then a regression."""
    name = f"trend-{uuid.uuid4().hex[:8]}/{HOSTILE}"
    reports: ReportStore = running_app.app.state.store
    first = reports.save(make_run(name, day=1, price_nulls=1))
    second = reports.save(make_run(name, day=2, price_nulls=30, failing=True))
    return name, first, second


@pytest.mark.anyio
async def test_trends_json_matches_the_reports(
    client: AsyncClient, saved: tuple[str, Report, Report]
) -> None:
    from urllib.parse import quote

    name, first, second = saved
    response = await client.get(f"/v1/datasets/{quote(name, safe='')}/trends")
    assert response.status_code == 200, response.text
    body = response.json()
    Trends.model_validate(body)  # the JSON written by hand is the documented schema
    assert body["dataset"] == name and body["runs"] == 2
    assert body["verdicts"][1]["created_at"] == second.created_at.isoformat().replace("+00:00", "Z")
    assert [v["report_id"] for v in body["verdicts"]] == [first.id, second.id]
    nulls = next(
        s for s in body["series"] if (s["metric"], s["subject"]) == ("null_share", "price")
    )
    assert [p["value"] for p in nulls["points"]] == pytest.approx([0.01, 0.3])
    assert [p["report_id"] for p in nulls["points"]] == [first.id, second.id]
    share = next(s for s in body["series"] if s["metric"] == "unexpected_share")
    assert share["threshold"] == pytest.approx(0.05)
    assert [p["outcome"] for p in share["points"]] == ["passed", "failed"]
    assert (
        await client.get(f"/v1/datasets/{quote(name, safe='')}/trends?limit=0")
    ).status_code == 422
    bad_time = await client.get(f"/v1/datasets/{quote(name, safe='')}/trends?since=yesterday")
    assert bad_time.status_code == 422 and "since" in bad_time.text
    # A time UTC cannot hold (year 1 an hour east of Greenwich) is a 422 too, not a 500.
    early = quote("0001-01-01T00:00:00+01:00", safe="")
    too_early = await client.get(f"/v1/datasets/{quote(name, safe='')}/trends?until={early}")
    assert too_early.status_code == 422 and "until" in too_early.text


@pytest.mark.anyio
async def test_unknown_dataset_and_reports_are_404(client: AsyncClient) -> None:
    missing = await client.get("/v1/datasets/no-such-dataset-x/trends")
    assert missing.status_code == 404 and "no-such-dataset-x" in missing.text
    assert (await client.get("/datasets/no-such-dataset-x")).status_code == 404
    assert (await client.get("/v1/reports/nope1/compare/nope2")).status_code == 404
    page = await client.get("/reports/nope1/compare/nope2")
    assert page.status_code == 404 and "nope1" in page.text


@pytest.mark.anyio
async def test_dataset_page_escapes_a_hostile_name_and_links_each_run(
    client: AsyncClient, saved: tuple[str, Report, Report]
) -> None:
    from urllib.parse import quote

    name, first, second = saved
    page = await client.get(f"/datasets/{quote(name, safe='')}")
    assert page.status_code == 200, page.text
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert (
        f'href="/reports/{first.id}"' in page.text and f'href="/reports/{second.id}"' in page.text
    )
    assert f"/reports/{first.id}/compare/{second.id}" in page.text
    assert 'class="trend-chart"' in page.text and "style=" not in page.text
    assert (await client.get(f"/datasets/{quote(name, safe='')}?limit=abc")).status_code == 422
    # Digits Python's int() refuses, and a time UTC cannot hold: 422, not 500.
    assert (await client.get(f"/datasets/{quote(name, safe='')}?limit=%C2%B2")).status_code == 422
    early = quote("0001-01-01T00:00:00+01:00", safe="")
    assert (await client.get(f"/datasets/{quote(name, safe='')}?since={early}")).status_code == 422
    assert (await client.get("/reports?page=%C2%B2")).status_code == 422


@pytest.mark.anyio
async def test_report_page_links_to_trends_and_to_the_previous_run(
    client: AsyncClient, saved: tuple[str, Report, Report]
) -> None:
    from urllib.parse import quote

    name, first, second = saved
    page = (await client.get(f"/reports/{second.id}")).text
    assert f'href="/datasets/{quote(name, safe="")}"' in page
    assert f'href="/reports/{first.id}/compare/{second.id}"' in page
    assert "Compare with previous run" not in (await client.get(f"/reports/{first.id}")).text


@pytest.mark.anyio
async def test_compare_page_and_json_show_the_regression(
    client: AsyncClient, saved: tuple[str, Report, Report]
) -> None:
    _, first, second = saved
    body = (await client.get(f"/v1/reports/{first.id}/compare/{second.id}")).json()
    assert [c["key"] for c in body["started_failing"]] == [
        "expect_column_values_to_not_be_null[price]"
    ]
    page = await client.get(f"/reports/{first.id}/compare/{second.id}")
    assert page.status_code == 200
    assert "expect_column_values_to_not_be_null[price]" in page.text
    assert "<script>alert" not in page.text


@pytest.mark.anyio
async def test_a_validation_through_the_service_adds_a_point_to_its_trends(
    client: AsyncClient,
) -> None:
    from tests.conftest import EXAMPLES

    name = f"trend-service-{uuid.uuid4().hex[:8]}"
    ids = []
    for example in ("penguins.csv", "penguins_bad.csv"):
        response = await client.post(
            "/v1/validations",
            files={"data": (example, (EXAMPLES / example).read_bytes())},
            data={"suite": "penguins", "dataset_name": name},
        )
        assert response.status_code == 200, response.text
        ids.append(response.json()["id"])
    body = (await client.get(f"/v1/datasets/{name}/trends")).json()
    assert [v["report_id"] for v in body["verdicts"]] == ids
    assert [v["status"] for v in body["verdicts"]] == ["passed", "failed"]
    rows = next(s for s in body["series"] if s["metric"] == "rows")
    assert [p["value"] for p in rows["points"]] == [344, 344]
    compared = (await client.get(f"/v1/reports/{ids[0]}/compare/{ids[1]}")).json()
    assert compared["started_failing"], "penguins_bad.csv fails checks penguins.csv passes"

"""The report store keeps reports across restarts and pages through them newest first."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.core.db import make_engine, make_sessionmaker, migrate
from app.core.errors import NotFound
from app.reports.model import CheckResult, DatasetInfo, Report, SuiteInfo, summarise
from app.reports.store import ReportFilter, ReportStore


def make_report(
    *, dataset: str = "train.csv", suite: str = "penguins", failed: bool = False, age_s: int = 0
) -> Report:
    checks = [
        CheckResult(
            source="great_expectations",
            category="missing",
            name="expect_column_values_to_not_be_null",
            column="bill_length_mm",
            success=not failed,
            outcome="failed" if failed else "passed",
            observed={"unexpected_count": 3 if failed else 0},
            expected={"mostly": 0.99},
        )
    ]
    status, summary = summarise(checks)
    return Report(
        id=uuid.uuid4().hex,
        status=status,
        success=status == "passed",
        created_at=datetime.now(UTC) - timedelta(seconds=age_s),
        dataset=DatasetInfo(name=dataset, format="csv", rows=10),
        suite=SuiteInfo(name=suite, sha256="0" * 64),
        summary=summary,
        checks=checks,
    )


def sqlite_store(path: Path) -> ReportStore:
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    return ReportStore(make_sessionmaker(engine))


def test_saved_report_reads_back_identical(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path / "r.db")
    report = make_report(failed=True)
    store.save(report)
    assert store.get(report.id) == report


def test_report_survives_a_new_store_on_the_same_file(tmp_path: Path) -> None:
    report = make_report()
    sqlite_store(tmp_path / "r.db").save(report)
    assert sqlite_store(tmp_path / "r.db").get(report.id).id == report.id


def test_unknown_report_id_raises_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="nope"):
        sqlite_store(tmp_path / "r.db").get("nope")


def test_listing_is_newest_first_paginated_and_filtered(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path / "r.db")
    old = make_report(dataset="a.csv", age_s=30)
    mid = make_report(dataset="b.csv", failed=True, age_s=20)
    new = make_report(dataset="a.csv", suite="other", age_s=10)
    for report in (mid, new, old):
        store.save(report)

    items, total = store.list(ReportFilter(), limit=2)
    assert total == 3
    assert [i.id for i in items] == [new.id, mid.id]
    items, _ = store.list(ReportFilter(), limit=2, offset=2)
    assert [i.id for i in items] == [old.id]

    assert [i.id for i in store.list(ReportFilter(status="failed"))[0]] == [mid.id]
    assert [i.id for i in store.list(ReportFilter(suite="other"))[0]] == [new.id]
    assert {i.id for i in store.list(ReportFilter(dataset="a.csv"))[0]} == {old.id, new.id}
    assert [i.id for i in store.list(ReportFilter(q="b.c"))[0]] == [mid.id]


def test_search_treats_like_wildcards_as_text(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path / "r.db")
    store.save(make_report(dataset="plain.csv"))
    assert store.list(ReportFilter(q="%"))[1] == 0
    assert store.list(ReportFilter(q="_"))[1] == 0


def test_migrating_twice_is_harmless(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    migrate(engine)
    migrate(engine)
    ReportStore(make_sessionmaker(engine)).ping()


@pytest.mark.postgres
def test_postgres_store_round_trips_and_filters(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    migrate(engine)
    store = ReportStore(make_sessionmaker(engine))
    passed, failed = make_report(age_s=5), make_report(failed=True)
    store.save(passed)
    store.save(failed)
    assert store.get(failed.id) == failed
    items, total = store.list(ReportFilter(status="passed"))
    assert total == 1 and items[0].id == passed.id
    engine.dispose()

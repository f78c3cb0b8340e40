"""The failing-rows links of a report page, clicked in a real headless Chromium against the
service started as a process: the downloads are the rows the API serves, under the page's CSP."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pandas as pd
import pytest

from tests.reports.test_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    REPO,
    Service,
    page_url,
    serving,
    watch_console,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="browser tests need Debian's chromium at /usr/bin/chromium"
    ),
]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with serving(tmp_path_factory.mktemp("rows-browser"), DATAGATE_MAX_FAILING_ROWS="3") as s:
        yield s


def failed_report(service: Service) -> dict[str, Any]:
    response = httpx.post(
        f"{service.base}/v1/validations",
        files={"data": ("penguins_bad.csv", (REPO / "examples" / "penguins_bad.csv").read_bytes())},
        data={"suite": "penguins", "dataset_name": "rows-browser"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def test_clicking_a_failing_rows_link_downloads_the_checks_rows(
    service: Service, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    report = failed_report(service)
    with_rows = [c for c in report["checks"] if "artifact" in c["details"].get("failing_rows", {})]
    assert with_rows, "penguins_bad.csv fails a row-level expectation"
    first = with_rows[0]["details"]["failing_rows"]
    refused: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
            watch_console(page, refused)
            page.goto(page_url(service, report))
            paragraphs = page.locator("p.failing-rows")
            assert paragraphs.count() == len(with_rows)
            paragraphs.first.scroll_into_view_if_needed()
            page.screenshot(path=str(tmp_path / "failing-rows-links.png"))
            paragraphs.first.screenshot(path=str(tmp_path / "failing-rows-cell.png"))

            csv_link = paragraphs.first.get_by_role("link", name="CSV")
            query = parse_qs(urlsplit(csv_link.get_attribute("href") or "").query)
            assert query == {"check": [first["check"]], "format": ["csv"]}
            with page.expect_download() as csv_download:
                csv_link.click()
            csv_path = tmp_path / "rows.csv"
            csv_download.value.save_as(csv_path)

            with page.expect_download() as parquet_download:
                paragraphs.first.get_by_role("link", name="Parquet").click()
            parquet_path = tmp_path / "rows.parquet"
            parquet_download.value.save_as(parquet_path)
        finally:
            browser.close()

    assert not refused, f"the browser refused content: {refused}"
    served = httpx.get(
        f"{service.base}/v1/reports/{report['id']}/failing-rows",
        params={"check": first["check"], "format": "csv"},
        timeout=30,
    )
    assert csv_path.read_bytes() == served.content
    rows = pd.read_parquet(parquet_path)
    assert len(rows) == first["rows"] == min(3, first["total"])
    assert rows.columns[0] == "row"
    assert pd.read_csv(io.BytesIO(served.content))["row"].tolist() == rows["row"].tolist()
    for name in ("failing-rows-links", "failing-rows-cell"):
        assert (tmp_path / f"{name}.png").stat().st_size > 0

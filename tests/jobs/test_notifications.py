"""Notifications (DATAGATE_NOTIFY) against real receivers on loopback: signed webhooks and Slack
messages for sync and async validations, the event filter, retries, and receivers that are dead
or redirect, none of which may fail or hold up the validation."""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from httpx import AsyncClient
from pydantic import ValidationError

from app.core.config import NotifyTarget, Settings
from app.core.metrics import Metrics
from app.jobs import notifications
from app.jobs.callbacks import SIGNATURE_HEADER, sign
from app.jobs.notifications import EVENT_HEADER
from app.main import create_app
from app.reports.model import DatasetInfo, Report
from tests.conftest import EXAMPLES, RunningApp, make_settings

pytestmark = pytest.mark.anyio

SECRET = "notify-secret-for-tests"
PUBLIC_URL = "https://datagate.example"
SLACK_TOKEN = "T000/B000/XXXXsecretXXXX"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Receiver:
    """A real HTTP server on loopback. Records every POST by path; `/redirect` answers 307 to
    `/stolen`, `/flaky` answers 503 to its first POST of each body."""

    def __init__(self) -> None:
        self.received: queue.Queue[tuple[str, dict[str, str], bytes]] = queue.Queue()
        self.log: list[tuple[str, dict[str, str], bytes]] = []
        seen_flaky: set[bytes] = set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                entry = (self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                outer.log.append(entry)
                outer.received.put(entry)
                if self.path == "/redirect":
                    self.send_response(307)
                    self.send_header("Location", "/stolen")
                elif self.path == "/flaky" and body not in seen_flaky:
                    seen_flaky.add(body)
                    self.send_response(503)
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def posts(
        self, path: str, report_id: str, timeout: float = 30
    ) -> list[tuple[dict[str, str], bytes]]:
        """Every POST to `path` about the report, waiting up to `timeout` for the first."""
        deadline = time.monotonic() + timeout
        while True:
            found = [(h, b) for p, h, b in list(self.log) if p == path and report_id.encode() in b]
            if found or time.monotonic() >= deadline:
                return found
            time.sleep(0.05)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    served = Receiver()
    yield served
    served.close()


@pytest.fixture(scope="module")
def dead_url() -> str:
    """A loopback port nobody listens on: every delivery there is refused."""
    return f"http://127.0.0.1:{free_port()}/hook"


@pytest.fixture(scope="module")
def notify_app(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver, dead_url: str
) -> Iterator[RunningApp]:
    targets = [
        {"kind": "webhook", "url": f"{receiver.url}/hook", "events": ["failed", "error"]},
        {"kind": "slack", "url": f"{receiver.url}/slack/{SLACK_TOKEN}", "events": ["failed"]},
        {"kind": "webhook", "url": f"{receiver.url}/passed", "events": ["passed"]},
        {"kind": "webhook", "url": f"{receiver.url}/flaky", "events": ["passed"]},
        {"kind": "webhook", "url": f"{receiver.url}/redirect", "events": ["warned"]},
        {"kind": "slack", "url": dead_url, "events": ["warned"]},
    ]
    settings = make_settings(
        tmp_path_factory.mktemp("notify"),
        notify=targets,
        callback_secret=SECRET,
        public_url=PUBLIC_URL,
        job_poll_s=0.2,
    )
    running = RunningApp(create_app(settings))
    # Short delays so that a dead receiver's retries end within the test.
    running.app.state.notifier.first_delay_s = 0.05
    running.app.state.notifier.attempts = 3
    yield running
    running.close()


@pytest.fixture
async def client(notify_app: RunningApp) -> AsyncIterator[AsyncClient]:
    async with notify_app.client() as http:
        yield http


async def validate(
    client: AsyncClient, example: str, suite: str = "penguins", **fields: str
) -> tuple[int, dict[str, Any]]:
    response = await client.post(
        "/v1/validations",
        files={"data": (example, (EXAMPLES / example).read_bytes())},
        data={"suite": suite, **fields},
    )
    return response.status_code, response.json()


def counted(metrics: str, kind: str, outcome: str) -> float:
    prefix = f'datagate_notifications_total{{kind="{kind}",outcome="{outcome}"}} '
    for line in metrics.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix) :])
    return 0.0


async def metrics_text(client: AsyncClient) -> str:
    return (await client.get("/metrics")).text


async def test_failed_sync_validation_sends_a_signed_webhook_and_a_slack_message(
    client: AsyncClient, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    status, report = await validate(client, "penguins_bad.csv", dataset_name="bad-penguins")
    assert status == 200 and report["status"] == "failed"

    [(headers, body)] = await asyncio.to_thread(receiver.posts, "/hook", report["id"])
    assert headers[SIGNATURE_HEADER.lower()] == sign(body, SECRET)
    assert headers[EVENT_HEADER.lower()] == "failed"
    sent = json.loads(body)
    assert sent["id"] == report["id"] and sent["status"] == "failed"
    assert sent["report_url"] == f"{PUBLIC_URL}/reports/{report['id']}"

    [(_, slack)] = await asyncio.to_thread(receiver.posts, f"/slack/{SLACK_TOKEN}", report["id"])
    text = json.loads(slack)["text"]
    assert text.startswith("*datagate: FAILED* `bad-penguins` (")
    assert "suite `penguins`" in text
    failed = [c for c in report["checks"] if c["outcome"] == "failed"]
    assert f"{report['summary']['failed']} failed" in text
    assert all(c["name"] in text for c in failed[:10])
    assert "species" in text and "expected" in text and "observed" in text
    assert f"<{PUBLIC_URL}/reports/{report['id']}|Open the report>" in text
    # The Slack URL is its own credential: no log line may carry it.
    assert caplog.records and not [r for r in caplog.records if SLACK_TOKEN in r.getMessage()]


async def test_the_event_filter_sends_each_target_only_its_events(
    client: AsyncClient, receiver: Receiver
) -> None:
    status, report = await validate(client, "penguins.csv")
    assert status == 200 and report["status"] == "passed"
    passed = await asyncio.to_thread(receiver.posts, "/passed", report["id"])
    assert len(passed) == 1 and passed[0][0][EVENT_HEADER.lower()] == "passed"
    # Only the failed/error and failed targets could have heard of it, and they must not.
    await asyncio.sleep(0.5)
    assert await asyncio.to_thread(receiver.posts, "/hook", report["id"], 0) == []
    assert await asyncio.to_thread(receiver.posts, f"/slack/{SLACK_TOKEN}", report["id"], 0) == []


async def test_a_failing_receiver_is_retried_until_it_takes_the_notification(
    client: AsyncClient, receiver: Receiver
) -> None:
    before = counted(await metrics_text(client), "webhook", "sent")
    status, report = await validate(client, "penguins.csv")
    assert status == 200
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        attempts = await asyncio.to_thread(receiver.posts, "/flaky", report["id"], 0)
        if len(attempts) >= 2:
            break
        await asyncio.sleep(0.05)
    assert len(attempts) == 2  # a 503, then the retry that was taken
    assert attempts[0][1] == attempts[1][1]
    await asyncio.sleep(0.3)
    assert counted(await metrics_text(client), "webhook", "sent") >= before + 2


async def test_async_validation_is_notified_when_its_job_ends(
    client: AsyncClient, receiver: Receiver
) -> None:
    status, accepted = await validate(client, "penguins_bad.csv", wait="false")
    assert status == 202
    [(headers, body)] = await asyncio.to_thread(receiver.posts, "/hook", accepted["id"], 120)
    assert headers[SIGNATURE_HEADER.lower()] == sign(body, SECRET)
    assert json.loads(body)["status"] == "failed"
    assert await asyncio.to_thread(receiver.posts, f"/slack/{SLACK_TOKEN}", accepted["id"])


async def test_dead_and_redirecting_receivers_are_counted_and_never_block_the_validation(
    client: AsyncClient, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    """The `warned` targets: one port refuses connections, one answers 307 to another path. The
    validation answers 200 at once; each is counted undelivered and logged by host only; the
    redirect is not followed."""
    suite = {
        "expectations": [
            {
                "type": "expect_column_values_to_be_in_set",
                "kwargs": {"column": "species", "value_set": ["Adelie"]},
                "severity": "warning",
            }
        ]
    }
    assert (await client.put("/v1/suites/only-adelie", json=suite)).status_code in (200, 201)
    metrics = await metrics_text(client)
    dead_before = counted(metrics, "slack", "undelivered")
    redirect_before = counted(metrics, "webhook", "undelivered")
    caplog.set_level(logging.ERROR, logger="app.jobs.notifications")

    started = time.monotonic()
    status, report = await validate(client, "penguins.csv", suite="only-adelie")
    assert status == 200 and report["status"] == "passed" and report["summary"]["warned"] == 1
    assert time.monotonic() - started < 30

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        metrics = await metrics_text(client)
        if (
            counted(metrics, "slack", "undelivered") > dead_before
            and counted(metrics, "webhook", "undelivered") > redirect_before
        ):
            break
        await asyncio.sleep(0.1)
    assert counted(metrics, "slack", "undelivered") == dead_before + 1
    assert counted(metrics, "webhook", "undelivered") == redirect_before + 1
    assert len(await asyncio.to_thread(receiver.posts, "/redirect", report["id"])) == 1
    assert await asyncio.to_thread(receiver.posts, "/stolen", report["id"], 0) == []
    logged = [r.getMessage() for r in caplog.records if report["id"] in r.getMessage()]
    assert any("slack notification to http://127.0.0.1:" in m for m in logged), logged
    assert any("status 307" in m for m in logged), logged
    # The service keeps answering: a later validation is unaffected.
    assert (await validate(client, "penguins.csv"))[0] == 200


async def test_slack_text_cannot_be_forged_by_a_dataset_name(
    client: AsyncClient, receiver: Receiver
) -> None:
    name = "x <!channel> <https://evil.example|click> & more"
    status, report = await validate(client, "penguins_bad.csv", dataset_name=name)
    assert status == 200
    [(_, slack)] = await asyncio.to_thread(receiver.posts, f"/slack/{SLACK_TOKEN}", report["id"])
    text = json.loads(slack)["text"]
    assert "&lt;!channel&gt; &lt;https://evil.example|click&gt; &amp; more" in text
    assert "<!channel>" not in text and "<https://evil.example" not in text


def test_a_bad_notify_setting_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(notify=[{"kind": "sms", "url": "ftp://example.com/x"}])  # type: ignore[list-item]
    problems = {".".join(map(str, e["loc"])): e["msg"] for e in refused.value.errors()}
    assert "notify.0.kind" in problems
    assert "http(s)" in problems["notify.0.url"]
    with pytest.raises(ValidationError, match="events"):
        Settings(notify=[{"kind": "webhook", "url": "https://h.example", "events": ["done"]}])  # type: ignore[list-item]


def test_the_notify_setting_is_read_from_the_environment_as_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "DATAGATE_NOTIFY", '[{"kind": "slack", "url": "https://hooks.example/T/B/secret"}]'
    )
    [target] = Settings().notify
    assert target.kind == "slack" and target.events == ["failed", "error"]
    assert "secret" not in repr(target)


async def test_deliveries_in_flight_are_bounded_and_the_excess_counted_undelivered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A receiver that accepts connections and never answers holds deliveries open: past
    MAX_PENDING, new notifications are counted undelivered at once instead of piling up."""
    monkeypatch.setattr(notifications, "MAX_PENDING", 2)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        metrics = Metrics()
        target = NotifyTarget.model_validate({"kind": "webhook", "url": url})
        notifier = notifications.Notifier([target], "", metrics, attempts=1, timeout_s=30)
        report = Report(
            id="held",
            status="failed",
            success=False,
            dataset=DatasetInfo(name="d.csv", format="csv", rows=1),
        )
        for _ in range(5):
            notifier.send(report)
        in_flight = set(notifier._tasks)
        assert len(in_flight) == 2
        value = metrics.notifications.labels("webhook", "undelivered")._value.get()
        assert value == 3
        for task in in_flight:
            task.cancel()
        await asyncio.gather(*in_flight, return_exceptions=True)

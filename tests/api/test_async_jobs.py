"""Asynchronous validations through the ASGI app: 202 at once, a durable job, report, callbacks."""

from __future__ import annotations

import asyncio
import hashlib
import json
import queue
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient

from app.jobs.callbacks import SIGNATURE_HEADER, sign
from app.main import create_app
from tests.conftest import EXAMPLES, RunningApp, make_settings

pytestmark = pytest.mark.anyio

PENGUINS = EXAMPLES / "penguins.csv"
SECRET = "callback-secret-for-tests"
MAX_QUEUE = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def receiver_port() -> int:
    """The one port callbacks may reach on 127.0.0.1; other ports of the host stay closed."""
    return free_port()


@pytest.fixture(scope="module")
def jobs_app(tmp_path_factory: pytest.TempPathFactory, receiver_port: int) -> Iterator[RunningApp]:
    settings = make_settings(
        tmp_path_factory.mktemp("async-jobs"),
        callback_hosts=f"http://127.0.0.1:{receiver_port}",
        callback_secret=SECRET,
        max_queue=MAX_QUEUE,
        job_poll_s=0.2,
    )
    running = RunningApp(create_app(settings))
    yield running
    running.close()


@pytest.fixture
async def client(jobs_app: RunningApp) -> AsyncIterator[AsyncClient]:
    async with jobs_app.client() as http:
        yield http


class CallbackReceiver:
    """A real HTTP server on loopback that records what is POSTed to it."""

    def __init__(self, port: int = 0, redirect_to: str | None = None) -> None:
        received: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.put(({k.lower(): v for k, v in self.headers.items()}, body))
                if redirect_to:
                    self.send_response(307)
                    self.send_header("Location", redirect_to)
                else:
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(receiver_port: int) -> Iterator[CallbackReceiver]:
    server = CallbackReceiver(receiver_port)
    yield server
    server.close()


async def submit(
    client: AsyncClient,
    content: bytes | None = None,
    *,
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    **fields: str,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    data = {"suite": "penguins", **fields}
    response = await client.post(
        "/v1/validations",
        files={"data": ("penguins.csv", content or PENGUINS.read_bytes())},
        data=data,
        headers=headers,
        params=params,
    )
    return response.status_code, response.json(), dict(response.headers)


async def wait_until_ended(client: AsyncClient, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        state: dict[str, Any] = (await client.get(f"/v1/validations/{job_id}")).json()
        if state["status"] in ("done", "error"):
            return state
        await asyncio.sleep(0.1)
    pytest.fail(f"job {job_id} did not end within 120 s")


def job_folder(app: RunningApp, job_id: str) -> Path:
    return Path(app.app.state.settings.data_dir) / "jobs" / job_id


def uploads_left(app: RunningApp) -> list[Path]:
    return list(Path(app.app.state.settings.uploads_dir).iterdir())


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def test_wait_false_answers_202_at_once_with_the_job_links(client: AsyncClient) -> None:
    status, body, headers = await submit(client, wait="false")
    assert status == 202
    assert set(body) == {"id", "status", "status_url", "report_url"}
    assert body["status"] == "queued"
    assert body["status_url"] == f"/v1/validations/{body['id']}"
    # Relative without DATAGATE_PUBLIC_URL: never built from the request's Host header.
    assert body["report_url"] == f"/reports/{body['id']}"
    assert headers["location"] == body["status_url"]
    await wait_until_ended(client, body["id"])


async def test_job_runs_to_done_with_timestamps_and_the_stored_report(
    client: AsyncClient, jobs_app: RunningApp
) -> None:
    _, accepted, _ = await submit(client, wait="false")
    state = await wait_until_ended(client, accepted["id"])
    assert state["status"] == "done"
    assert state["attempts"] == 1 and state["error"] is None
    assert state["created_at"] <= state["started_at"] <= state["finished_at"]
    assert state["report"]["status"] == "passed"
    assert state["report"]["dataset"]["rows"] == 344
    stored = (await client.get(f"/v1/reports/{accepted['id']}")).json()
    assert stored == state["report"]
    assert not job_folder(jobs_app, accepted["id"]).exists(), "inputs must go when the job ends"


@pytest.mark.parametrize(
    ("headers", "params"),
    [
        ({"Prefer": "respond-async"}, None),
        ({"Prefer": "respond-async, wait=5"}, None),
        (None, {"wait": "false"}),
    ],
    ids=["prefer", "prefer-with-wait", "query"],
)
async def test_prefer_header_or_wait_query_queue_a_job(
    client: AsyncClient, headers: dict[str, str] | None, params: dict[str, str] | None
) -> None:
    status, body, _ = await submit(client, headers=headers, params=params)
    assert status == 202
    assert (await wait_until_ended(client, body["id"]))["status"] == "done"


async def test_without_async_request_the_report_comes_back_synchronously(
    client: AsyncClient,
) -> None:
    status, body, _ = await submit(client)
    assert status == 200
    assert body["status"] == "passed"


async def test_job_and_its_input_are_durable_before_the_202(
    client: AsyncClient, jobs_app: RunningApp
) -> None:
    dispatcher = jobs_app.app.state.validations.dispatcher
    dispatcher.capacity = 0  # nothing is claimed: the 202's promises can be inspected
    try:
        content = PENGUINS.read_bytes()
        _, accepted, _ = await submit(client, content, wait="false")
        job = jobs_app.app.state.jobs.get(accepted["id"])
        assert job.status == "queued"
        stored = job_folder(jobs_app, accepted["id"]) / "data.csv"
        assert sha256_of(stored) == hashlib.sha256(content).hexdigest()
        assert (await client.get(f"/v1/validations/{accepted['id']}")).json()["status"] == "queued"
    finally:
        dispatcher.capacity = 1
        dispatcher.notify()
    assert (await wait_until_ended(client, accepted["id"]))["status"] == "done"


async def test_full_queue_answers_503_with_retry_after_and_queued_jobs_still_run(
    client: AsyncClient, jobs_app: RunningApp
) -> None:
    dispatcher = jobs_app.app.state.validations.dispatcher
    dispatcher.capacity = 0
    try:
        accepted = [await submit(client, wait="false") for _ in range(MAX_QUEUE)]
        assert [status for status, _, _ in accepted] == [202] * MAX_QUEUE
        status, body, headers = await submit(client, wait="false")
        assert status == 503
        assert body["error"]["code"] == "service_busy"
        assert int(headers["retry-after"]) > 0
    finally:
        dispatcher.capacity = 1
        dispatcher.notify()
    for _, job, _ in accepted:
        assert (await wait_until_ended(client, job["id"]))["status"] == "done"


async def test_callback_is_posted_with_a_valid_hmac_signature(
    client: AsyncClient, receiver: CallbackReceiver
) -> None:
    status, accepted, _ = await submit(client, wait="false", callback_url=receiver.url)
    assert status == 202
    await wait_until_ended(client, accepted["id"])
    headers, body = await asyncio.to_thread(receiver.received.get, True, 60)
    assert headers[SIGNATURE_HEADER.lower()] == sign(body, SECRET)
    assert headers[SIGNATURE_HEADER.lower()] != sign(body, "another secret")
    summary = json.loads(body)
    assert summary["id"] == accepted["id"]
    assert summary["status"] == "passed" and summary["success"] is True
    assert summary["report_url"].endswith(f"/reports/{accepted['id']}")


async def test_callback_to_a_host_not_listed_is_403_and_queues_nothing(
    client: AsyncClient, jobs_app: RunningApp
) -> None:
    before = jobs_app.app.state.jobs.queued_count()
    status, body, _ = await submit(
        client, wait="false", callback_url="http://attacker.example/hook"
    )
    assert status == 403
    assert "attacker.example" in body["error"]["message"]
    assert jobs_app.app.state.jobs.queued_count() == before
    assert uploads_left(jobs_app) == []


async def test_callback_with_a_synchronous_request_is_422(
    client: AsyncClient, receiver: CallbackReceiver
) -> None:
    status, body, _ = await submit(client, callback_url=receiver.url)
    assert status == 422
    assert "callback_url" in body["error"]["message"]


async def test_callback_to_another_port_of_an_allowed_host_is_403_and_never_sent(
    client: AsyncClient, jobs_app: RunningApp
) -> None:
    """SSRF: 127.0.0.1 is allowed on one port; its other services (Redis on 6379, PostgreSQL on
    5432 here) must not receive signed POSTs. A listener on another port stands in for them."""
    other = CallbackReceiver()
    try:
        before = jobs_app.app.state.jobs.queued_count()
        for url in (other.url, "http://127.0.0.1:6379/", "http://127.0.0.1/hook"):
            status, body, _ = await submit(client, wait="false", callback_url=url)
            assert status == 403, (url, body)
            assert "not an allowed callback origin" in body["error"]["message"]
        assert jobs_app.app.state.jobs.queued_count() == before
        await asyncio.sleep(1)
        assert other.received.empty(), "nothing was POSTed to the other port"
    finally:
        other.close()


async def test_a_redirect_from_the_callback_receiver_is_not_followed(
    client: AsyncClient, receiver_port: int
) -> None:
    target = CallbackReceiver()  # another port: where a redirect would carry the signed POST
    redirecting = CallbackReceiver(receiver_port, redirect_to=target.url)
    try:
        status, accepted, _ = await submit(client, wait="false", callback_url=redirecting.url)
        assert status == 202
        await wait_until_ended(client, accepted["id"])
        _, body = await asyncio.to_thread(redirecting.received.get, True, 60)
        assert json.loads(body)["id"] == accepted["id"]
        await asyncio.sleep(2)
        assert target.received.empty(), "the 307 was not followed"
        assert redirecting.received.empty(), "a 3xx is an answer, not a failure to retry"
    finally:
        redirecting.close()
        target.close()


async def test_job_over_its_time_limit_ends_in_error_timeout_and_the_next_job_runs(
    client: AsyncClient, jobs_app: RunningApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A limit no real validation meets: the worker is stopped whatever the machine's speed.
    monkeypatch.setattr(jobs_app.app.state.settings, "job_timeout_s", 0.001)
    _, accepted, _ = await submit(client, wait="false")
    state = await wait_until_ended(client, accepted["id"])
    assert state["status"] == "error"
    assert state["error"].startswith("timeout")
    assert state["report"]["status"] == "error" and state["report"]["error"] == state["error"]
    monkeypatch.undo()
    _, again, _ = await submit(client, wait="false")
    assert (await wait_until_ended(client, again["id"]))["status"] == "done"


async def test_unknown_job_is_404(client: AsyncClient) -> None:
    response = await client.get("/v1/validations/0123456789abcdef")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_metrics_count_async_validations_rows_restarts_and_queue_depth(
    client: AsyncClient,
) -> None:
    _, accepted, _ = await submit(client, wait="false")
    await wait_until_ended(client, accepted["id"])
    text = (await client.get("/metrics")).text
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert samples['datagate_validations_total{mode="async",source="upload",status="passed"}'] >= 1
    assert samples["datagate_rows_validated_total"] >= 344
    assert samples["datagate_validation_duration_seconds_count"] >= 1
    assert samples["datagate_queue_depth"] == 0
    assert "datagate_worker_restarts" in samples

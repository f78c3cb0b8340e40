"""kill -9 in the middle of jobs: after a restart every job ends, with a complete report."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import Server, penguins_times, wait_until_ended

pytestmark = pytest.mark.slow

JOBS = 5


def jobs_left(root: Path) -> list[Path]:
    folder = root / "data" / "jobs"
    return list(folder.iterdir()) if folder.exists() else []


def test_jobs_survive_kill_9_and_end_done_with_complete_reports(
    tmp_path: Path, servers: list[Server]
) -> None:
    quick = {"job_heartbeat_s": 0.5, "job_stale_after_s": 3, "job_poll_s": 0.2}
    first = Server(tmp_path, "first", **quick)
    servers.append(first.start())
    body = penguins_times(1000)  # 344,000 rows: a few seconds a job on one worker
    with httpx.Client(base_url=first.url, timeout=60) as client:
        ids = []
        for i in range(JOBS):
            response = client.post(
                "/v1/validations",
                files={"data": (f"penguins-{i}.csv", body)},
                data={"suite": "penguins", "wait": "false"},
            )
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            states = [client.get(f"/v1/validations/{i}").json()["status"] for i in ids]
            if "running" in states:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"no job was seen running: {states}")
    first.kill()
    assert "running" in states and "queued" in states, "kill must land mid-run"

    second = Server(tmp_path, "second", **quick)
    servers.append(second.start())
    with httpx.Client(base_url=second.url, timeout=60) as client:
        ended = {job_id: wait_until_ended(client, job_id) for job_id in ids}
        for job_id, state in ended.items():
            assert state["status"] in ("done", "error")
            if state["status"] == "error":
                assert state["error"], "an error must say why"
            report = client.get(f"/v1/reports/{job_id}")
            assert report.status_code == 200
            stored = report.json()
            assert stored == state["report"]
            assert stored["id"] == job_id
            assert stored["dataset"]["rows"] == 344_000
            assert stored["summary"]["evaluated"] == len(stored["checks"]) > 0
    killed_mid_run = [j for j, s in zip(ids, states, strict=True) if s == "running"]
    assert [ended[j]["attempts"] for j in killed_mid_run] == [2] * len(killed_mid_run)
    assert all(s["status"] == "done" for s in ended.values())
    assert jobs_left(tmp_path) == [], "stored inputs must be deleted when their job ends"
    assert second.stop() == 0


def test_sigterm_releases_a_running_job_and_exits_0_and_the_next_start_runs_it(
    tmp_path: Path, servers: list[Server]
) -> None:
    # No grace: the running job must be given back at once, its worker stopped, not waited out.
    settings = {"shutdown_grace_s": 0, "job_poll_s": 0.2, "job_timeout_s": 3600}
    first = Server(tmp_path, "first", **settings)
    servers.append(first.start())
    with httpx.Client(base_url=first.url, timeout=60) as client:
        response = client.post(
            "/v1/validations",
            files={"data": ("penguins.csv", penguins_times(1000))},
            data={"suite": "penguins", "wait": "false"},
        )
        job_id = response.json()["id"]
        deadline = time.monotonic() + 120
        while client.get(f"/v1/validations/{job_id}").json()["status"] != "running":
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.05)
    assert first.stop() == 0
    assert "released for another replica" in first.tail()

    second = Server(tmp_path, "second", **settings)
    servers.append(second.start())
    with httpx.Client(base_url=second.url, timeout=60) as client:
        state = wait_until_ended(client, job_id)
    assert state["status"] == "done"
    assert state["attempts"] == 1, "a released job's interrupted start does not count"
    assert second.stop() == 0


def metric_samples(text: str) -> dict[str, float]:
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def test_sync_validation_abandoned_by_its_client_is_cancelled_and_its_worker_freed(
    tmp_path: Path, servers: list[Server]
) -> None:
    server = Server(tmp_path, "abandoned")  # one worker: whoever holds it blocks the rest
    servers.append(server.start())
    big = penguins_times(3000)  # a million rows: still running when the client gives up
    with (
        httpx.Client(base_url=server.url, timeout=httpx.Timeout(60, read=2)) as impatient,
        pytest.raises(httpx.ReadTimeout),
    ):
        impatient.post(
            "/v1/validations",
            files={"data": ("big.csv", big)},
            data={"suite": "penguins"},
        )
    deadline = time.monotonic() + 30
    while "cancelled: the client disconnected" not in server.tail():
        assert time.monotonic() < deadline, f"no cancellation logged: {server.tail()}"
        time.sleep(0.1)
    with httpx.Client(base_url=server.url, timeout=60) as client:
        response = client.post(
            "/v1/validations",
            files={"data": ("penguins.csv", penguins_times(1))},
            data={"suite": "penguins"},
        )
        assert response.status_code == 200 and response.json()["status"] == "passed"
        samples = metric_samples(client.get("/metrics").text)
    assert samples['datagate_requests_rejected_total{code="client_closed_request"}'] == 1
    assert samples["datagate_worker_restarts"] == 1, "the abandoned job's worker was replaced"

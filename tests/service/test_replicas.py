"""Two service processes on one PostgreSQL database drain one queue; no job runs twice."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.service.conftest import Server, penguins_times, wait_until_ended

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

JOBS = 30


def claims(server: Server) -> list[str]:
    return re.findall(r"job ([0-9a-f]{32}) claimed", server.log.read_text())


def test_two_replicas_share_the_queue_and_run_each_job_once(
    tmp_path: Path, postgres_url: str, servers: list[Server]
) -> None:
    # One data folder for both, as a shared volume would be: either replica reads any input.
    shared = {"database_url": postgres_url, "job_poll_s": 0.2}
    front = Server(tmp_path, "front", **shared)
    back = Server(tmp_path, "back", **shared)
    servers.extend([front.start(), back.start()])
    body = penguins_times(20)  # 6,880 rows
    with httpx.Client(base_url=front.url, timeout=60) as client:
        ids = []
        for i in range(JOBS):
            response = client.post(
                "/v1/validations",
                files={"data": (f"penguins-{i}.csv", body)},
                data={"suite": "penguins"},
                headers={"Prefer": "respond-async"},
            )
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
        states = [wait_until_ended(client, job_id) for job_id in ids]
    assert [s["status"] for s in states] == ["done"] * JOBS

    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            attempts = dict(conn.execute(text("SELECT id, attempts FROM jobs")).all())
            reports = conn.execute(text("SELECT id, count(*) FROM reports GROUP BY id")).all()
    finally:
        engine.dispose()
    assert attempts == dict.fromkeys(ids, 1)
    assert sorted(reports) == sorted((job_id, 1) for job_id in ids)

    by_front, by_back = claims(front), claims(back)
    assert sorted(by_front + by_back) == sorted(ids), "each job claimed once, by one replica"
    assert by_front and by_back, "both replicas must take part"
    assert front.stop() == 0 and back.stop() == 0

"""200 concurrent small validations through the real HTTP server: all answered, none lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import PENGUINS, Server

pytestmark = pytest.mark.slow

CLIENTS = 200


async def validate_all(url: str, body: bytes) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(base_url=url, timeout=300, limits=limits) as client:
        return await asyncio.gather(
            *(
                client.post(
                    "/v1/validations",
                    files={"data": (f"penguins-{i}.csv", body)},
                    data={"suite": "penguins"},
                )
                for i in range(CLIENTS)
            )
        )


def test_200_concurrent_validations_are_all_answered_and_every_accepted_one_is_stored(
    tmp_path: Path, servers: list[Server]
) -> None:
    server = Server(tmp_path, workers=2, max_queue=100)
    servers.append(server.start())
    responses = asyncio.run(validate_all(server.url, PENGUINS.read_bytes()))

    statuses = sorted({r.status_code for r in responses})
    assert set(statuses) <= {200, 503}, statuses
    refused = [r for r in responses if r.status_code == 503]
    assert all(int(r.headers["Retry-After"]) > 0 for r in refused)
    assert all(r.json()["error"]["code"] == "service_busy" for r in refused)
    accepted = [r.json() for r in responses if r.status_code == 200]
    assert len(accepted) >= 102, "the workers and their queue (2 + 100) must all be used"
    assert all(report["status"] == "passed" for report in accepted)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for report in accepted:
            stored = client.get(f"/v1/reports/{report['id']}")
            assert stored.status_code == 200
            assert stored.json() == report
        metrics = client.get("/metrics").text
    passed = 'datagate_validations_total{mode="sync",source="upload",status="passed"}'
    assert f"{passed} {len(accepted)}.0" in metrics
    assert server.stop() == 0

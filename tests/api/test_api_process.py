"""The API process stays light: the engines (Great Expectations, deepchecks) load in workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, EXPECTATIONS, REPO

pytestmark = pytest.mark.process

# Run in a fresh interpreter: this test process has imported every engine already.
SCRIPT = """
import json, sys
from fastapi.testclient import TestClient
from app.main import create_app

penguins = open(sys.argv[1], "rb").read()
suite = {"expectations": [{"type": "expect_column_values_to_not_be_null",
                           "kwargs": {"column": "species"}}]}
with TestClient(create_app()) as client:
    answers = [
        client.put("/v1/suites/light", json=suite).status_code,
        client.put("/v1/suites/bad", json={"expectations": [
            {"type": "expect_magic", "kwargs": {}}]}).status_code,
        client.post("/v1/validations", files={"data": ("p.csv", penguins)},
                    data={"suite": "penguins"}).status_code,
        client.post("/v1/validations", files={"data": ("p.csv", penguins),
                    "reference": ("r.csv", penguins)},
                    data={"suite": "light", "label": "species"}).status_code,
        client.get("/v1/suites").status_code,
        client.get("/reports").status_code,
    ]
heavy = ("great_expectations", "deepchecks", "sklearn", "scipy")
print(json.dumps({"answers": answers,
                  "loaded": [m for m in heavy if m in sys.modules]}))
"""


def test_the_api_process_never_imports_the_engines(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATAGATE_DATA_DIR": str(tmp_path / "data"),
        "DATAGATE_EXPECTATIONS_DIR": str(EXPECTATIONS),
        "DATAGATE_WORKERS": "1",
        "DATAGATE_LOG_LEVEL": "WARNING",
    }
    env.pop("DATAGATE_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(EXAMPLES / "penguins.csv")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # Suites checked (a bad one refused), validated with and without a reference, listed.
    assert result["answers"] == [201, 422, 200, 200, 200, 200]
    assert result["loaded"] == []
